// Variants panel: see variants_panel.h.
#include "variants_panel.h"

#include <QAction>
#include <QApplication>
#include <QClipboard>
#include <QEvent>
#include <QFontDatabase>
#include <QGridLayout>
#include <QGuiApplication>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QMenu>
#include <QPainter>
#include <QPainterPath>
#include <QSpinBox>
#include <QStyledItemDelegate>
#include <QToolButton>
#include <QVBoxLayout>

#include "variant_editor_dialog.h"
#include "variants_labels.h"

namespace attnscope::app {

namespace {

constexpr int kMaxDecodeSteps = 4096;
constexpr int kDefaultDecodeSteps = 16;

constexpr int kCompactRole = VariantsPanel::CompactSpecRole;
constexpr int kLabelRole = VariantsPanel::LabelRole;
constexpr int kNoteRole = VariantsPanel::NoteRole;
constexpr int kIndexRole = VariantsPanel::TraceIndexRole;

// Paints a row as two lines: "#  display name   note" and "[label chip]  compact spec".
class VariantItemDelegate : public QStyledItemDelegate {
 public:
  using QStyledItemDelegate::QStyledItemDelegate;

  static constexpr int kPad = 5;
  static constexpr int kGap = 3;

  static QFont smallFont(const QFont& base) {
    QFont f = base;
    f.setPointSizeF(base.pointSizeF() * 0.85);
    return f;
  }

  QSize sizeHint(const QStyleOptionViewItem& option, const QModelIndex&) const override {
    const QFontMetrics big(option.font);
    const QFontMetrics small(smallFont(option.font));
    return {200, kPad + big.height() + kGap + small.height() + 4 + kPad};
  }

  void paint(QPainter* painter, const QStyleOptionViewItem& option,
             const QModelIndex& index) const override {
    QStyleOptionViewItem opt = option;
    initStyleOption(&opt, index);
    opt.text.clear();
    const QWidget* widget = option.widget;
    QStyle* style = widget ? widget->style() : QApplication::style();
    style->drawPrimitive(QStyle::PE_PanelItemViewItem, &opt, painter, widget);

    const bool selected = option.state & QStyle::State_Selected;
    const QPalette& pal = option.palette;
    const QColor text = pal.color(selected ? QPalette::HighlightedText : QPalette::Text);
    QColor muted = text;
    muted.setAlphaF(0.62f);

    painter->save();
    painter->setRenderHint(QPainter::Antialiasing);
    const QRect r = option.rect.adjusted(kPad + 2, kPad, -kPad - 2, -kPad);
    const QFont bold = [&] {
      QFont f = option.font;
      f.setBold(true);
      return f;
    }();
    const QFont small = smallFont(option.font);
    const QFontMetrics bigMetrics(bold);
    const QFontMetrics smallMetrics(small);

    // Line 1: trace index, display name, note.
    int x = r.left();
    const int line1 = r.top();
    const QString number = QString::number(index.data(kIndexRole).toInt());
    painter->setFont(option.font);
    painter->setPen(muted);
    const int numberWidth = QFontMetrics(option.font).horizontalAdvance(QStringLiteral("00"));
    painter->drawText(QRect(x, line1, numberWidth, bigMetrics.height()),
                      Qt::AlignLeft | Qt::AlignVCenter, number);
    x += numberWidth + 6;
    const QString note = index.data(kNoteRole).toString();
    const int noteWidth =
        note.isEmpty() ? 0 : std::min(smallMetrics.horizontalAdvance(note) + 8, r.width() / 3);
    const QString name = index.data(Qt::DisplayRole).toString();
    painter->setFont(bold);
    painter->setPen(text);
    const int nameSpace = r.right() - x - noteWidth;
    painter->drawText(QRect(x, line1, nameSpace, bigMetrics.height()),
                      Qt::AlignLeft | Qt::AlignVCenter,
                      bigMetrics.elidedText(name, Qt::ElideRight, nameSpace));
    if (!note.isEmpty()) {
      painter->setFont(small);
      painter->setPen(muted);
      painter->drawText(QRect(r.right() - noteWidth, line1, noteWidth, bigMetrics.height()),
                        Qt::AlignRight | Qt::AlignVCenter,
                        smallMetrics.elidedText(note, Qt::ElideRight, noteWidth));
    }

    // Line 2: label chip, compact spec.
    const int line2 = line1 + bigMetrics.height() + kGap;
    const auto label = static_cast<VariantLabel>(index.data(kLabelRole).toInt());
    const ChipColors chip = labelChipColors(label, pal);
    const QString chipText = variantLabelText(label);
    const int chipHeight = smallMetrics.height() + 2;
    const int chipWidth = smallMetrics.horizontalAdvance(chipText) + 12;
    const int chipX = r.left() + numberWidth + 6;
    const QRectF chipRect(chipX + 0.5, line2 + 0.5, chipWidth, chipHeight);
    painter->setPen(chip.border);
    painter->setBrush(chip.background);
    painter->drawRoundedRect(chipRect, chipHeight / 2.0, chipHeight / 2.0);
    painter->setPen(chip.foreground);
    painter->setFont(small);
    painter->drawText(chipRect, Qt::AlignCenter, chipText);
    const int specX = chipX + chipWidth + 8;
    const QString spec = index.data(kCompactRole).toString();
    painter->setPen(muted);
    painter->drawText(QRect(specX, line2, r.right() - specX, chipHeight),
                      Qt::AlignLeft | Qt::AlignVCenter,
                      smallMetrics.elidedText(spec, Qt::ElideMiddle, r.right() - specX));
    painter->restore();
  }
};

QToolButton* makeButton(const QString& text, const QString& tip, QWidget* parent) {
  auto* button = new QToolButton(parent);
  button->setText(text);
  button->setToolTip(tip);
  button->setToolButtonStyle(Qt::ToolButtonTextOnly);
  button->setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Fixed);
  return button;
}

QString htmlLine(const QString& text) {
  return text.toHtmlEscaped();
}

}  // namespace

