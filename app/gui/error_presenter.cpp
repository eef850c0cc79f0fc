// Error message boxes: see error_presenter.h.
#include "error_presenter.h"

#include <QMessageBox>
#include <QWidget>

namespace attnscope::app {

ErrorPresenter::ErrorPresenter(QWidget* dialogParent)
    : QObject(dialogParent), m_dialogParent(dialogParent) {}

void ErrorPresenter::present(const QString& title, const QString& message) {
  m_lastMessage = message;
  if (!m_enabled) return;
  // A box still on screen is replaced, so a burst of errors never stacks dialogs.
  if (m_box) m_box->close();
  auto* box =
      new QMessageBox(QMessageBox::Warning, title, message, QMessageBox::Ok, m_dialogParent);
  box->setAttribute(Qt::WA_DeleteOnClose);
  box->setTextInteractionFlags(Qt::TextSelectableByMouse);
  box->setWindowModality(Qt::WindowModal);
  m_box = box;
  box->open();
}

}  // namespace attnscope::app
