// A parameter form generated from one registry part's ParamSpecs: one row per parameter with an
// editor of its type (Int -> spin box over [min, max], Float -> spin box with the range, Choice ->
// combo box, Bool -> check box, IntList -> line edit checked by the parser), the parameter's help
// as tooltip and as a short line under it, its default shown, a reset-to-default button and an
// inline error. The form holds no spec: it shows values and reports edits as text.
#pragma once

#include <QString>
#include <QWidget>
#include <map>
#include <string>
#include <vector>

#include "attnscope/variant_spec.h"

class QLabel;
class QToolButton;

namespace attnscope::app {

class ParamForm : public QWidget {
  Q_OBJECT
 public:
  explicit ParamForm(const PartSpec& part, QWidget* parent = nullptr);
  ~ParamForm() override;

  const PartSpec& part() const { return m_part; }
  // Shows `values` (normalised text per parameter, as in a PartConfig); parameters missing from
  // `values` show their default. Emits nothing. The editor of `except` (the one being typed in)
  // is left alone so its cursor and partial text survive.
  void setValues(const std::map<std::string, std::string>& values, const QString& except = {});
  // The value of one parameter as its editor shows it now, as spec text ("64", "0.9", "true").
  QString valueText(const QString& name) const;
  // The parameter's default as the parser normalises it.
  QString defaultText(const QString& name) const;
  // An inline error under the parameter's row ("" clears it).
  void setError(const QString& name, const QString& message);
  void clearErrors();

  // For tests and the dialog: the editor and reset button of a parameter (nullptr if unknown).
  QWidget* editor(const QString& name) const;
  QToolButton* resetButton(const QString& name) const;
  QStringList paramNames() const;

 signals:
  // The user changed a parameter's editor (or pressed its reset button).
  void valueEdited(const QString& name, const QString& valueText);

 private:
  struct Row {
    const ParamSpec* param = nullptr;
    QWidget* editor = nullptr;
    QToolButton* reset = nullptr;
    QLabel* defaultLabel = nullptr;
    QLabel* error = nullptr;
    QString defaultValue;  // normalised
  };
  QWidget* makeEditor(Row& row);
  void showValue(Row& row, const QString& value);
  void updateResetButton(Row& row);
  void emitEdited(Row& row);
  Row* findRow(const QString& name);
  const Row* findRow(const QString& name) const;

  PartSpec m_part;
  std::vector<Row> m_rows;
};

}  // namespace attnscope::app