QList<VariantsPanel::Preset> VariantsPanel::presets() {
  // Budgets sized for prompts of a few hundred tokens (SmolLM2 examples): a budget of 64 keeps
  // roughly a fifth of a 300-token prompt, so eviction is visible; windows and blocks likewise.
  const QString kv = tr("KV cache policies");
  const QString grouping = tr("Grouping");
  const QString pattern = tr("Attention patterns");
  const QString positions = tr("Positions");
  const QString simulated = tr("Structural simulations");
  return {
      {kv, tr("SnapKV (budget 64, window 8)"), QStringLiteral("kv=snapkv:budget=64,window=8")},
      {kv, tr("StreamingLLM (4 sinks + 60 recent)"),
       QStringLiteral("kv=streamingllm:budget=64,sinks=4")},
      {kv, tr("H2O (budget 64: heavy hitters + recent)"), QStringLiteral("kv=h2o:budget=64")},
      {kv, tr("TOVA (budget 64)"), QStringLiteral("kv=tova:budget=64")},
      {kv, tr("PyramidKV (average budget 64)"), QStringLiteral("kv=pyramidkv:budget=64,window=8")},
      {kv, tr("CompressKV (average budget 64)"),
       QStringLiteral("kv=compresskv:budget=64,window=8")},
      {kv, tr("Keyformer (budget 64)"), QStringLiteral("kv=keyformer:budget=64")},
      {kv, tr("Key-norm (budget 64)"), QStringLiteral("kv=knorm:budget=64")},
      {grouping, tr("KDGQA (key-driven GQA)"), QStringLiteral("grouping=kdgqa")},
      {grouping, tr("DGQA (dynamic key-driven GQA)"), QStringLiteral("grouping=dgqa")},
      {grouping, tr("PGQA (perturbed GQA)"), QStringLiteral("grouping=pgqa")},
      {grouping, tr("MQA (all KV heads mean-pooled)"), QStringLiteral("grouping=mqa")},
      {grouping, tr("GQA k=1 (one mean-pooled KV head, as MQA)"),
       QStringLiteral("grouping=gqa:groups=1")},
      {pattern, tr("Sliding window (w = 64)"), QStringLiteral("pattern=window:w=64")},
      {pattern, tr("Sinks + window (4 + 64)"), QStringLiteral("pattern=sinks:sink_tokens=4,w=64")},
      {pattern, tr("Local/global hybrid (w = 64, every 4th layer global)"),
       QStringLiteral("pattern=hybrid:w=64,every=4")},
      {pattern, tr("Block top-k (blocks of 16, k = 6)"),
       QStringLiteral("pattern=blocktopk:block=16,k=6")},
      {pattern, tr("FlexPrefill (blocks of 32, gamma 0.9)"),
       QStringLiteral("pattern=flexprefill:block=32,min_budget=32")},
      {pattern, tr("LongHeads (chunks of 32, 128 tokens per query)"),
       QStringLiteral("pattern=longheads:w=32,atten_length=128")},
      {positions, tr("STRING (shift 128, local window 32)"),
       QStringLiteral("positions=string:shift=128,window=32")},
      {simulated, tr("SQA (6 query heads kept)"), QStringLiteral("grouping=sqa:heads=6")},
      {simulated, tr("MLA (rank-64 latent KV)"), QStringLiteral("grouping=mla:rank=64")},
  };
}

