// Throughput sweep dialog: prompt lengths, decode steps, repeats, the backend (CPU, or CUDA when
// a GPU is usable) and which of the session's variants to measure beside the baseline,
// validated against the model's context before it can be accepted.
#pragma once

#include <QDialog>
#include <QString>
#include <vector>

#include "attnscope/throughput.h"
#include "attnscope/variant_spec.h"
#include "run_dialog_parts.h"

class QComboBox;
class QDialogButtonBox;
class QLineEdit;
class QListWidget;
class QSpinBox;

namespace attnscope::app {

class SweepDialog : public QDialog {
  Q_OBJECT
 public:
  SweepDialog(const std::vector<VariantSpec>& variants, int contextLength,
              QWidget* parent = nullptr);
  ~SweepDialog() override;

  std::vector<VariantSpec> variants() const;  // the checked ones
  // lengths, decode_steps, repeat filled in (no backend/progress/cancel).
  ThroughputOptions options() const;
  QString backendKind() const;  // "cpu" or "cuda"
  QString errorText() const;    // "" when the form is valid

  // The form's fields (tests drive them like a user would). The variant list's row 0 is the
  // baseline (checked, not checkable); row i + 1 is variants[i].
  QLineEdit* lengthsEdit() const { return m_lengths; }
  QSpinBox* decodeSpin() const { return m_decode; }
  QSpinBox* repeatSpin() const { return m_repeat; }
  QComboBox* backendCombo() const { return m_backend; }
  QListWidget* variantList() const { return m_variantList; }
  QDialogButtonBox* buttons() const { return m_footer.buttons; }

 private:
  void validate();

  std::vector<VariantSpec> m_variants;
  int m_context = 0;
  QLineEdit* m_lengths = nullptr;
  QSpinBox* m_decode = nullptr;
  QSpinBox* m_repeat = nullptr;
  QComboBox* m_backend = nullptr;
  QListWidget* m_variantList = nullptr;
  RunDialogFooter m_footer;  // summary, first problem, OK / Cancel
};

}  // namespace attnscope::app
