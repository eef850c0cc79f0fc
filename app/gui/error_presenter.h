// Shows errors reported by the controller as one message box each. It opens boxes without a
// nested event loop, and can be switched off so tests (and scripted runs) are never blocked.
#pragma once

#include <QObject>
#include <QPointer>
#include <QString>

class QWidget;
class QMessageBox;

namespace attnscope::app {

class ErrorPresenter : public QObject {
  Q_OBJECT
 public:
  explicit ErrorPresenter(QWidget* dialogParent);

  void setEnabled(bool enabled) { m_enabled = enabled; }
  bool isEnabled() const { return m_enabled; }
  QString lastMessage() const { return m_lastMessage; }

 public slots:
  void present(const QString& title, const QString& message);

 private:
  QWidget* m_dialogParent;
  bool m_enabled = true;
  QString m_lastMessage;
  QPointer<QMessageBox> m_box;  // the box on screen, if any
};

}  // namespace attnscope::app