VariantsPanel::VariantsPanel(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->setSpacing(4);

  m_list = new QListWidget(this);
  m_list->setObjectName(QStringLiteral("variantsList"));
  m_list->setItemDelegate(new VariantItemDelegate(m_list));
  m_list->setSelectionMode(QAbstractItemView::SingleSelection);
  m_list->setUniformItemSizes(true);
  m_list->setMinimumHeight(120);
  m_list->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  layout->addWidget(m_list, 1);

  m_add = makeButton(tr("Add\u2026"), tr("Build a variant from the registry's parts"), this);
  m_quick =
      makeButton(tr("Quick add"), tr("Common presets with budgets sized for short prompts"), this);
  m_quick->setPopupMode(QToolButton::InstantPopup);
  // The style's menu arrow overlaps the text of an expanding button: a text arrow instead.
  m_quick->setText(tr("Quick add \u25be"));
  m_quick->setStyleSheet(QStringLiteral("QToolButton::menu-indicator { image: none; width: 0; }"));
  m_edit = makeButton(tr("Edit\u2026"), tr("Edit the selected variant (or double-click it)"), this);
  m_duplicate = makeButton(tr("Duplicate"), tr("Copy the selected variant below itself"), this);
  m_remove = makeButton(tr("Remove"), tr("Remove the selected variant (Delete)"), this);
  m_up = makeButton(tr("Move up"), tr("Run the selected variant earlier (Ctrl+Up)"), this);
  m_down = makeButton(tr("Move down"), tr("Run the selected variant later (Ctrl+Down)"), this);
  auto* buttons = new QGridLayout;
  buttons->setSpacing(2);
  buttons->addWidget(m_add, 0, 0);
  buttons->addWidget(m_quick, 0, 1);
  buttons->addWidget(m_edit, 0, 2);
  buttons->addWidget(m_duplicate, 0, 3);
  buttons->addWidget(m_remove, 1, 0);
  buttons->addWidget(m_up, 1, 1);
  buttons->addWidget(m_down, 1, 2);
  layout->addLayout(buttons);

  m_quickMenu = new QMenu(this);
  m_quickMenu->setToolTipsVisible(true);
  QMap<QString, QMenu*> groups;
  for (const Preset& preset : presets()) {
    QMenu*& group = groups[preset.group];
    if (!group) {
      group = m_quickMenu->addMenu(preset.group);
      group->setToolTipsVisible(true);
    }
    QString title = preset.title;
    QString tip = preset.spec;
    try {
      const VariantSpec spec = VariantSpec::parse(preset.spec.toStdString());
      const VariantLabel label = variantLabel(spec);
      if (label != VariantLabel::TrainingFree)
        title += QStringLiteral("  \u2014  ") + variantLabelText(label);
      tip = QString::fromStdString(spec.to_string());
    } catch (const std::exception& e) {
      // A preset the registry no longer accepts stays visible and reports why when chosen.
      tip = QString::fromUtf8(e.what());
    }
    QAction* action = group->addAction(title);
    action->setToolTip(tip);
    const QString specText = preset.spec;
    connect(action, &QAction::triggered, this, [this, specText] {
      try {
        addVariant(VariantSpec::parse(specText.toStdString()));
      } catch (const std::exception& e) {
        emit errorOccurred(tr("Invalid preset"), QString::fromUtf8(e.what()));
      }
    });
  }
  m_quick->setMenu(m_quickMenu);

  auto* decodeRow = new QHBoxLayout;
  auto* decodeLabel = new QLabel(tr("&Decode steps:"), this);
  m_decode = new QSpinBox(this);
  m_decode->setRange(0, kMaxDecodeSteps);
  m_decode->setValue(kDefaultDecodeSteps);
  m_decode->setAccelerated(true);
  const QString decodeTip =
      tr("Tokens of the baseline's greedy continuation fed to every variant after the prompt, so "
         "all variants decode the same text. Needed for KV decisions: KV policies keep or evict "
         "entries while decoding. 0 = prefill only.");
  m_decode->setToolTip(decodeTip);
  decodeLabel->setToolTip(decodeTip);
  decodeLabel->setBuddy(m_decode);
  decodeRow->addWidget(decodeLabel);
  decodeRow->addWidget(m_decode);
  decodeRow->addStretch(1);
  layout->addLayout(decodeRow);

  m_hint = new QLabel(this);
  m_hint->setWordWrap(true);
  m_hint->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
  QFont hintFont = m_hint->font();
  hintFont.setPointSizeF(hintFont.pointSizeF() * 0.9);
  m_hint->setFont(hintFont);
  layout->addWidget(m_hint);

  // Keyboard: Delete removes, Enter edits, Ctrl+Up/Down reorder (only while the list has focus).
  const auto listAction = [this](const QKeySequence& keys, auto slot) {
    auto* action = new QAction(m_list);
    action->setShortcut(keys);
    action->setShortcutContext(Qt::WidgetShortcut);
    connect(action, &QAction::triggered, this, slot);
    m_list->addAction(action);
  };
  listAction(QKeySequence::Delete, [this] { removeVariant(currentVariant()); });
  listAction(QKeySequence(Qt::Key_Return), [this] {
    if (currentVariant() >= 0) openEditor(currentVariant());
  });
  listAction(QKeySequence(Qt::CTRL | Qt::Key_Up), [this] { moveVariant(currentVariant(), -1); });
  listAction(QKeySequence(Qt::CTRL | Qt::Key_Down), [this] { moveVariant(currentVariant(), +1); });

  connect(m_add, &QToolButton::clicked, this, [this] { openEditor(-1); });
  connect(m_edit, &QToolButton::clicked, this, [this] {
    if (currentVariant() >= 0) openEditor(currentVariant());
  });
  connect(m_duplicate, &QToolButton::clicked, this, [this] { duplicateVariant(currentVariant()); });
  connect(m_remove, &QToolButton::clicked, this, [this] { removeVariant(currentVariant()); });
  connect(m_up, &QToolButton::clicked, this, [this] { moveVariant(currentVariant(), -1); });
  connect(m_down, &QToolButton::clicked, this, [this] { moveVariant(currentVariant(), +1); });
  connect(m_list, &QListWidget::itemDoubleClicked, this, [this](QListWidgetItem* item) {
    const int index = m_list->row(item) - 1;
    if (index >= 0) openEditor(index);
  });
  connect(m_list, &QListWidget::currentRowChanged, this, &VariantsPanel::updateButtons);
  // Right-click: the same actions on the row under the cursor, plus copying its spec text
  // (for attnscope-cli --variant).
  m_list->setContextMenuPolicy(Qt::CustomContextMenu);
  connect(m_list, &QListWidget::customContextMenuRequested, this, [this](const QPoint& pos) {
    QListWidgetItem* item = m_list->itemAt(pos);
    if (!item) return;
    m_list->setCurrentItem(item);
    const int index = currentVariant();
    const QString fullSpec =
        index >= 0 ? QString::fromStdString(m_variants[static_cast<size_t>(index)].to_string())
                   : QString::fromStdString(VariantSpec::baseline().to_string());
    QMenu menu(this);
    for (QToolButton* b : {m_edit, m_duplicate, m_remove, m_up, m_down}) {
      QAction* action = menu.addAction(b->text(), b, &QToolButton::click);
      action->setEnabled(b->isEnabled());
    }
    menu.addSeparator();
    menu.addAction(tr("Copy spec"), this,
                   [fullSpec] { QGuiApplication::clipboard()->setText(fullSpec); });
    menu.exec(m_list->viewport()->mapToGlobal(pos));
  });
  connect(m_decode, &QSpinBox::valueChanged, this, [this] {
    updateHint();
    emit changed();
  });

  rebuildList(-1);
}

