// Parameter form generated from a registry part: see param_form.h.
#include "param_form.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QLocale>
#include <QSignalBlocker>
#include <QSpinBox>
#include <QToolButton>
#include <QVBoxLayout>
#include <algorithm>
#include <climits>
#include <cmath>

#include "variants_labels.h"

namespace attnscope::app {

namespace {

// Editors wide enough for "1048576" or a layer list, not stretched across a wide dialog.
constexpr int kEditorMinWidth = 110;
constexpr int kEditorMaxWidth = 240;

// Spin boxes show the shortest text of their value ("0.9", not "0.9000000000"), while keeping
// enough decimals that values typed or read from a spec survive.
class ShortestDoubleSpinBox : public QDoubleSpinBox {
 public:
  using QDoubleSpinBox::QDoubleSpinBox;
  QString textFromValue(double value) const override {
    QLocale loc = locale();
    loc.setNumberOptions(QLocale::OmitGroupSeparator);
    return loc.toString(value, 'f', QLocale::FloatingPointShortest);
  }
};

// Decimals of a number's shortest text ("0.01" -> 2).
int decimalsOf(double value) {
  const QString text = QLocale::c().toString(value, 'f', QLocale::FloatingPointShortest);
  const qsizetype dot = text.indexOf(QLatin1Char('.'));
  return dot < 0 ? 0 : static_cast<int>(text.size() - dot - 1);
}

// A step that moves through the range in about a hundred clicks, never coarser than the
// default's last decimal (tau_delta = 0.01 steps by 0.01).
double floatStep(const ParamSpec& p) {
  const double span = std::max(p.max - p.min, 1e-9);
  double step = std::pow(10.0, std::floor(std::log10(span))) / 100.0;
  bool ok = false;
  const double def = QString::fromStdString(p.default_value).toDouble(&ok);
  if (ok && def != 0) step = std::min(step, std::pow(10.0, -decimalsOf(def)));
  return std::max(step, 1e-6);
}

int clampToInt(double v) {
  return static_cast<int>(
      std::clamp(v, static_cast<double>(INT_MIN), static_cast<double>(INT_MAX)));
}

QString rangeText(const ParamSpec& p) {
  const QLocale c = QLocale::c();
  switch (p.type) {
    case ParamType::Int:
      return QStringLiteral("integer in [%1, %2]")
          .arg(QString::number(clampToInt(p.min)), QString::number(clampToInt(p.max)));
    case ParamType::Float:
      return QStringLiteral("number in [%1, %2]")
          .arg(c.toString(p.min, 'g', QLocale::FloatingPointShortest),
               c.toString(p.max, 'g', QLocale::FloatingPointShortest));
    case ParamType::Choice: {
      QStringList choices;
      for (const auto& choice : p.choices) choices << QString::fromStdString(choice);
      return QStringLiteral("one of %1").arg(choices.join(QStringLiteral(" | ")));
    }
    case ParamType::Bool:
      return QStringLiteral("true or false");
    case ParamType::IntList:
      return QStringLiteral("integers in [%1, %2] joined by '+', e.g. 3+7+11; empty = none")
          .arg(QString::number(clampToInt(p.min)), QString::number(clampToInt(p.max)));
  }
  return {};
}

}  // namespace

ParamForm::ParamForm(const PartSpec& part, QWidget* parent) : QWidget(parent), m_part(part) {
  // One block per parameter: [name | editor | default | reset] over its help and its error.
  // Blocks in a vertical box (not one grid) so wrapped help lines get their real height.
  auto* column = new QVBoxLayout(this);
  column->setContentsMargins(0, 0, 0, 0);
  column->setSpacing(6);
  QFont small = font();
  small.setPointSizeF(small.pointSizeF() * 0.88);
  int nameWidth = 0;
  for (const ParamSpec& param : m_part.params)
    nameWidth =
        std::max(nameWidth, fontMetrics().horizontalAdvance(QString::fromStdString(param.name)));
  nameWidth += 8;

  m_rows.reserve(m_part.params.size());
  for (const ParamSpec& param : m_part.params) {
    Row row;
    row.param = &param;
    try {
      row.defaultValue =
          QString::fromStdString(normalize_param_value(m_part.name, param, param.default_value));
    } catch (const std::exception&) {
      row.defaultValue = QString::fromStdString(param.default_value);
    }
    const QString name = QString::fromStdString(param.name);
    const QString help = QString::fromStdString(param.help);
    const QString tip = QStringLiteral("<b>%1.%2</b> (%3)<br>%4")
                            .arg(QString::fromStdString(m_part.name), name,
                                 rangeText(param).toHtmlEscaped(), help.toHtmlEscaped());

    auto* block = new QVBoxLayout;
    block->setSpacing(1);
    auto* line = new QHBoxLayout;
    line->setSpacing(8);
    auto* nameLabel = new QLabel(name, this);
    nameLabel->setToolTip(tip);
    nameLabel->setFixedWidth(nameWidth);
    row.editor = makeEditor(row);
    row.editor->setObjectName(QStringLiteral("param.") + name);
    row.editor->setToolTip(tip);
    row.editor->setMinimumWidth(kEditorMinWidth);
    row.editor->setMaximumWidth(kEditorMaxWidth);
    row.editor->setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Fixed);
    nameLabel->setBuddy(row.editor);

    const QString shownDefault = row.defaultValue.isEmpty() ? tr("empty") : row.defaultValue;
    row.defaultLabel = new MutedLabel(tr("default %1").arg(shownDefault), this);
    row.defaultLabel->setFont(small);

    row.reset = new QToolButton(this);
    row.reset->setText(tr("Reset"));
    row.reset->setAutoRaise(true);
    row.reset->setToolTip(tr("Reset %1 to its default (%2)").arg(name, shownDefault));
    row.reset->setFocusPolicy(Qt::TabFocus);
    line->addWidget(nameLabel);
    line->addWidget(row.editor, 1);
    line->addWidget(row.defaultLabel);
    line->addStretch(0);
    line->addWidget(row.reset);
    block->addLayout(line);

    auto* helpLabel = new MutedLabel(help, this);
    helpLabel->setWordWrap(true);
    helpLabel->setFont(small);
    helpLabel->setContentsMargins(nameWidth + 8, 0, 0, 0);
    block->addWidget(helpLabel);

    row.error = new QLabel(this);
    row.error->setWordWrap(true);
    row.error->setContentsMargins(nameWidth + 8, 0, 0, 0);
    QPalette errorPalette = palette();
    errorPalette.setColor(QPalette::WindowText, QColor(0xd3, 0x2f, 0x2f));
    row.error->setPalette(errorPalette);
    row.error->setVisible(false);
    block->addWidget(row.error);
    column->addLayout(block);
    m_rows.push_back(row);
  }
  // Connections after the rows are in place: the vector no longer moves.
  for (size_t i = 0; i < m_rows.size(); ++i) {
    Row& row = m_rows[i];
    connect(row.reset, &QToolButton::clicked, this, [this, i] {
      Row& r = m_rows[i];
      showValue(r, r.defaultValue);
      emitEdited(r);
    });
    if (auto* spin = qobject_cast<QSpinBox*>(row.editor)) {
      connect(spin, &QSpinBox::valueChanged, this, [this, i] { emitEdited(m_rows[i]); });
    } else if (auto* dspin = qobject_cast<QDoubleSpinBox*>(row.editor)) {
      connect(dspin, &QDoubleSpinBox::valueChanged, this, [this, i] { emitEdited(m_rows[i]); });
    } else if (auto* combo = qobject_cast<QComboBox*>(row.editor)) {
      connect(combo, &QComboBox::currentIndexChanged, this, [this, i] { emitEdited(m_rows[i]); });
    } else if (auto* check = qobject_cast<QCheckBox*>(row.editor)) {
      connect(check, &QCheckBox::toggled, this, [this, i] { emitEdited(m_rows[i]); });
    } else if (auto* line = qobject_cast<QLineEdit*>(row.editor)) {
      connect(line, &QLineEdit::textEdited, this, [this, i] { emitEdited(m_rows[i]); });
      // Leaving the field writes a valid list the way the spec does ("3,7" -> "3+7").
      connect(line, &QLineEdit::editingFinished, this, [this, i, line] {
        try {
          const QString normal = QString::fromStdString(
              normalize_param_value(m_part.name, *m_rows[i].param, line->text().toStdString()));
          if (normal != line->text()) line->setText(normal);
        } catch (const std::exception&) {
          // Invalid: the text stays as typed and the dialog shows the parser's message.
        }
      });
    }
    showValue(row, row.defaultValue);
  }
}

