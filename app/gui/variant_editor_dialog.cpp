// Variant editor dialog: see variant_editor_dialog.h.
#include "variant_editor_dialog.h"

#include <QComboBox>
#include <QDialogButtonBox>
#include <QEvent>
#include <QFontDatabase>
#include <QGroupBox>
#include <QGuiApplication>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QRegularExpression>
#include <QScreen>
#include <QScrollArea>
#include <QSignalBlocker>
#include <QVBoxLayout>
#include <algorithm>

#include "param_form.h"
#include "variants_labels.h"

namespace attnscope::app {

namespace {

constexpr PartKind kKinds[] = {PartKind::Grouping, PartKind::Pattern, PartKind::Positions,
                               PartKind::Kv};

// The dialog must fit a 1400x880 screen with room for the window frame and a panel.
constexpr int kPreferredWidth = 1240;
constexpr int kPreferredHeight = 820;
// Below this width the four sections stack in one column instead of two.
constexpr int kTwoColumnMinWidth = 1100;

size_t kindIndex(PartKind kind) {
  return static_cast<size_t>(kind);
}

std::vector<const PartSpec*> partsOfKind(PartKind kind) {
  std::vector<const PartSpec*> parts;
  for (const PartSpec& part : variant_registry())
    if (part.kind == kind) parts.push_back(&part);
  return parts;
}

QLabel* makeChip(QWidget* parent) {
  auto* chip = new QLabel(parent);
  chip->setSizePolicy(QSizePolicy::Maximum, QSizePolicy::Fixed);
  QFont f = chip->font();
  f.setPointSizeF(f.pointSizeF() * 0.9);
  chip->setFont(f);
  return chip;
}

// Colours from the dialog's palette: a chip's own palette is changed by its style sheet.
void showChip(QLabel* chip, VariantLabel label, const QPalette& palette) {
  chip->setText(variantLabelText(label));
  chip->setStyleSheet(labelChipStyleSheet(label, palette));
}

}  // namespace

VariantEditorDialog::VariantEditorDialog(const VariantSpec& initial, QWidget* parent)
    : QDialog(parent), m_spec(initial) {
  setWindowTitle(tr("Edit variant"));
  setSizeGripEnabled(true);
  auto* layout = new QVBoxLayout(this);

  // Header: the display name preview, its label, and notes.
  auto* header = new QHBoxLayout;
  m_name = new QLabel(this);
  QFont nameFont = m_name->font();
  nameFont.setPointSizeF(nameFont.pointSizeF() * 1.25);
  nameFont.setBold(true);
  m_name->setFont(nameFont);
  m_name->setTextInteractionFlags(Qt::TextSelectableByMouse);
  m_name->setWordWrap(true);
  m_name->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
  m_label = makeChip(this);
  header->addWidget(m_name, 1);
  header->addWidget(m_label);
  layout->addLayout(header);
  m_note = new QLabel(this);
  m_note->setWordWrap(true);
  layout->addWidget(m_note);

  // The live spec text.
  auto* specRow = new QHBoxLayout;
  auto* specLabel = new QLabel(tr("&Spec:"), this);
  m_specEdit = new QLineEdit(this);
  m_specEdit->setObjectName(QStringLiteral("specEdit"));
  m_specEdit->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
  m_specEdit->setPlaceholderText(
      tr("empty = the baseline (native grouping, full attention, RoPE, "
         "full KV cache)"));
  m_specEdit->setToolTip(
      tr("kind=name[:param=value,...] joined by ';' (kinds: grouping, pattern, positions, kv; "
         "omitted kinds and parameters take their defaults). Integer lists use '+': 3+7+11."));
  m_specEdit->setClearButtonEnabled(true);
  specLabel->setBuddy(m_specEdit);
  specRow->addWidget(specLabel);
  specRow->addWidget(m_specEdit, 1);
  layout->addLayout(specRow);
  m_errorLabel = new QLabel(this);
  m_errorLabel->setObjectName(QStringLiteral("specError"));
  m_errorLabel->setWordWrap(true);
  m_errorLabel->setTextInteractionFlags(Qt::TextSelectableByMouse);
  QPalette errorPalette = palette();
  errorPalette.setColor(QPalette::WindowText, QColor(0xd3, 0x2f, 0x2f));
  m_errorLabel->setPalette(errorPalette);
  m_errorLabel->setVisible(false);
  layout->addWidget(m_errorLabel);

  // The four part sections in a scroll area (long forms scroll instead of growing the dialog).
  QRect available(0, 0, 1400, 880);
  if (const QScreen* screen = parent ? parent->screen() : QGuiApplication::primaryScreen())
    available = screen->availableGeometry();
  const int width = std::min(kPreferredWidth, available.width() - 40);
  const int height = std::min(kPreferredHeight, available.height() - 40);
  const bool twoColumns = width >= kTwoColumnMinWidth;

  auto* scroll = new QScrollArea(this);
  scroll->setWidgetResizable(true);
  scroll->setFrameShape(QFrame::NoFrame);
  auto* content = new QWidget(scroll);
  auto* columns = new QHBoxLayout(content);
  columns->setContentsMargins(0, 0, 4, 0);
  // Two columns: grouping over positions (short), pattern over the KV policy (long forms).
  QVBoxLayout* left = new QVBoxLayout;
  QVBoxLayout* right = twoColumns ? new QVBoxLayout : left;
  columns->addLayout(left, 1);
  if (twoColumns) columns->addLayout(right, 1);
  const QString titles[] = {tr("Grouping (which KV head each query head reads)"),
                            tr("Pattern (which query/key pairs are computed)"),
                            tr("Positions (how positions enter the scores)"),
                            tr("KV policy (what the decode-time cache keeps)")};
  for (size_t i = 0; i < m_sections.size(); ++i) m_sections[i].kind = kKinds[i];
  left->addWidget(buildSection(m_sections[0], titles[0]));
  if (twoColumns) {
    left->addWidget(buildSection(m_sections[2], titles[2]));
    right->addWidget(buildSection(m_sections[1], titles[1]));
  } else {
    left->addWidget(buildSection(m_sections[1], titles[1]));
    left->addWidget(buildSection(m_sections[2], titles[2]));
  }
  right->addWidget(buildSection(m_sections[3], titles[3]));
  left->addStretch(1);
  if (twoColumns) right->addStretch(1);
  scroll->setWidget(content);
  layout->addWidget(scroll, 1);

  m_buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
  QPushButton* reset = m_buttons->addButton(tr("Reset to &baseline"), QDialogButtonBox::ResetRole);
  reset->setToolTip(tr("Every part back to its identity (native, full, rope, full)"));
  connect(reset, &QPushButton::clicked, this, [this] { setSpecText(QString()); });
  connect(m_buttons, &QDialogButtonBox::accepted, this, [this] {
    if (m_error.isEmpty()) accept();
  });
  connect(m_buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
  layout->addWidget(m_buttons);

  connect(m_specEdit, &QLineEdit::textEdited, this,
          [this](const QString& text) { applyText(text, Origin::SpecField); });
  // On leaving the field a valid text is written in its compact canonical form.
  connect(m_specEdit, &QLineEdit::editingFinished, this, [this] {
    if (m_error.isEmpty()) {
      const QString compact = compactSpecText(m_spec);
      if (m_specEdit->text() != compact) m_specEdit->setText(compact);
    }
  });

  resize(width, height);
  for (Section& s : m_sections) showPart(s, m_spec.part(s.kind).name);
  applyText(compactSpecText(m_spec), Origin::Widgets);
  m_specEdit->setFocus();
}

VariantEditorDialog::~VariantEditorDialog() = default;

QGroupBox* VariantEditorDialog::buildSection(Section& s, const QString& title) {
  s.box = new QGroupBox(title, this);
  s.box->setObjectName(QStringLiteral("section.") + QString::fromLatin1(part_kind_name(s.kind)));
  auto* v = new QVBoxLayout(s.box);
  auto* top = new QHBoxLayout;
  s.combo = new QComboBox(s.box);
  s.combo->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
  s.combo->setMinimumContentsLength(28);
  for (const PartSpec* part : partsOfKind(s.kind)) {
    s.combo->addItem(
        QStringLiteral("%1 \u00b7 %2")
            .arg(QString::fromStdString(part->title), QString::fromStdString(part->name)),
        QString::fromStdString(part->name));
    s.combo->setItemData(s.combo->count() - 1,
                         QStringLiteral("%1\n%2").arg(QString::fromStdString(part->label),
                                                      QString::fromStdString(part->summary)),
                         Qt::ToolTipRole);
  }
  s.badge = makeChip(s.box);
  top->addWidget(s.combo, 1);
  top->addWidget(s.badge);
  v->addLayout(top);
  s.summary = new QLabel(s.box);
  s.summary->setWordWrap(true);
  s.summary->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
  s.summary->setMinimumWidth(200);
  s.summary->setTextInteractionFlags(Qt::TextSelectableByMouse);
  v->addWidget(s.summary);
  s.noParams = new MutedLabel(tr("No parameters."), s.box);
  v->addWidget(s.noParams);
  s.formLayout = new QVBoxLayout;
  s.formLayout->setContentsMargins(0, 4, 0, 0);
  v->addLayout(s.formLayout);

  const PartKind kind = s.kind;
  connect(s.combo, &QComboBox::activated, this, [this, kind](int index) {
    choosePart(kind, section(kind).combo->itemData(index).toString());
  });
  return s.box;
}

VariantEditorDialog::Section& VariantEditorDialog::section(PartKind kind) {
  return m_sections[kindIndex(kind)];
}

const VariantEditorDialog::Section& VariantEditorDialog::section(PartKind kind) const {
  return m_sections[kindIndex(kind)];
}

void VariantEditorDialog::showPart(Section& s, const std::string& partName) {
  const PartSpec* part = find_part(s.kind, partName);
  if (s.partName == partName && (s.form || !part || part->params.empty())) return;
  s.partName = partName;
  if (s.form) {
    s.form->hide();
    s.form->deleteLater();
    s.form = nullptr;
  }
  {
    const QSignalBlocker block(s.combo);
    const int index = s.combo->findData(QString::fromStdString(partName));
    s.combo->setCurrentIndex(index);
  }
  if (!part) {
    // Only reachable for a spec built outside the registry (an old trace): say so.
    s.badge->setText(tr("unknown part"));
    s.badge->setStyleSheet(QString());
    s.summary->setText(
        tr("'%1' is not in this build's registry.").arg(QString::fromStdString(partName)));
    s.noParams->setVisible(false);
    return;
  }
  showChip(s.badge, partLabel(*part), palette());
  s.badge->setToolTip(QString::fromStdString(part->label));
  s.summary->setText(QString::fromStdString(part->summary));
  s.noParams->setVisible(part->params.empty());
  if (part->params.empty()) return;
  s.form = new ParamForm(*part, s.box);
  s.form->setObjectName(QStringLiteral("form.") + QString::fromStdString(part->name));
  s.formLayout->addWidget(s.form);
  const PartKind kind = s.kind;
  connect(s.form, &ParamForm::valueEdited, this,
          [this, kind](const QString& name, const QString&) { applyFromWidgets(kind, name); });
}

void VariantEditorDialog::choosePart(PartKind kind, const QString& name) {
  Section& s = section(kind);
  const std::string partName = name.toStdString();
  const PartSpec* next = find_part(kind, partName);
  if (!next || partName == s.partName) return;
  // Values the user changed in the old part carry over to same-named, same-typed parameters of
  // the new one when they are valid there (snapkv budget=64 -> h2o budget=64).
  std::map<std::string, std::string> carried;
  if (s.form) {
    for (const QString& param : s.form->paramNames()) {
      const QString value = s.form->valueText(param);
      if (value == s.form->defaultText(param)) continue;
      const auto it =
          std::find_if(next->params.begin(), next->params.end(),
                       [&](const ParamSpec& p) { return p.name == param.toStdString(); });
      const ParamSpec* old = nullptr;
      for (const ParamSpec& p : s.form->part().params)
        if (p.name == param.toStdString()) old = &p;
      if (it == next->params.end() || !old || old->type != it->type) continue;
      try {
        carried[it->name] = normalize_param_value(next->name, *it, value.toStdString());
      } catch (const std::exception&) {
        // Not valid for the new part: it keeps its own default.
      }
    }
  }
  showPart(s, partName);
  if (s.form) s.form->setValues(carried);
  applyFromWidgets(kind, QString());
}

QString VariantEditorDialog::textFromWidgets() const {
  QStringList parts;
  for (const Section& s : m_sections) {
    std::vector<std::pair<std::string, std::string>> params;
    if (s.form) {
      for (const QString& name : s.form->paramNames())
        params.emplace_back(name.toStdString(), s.form->valueText(name).toStdString());
    } else if (!find_part(s.kind, s.partName)) {
      // A part outside the registry keeps its stored parameters.
      const PartConfig& config = m_spec.part(s.kind);
      params.assign(config.params.begin(), config.params.end());
    }
    parts << partSpecText(s.kind, s.partName, params);
  }
  return parts.join(QLatin1Char(';'));
}

void VariantEditorDialog::applyFromWidgets(PartKind editedKind, const QString& editedParam) {
  applyText(textFromWidgets(), Origin::Widgets, editedKind, editedParam);
}

void VariantEditorDialog::applyText(const QString& text, Origin origin, PartKind editedKind,
                                    const QString& editedParam) {
  QString error;
  try {
    m_spec = VariantSpec::parse(text.toStdString());
  } catch (const std::exception& e) {
    error = stripSpecPrefix(QString::fromUtf8(e.what()), text);
  }
  for (Section& s : m_sections)
    if (s.form) s.form->clearErrors();
  if (error.isEmpty()) {
    m_error.clear();
    if (origin == Origin::Widgets) {
      const QString compact = compactSpecText(m_spec);
      if (m_specEdit->text() != compact) m_specEdit->setText(compact);
    }
    for (Section& s : m_sections) {
      const PartConfig& config = m_spec.part(s.kind);
      showPart(s, config.name);
      const bool edited = origin == Origin::Widgets && s.kind == editedKind;
      if (s.form) s.form->setValues(config.params, edited ? editedParam : QString());
    }
  } else {
    if (origin == Origin::Widgets) m_specEdit->setText(text);
    showError(error);
  }
  m_errorLabel->setVisible(!m_error.isEmpty());
  m_errorLabel->setText(m_error);
  m_buttons->button(QDialogButtonBox::Ok)->setEnabled(m_error.isEmpty());
  updatePreview();
}

void VariantEditorDialog::showError(const QString& message) {
  m_error = message;
  // "snapkv.budget: expected ..." is also shown under that parameter when its part is on screen.
  static const QRegularExpression kPartParam(
      QStringLiteral("^([A-Za-z0-9_]+)\\.([A-Za-z0-9_]+): (.*)$"),
      QRegularExpression::DotMatchesEverythingOption);
  const QRegularExpressionMatch match = kPartParam.match(message);
  if (!match.hasMatch()) return;
  for (Section& s : m_sections) {
    if (s.form && s.partName == match.captured(1).toStdString())
      s.form->setError(match.captured(2), match.captured(3));
  }
}

void VariantEditorDialog::updatePreview() {
  m_name->setText(QString::fromStdString(m_spec.display_name()));
  m_name->setToolTip(QString::fromStdString(m_spec.to_string()));
  showChip(m_label, variantLabel(m_spec), palette());
  QStringList notes;
  if (m_spec.is_baseline())
    notes << tr("This is the baseline (full attention as trained), which is always run first.");
  if (m_spec.needs_training())
    notes << tr(
        "A structural simulation: the model was not trained for it, so quality loss "
        "shows the raw damage, not what a trained model would reach.");
  if (m_spec.kv.name != default_part_name(PartKind::Kv))
    notes << tr(
        "KV policies decide during decoding: set decode steps > 0 in the Variants panel "
        "to see their keep/evict decisions.");
  m_note->setText(notes.join(QLatin1Char(' ')));
  m_note->setVisible(!notes.isEmpty());
}

void VariantEditorDialog::changeEvent(QEvent* event) {
  QDialog::changeEvent(event);
  if (event->type() != QEvent::PaletteChange) return;
  // Chips are style sheets with colours for a light or a dark palette: recolour them.
  for (Section& s : m_sections)
    if (const PartSpec* part = find_part(s.kind, s.partName))
      showChip(s.badge, partLabel(*part), palette());
  updatePreview();
}

VariantSpec VariantEditorDialog::spec() const {
  return m_spec;
}

QString VariantEditorDialog::setSpecText(const QString& text) {
  m_specEdit->setText(text);
  applyText(text, Origin::SpecField);
  return m_error;
}

QString VariantEditorDialog::specText() const {
  return m_specEdit->text();
}

QString VariantEditorDialog::errorText() const {
  return m_error;
}

QComboBox* VariantEditorDialog::partCombo(PartKind kind) const {
  return section(kind).combo;
}

ParamForm* VariantEditorDialog::paramForm(PartKind kind) const {
  return section(kind).form;
}

QPushButton* VariantEditorDialog::okButton() const {
  return m_buttons->button(QDialogButtonBox::Ok);
}

QString VariantEditorDialog::displayNameText() const {
  return m_name->text();
}

QString VariantEditorDialog::partBadgeText(PartKind kind) const {
  return section(kind).badge->text();
}

}  // namespace attnscope::app
