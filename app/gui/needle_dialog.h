// Needle test dialog: the variant to test (the session's variants or the baseline), prompt
// lengths, needle depths, trials per cell, seed and decode budget, validated against the
// model's context before it can be accepted.
#pragma once

#include <QDialog>
#include <QString>
#include <vector>

#include "attnscope/needle.h"
#include "attnscope/variant_spec.h"
#include "run_dialog_parts.h"

class QComboBox;
class QDialogButtonBox;
class QLineEdit;
class QSpinBox;

namespace attnscope::app {

// Form parsing shared by the needle and sweep dialogs. Items are separated by commas (spaces
// around them are ignored, empty items skipped). On failure *error names the field and the item.
// Lengths: positive integers, no repeats.
bool parseLengthList(const QString& text, const QString& field, std::vector<int>* out,
                     QString* error);
// Depths: numbers in [0, 1] ("0.5") or percentages ("50%"), no repeats.
bool parseDepthList(const QString& text, std::vector<double>* out, QString* error);
// `defaults` clamped so that each length + reserve fits in contextLength (<= 0: unknown, kept),
// repeats removed, order kept.
std::vector<int> clampLengths(const std::vector<int>& defaults, int contextLength, int reserve);
// "512, 1024, 2048".
QString joinNumbers(const std::vector<int>& values);

class NeedleDialog : public QDialog {
  Q_OBJECT
 public:
  // variants: choices besides the baseline; contextLength: the model's, for validation.
  NeedleDialog(const std::vector<VariantSpec>& variants, int contextLength,
               QWidget* parent = nullptr);
  ~NeedleDialog() override;

  VariantSpec variant() const;
  // lengths, depths, trials, seed, decode_budget filled in (no backend/progress/cancel).
  NeedleOptions options() const;
  QString errorText() const;  // "" when the form is valid

  // The form's fields (tests drive them like a user would).
  QComboBox* variantCombo() const { return m_variant; }
  QLineEdit* lengthsEdit() const { return m_lengths; }
  QLineEdit* depthsEdit() const { return m_depths; }
  QSpinBox* trialsSpin() const { return m_trials; }
  QLineEdit* seedEdit() const { return m_seed; }
  QSpinBox* decodeBudgetSpin() const { return m_decode; }
  QDialogButtonBox* buttons() const { return m_footer.buttons; }

 private:
  void validate();

  std::vector<VariantSpec> m_choices;  // [baseline, variants...]
  int m_context = 0;
  QComboBox* m_variant = nullptr;
  QLineEdit* m_lengths = nullptr;
  QLineEdit* m_depths = nullptr;
  QSpinBox* m_trials = nullptr;
  QLineEdit* m_seed = nullptr;
  QSpinBox* m_decode = nullptr;
  RunDialogFooter m_footer;  // summary, first problem, OK / Cancel
};

}  // namespace attnscope::app