ParamForm::~ParamForm() = default;

QWidget* ParamForm::makeEditor(Row& row) {
  const ParamSpec& p = *row.param;
  switch (p.type) {
    case ParamType::Int: {
      auto* spin = new QSpinBox(this);
      spin->setRange(clampToInt(p.min), clampToInt(p.max));
      spin->setAccelerated(true);
      spin->setGroupSeparatorShown(false);
      return spin;
    }
    case ParamType::Float: {
      auto* spin = new ShortestDoubleSpinBox(this);
      spin->setDecimals(std::max(10, decimalsOf(p.min) + 2));
      spin->setRange(p.min, p.max);
      spin->setSingleStep(floatStep(p));
      spin->setAccelerated(true);
      return spin;
    }
    case ParamType::Choice: {
      auto* combo = new QComboBox(this);
      for (const auto& choice : p.choices) combo->addItem(QString::fromStdString(choice));
      return combo;
    }
    case ParamType::Bool:
      return new QCheckBox(this);
    case ParamType::IntList: {
      auto* line = new QLineEdit(this);
      line->setPlaceholderText(row.defaultValue.isEmpty() ? tr("empty, e.g. 3+7+11")
                                                          : tr("default %1").arg(row.defaultValue));
      line->setClearButtonEnabled(true);
      return line;
    }
  }
  return new QWidget(this);
}

