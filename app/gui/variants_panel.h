// Variants panel: the list of attention variants to run beside the always-present baseline,
// each shown with its display name, spec and training-free / simulation label; Add / Edit open
// the VariantEditorDialog (parameter forms generated from core's registry), Quick add offers
// common presets, Duplicate / Remove / Move up / Move down edit the list; plus the number of
// decode steps. It edits the list only; the main window runs it.
#pragma once

#include <QPair>
#include <QPointer>
#include <QStringList>
#include <QWidget>
#include <vector>

#include "attnscope/variant_spec.h"
#include "variant_editor_dialog.h"

class QLabel;
class QListWidget;
class QMenu;
class QSpinBox;
class QToolButton;

namespace attnscope::app {

class VariantsPanel : public QWidget {
  Q_OBJECT
 public:
  explicit VariantsPanel(QWidget* parent = nullptr);
  ~VariantsPanel() override;

  // The variants to run after the baseline, in list order (the baseline is not included).
  std::vector<VariantSpec> variants() const;
  void setVariants(const std::vector<VariantSpec>& variants);
  // Canonical spec strings (QSettings), and back; invalid strings are skipped and reported
  // through errorOccurred.
  QStringList specStrings() const;
  void setSpecStrings(const QStringList& specs);
  void addVariant(const VariantSpec& spec);

  int decodeSteps() const;
  void setDecodeSteps(int steps);

  // Common presets for the Quick add menu: (menu group, title, spec text), every spec valid.
  struct Preset {
    QString group;
    QString title;
    QString spec;
  };
  static QList<Preset> presets();

  // List editing by variant index (0 = the first variant after the baseline); out-of-range
  // indices are ignored. Each emits changed() when the list changed.
  void removeVariant(int index);
  void duplicateVariant(int index);
  void moveVariant(int index, int delta);
  void replaceVariant(int index, const VariantSpec& spec);
  // The selected variant's index, -1 when the baseline or nothing is selected.
  int currentVariant() const;
  void setCurrentVariant(int index);
  // Opens the editor (window-modal, non-blocking): for the variant at `index`, or for a new
  // variant when index < 0. The result is applied when the dialog is accepted.
  void openEditor(int index);
  VariantEditorDialog* activeEditor() const { return m_editor; }

  // Item data of a list row besides Qt::DisplayRole (display name) and Qt::ToolTipRole (full
  // spec); row 0 is the baseline.
  enum ItemRole {
    CompactSpecRole = Qt::UserRole + 1,  // compact spec text, or the baseline's description
    LabelRole,                           // int(VariantLabel) of the variant
    NoteRole,                            // "same as the baseline", "same as #2", or ""
    TraceIndexRole,                      // 0 = baseline, 1.. = variants, as in the session
  };

  // Widgets, for tests and screenshots.
  QListWidget* list() const { return m_list; }
  QSpinBox* decodeSpin() const { return m_decode; }
  QMenu* quickAddMenu() const { return m_quickMenu; }

 signals:
  void changed();
  void errorOccurred(const QString& title, const QString& message);

 protected:
  void changeEvent(QEvent* event) override;

 private:
  void rebuildList(int selectVariant);
  void updateButtons();
  void updateHint();

  std::vector<VariantSpec> m_variants;
  QListWidget* m_list = nullptr;
  QSpinBox* m_decode = nullptr;
  QLabel* m_hint = nullptr;
  QMenu* m_quickMenu = nullptr;
  QToolButton* m_add = nullptr;
  QToolButton* m_quick = nullptr;
  QToolButton* m_edit = nullptr;
  QToolButton* m_duplicate = nullptr;
  QToolButton* m_remove = nullptr;
  QToolButton* m_up = nullptr;
  QToolButton* m_down = nullptr;
  QPointer<VariantEditorDialog> m_editor;
};

}  // namespace attnscope::app
