// The frame the run dialogs (needle test, throughput sweep) share: an intro text over the form,
// and a footer with a summary of what will run, the form's first problem in red, and OK (named
// after the run) / Cancel. OK is enabled, and accepts, only while the form has no problem.
#pragma once

#include <QString>
#include <functional>

class QDialog;
class QDialogButtonBox;
class QFormLayout;
class QLabel;
class QVBoxLayout;

namespace attnscope::app {

// Adds the word-wrapped `intro` and an empty form to `layout`; returns the form.
QFormLayout* addRunDialogForm(QDialog* dialog, QVBoxLayout* layout, const QString& intro);

struct RunDialogFooter {
  QLabel* summary = nullptr;
  QLabel* error = nullptr;
  QDialogButtonBox* buttons = nullptr;

  // Adds the footer to `dialog`'s `layout`. errorName: the error label's object name (tests find
  // it); problem: the form's first problem, "" when it is valid (asked again when OK is pressed).
  static RunDialogFooter add(QDialog* dialog, QVBoxLayout* layout, const QString& errorName,
                             const QString& okText, std::function<QString()> problem);
  // Shows `problem`, or when there is none the summary `summaryText()` gives; OK only without one.
  void show(const QString& problem, const std::function<QString()>& summaryText) const;
};

}  // namespace attnscope::app
