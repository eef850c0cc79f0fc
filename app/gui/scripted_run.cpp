// Scripted runs: see scripted_run.h.
#include "scripted_run.h"

#include <QApplication>
#include <QDir>
#include <QFileInfo>
#include <QPixmap>
#include <QSaveFile>
#include <QTimer>
#include <cstdio>

#include "error_presenter.h"
#include "heatmap_view.h"
#include "main_window.h"
#include "session_controller.h"

namespace attnscope::app {

namespace {
// Time for the last layout pass and replot after the map arrives, before grabbing pixels.
constexpr int kSettleMs = 400;
}  // namespace

ScriptedRun::ScriptedRun(MainWindow* window, Options options)
    : QObject(window), m_window(window), m_options(std::move(options)) {
  SessionController* c = window->controller();
  const bool unattended = !m_options.screenshotPath.isEmpty();
  if (unattended) window->errorPresenter()->setEnabled(false);
  connect(c, &SessionController::modelChanged, this, [this](LoadedModelPtr model) {
    if (!model || m_ran) return;
    m_ran = true;
    m_window->runCurrentPrompt();
  });
  connect(c, &SessionController::resultChanged, this, [this](RunResultPtr result) {
    if (result) m_window->selectLayerHead(m_options.layer, m_options.head);
  });
  connect(window->heatmapView(), &HeatmapView::heatmapShown, this, &ScriptedRun::onHeatmapShown);
  connect(c, &SessionController::errorOccurred, this,
          [this](const QString& title, const QString& message) {
            if (!m_options.screenshotPath.isEmpty()) fail(title + QStringLiteral(": ") + message);
          });
  connect(c, &SessionController::runCancelled, this, [this] {
    if (!m_options.screenshotPath.isEmpty()) fail(QStringLiteral("run cancelled"));
  });
  if (!m_options.screenshotPath.isEmpty()) {
    QTimer::singleShot(m_options.timeoutSeconds * 1000, this, [this] {
      fail(QStringLiteral("timed out after %1 s").arg(m_options.timeoutSeconds));
    });
  }
}

void ScriptedRun::onHeatmapShown(int layer, int head) {
  if (m_done || layer != m_options.layer || head != m_options.head) return;
  m_done = true;
  if (!m_options.exportPath.isEmpty()) {
    const QString error = m_window->heatmapView()->exportTo(m_options.exportPath);
    if (!error.isEmpty()) {
      fail(error);
      return;
    }
    std::fprintf(stdout, "attnscope: exported %s\n", qPrintable(m_options.exportPath));
  }
  if (m_options.screenshotPath.isEmpty()) return;
  QTimer::singleShot(kSettleMs, this, &ScriptedRun::saveScreenshotAndQuit);
}

void ScriptedRun::saveScreenshotAndQuit() {
  const QString path = m_options.screenshotPath;
  QDir().mkpath(QFileInfo(path).absolutePath());
  const QPixmap pixmap = m_window->grab();
  QSaveFile file(path);
  if (!file.open(QIODevice::WriteOnly) || !pixmap.save(&file, "PNG") || !file.commit()) {
    fail(QStringLiteral("%1: cannot write screenshot (%2)").arg(path, file.errorString()));
    return;
  }
  std::fprintf(stdout, "attnscope: saved %s (%dx%d)\n", qPrintable(path), pixmap.width(),
               pixmap.height());
  QApplication::exit(0);
}

void ScriptedRun::fail(const QString& message) {
  std::fprintf(stderr, "attnscope: %s\n", qPrintable(message));
  QApplication::exit(1);
}

}  // namespace attnscope::app