VariantsPanel::~VariantsPanel() = default;

void VariantsPanel::rebuildList(int selectVariant) {
  const QSignalBlocker block(m_list);
  m_list->clear();
  const VariantSpec baseline = VariantSpec::baseline();
  auto* base = new QListWidgetItem(QStringLiteral("baseline"), m_list);
  base->setData(kCompactRole, tr("full attention as trained \u00b7 always run first"));
  base->setData(kLabelRole, static_cast<int>(VariantLabel::TrainingFree));
  base->setData(kIndexRole, 0);
  base->setToolTip(
      tr("<b>baseline</b><br><tt>%1</tt><br>training-free<br>Always run first; every variant's "
         "quality is measured against it. It cannot be edited or removed.")
          .arg(htmlLine(QString::fromStdString(baseline.to_string()))));
  base->setFlags(Qt::ItemIsEnabled | Qt::ItemIsSelectable);

  for (size_t i = 0; i < m_variants.size(); ++i) {
    const VariantSpec& spec = m_variants[i];
    QString note;
    if (spec == baseline) {
      note = tr("same as the baseline");
    } else {
      for (size_t j = 0; j < i; ++j) {
        if (m_variants[j] == spec) {
          note = tr("same as #%1").arg(j + 1);
          break;
        }
      }
    }
    const VariantLabel label = variantLabel(spec);
    auto* item = new QListWidgetItem(QString::fromStdString(spec.display_name()), m_list);
    item->setData(kCompactRole, compactSpecText(spec));
    item->setData(kLabelRole, static_cast<int>(label));
    item->setData(kNoteRole, note);
    item->setData(kIndexRole, static_cast<int>(i + 1));
    QString tip = QStringLiteral("<b>%1</b><br><tt>%2</tt><br>%3")
                      .arg(htmlLine(QString::fromStdString(spec.display_name())),
                           htmlLine(QString::fromStdString(spec.to_string())),
                           htmlLine(variantLabelText(label)));
    if (label == VariantLabel::Simulation)
      tip += tr("<br>A structural simulation: the model was not trained for it.");
    if (!note.isEmpty()) tip += QStringLiteral("<br><i>%1</i>").arg(htmlLine(note));
    item->setToolTip(tip);
    item->setFlags(Qt::ItemIsEnabled | Qt::ItemIsSelectable);
  }
  const int row = selectVariant >= 0 && selectVariant < static_cast<int>(m_variants.size())
                      ? selectVariant + 1
                      : -1;
  m_list->setCurrentRow(row);
  updateButtons();
  updateHint();
}

