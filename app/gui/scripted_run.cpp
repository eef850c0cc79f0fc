// Scripted runs: see scripted_run.h.
#include "scripted_run.h"

#include <QApplication>
#include <QDir>
#include <QFileInfo>
#include <QPixmap>
#include <QSaveFile>
#include <QTabWidget>
#include <QTimer>
#include <cstdio>

#include "attnscope/variant_spec.h"
#include "error_presenter.h"
#include "figure_exporter.h"
#include "figure_view.h"
#include "main_window.h"
#include "map_service.h"
#include "selection_model.h"
#include "session_controller.h"
#include "variants_panel.h"

namespace attnscope::app {

namespace {
constexpr int kPollMs = 100;
// Polls in a row with nothing running before a view counts as drawn (late map requests of a
// freshly shown tab start within a poll or two).
constexpr int kQuietPolls = 5;
}  // namespace

ScriptedRun::ScriptedRun(MainWindow* window, Options options)
    : QObject(window), m_window(window), m_options(std::move(options)) {
  window->errorPresenter()->setEnabled(false);
  window->setConfirmDiscard(false);
  SessionController* c = window->controller();
  connect(c, &SessionController::errorOccurred, this,
          [this](const QString& title, const QString& message) {
            fail(title + QStringLiteral(": ") + message);
          });
  connect(c, &SessionController::jobFinished, this,
          [this](const QString& label, bool succeeded, const QString& message) {
            if (!succeeded && message.endsWith(QLatin1String("cancelled")))
              fail(label + QStringLiteral(" cancelled"));
          });
  m_timer = new QTimer(this);
  m_timer->setInterval(kPollMs);
  connect(m_timer, &QTimer::timeout, this, &ScriptedRun::poll);
  m_clock.start();
  QTimer::singleShot(0, this, &ScriptedRun::start);
}

void ScriptedRun::start() {
  if (!m_options.sessionDir.isEmpty()) {
    m_window->openSession(m_options.sessionDir);
    m_stage = Stage::WaitRun;
  }
  m_timer->start();
}

bool ScriptedRun::settled() {
  SessionController* c = m_window->controller();
  const bool quiet = !c->isBusy() && !c->isAnalysing() && c->maps()->pendingCount() == 0;
  m_quietPolls = quiet ? m_quietPolls + 1 : 0;
  return m_quietPolls >= kQuietPolls;
}

void ScriptedRun::poll() {
  if (m_clock.elapsed() > m_options.timeoutSeconds * 1000LL) {
    fail(QStringLiteral("timed out after %1 s").arg(m_options.timeoutSeconds));
    return;
  }
  SessionController* c = m_window->controller();
  switch (m_stage) {
    case Stage::WaitModel:
      if (c->model() && !c->isBusy()) {
        if (!m_options.variants.isEmpty())
          m_window->variantsPanel()->setSpecStrings(m_options.variants);
        if (m_options.decodeSteps >= 0)
          m_window->variantsPanel()->setDecodeSteps(m_options.decodeSteps);
        m_window->runCurrentPrompt();
        m_stage = Stage::WaitRun;
      }
      break;
    case Stage::WaitRun:
      if (!c->isBusy() && c->session() && c->session()->hasRun()) afterRun();
      break;
    case Stage::WaitNeedle:
    case Stage::WaitSweep:
      if (!c->isBusy()) afterRun();
      break;
    case Stage::Capture:
      if (settled()) captureNext();
      break;
    case Stage::Done:
      break;
  }
}

void ScriptedRun::afterRun() {
  SessionController* c = m_window->controller();
  const SessionDataPtr session = c->session();
  if (m_stage == Stage::WaitRun && m_options.runNeedle && c->model()) {
    NeedleOptions o;
    o.lengths = {256, 512};
    o.depths = {0.1, 0.5, 0.9};
    o.trials = 1;
    const VariantSpec spec =
        session->traceCount() > 1 ? session->traces[1]->variant : VariantSpec::baseline();
    c->runNeedle(spec, o);
    m_stage = Stage::WaitNeedle;
    return;
  }
  if ((m_stage == Stage::WaitRun || m_stage == Stage::WaitNeedle) && m_options.runSweep &&
      c->model()) {
    std::vector<VariantSpec> variants;
    for (int i = 1; i < session->traceCount(); ++i)
      variants.push_back(session->traces[static_cast<size_t>(i)]->variant);
    ThroughputOptions o;
    o.lengths = {64, 256, 1024};
    o.decode_steps = 8;
    c->runSweep(variants, o, QStringLiteral("cpu"));
    m_stage = Stage::WaitSweep;
    return;
  }
  if (!m_selected) {
    m_selected = true;
    SelectionModel* s = m_window->selection();
    s->setLayerHead(m_options.layer, m_options.head);
    s->setTrace(m_options.trace);
    s->setCompare(m_options.compareA, m_options.compareB);
    const int nPrompt = session && session->hasRun() ? session->baseline().n_prompt : 0;
    s->setQueryToken(m_options.queryToken >= 0 ? m_options.queryToken : nPrompt - 1);
  }
  m_stage = Stage::Capture;
  m_quietPolls = 0;
  m_viewIndex = 0;
  if (!m_options.views.isEmpty()) showEntry(m_options.views.first());
}

FigureView* ScriptedRun::showEntry(const QString& entry) {
  // "name" or "name@trace": the run shown by single-run views while this view is captured.
  const QString name = entry.section(QLatin1Char('@'), 0, 0);
  auto* view = m_window->findChild<FigureView*>(name);
  if (!view) return nullptr;
  bool ok = false;
  const int trace = entry.section(QLatin1Char('@'), 1, 1).toInt(&ok);
  m_window->selection()->setTrace(ok ? trace : m_options.trace);
  m_window->showView(view);
  return view;
}

void ScriptedRun::captureNext() {
  if (m_viewIndex < m_options.views.size() && !m_options.screenshotDir.isEmpty()) {
    const QString entry = m_options.views.at(m_viewIndex);
    const QString name = entry.section(QLatin1Char('@'), 0, 0);
    auto* view = m_window->findChild<FigureView*>(name);
    if (!view) {
      fail(QStringLiteral("--views: no view named '%1'").arg(name));
      return;
    }
    if (m_window->currentView() != view) {  // show it, then wait for its maps
      showEntry(entry);
      m_quietPolls = 0;
      return;
    }
    QDir().mkpath(m_options.screenshotDir);
    const QString path = QDir(m_options.screenshotDir).filePath(name + QStringLiteral(".png"));
    const QPixmap pixmap = m_window->grab();
    QSaveFile file(path);
    if (!file.open(QIODevice::WriteOnly) || !pixmap.save(&file, "PNG") || !file.commit()) {
      fail(QStringLiteral("%1: cannot write screenshot (%2)").arg(path, file.errorString()));
      return;
    }
    std::fprintf(stdout, "attnscope: saved %s (%dx%d)\n", qPrintable(path), pixmap.width(),
                 pixmap.height());
    std::fflush(stdout);
    ++m_viewIndex;
    m_quietPolls = 0;
    if (m_viewIndex < m_options.views.size()) showEntry(m_options.views.at(m_viewIndex));
    return;
  }
  finish();
}

void ScriptedRun::finish() {
  m_stage = Stage::Done;
  m_timer->stop();
  if (!m_options.exportAllDir.isEmpty()) {
    QDir().mkpath(m_options.exportAllDir);
    const ExportAllResult result = exportAllFigures(
        m_window->views(), m_options.exportAllDir,
        {QStringLiteral("png"), QStringLiteral("svg"), QStringLiteral("pdf")}, PlotExportOptions{});
    for (const QString& path : result.written)
      std::fprintf(stdout, "attnscope: exported %s\n", qPrintable(path));
    if (!result.errors.isEmpty()) {
      fail(result.errors.join(QLatin1Char('\n')));
      return;
    }
  }
  std::fprintf(stdout, "attnscope: done in %.1f s\n", m_clock.elapsed() / 1000.0);
  std::fflush(stdout);
  if (m_options.quit) QApplication::exit(0);
}

void ScriptedRun::fail(const QString& message) {
  if (m_stage == Stage::Done) return;
  m_stage = Stage::Done;
  std::fprintf(stderr, "attnscope: %s\n", qPrintable(message));
  QApplication::exit(1);
}

}  // namespace attnscope::app
