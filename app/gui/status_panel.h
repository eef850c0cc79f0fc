// Status bar readouts: the running job (label, progress, Cancel), the head analysis, the
// backend/device, the session's size and run time, and the process memory (refreshed every two
// seconds). It listens to the controller and shows what it says; it decides nothing.
#pragma once

#include <QObject>

#include "app_types.h"

class QLabel;
class QProgressBar;
class QStatusBar;
class QTimer;
class QToolButton;

namespace attnscope::app {

class SessionController;

class StatusPanel : public QObject {
  Q_OBJECT
 public:
  StatusPanel(SessionController* controller, QStatusBar* bar);

  QProgressBar* progressBar() const { return m_progress; }
  QLabel* deviceLabel() const { return m_device; }
  QLabel* memoryLabel() const { return m_memory; }
  QLabel* sessionLabel() const { return m_sessionInfo; }
  void refreshMemory();

 private:
  void showSession(const SessionDataPtr& session);

  SessionController* m_controller;
  QStatusBar* m_bar;
  QProgressBar* m_progress = nullptr;
  QToolButton* m_cancel = nullptr;
  QLabel* m_analysis = nullptr;
  QLabel* m_sessionInfo = nullptr;
  QLabel* m_device = nullptr;
  QLabel* m_memory = nullptr;
  QTimer* m_timer = nullptr;
};

}  // namespace attnscope::app
