// Variant editor: a dialog that builds one VariantSpec from core's registry. For each of the
// four parts (grouping, pattern, positions, KV policy) a choice of part and a parameter form
// generated from its ParamSpecs (spin boxes with the valid range, choices, checkboxes, integer
// lists), defaults shown and resettable, the training-free / simulation label, the part's
// summary; the spec text is shown live and can be typed directly; invalid values are reported
// inline (the parser's message naming part.param) and OK stays disabled until it parses.
#pragma once

#include <QDialog>
#include <array>

#include "attnscope/variant_spec.h"

class QComboBox;
class QDialogButtonBox;
class QGroupBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QVBoxLayout;

namespace attnscope::app {

class ParamForm;

class VariantEditorDialog : public QDialog {
  Q_OBJECT
 public:
  explicit VariantEditorDialog(const VariantSpec& initial, QWidget* parent = nullptr);
  ~VariantEditorDialog() override;

  // The spec as edited (valid when accepted; while the text is invalid, the last valid spec).
  VariantSpec spec() const;
  // Replaces the form's contents with `text` (as if typed into the spec field); returns "" or
  // the parser's error.
  QString setSpecText(const QString& text);
  QString specText() const;
  QString errorText() const;  // the inline error shown now, "" when the spec is valid

  // The widgets, for tests and scripted screenshots.
  QComboBox* partCombo(PartKind kind) const;
  ParamForm* paramForm(PartKind kind) const;  // nullptr when the chosen part has no parameters
  QLineEdit* specEdit() const { return m_specEdit; }
  QPushButton* okButton() const;
  QString displayNameText() const;  // the display name preview
  QString partBadgeText(PartKind kind) const;
  // Chooses a part of `kind` by registry name, as if picked in its combo box (parameters
  // of the same name and type carry over when they are valid for the new part).
  void choosePart(PartKind kind, const QString& name);

 protected:
  void changeEvent(QEvent* event) override;

 private:
  enum class Origin { SpecField, Widgets };
  struct Section {
    PartKind kind = PartKind::Grouping;
    QGroupBox* box = nullptr;
    QComboBox* combo = nullptr;
    QLabel* badge = nullptr;
    QLabel* summary = nullptr;
    QLabel* noParams = nullptr;
    QVBoxLayout* formLayout = nullptr;
    ParamForm* form = nullptr;
    std::string partName;
  };

  QGroupBox* buildSection(Section& section, const QString& title);
  Section& section(PartKind kind);
  const Section& section(PartKind kind) const;
  // Shows `partName` in the section (combo, badge, summary, a fresh form with its defaults).
  void showPart(Section& section, const std::string& partName);
  // Spec text from what the four sections show now.
  QString textFromWidgets() const;
  void applyFromWidgets(PartKind editedKind, const QString& editedParam);
  void applyText(const QString& text, Origin origin, PartKind editedKind = PartKind::Grouping,
                 const QString& editedParam = {});
  void showError(const QString& message);
  void updatePreview();

  std::array<Section, 4> m_sections;
  VariantSpec m_spec;
  QString m_error;
  QLineEdit* m_specEdit = nullptr;
  QLabel* m_errorLabel = nullptr;
  QLabel* m_name = nullptr;
  QLabel* m_label = nullptr;
  QLabel* m_note = nullptr;
  QDialogButtonBox* m_buttons = nullptr;
};

}  // namespace attnscope::app
