// Status bar readouts: see status_panel.h.
#include "status_panel.h"

#include <QLabel>
#include <QProgressBar>
#include <QStatusBar>
#include <QTimer>
#include <QToolButton>
#include <algorithm>

#include "attnscope/sys_info.h"
#include "model_summary_panel.h"
#include "session_controller.h"

namespace attnscope::app {

namespace {
constexpr int kMemoryRefreshMs = 2000;
constexpr int kMessageMs = 6000;
}  // namespace

StatusPanel::StatusPanel(SessionController* controller, QStatusBar* bar)
    : QObject(bar), m_controller(controller), m_bar(bar) {
  m_progress = new QProgressBar(bar);
  m_progress->setRange(0, 1000);
  m_progress->setMaximumWidth(260);
  m_progress->setTextVisible(true);
  m_progress->setVisible(false);
  m_cancel = new QToolButton(bar);
  m_cancel->setText(tr("Cancel"));
  m_cancel->setToolTip(tr("Cancel the running task (Esc)"));
  m_cancel->setVisible(false);
  m_analysis = new QLabel(bar);
  m_sessionInfo = new QLabel(bar);
  m_device = new QLabel(bar);
  m_memory = new QLabel(bar);
  m_memory->setToolTip(tr("Resident memory of attnscope"));
  bar->addPermanentWidget(m_progress);
  bar->addPermanentWidget(m_cancel);
  for (QLabel* label : {m_analysis, m_sessionInfo, m_device, m_memory}) {
    label->setContentsMargins(8, 0, 8, 0);
    bar->addPermanentWidget(label);
  }
  m_device->setText(tr("Backend: %1").arg(controller->backendKind()));

  connect(m_cancel, &QToolButton::clicked, controller, &SessionController::cancel);
  connect(controller, &SessionController::jobStarted, this, [this](const QString& label) {
    m_progress->setValue(0);
    m_progress->setFormat(label);
    m_progress->setVisible(true);
    m_cancel->setVisible(true);
    m_bar->showMessage(label + QStringLiteral(" \u2026"));
  });
  connect(controller, &SessionController::jobProgress, this,
          [this](double fraction, const QString& stage) {
            m_progress->setValue(qRound(std::clamp(fraction, 0.0, 1.0) * 1000));
            m_progress->setFormat(QStringLiteral("%p% ") + stage);
            m_progress->setToolTip(stage);
          });
  connect(controller, &SessionController::jobFinished, this,
          [this](const QString&, bool, const QString& message) {
            m_progress->setVisible(false);
            m_cancel->setVisible(m_controller->isAnalysing());
            m_bar->showMessage(message, kMessageMs);
          });
  connect(controller, &SessionController::analysisProgress, this,
          [this](double fraction, const QString& stage) {
            const bool running = m_controller->isAnalysing() && !stage.isEmpty();
            m_analysis->setText(
                running ? tr("Analysing heads: %1 %2%").arg(stage).arg(qRound(fraction * 100))
                        : QString());
            m_cancel->setVisible(m_controller->isBusy() || running);
          });
  connect(controller, &SessionController::sessionChanged, this, &StatusPanel::showSession);
  connect(
      controller, &SessionController::errorOccurred, this,
      [this](const QString&, const QString& message) { m_bar->showMessage(message, kMessageMs); });

  m_timer = new QTimer(this);
  m_timer->setInterval(kMemoryRefreshMs);
  connect(m_timer, &QTimer::timeout, this, &StatusPanel::refreshMemory);
  m_timer->start();
  refreshMemory();
}

void StatusPanel::refreshMemory() {
  const quint64 rss = current_rss_bytes();
  m_memory->setText(rss > 0 ? tr("Memory: %1").arg(formatByteSize(rss)) : QString());
}

void StatusPanel::showSession(const SessionDataPtr& session) {
  if (!session || !session->hasRun()) {
    m_sessionInfo->clear();
    return;
  }
  const Trace& base = session->baseline();
  m_device->setText(tr("Backend: %1").arg(QString::fromStdString(base.backend)));
  const double prefill =
      base.timings.count("prefill_seconds") ? base.timings.at("prefill_seconds") : 0;
  m_sessionInfo->setText(
      tr("%1 tokens \u00b7 %2 run(s) \u00b7 baseline prefill %3 s \u00b7 run %4 s")
          .arg(session->nTokens())
          .arg(session->traceCount())
          .arg(prefill, 0, 'f', 2)
          .arg(session->runSeconds, 0, 'f', 1));
}

}  // namespace attnscope::app
