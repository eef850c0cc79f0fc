// Needle test dialog: see needle_dialog.h.
#include "needle_dialog.h"

#include <QComboBox>
#include <QFormLayout>
#include <QLabel>
#include <QLineEdit>
#include <QRegularExpression>
#include <QSpinBox>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <limits>

namespace attnscope::app {

namespace {

// Defaults of a first needle test: short enough for the CPU, spread over the haystack.
const std::vector<int> kDefaultLengths = {512, 1024, 2048};
constexpr int kDefaultTrials = 2;
constexpr int kDefaultDecodeBudget = 8;
// Generous caps: the dialog must not be the limit, only typos are.
constexpr int kMaxTrials = 1000;
constexpr int kMaxDecodeBudget = 1024;

QStringList items(const QString& text) {
  QStringList out;
  for (const QString& part : text.split(QLatin1Char(','))) {
    const QString item = part.trimmed();
    if (!item.isEmpty()) out << item;
  }
  return out;
}

}  // namespace

bool parseLengthList(const QString& text, const QString& field, std::vector<int>* out,
                     QString* error) {
  out->clear();
  const QStringList list = items(text);
  if (list.isEmpty()) {
    *error = QObject::tr("%1: enter at least one length, e.g. 512, 1024").arg(field);
    return false;
  }
  for (const QString& item : list) {
    bool ok = false;
    const qlonglong v = item.toLongLong(&ok);
    if (!ok || v < 1 || v > std::numeric_limits<int>::max()) {
      *error = QObject::tr("%1: '%2' is not a positive integer").arg(field, item);
      return false;
    }
    if (std::find(out->begin(), out->end(), static_cast<int>(v)) != out->end()) {
      *error = QObject::tr("%1: %2 is listed twice").arg(field).arg(v);
      return false;
    }
    out->push_back(static_cast<int>(v));
  }
  return true;
}

bool parseDepthList(const QString& text, std::vector<double>* out, QString* error) {
  out->clear();
  const QStringList list = items(text);
  if (list.isEmpty()) {
    *error = QObject::tr("depths: enter at least one depth in [0, 1], e.g. 0.1, 0.5, 0.9");
    return false;
  }
  for (const QString& item : list) {
    QString number = item;
    const bool percent = number.endsWith(QLatin1Char('%'));
    if (percent) number.chop(1);
    bool ok = false;
    double v = number.trimmed().toDouble(&ok);
    if (ok && percent) v /= 100.0;
    if (!ok || !std::isfinite(v) || v < 0.0 || v > 1.0) {
      *error = QObject::tr("depths: '%1' is not a depth in [0, 1] (or 0%\u2013100%)").arg(item);
      return false;
    }
    if (std::find(out->begin(), out->end(), v) != out->end()) {
      *error = QObject::tr("depths: %1 is listed twice").arg(item);
      return false;
    }
    out->push_back(v);
  }
  return true;
}

std::vector<int> clampLengths(const std::vector<int>& defaults, int contextLength, int reserve) {
  std::vector<int> out;
  for (int length : defaults) {
    int v = length;
    if (contextLength > 0) v = std::min(v, contextLength - reserve);
    if (v < 1) continue;
    if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
  }
  return out;
}

QString joinNumbers(const std::vector<int>& values) {
  QStringList parts;
  for (int v : values) parts << QString::number(v);
  return parts.join(QStringLiteral(", "));
}

NeedleDialog::NeedleDialog(const std::vector<VariantSpec>& variants, int contextLength,
                           QWidget* parent)
    : QDialog(parent), m_context(contextLength) {
  setWindowTitle(tr("Needle test"));
  m_choices.push_back(VariantSpec::baseline());
  m_choices.insert(m_choices.end(), variants.begin(), variants.end());

  auto* layout = new QVBoxLayout(this);
  QFormLayout* form = addRunDialogForm(
      this, layout,
      tr("Hides a five-digit pass key at each depth of a filler text of each length and asks the "
         "model to repeat it (greedy decoding with the variant). Accuracy per depth \u00d7 "
         "length cell appears in the Metrics view."));

  m_variant = new QComboBox(this);
  m_variant->setObjectName(QStringLiteral("needleVariant"));
  for (size_t i = 0; i < m_choices.size(); ++i) {
    const VariantSpec& spec = m_choices[i];
    QString text =
        i == 0 ? tr("baseline (full attention)") : QString::fromStdString(spec.display_name());
    if (spec.needs_training()) text += tr(" \u2014 simulation (needs training)");
    m_variant->addItem(text);
    m_variant->setItemData(static_cast<int>(i), QString::fromStdString(spec.to_string()),
                           Qt::ToolTipRole);
  }
  m_variant->setCurrentIndex(m_choices.size() > 1 ? 1 : 0);
  form->addRow(tr("&Variant:"), m_variant);

  m_decode = new QSpinBox(this);
  m_decode->setObjectName(QStringLiteral("needleDecodeBudget"));
  m_decode->setRange(1, kMaxDecodeBudget);
  m_decode->setValue(kDefaultDecodeBudget);
  m_decode->setSuffix(tr(" tokens"));
  m_decode->setToolTip(tr("Tokens generated after the question; the key must appear in them"));

  m_lengths = new QLineEdit(
      joinNumbers(clampLengths(kDefaultLengths, m_context, kDefaultDecodeBudget)), this);
  m_lengths->setObjectName(QStringLiteral("needleLengths"));
  m_lengths->setToolTip(
      m_context > 0
          ? tr("Prompt lengths in tokens, comma separated; each + the decode budget must fit the "
               "model's context of %1 tokens")
                .arg(m_context)
          : tr("Prompt lengths in tokens, comma separated"));
  form->addRow(tr("&Lengths:"), m_lengths);

  m_depths = new QLineEdit(QStringLiteral("0.1, 0.5, 0.9"), this);
  m_depths->setObjectName(QStringLiteral("needleDepths"));
  m_depths->setToolTip(
      tr("Where the key sits in the filler: 0 = start, 1 = end (or 0%\u2013100%)"));
  form->addRow(tr("&Depths:"), m_depths);

  m_trials = new QSpinBox(this);
  m_trials->setObjectName(QStringLiteral("needleTrials"));
  m_trials->setRange(1, kMaxTrials);
  m_trials->setValue(kDefaultTrials);
  m_trials->setToolTip(tr("Trials per cell, each with its own key and filler"));
  form->addRow(tr("&Trials per cell:"), m_trials);

  m_seed = new QLineEdit(QStringLiteral("0"), this);
  m_seed->setObjectName(QStringLiteral("needleSeed"));
  m_seed->setToolTip(
      tr("Seed of keys and filler (0 to 18446744073709551615): the same seed "
         "repeats the same test"));
  form->addRow(tr("&Seed:"), m_seed);
  form->addRow(tr("&Decode budget:"), m_decode);

  m_footer = RunDialogFooter::add(this, layout, QStringLiteral("needleError"),
                                  tr("Run needle test"), [this] { return errorText(); });

  connect(m_lengths, &QLineEdit::textChanged, this, &NeedleDialog::validate);
  connect(m_depths, &QLineEdit::textChanged, this, &NeedleDialog::validate);
  connect(m_seed, &QLineEdit::textChanged, this, &NeedleDialog::validate);
  connect(m_trials, qOverload<int>(&QSpinBox::valueChanged), this, &NeedleDialog::validate);
  connect(m_decode, qOverload<int>(&QSpinBox::valueChanged), this, &NeedleDialog::validate);
  validate();
  resize(std::max(sizeHint().width(), 460), sizeHint().height());
}

NeedleDialog::~NeedleDialog() = default;

VariantSpec NeedleDialog::variant() const {
  const int i = m_variant->currentIndex();
  return i >= 0 && i < static_cast<int>(m_choices.size()) ? m_choices[static_cast<size_t>(i)]
                                                          : VariantSpec::baseline();
}

NeedleOptions NeedleDialog::options() const {
  NeedleOptions o;
  QString ignored;
  parseLengthList(m_lengths->text(), tr("lengths"), &o.lengths, &ignored);
  parseDepthList(m_depths->text(), &o.depths, &ignored);
  o.trials = m_trials->value();
  o.seed = m_seed->text().trimmed().toULongLong();
  o.decode_budget = m_decode->value();
  return o;
}

QString NeedleDialog::errorText() const {
  std::vector<int> lengths;
  std::vector<double> depths;
  QString error;
  if (!parseLengthList(m_lengths->text(), tr("lengths"), &lengths, &error)) return error;
  const int budget = m_decode->value();
  if (m_context > 0) {
    for (int length : lengths) {
      if (static_cast<qint64>(length) + budget > m_context) {
        return tr("lengths: %1 + %2 generated tokens exceeds the model's context of %3 tokens "
                  "(at most %4)")
            .arg(length)
            .arg(budget)
            .arg(m_context)
            .arg(m_context - budget);
      }
    }
  }
  if (!parseDepthList(m_depths->text(), &depths, &error)) return error;
  if (m_trials->value() < 1) return tr("trials: at least 1 per cell");
  bool ok = false;
  const QString seed = m_seed->text().trimmed();
  seed.toULongLong(&ok);
  if (!ok || seed.startsWith(QLatin1Char('-')) || seed.startsWith(QLatin1Char('+'))) {
    return tr("seed: '%1' is not an integer from 0 to 18446744073709551615").arg(seed);
  }
  if (budget < 1) return tr("decode budget: at least 1 token");
  return QString();
}

void NeedleDialog::validate() {
  m_footer.show(errorText(), [this] {
    const NeedleOptions o = options();
    const int cells = static_cast<int>(o.lengths.size() * o.depths.size());
    const int longest = *std::max_element(o.lengths.begin(), o.lengths.end());
    return tr("%1 cells \u00d7 %2 trials = %3 prompts of up to %4 + %5 tokens.")
        .arg(cells)
        .arg(o.trials)
        .arg(cells * o.trials)
        .arg(longest)
        .arg(o.decode_budget);
  });
}

}  // namespace attnscope::app