void VariantsPanel::updateButtons() {
  const int index = currentVariant();
  const int n = static_cast<int>(m_variants.size());
  m_edit->setEnabled(index >= 0);
  m_duplicate->setEnabled(index >= 0);
  m_remove->setEnabled(index >= 0);
  m_up->setEnabled(index > 0);
  m_down->setEnabled(index >= 0 && index + 1 < n);
}

void VariantsPanel::updateHint() {
  QString hint;
  bool anyKv = false;
  for (const VariantSpec& spec : m_variants)
    anyKv = anyKv || spec.kv.name != default_part_name(PartKind::Kv);
  if (m_variants.empty()) {
    hint = tr("Only the baseline will run: add a variant to compare (Add\u2026 or Quick add).");
  } else if (anyKv && m_decode->value() == 0) {
    hint =
        tr("No decode steps: the KV policies will make no keep/evict decisions. Set decode "
           "steps > 0 to see them.");
  }
  m_hint->setText(hint);
  m_hint->setVisible(!hint.isEmpty());
}

void VariantsPanel::changeEvent(QEvent* event) {
  if (event->type() == QEvent::PaletteChange || event->type() == QEvent::StyleChange)
    m_list->viewport()->update();
  QWidget::changeEvent(event);
}

std::vector<VariantSpec> VariantsPanel::variants() const {
  return m_variants;
}

void VariantsPanel::setVariants(const std::vector<VariantSpec>& variants) {
  m_variants = variants;
  rebuildList(-1);
  emit changed();
}

