// Run dialog frame: see run_dialog_parts.h.
#include "run_dialog_parts.h"

#include <QDialog>
#include <QDialogButtonBox>
#include <QFormLayout>
#include <QLabel>
#include <QPushButton>
#include <QVBoxLayout>

namespace attnscope::app {

QFormLayout* addRunDialogForm(QDialog* dialog, QVBoxLayout* layout, const QString& intro) {
  auto* text = new QLabel(intro, dialog);
  text->setWordWrap(true);
  layout->addWidget(text);
  auto* form = new QFormLayout;
  layout->addLayout(form);
  return form;
}

RunDialogFooter RunDialogFooter::add(QDialog* dialog, QVBoxLayout* layout, const QString& errorName,
                                     const QString& okText, std::function<QString()> problem) {
  RunDialogFooter f;
  f.summary = new QLabel(dialog);
  f.summary->setWordWrap(true);
  layout->addWidget(f.summary);
  f.error = new QLabel(dialog);
  f.error->setObjectName(errorName);
  f.error->setWordWrap(true);
  f.error->setTextFormat(Qt::RichText);
  layout->addWidget(f.error);

  f.buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, dialog);
  f.buttons->button(QDialogButtonBox::Ok)->setText(okText);
  QObject::connect(f.buttons, &QDialogButtonBox::accepted, dialog,
                   [dialog, problem = std::move(problem)] {
                     if (problem().isEmpty()) dialog->accept();
                   });
  QObject::connect(f.buttons, &QDialogButtonBox::rejected, dialog, &QDialog::reject);
  layout->addWidget(f.buttons);
  return f;
}

void RunDialogFooter::show(const QString& problem,
                           const std::function<QString()>& summaryText) const {
  // The series red reads on light and dark palettes alike.
  error->setText(
      problem.isEmpty()
          ? QString()
          : QStringLiteral("<span style='color:#e15759'>%1</span>").arg(problem.toHtmlEscaped()));
  error->setVisible(!problem.isEmpty());
  buttons->button(QDialogButtonBox::Ok)->setEnabled(problem.isEmpty());
  if (problem.isEmpty()) {
    summary->setText(summaryText());
  } else {
    summary->clear();
  }
}

}  // namespace attnscope::app
