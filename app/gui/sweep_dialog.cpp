// Throughput sweep dialog: see sweep_dialog.h.
#include "sweep_dialog.h"

#include <QComboBox>
#include <QFormLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QSpinBox>
#include <QStandardItemModel>
#include <QVBoxLayout>
#include <algorithm>
#include <string>

#include "attnscope/gpu/cuda_backend.h"
#include "needle_dialog.h"

namespace attnscope::app {

namespace {

const std::vector<int> kDefaultLengths = {128, 512, 2048};
constexpr int kDefaultDecode = 16;
constexpr int kMaxDecode = 4096;
constexpr int kMaxRepeat = 100;

}  // namespace

SweepDialog::SweepDialog(const std::vector<VariantSpec>& variants, int contextLength,
                         QWidget* parent)
    : QDialog(parent), m_variants(variants), m_context(contextLength) {
  setWindowTitle(tr("Throughput sweep"));
  auto* layout = new QVBoxLayout(this);
  QFormLayout* form = addRunDialogForm(
      this, layout,
      tr("Measures prefill and decode tokens/s of the baseline and the checked variants at each "
         "prompt length, after one warm-up run. Results join the Throughput view; sweeps on "
         "other backends appear beside them."));

  m_decode = new QSpinBox(this);
  m_decode->setObjectName(QStringLiteral("sweepDecode"));
  m_decode->setRange(0, kMaxDecode);
  m_decode->setValue(kDefaultDecode);
  m_decode->setSuffix(tr(" steps"));
  m_decode->setToolTip(tr("Greedy single-token steps after each prompt (0 = prefill only)"));

  m_lengths =
      new QLineEdit(joinNumbers(clampLengths(kDefaultLengths, m_context, kDefaultDecode)), this);
  m_lengths->setObjectName(QStringLiteral("sweepLengths"));
  m_lengths->setToolTip(
      m_context > 0
          ? tr("Prompt lengths in tokens, comma separated; each + the decode steps must fit the "
               "model's context of %1 tokens")
                .arg(m_context)
          : tr("Prompt lengths in tokens, comma separated"));
  form->addRow(tr("&Lengths:"), m_lengths);
  form->addRow(tr("&Decode:"), m_decode);

  m_repeat = new QSpinBox(this);
  m_repeat->setObjectName(QStringLiteral("sweepRepeat"));
  m_repeat->setRange(1, kMaxRepeat);
  m_repeat->setValue(1);
  m_repeat->setToolTip(tr("Runs per point; the fastest prefill is kept"));
  form->addRow(tr("&Repeat:"), m_repeat);

  m_backend = new QComboBox(this);
  m_backend->setObjectName(QStringLiteral("sweepBackend"));
  m_backend->addItem(tr("CPU"), QStringLiteral("cpu"));
  m_backend->addItem(tr("CUDA"), QStringLiteral("cuda"));
  std::string why;
  const bool cuda = gpu::cuda_available(&why);
  if (auto* model = qobject_cast<QStandardItemModel*>(m_backend->model())) {
    QStandardItem* item = model->item(1);
    item->setEnabled(cuda);
    item->setToolTip(
        cuda ? tr("Run the sweep on the GPU")
             : tr("CUDA is not available: %1")
                   .arg(QString::fromStdString(why.empty() ? "no usable device" : why)));
  }
  m_backend->setToolTip(
      cuda ? tr("Backend the sweep runs on")
           : tr("Backend the sweep runs on (CUDA unavailable: %1)")
                 .arg(QString::fromStdString(why.empty() ? "no usable device" : why)));
  form->addRow(tr("&Backend:"), m_backend);

  m_variantList = new QListWidget(this);
  m_variantList->setObjectName(QStringLiteral("sweepVariants"));
  auto* base = new QListWidgetItem(tr("baseline (full attention, always measured)"), m_variantList);
  base->setFlags(Qt::ItemIsEnabled);  // shown checked, not user-checkable
  base->setCheckState(Qt::Checked);
  for (const VariantSpec& spec : m_variants) {
    QString text = QString::fromStdString(spec.display_name());
    if (spec.needs_training()) text += tr(" \u2014 simulation (needs training)");
    auto* item = new QListWidgetItem(text, m_variantList);
    item->setFlags(Qt::ItemIsEnabled | Qt::ItemIsUserCheckable);
    item->setCheckState(Qt::Checked);
    item->setToolTip(QString::fromStdString(spec.to_string()));
  }
  const int rows = std::min(8, m_variantList->count());
  m_variantList->setMinimumHeight(rows * m_variantList->sizeHintForRow(0) +
                                  2 * m_variantList->frameWidth() + 4);
  form->addRow(tr("&Variants:"), m_variantList);

  m_footer = RunDialogFooter::add(this, layout, QStringLiteral("sweepError"), tr("Run sweep"),
                                  [this] { return errorText(); });

  connect(m_lengths, &QLineEdit::textChanged, this, &SweepDialog::validate);
  connect(m_decode, qOverload<int>(&QSpinBox::valueChanged), this, &SweepDialog::validate);
  connect(m_repeat, qOverload<int>(&QSpinBox::valueChanged), this, &SweepDialog::validate);
  connect(m_backend, qOverload<int>(&QComboBox::currentIndexChanged), this, &SweepDialog::validate);
  connect(m_variantList, &QListWidget::itemChanged, this, &SweepDialog::validate);
  validate();
  resize(std::max(sizeHint().width(), 480), sizeHint().height());
}

SweepDialog::~SweepDialog() = default;

std::vector<VariantSpec> SweepDialog::variants() const {
  std::vector<VariantSpec> out;
  for (int i = 0; i < static_cast<int>(m_variants.size()); ++i) {
    const QListWidgetItem* item = m_variantList->item(i + 1);
    if (item && item->checkState() == Qt::Checked)
      out.push_back(m_variants[static_cast<size_t>(i)]);
  }
  return out;
}

ThroughputOptions SweepDialog::options() const {
  ThroughputOptions o;
  QString ignored;
  parseLengthList(m_lengths->text(), tr("lengths"), &o.lengths, &ignored);
  o.decode_steps = m_decode->value();
  o.repeat = m_repeat->value();
  return o;
}

QString SweepDialog::backendKind() const {
  return m_backend->currentData().toString();
}

QString SweepDialog::errorText() const {
  std::vector<int> lengths;
  QString error;
  if (!parseLengthList(m_lengths->text(), tr("lengths"), &lengths, &error)) return error;
  const int decode = m_decode->value();
  if (m_context > 0) {
    for (int length : lengths) {
      if (static_cast<qint64>(length) + decode > m_context) {
        return tr("lengths: %1 + %2 decode steps exceeds the model's context of %3 tokens (at "
                  "most %4)")
            .arg(length)
            .arg(decode)
            .arg(m_context)
            .arg(m_context - decode);
      }
    }
  }
  if (decode < 0) return tr("decode: 0 or more steps");
  if (m_repeat->value() < 1) return tr("repeat: at least 1");
  if (backendKind() == QLatin1String("cuda") && !gpu::cuda_available()) {
    return tr("backend: CUDA is not available on this machine");
  }
  return QString();
}

void SweepDialog::validate() {
  m_footer.show(errorText(), [this] {
    const ThroughputOptions o = options();
    const int runs = static_cast<int>(o.lengths.size() * (1 + variants().size())) * o.repeat;
    return tr("%1 lengths \u00d7 (baseline + %2 variants) \u00d7 %3 repeats = %4 measured runs "
              "on %5, plus a warm-up.")
        .arg(o.lengths.size())
        .arg(variants().size())
        .arg(o.repeat)
        .arg(runs)
        .arg(m_backend->currentText());
  });
}

}  // namespace attnscope::app