void ParamForm::showValue(Row& row, const QString& value) {
  QSignalBlocker block(row.editor);
  if (auto* spin = qobject_cast<QSpinBox*>(row.editor)) {
    spin->setValue(value.toInt());
  } else if (auto* dspin = qobject_cast<QDoubleSpinBox*>(row.editor)) {
    dspin->setValue(QLocale::c().toDouble(value));
  } else if (auto* combo = qobject_cast<QComboBox*>(row.editor)) {
    const int index = combo->findText(value);
    if (index >= 0) combo->setCurrentIndex(index);
  } else if (auto* check = qobject_cast<QCheckBox*>(row.editor)) {
    check->setChecked(value == QLatin1String("true") || value == QLatin1String("1"));
  } else if (auto* line = qobject_cast<QLineEdit*>(row.editor)) {
    if (line->text() != value) line->setText(value);
  }
  updateResetButton(row);
}

QString ParamForm::valueText(const QString& name) const {
  const Row* row = findRow(name);
  if (!row) return {};
  if (auto* spin = qobject_cast<QSpinBox*>(row->editor)) return QString::number(spin->value());
  if (auto* dspin = qobject_cast<QDoubleSpinBox*>(row->editor))
    return QLocale::c().toString(dspin->value(), 'g', QLocale::FloatingPointShortest);
  if (auto* combo = qobject_cast<QComboBox*>(row->editor)) return combo->currentText();
  if (auto* check = qobject_cast<QCheckBox*>(row->editor))
    return check->isChecked() ? QStringLiteral("true") : QStringLiteral("false");
  if (auto* line = qobject_cast<QLineEdit*>(row->editor)) return line->text().trimmed();
  return {};
}

QString ParamForm::defaultText(const QString& name) const {
  const Row* row = findRow(name);
  return row ? row->defaultValue : QString();
}

void ParamForm::setValues(const std::map<std::string, std::string>& values, const QString& except) {
  for (Row& row : m_rows) {
    const QString name = QString::fromStdString(row.param->name);
    if (name == except) {
      updateResetButton(row);
      continue;
    }
    const auto it = values.find(row.param->name);
    showValue(row, it == values.end() ? row.defaultValue : QString::fromStdString(it->second));
  }
}

void ParamForm::updateResetButton(Row& row) {
  QString value = valueText(QString::fromStdString(row.param->name));
  try {
    value =
        QString::fromStdString(normalize_param_value(m_part.name, *row.param, value.toStdString()));
  } catch (const std::exception&) {
    // An invalid value is not the default: reset stays enabled.
  }
  row.reset->setEnabled(value != row.defaultValue);
}

void ParamForm::emitEdited(Row& row) {
  updateResetButton(row);
  const QString name = QString::fromStdString(row.param->name);
  emit valueEdited(name, valueText(name));
}

void ParamForm::setError(const QString& name, const QString& message) {
  Row* row = findRow(name);
  if (!row) return;
  row->error->setText(message);
  row->error->setVisible(!message.isEmpty());
}

void ParamForm::clearErrors() {
  for (Row& row : m_rows) {
    row.error->clear();
    row.error->setVisible(false);
  }
}

QWidget* ParamForm::editor(const QString& name) const {
  const Row* row = findRow(name);
  return row ? row->editor : nullptr;
}

QToolButton* ParamForm::resetButton(const QString& name) const {
  const Row* row = findRow(name);
  return row ? row->reset : nullptr;
}

QStringList ParamForm::paramNames() const {
  QStringList names;
  for (const Row& row : m_rows) names << QString::fromStdString(row.param->name);
  return names;
}

ParamForm::Row* ParamForm::findRow(const QString& name) {
  for (Row& row : m_rows)
    if (QString::fromStdString(row.param->name) == name) return &row;
  return nullptr;
}

const ParamForm::Row* ParamForm::findRow(const QString& name) const {
  for (const Row& row : m_rows)
    if (QString::fromStdString(row.param->name) == name) return &row;
  return nullptr;
}

}  // namespace attnscope::app