QStringList VariantsPanel::specStrings() const {
  QStringList out;
  for (const VariantSpec& spec : m_variants) out << QString::fromStdString(spec.to_string());
  return out;
}

void VariantsPanel::setSpecStrings(const QStringList& specs) {
  std::vector<VariantSpec> parsed;
  for (const QString& text : specs) {
    // A blank entry (a hand-edited settings file) is not a variant.
    if (text.trimmed().isEmpty()) continue;
    try {
      parsed.push_back(VariantSpec::parse(text.toStdString()));
    } catch (const std::exception& e) {
      QString message = QString::fromUtf8(e.what());
      if (!message.contains(text)) message = QStringLiteral("variant '%1': %2").arg(text, message);
      emit errorOccurred(tr("Invalid variant skipped"), message);
    }
  }
  setVariants(parsed);
}

void VariantsPanel::addVariant(const VariantSpec& spec) {
  m_variants.push_back(spec);
  rebuildList(static_cast<int>(m_variants.size()) - 1);
  emit changed();
}

void VariantsPanel::removeVariant(int index) {
  if (index < 0 || index >= static_cast<int>(m_variants.size())) return;
  m_variants.erase(m_variants.begin() + index);
  // The selection stays at the same place: the next variant, or the new last one.
  rebuildList(std::min(index, static_cast<int>(m_variants.size()) - 1));
  emit changed();
}

void VariantsPanel::duplicateVariant(int index) {
  if (index < 0 || index >= static_cast<int>(m_variants.size())) return;
  const VariantSpec copy = m_variants[static_cast<size_t>(index)];
  m_variants.insert(m_variants.begin() + index + 1, copy);
  rebuildList(index + 1);
  emit changed();
}

void VariantsPanel::moveVariant(int index, int delta) {
  const int target = index + delta;
  const int n = static_cast<int>(m_variants.size());
  if (index < 0 || index >= n || target < 0 || target >= n || delta == 0) return;
  const VariantSpec moved = m_variants[static_cast<size_t>(index)];
  m_variants.erase(m_variants.begin() + index);
  m_variants.insert(m_variants.begin() + target, moved);
  rebuildList(target);
  emit changed();
}

void VariantsPanel::replaceVariant(int index, const VariantSpec& spec) {
  if (index < 0 || index >= static_cast<int>(m_variants.size())) return;
  if (m_variants[static_cast<size_t>(index)] == spec) return;
  m_variants[static_cast<size_t>(index)] = spec;
  rebuildList(index);
  emit changed();
}

int VariantsPanel::currentVariant() const {
  const int row = m_list->currentRow();
  return row >= 1 ? row - 1 : -1;
}

void VariantsPanel::setCurrentVariant(int index) {
  m_list->setCurrentRow(index >= 0 && index < static_cast<int>(m_variants.size()) ? index + 1 : -1);
}

int VariantsPanel::decodeSteps() const {
  return m_decode->value();
}

void VariantsPanel::setDecodeSteps(int steps) {
  m_decode->setValue(std::clamp(steps, 0, kMaxDecodeSteps));
}

void VariantsPanel::openEditor(int index) {
  if (m_editor) {
    m_editor->raise();
    m_editor->activateWindow();
    return;
  }
  const bool editing = index >= 0 && index < static_cast<int>(m_variants.size());
  const VariantSpec initial =
      editing ? m_variants[static_cast<size_t>(index)] : VariantSpec::baseline();
  auto* dialog = new VariantEditorDialog(initial, this);
  dialog->setAttribute(Qt::WA_DeleteOnClose);
  dialog->setWindowTitle(editing ? tr("Edit variant #%1").arg(index + 1) : tr("Add variant"));
  // The list may change while the dialog is open (settings restored, a preset added): an edit
  // applies to the variant it was opened for only if that variant is still where it was.
  const VariantSpec original = initial;
  connect(dialog, &QDialog::accepted, this, [this, dialog, editing, index, original] {
    const VariantSpec result = dialog->spec();
    if (!editing) {
      addVariant(result);
    } else if (index < static_cast<int>(m_variants.size()) &&
               m_variants[static_cast<size_t>(index)] == original) {
      replaceVariant(index, result);
    } else {
      addVariant(result);
    }
  });
  m_editor = dialog;
  dialog->open();
}

}  // namespace attnscope::app
