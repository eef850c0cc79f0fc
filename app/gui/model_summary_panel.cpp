// Model summary panel: see model_summary_panel.h.
#include "model_summary_panel.h"

#include <QFormLayout>
#include <QLabel>
#include <QLocale>
#include <algorithm>
#include <vector>

namespace attnscope::app {

QString formatByteSize(quint64 bytes) {
  return QLocale::c().formattedDataSize(static_cast<qint64>(bytes), 1, QLocale::DataSizeSIFormat);
}

QString formatTensorTypes(const std::map<std::string, int>& counts) {
  std::vector<std::pair<std::string, int>> sorted(counts.begin(), counts.end());
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  QStringList parts;
  for (const auto& [type, count] : sorted) {
    parts << QStringLiteral("%1 \u00d7%2").arg(QString::fromStdString(type)).arg(count);
  }
  return parts.join(QStringLiteral(", "));
}

ModelSummaryPanel::ModelSummaryPanel(QWidget* parent) : QWidget(parent) {
  m_form = new QFormLayout(this);
  m_form->setContentsMargins(0, 0, 0, 0);
  m_form->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
  m_form->setRowWrapPolicy(QFormLayout::DontWrapRows);
  m_status = new QLabel(tr("No model loaded"), this);
  m_status->setWordWrap(true);
  m_form->addRow(m_status);
  for (const char* label :
       {"Name", "Architecture", "Layers", "Heads", "KV heads", "Head dim", "Embedding", "Context",
        "Vocabulary", "Tensor types", "File size", "Path"}) {
    addField(tr(label));
  }
  setModel(nullptr);
}

QLabel* ModelSummaryPanel::addField(const QString& label) {
  auto* value = new QLabel(this);
  value->setTextInteractionFlags(Qt::TextSelectableByMouse);
  value->setWordWrap(true);
  // Long paths and type lists wrap anywhere rather than widening the panel.
  value->setMinimumWidth(80);
  value->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
  m_form->addRow(label + QLatin1Char(':'), value);
  m_fields.append({label, value});
  return value;
}

QString ModelSummaryPanel::fieldText(const QString& label) const {
  for (const auto& [name, value] : m_fields) {
    if (name == label) return QString(value->text()).remove(QChar(0x200b));
  }
  return {};
}

void ModelSummaryPanel::setLoading(const QString& path) {
  m_status->setText(tr("Loading %1 \u2026").arg(path));
  m_status->setVisible(true);
}

void ModelSummaryPanel::setModel(const LoadedModelPtr& model) {
  if (!model || !model->model) {
    m_status->setText(tr("No model loaded"));
    m_status->setVisible(true);
    for (const auto& field : m_fields) field.second->setText(QStringLiteral("\u2014"));
    return;
  }
  m_status->setVisible(false);
  const ModelConfig& c = model->model->config;
  const ModelSource& s = model->model->source;
  const QLocale locale;
  const auto set = [this](const QString& label, const QString& text) {
    for (const auto& field : m_fields) {
      if (field.first == label) field.second->setText(text);
    }
  };
  set(tr("Name"), c.name.empty() ? QStringLiteral("\u2014") : QString::fromStdString(c.name));
  QString arch = QString::fromStdString(c.architecture);
  if (!s.format.empty()) arch += QStringLiteral(" (%1)").arg(QString::fromStdString(s.format));
  set(tr("Architecture"), arch);
  set(tr("Layers"), QString::number(c.n_layer));
  set(tr("Heads"), QString::number(c.n_head));
  set(tr("KV heads"), c.n_head_kv == c.n_head
                          ? QString::number(c.n_head_kv)
                          : tr("%1 (group of %2)").arg(c.n_head_kv).arg(c.group_size()));
  set(tr("Head dim"), QString::number(c.head_dim));
  set(tr("Embedding"), tr("%1 (FFN %2)").arg(c.n_embd).arg(c.n_ff));
  set(tr("Context"), locale.toString(c.context_length));
  set(tr("Vocabulary"), locale.toString(c.vocab_size));
  QString types = formatTensorTypes(s.tensor_type_counts);
  if (!s.file_type.empty())
    types += QStringLiteral(" [%1]").arg(QString::fromStdString(s.file_type));
  set(tr("Tensor types"), types.isEmpty() ? QStringLiteral("\u2014") : types);
  set(tr("File size"), formatByteSize(s.file_size));
  // Zero-width spaces after separators let a long path wrap instead of being clipped.
  QString wrappablePath = model->path;
  wrappablePath.replace(QLatin1Char('/'), QStringLiteral("/\u200b"));
  set(tr("Path"), wrappablePath);
  for (const auto& field : m_fields) {
    if (field.first == tr("Path")) field.second->setToolTip(model->path);
  }
}

}  // namespace attnscope::app
