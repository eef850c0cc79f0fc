// Metrics view table models: see metrics_tables.h.
#include "metrics_tables.h"

#include <QBrush>
#include <QColor>
#include <QRegularExpression>
#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "model_summary_panel.h"

namespace attnscope::app {

namespace {

const QString kDash = QStringLiteral("\u2014");

bool isNumber(const QVariant& v) {
  return v.isValid() && (v.typeId() == QMetaType::Double || v.typeId() == QMetaType::Int ||
                         v.typeId() == QMetaType::LongLong);
}

QString fixed(double v, int decimals) {
  return std::isfinite(v) ? QString::number(v, 'f', decimals) : QStringLiteral("n/a");
}

// Perplexities span 1.5 to millions (a broken variant): three decimals while they are small,
// then five significant digits.
QString significant(double v) {
  if (!std::isfinite(v)) return QStringLiteral("n/a");
  return std::abs(v) < 1000 ? QString::number(v, 'f', 3) : QString::number(v, 'g', 4);
}

// Tokens/s with as many digits as are meaningful: 12345, 1234, 123.4, 12.34.
QString rate(double v) {
  if (!std::isfinite(v)) return QStringLiteral("n/a");
  if (v >= 1e4) return QString::number(v / 1e3, 'f', v >= 1e5 ? 0 : 1) + QLatin1Char('k');
  const int decimals = v >= 1000 ? 0 : v >= 100 ? 1 : 2;
  return QString::number(v, 'f', decimals);
}

// 50%, 97.6%.
QString percentText(double fraction) {
  const double p = fraction * 100.0;
  return QString::number(p, 'f', std::abs(p - std::round(p)) < 1e-9 ? 0 : 1) + QLatin1Char('%');
}

std::optional<double> mapValue(const std::map<std::string, double>& map, const char* key) {
  const auto it = map.find(key);
  if (it == map.end()) return std::nullopt;
  return it->second;
}

}  // namespace

QString headBadgeText(uint8_t badges) {
  QStringList parts;
  if (badges & kBadgeSink) parts << QStringLiteral("sink");
  if (badges & kBadgeLocal) parts << QStringLiteral("local");
  if (badges & kBadgeRetrieval) parts << QStringLiteral("retrieval");
  return parts.join(QStringLiteral(" \u00b7 "));
}

// ---------------------------------------------------------------------------------------------
// HeadMetricsModel

HeadMetricsModel::HeadMetricsModel(QObject* parent) : QAbstractTableModel(parent) {}

void HeadMetricsModel::setAnalysis(const TraceAnalysisPtr& analysis) {
  beginResetModel();
  m_analysis = analysis && analysis->hasMetrics() ? analysis : nullptr;
  endResetModel();
}

int HeadMetricsModel::rowOf(int layer, int head) const {
  if (!m_analysis || layer < 0 || head < 0 || layer >= m_analysis->nLayers ||
      head >= m_analysis->nHeads) {
    return -1;
  }
  const int row = layer * m_analysis->nHeads + head;
  return row < rowCount() ? row : -1;
}

const HeadMetrics* HeadMetricsModel::metricsAt(int row) const {
  if (!m_analysis || row < 0 || row >= rowCount()) return nullptr;
  return &m_analysis->headMetrics[static_cast<size_t>(row)];
}

QString HeadMetricsModel::columnKey(int column) {
  switch (column) {
    case Layer:
      return QStringLiteral("layer");
    case Head:
      return QStringLiteral("head");
    case Entropy:
      return QStringLiteral("entropy");
    case SinkMass:
      return QStringLiteral("sink_mass");
    case Locality:
      return QStringLiteral("locality");
    case Retrieval:
      return QStringLiteral("retrieval_score");
    case Badges:
      return QStringLiteral("badges");
    default:
      return QString();
  }
}

int HeadMetricsModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() || !m_analysis ? 0 : static_cast<int>(m_analysis->headMetrics.size());
}

int HeadMetricsModel::columnCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : ColumnCount;
}

QVariant HeadMetricsModel::data(const QModelIndex& index, int role) const {
  const HeadMetrics* m = metricsAt(index.row());
  if (!m) return {};
  const int column = index.column();
  const uint8_t badges = static_cast<size_t>(index.row()) < m_analysis->badges.size()
                             ? m_analysis->badges[static_cast<size_t>(index.row())]
                             : uint8_t{0};
  double number = 0;
  switch (column) {
    case Layer:
      number = m->layer;
      break;
    case Head:
      number = m->head;
      break;
    case Entropy:
      number = m->entropy;
      break;
    case SinkMass:
      number = m->sink_mass;
      break;
    case Locality:
      number = m->locality;
      break;
    case Retrieval:
      number = m->retrieval_score;
      break;
    default:
      break;
  }
  if (role == kMetricsValueRole) {
    if (column == Badges) return headBadgeText(badges);
    return number;
  }
  if (role == Qt::DisplayRole) {
    if (column == Badges) return headBadgeText(badges);
    if (column == Layer || column == Head) return QString::number(static_cast<int>(number));
    return fixed(number, 3);
  }
  if (role == Qt::TextAlignmentRole) {
    return column == Badges ? QVariant(Qt::AlignLeft | Qt::AlignVCenter)
                            : QVariant(Qt::AlignRight | Qt::AlignVCenter);
  }
  if (role == Qt::ToolTipRole) {
    const HeadMetricOptions& o = m_analysis->metricOptions;
    QString tip = tr("Layer %1, head %2\nentropy %3 nats\nsink mass %4 (first %5 keys)\n"
                     "locality %6 (keys within %7 of the query)\nretrieval score %8")
                      .arg(m->layer)
                      .arg(m->head)
                      .arg(m->entropy, 0, 'g', 6)
                      .arg(m->sink_mass, 0, 'g', 6)
                      .arg(o.sink_tokens)
                      .arg(m->locality, 0, 'g', 6)
                      .arg(o.locality_window)
                      .arg(m->retrieval_score, 0, 'g', 6);
    if (badges) tip += tr("\nbadges: %1").arg(headBadgeText(badges));
    return tip + tr("\nClick or press Enter to open its attention map");
  }
  return {};
}

QVariant HeadMetricsModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal) return {};
  const HeadMetricOptions o = m_analysis ? m_analysis->metricOptions : HeadMetricOptions{};
  if (role == Qt::DisplayRole) {
    switch (section) {
      case Layer:
        return tr("Layer");
      case Head:
        return tr("Head");
      case Entropy:
        return tr("Entropy");
      case SinkMass:
        return tr("Sink mass");
      case Locality:
        return tr("Locality");
      case Retrieval:
        return tr("Retrieval");
      case Badges:
        return tr("Badges");
      default:
        return {};
    }
  }
  if (role == Qt::ToolTipRole) {
    switch (section) {
      case Entropy:
        return tr("Mean entropy of the head's attention rows (nats): low = focused");
      case SinkMass:
        return tr("Mean attention mass on the first %1 keys (attention sinks)").arg(o.sink_tokens);
      case Locality:
        return tr("Mean attention mass within %1 tokens of the query").arg(o.locality_window);
      case Retrieval:
        return tr(
            "Induction score: mass on the token that followed earlier occurrences of the "
            "current token");
      case Badges:
        return tr(
            "Heads whose sink mass, locality or retrieval score passes the head-grid "
            "thresholds");
      default:
        return {};
    }
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Proxies

bool NumericSortProxy::lessThan(const QModelIndex& left, const QModelIndex& right) const {
  const QVariant a = left.data(kMetricsValueRole);
  const QVariant b = right.data(kMetricsValueRole);
  const bool aNum = isNumber(a) && std::isfinite(a.toDouble());
  const bool bNum = isNumber(b) && std::isfinite(b.toDouble());
  if (aNum && bNum) {
    if (a.toDouble() != b.toDouble()) return a.toDouble() < b.toDouble();
    return left.row() < right.row();  // stable: ties keep the (layer, head) / run order
  }
  if (aNum != bNum) return !aNum;  // absent values sort before every number
  const int c = QString::compare(a.toString(), b.toString(), Qt::CaseInsensitive);
  return c != 0 ? c < 0 : left.row() < right.row();
}

void HeadFilterProxy::setFilterExpression(const QString& expression) {
  m_expression = expression.trimmed();
  m_error.clear();
  m_terms.clear();
  static const QRegularExpression compare(
      QStringLiteral("^([a-z_]+)\\s*(<=|>=|!=|<|>|=)\\s*([-+]?[0-9]*\\.?[0-9]+(?:e[-+]?[0-9]+)?)$"),
      QRegularExpression::CaseInsensitiveOption);
  static const QRegularExpression layerHead(QStringLiteral("^l(\\d+)h(\\d+)$"),
                                            QRegularExpression::CaseInsensitiveOption);
  static const QRegularExpression layerOnly(QStringLiteral("^l(\\d+)$"),
                                            QRegularExpression::CaseInsensitiveOption);
  static const QRegularExpression headOnly(QStringLiteral("^h(\\d+)$"),
                                           QRegularExpression::CaseInsensitiveOption);
  // "entropy < 1.5" is written with spaces too: glue operators to their neighbours first.
  QString glued = m_expression;
  glued.replace(QRegularExpression(QStringLiteral("\\s*(<=|>=|!=|<|>|=)\\s*")),
                QStringLiteral("\\1"));
  const QStringList words =
      glued.split(QRegularExpression(QStringLiteral("\\s+")), Qt::SkipEmptyParts);
  for (const QString& word : words) {
    Term term;
    QRegularExpressionMatch m;
    if ((m = layerHead.match(word)).hasMatch()) {
      term.kind = Term::LayerHeadIs;
      term.layer = m.captured(1).toInt();
      term.head = m.captured(2).toInt();
    } else if ((m = layerOnly.match(word)).hasMatch()) {
      term.kind = Term::LayerIs;
      term.layer = m.captured(1).toInt();
    } else if ((m = headOnly.match(word)).hasMatch()) {
      term.kind = Term::HeadIs;
      term.head = m.captured(1).toInt();
    } else if ((m = compare.match(word)).hasMatch()) {
      const QString name = m.captured(1).toLower();
      int column = -1;
      for (int c = 0; c < HeadMetricsModel::Badges; ++c) {
        if (HeadMetricsModel::columnKey(c).startsWith(name)) {
          column = c;
          break;
        }
      }
      if (column < 0) {
        m_error = tr("unknown column '%1' (layer, head, entropy, sink_mass, locality, "
                     "retrieval_score)")
                      .arg(name);
      }
      term.kind = Term::Compare;
      term.column = column;
      term.op = m.captured(2);
      term.value = m.captured(3).toDouble();
    } else if (word.contains(QRegularExpression(QStringLiteral("[<>=!]")))) {
      m_error = tr("cannot read '%1': write e.g. entropy<1.5 or sink>=0.6").arg(word);
      term.kind = Term::Compare;
      term.column = -1;
    } else {
      term.kind = Term::Word;
      term.word = word.toLower();
    }
    m_terms.push_back(term);
  }
  invalidateFilter();
}

bool HeadFilterProxy::matches(const Term& term, int sourceRow) const {
  const auto* source = qobject_cast<const HeadMetricsModel*>(sourceModel());
  const HeadMetrics* m = source ? source->metricsAt(sourceRow) : nullptr;
  if (!m) return false;
  switch (term.kind) {
    case Term::LayerHeadIs:
      return m->layer == term.layer && m->head == term.head;
    case Term::LayerIs:
      return m->layer == term.layer;
    case Term::HeadIs:
      return m->head == term.head;
    case Term::Compare: {
      if (term.column < 0) return false;
      const double v = source->index(sourceRow, term.column).data(kMetricsValueRole).toDouble();
      if (!std::isfinite(v)) return false;
      if (term.op == QLatin1String("<")) return v < term.value;
      if (term.op == QLatin1String("<=")) return v <= term.value;
      if (term.op == QLatin1String(">")) return v > term.value;
      if (term.op == QLatin1String(">=")) return v >= term.value;
      if (term.op == QLatin1String("!=")) return v != term.value;
      return v == term.value;
    }
    case Term::Word: {
      const QString badges =
          source->index(sourceRow, HeadMetricsModel::Badges).data(kMetricsValueRole).toString();
      if (term.word == QLatin1String("none")) return badges.isEmpty();
      return badges.contains(term.word, Qt::CaseInsensitive);
    }
  }
  return false;
}

bool HeadFilterProxy::filterAcceptsRow(int sourceRow, const QModelIndex&) const {
  for (const Term& term : m_terms) {
    if (!matches(term, sourceRow)) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Needle helpers

int latestNeedleFor(const std::vector<NeedleResult>& needle, const VariantSpec& spec) {
  const std::string text = spec.to_string();
  for (int i = static_cast<int>(needle.size()) - 1; i >= 0; --i) {
    const std::string& v = needle[static_cast<size_t>(i)].variant;
    if (v == text) return i;
    try {
      if (VariantSpec::parse(v) == spec) return i;
    } catch (const std::exception&) {
      // A spec from an older registry: only the exact text can match.
    }
  }
  return -1;
}

QString needleVariantName(const std::string& variantText) {
  try {
    const VariantSpec spec = VariantSpec::parse(variantText);
    if (spec.is_baseline()) return QStringLiteral("baseline");
    return QString::fromStdString(spec.display_name());
  } catch (const std::exception&) {
    return QString::fromStdString(variantText);
  }
}

bool needleVariantNeedsTraining(const std::string& variantText) {
  try {
    return VariantSpec::parse(variantText).needs_training();
  } catch (const std::exception&) {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// QualityModel

QualityModel::QualityModel(QObject* parent) : QAbstractTableModel(parent) {}

void QualityModel::setSession(const SessionDataPtr& session) {
  beginResetModel();
  m_session = session && session->hasRun() ? session : nullptr;
  m_needleOf.clear();
  if (m_session) {
    for (const TracePtr& t : m_session->traces) {
      m_needleOf.push_back(latestNeedleFor(m_session->needle, t->variant));
    }
  }
  endResetModel();
}

QString QualityModel::columnKey(int column) {
  switch (column) {
    case Name:
      return QStringLiteral("name");
    case Label:
      return QStringLiteral("label");
    case KlMean:
      return QStringLiteral("kl_mean");
    case KlMax:
      return QStringLiteral("kl_max");
    case Top1:
      return QStringLiteral("top1_agreement");
    case Perplexity:
      return QStringLiteral("perplexity");
    case DeltaPerplexity:
      return QStringLiteral("delta_perplexity");
    case LayerError:
      return QStringLiteral("layer_rel_error_mean");
    case KvBytes:
      return QStringLiteral("kv_cache_bytes");
    case PrefillTps:
      return QStringLiteral("prefill_tokens_per_second");
    case DecodeTps:
      return QStringLiteral("decode_tokens_per_second");
    case Needle:
      return QStringLiteral("needle_accuracy");
    default:
      return QString();
  }
}

QString QualityModel::labelOf(int row) const {
  if (!m_session || row < 0 || row >= rowCount()) return QString();
  const Trace& t = *m_session->traces[static_cast<size_t>(row)];
  if (t.variant.needs_training()) return tr("simulation (needs training)");
  if (row == 0 && t.variant.is_baseline()) return tr("baseline");
  return tr("training-free");
}

int QualityModel::needleIndexOf(int row) const {
  return row >= 0 && row < static_cast<int>(m_needleOf.size())
             ? m_needleOf[static_cast<size_t>(row)]
             : -1;
}

std::optional<double> QualityModel::value(int row, int column) const {
  if (!m_session || row < 0 || row >= rowCount()) return std::nullopt;
  const Trace& t = *m_session->traces[static_cast<size_t>(row)];
  switch (column) {
    case KlMean:
      return mapValue(t.metrics, "kl_mean");
    case KlMax:
      return mapValue(t.metrics, "kl_max");
    case Top1:
      return mapValue(t.metrics, "top1_agreement");
    case Perplexity:
      return mapValue(t.metrics, "perplexity");
    case DeltaPerplexity:
      return mapValue(t.metrics, "delta_perplexity");
    case LayerError:
      if (t.layer_rel_error.empty()) return std::nullopt;
      return std::accumulate(t.layer_rel_error.begin(), t.layer_rel_error.end(), 0.0) /
             static_cast<double>(t.layer_rel_error.size());
    case KvBytes:
      return mapValue(t.timings, "kv_cache_bytes");
    case PrefillTps:
      return mapValue(t.timings, "prefill_tokens_per_second");
    case DecodeTps: {
      // A run without decode steps has no decode speed (core writes 0 then).
      if (t.n_tokens() <= t.n_prompt) return std::nullopt;
      return mapValue(t.timings, "decode_tokens_per_second");
    }
    case Needle: {
      const int n = needleIndexOf(row);
      if (n < 0) return std::nullopt;
      return m_session->needle[static_cast<size_t>(n)].accuracy();
    }
    default:
      return std::nullopt;
  }
}

int QualityModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() || !m_session ? 0 : m_session->traceCount();
}

int QualityModel::columnCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : ColumnCount;
}

QVariant QualityModel::data(const QModelIndex& index, int role) const {
  if (!m_session || !index.isValid() || index.row() >= rowCount()) return {};
  const int row = index.row();
  const int column = index.column();
  const Trace& t = *m_session->traces[static_cast<size_t>(row)];
  if (column == Name || column == Label) {
    const QString text = column == Name ? m_session->traceName(row) : labelOf(row);
    if (role == Qt::DisplayRole || role == kMetricsValueRole) return text;
    if (role == Qt::ToolTipRole) {
      QString tip = QString::fromStdString(t.variant.to_string());
      if (t.variant.needs_training()) {
        tip +=
            tr("\nA structural simulation of a variant that needs training: its quality "
               "numbers do not describe the trained method.");
      }
      return tip;
    }
    if (role == Qt::ForegroundRole && column == Label && t.variant.needs_training()) {
      return QBrush(QColor(0xe1, 0x57, 0x59));  // the series red: stands out on light and dark
    }
    return {};
  }
  const std::optional<double> v = value(row, column);
  if (role == kMetricsValueRole) return v ? QVariant(*v) : QVariant();
  if (role == Qt::TextAlignmentRole) return QVariant(Qt::AlignRight | Qt::AlignVCenter);
  if (role == Qt::DisplayRole) {
    if (!v) return kDash;
    switch (column) {
      case KlMean:
      case KlMax:
        return QString::number(*v, 'g', 4);
      case Top1:
      case Needle:
        return percentText(*v);
      case Perplexity:
        return significant(*v);
      case DeltaPerplexity:
        return (*v > 0 ? QStringLiteral("+") : QString()) + significant(*v);
      case LayerError:
        return QString::number(*v, 'g', 3);
      case KvBytes:
        return formatByteSize(static_cast<quint64>(std::max(0.0, *v)));
      case PrefillTps:
      case DecodeTps:
        return rate(*v);
      default:
        return {};
    }
  }
  if (role == Qt::ToolTipRole) {
    if (!v) {
      if (row == 0 && column != Needle) return tr("The baseline is the reference");
      if (column == Needle)
        return tr("No needle test of this variant yet (Run > Needle test\u2026)");
      return {};
    }
    if (column == Needle) {
      const NeedleResult& n = m_session->needle[static_cast<size_t>(needleIndexOf(row))];
      int successes = 0;
      for (const NeedleTrial& trial : n.trials) successes += trial.success ? 1 : 0;
      return tr("%1 of %2 needle trials retrieved the pass key")
          .arg(successes)
          .arg(n.trials.size());
    }
    if (column == KvBytes) return tr("%1 bytes").arg(*v, 0, 'f', 0);
    return QString::number(*v, 'g', 9);
  }
  return {};
}

QVariant QualityModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal) return {};
  if (role == Qt::DisplayRole) {
    switch (section) {
      // Two-line headers keep the numeric columns as narrow as their numbers.
      case Name:
        return tr("Run");
      case Label:
        return tr("Label");
      case KlMean:
        return tr("KL\nmean");
      case KlMax:
        return tr("KL\nmax");
      case Top1:
        return tr("Top-1\nagree");
      case Perplexity:
        return tr("Perplexity");
      case DeltaPerplexity:
        return tr("\u0394 ppl");
      case LayerError:
        return tr("Layer\nerror");
      case KvBytes:
        return tr("KV\ncache");
      case PrefillTps:
        return tr("Prefill\ntok/s");
      case DecodeTps:
        return tr("Decode\ntok/s");
      case Needle:
        return tr("Needle\nacc.");
      default:
        return {};
    }
  }
  if (role == Qt::ToolTipRole) {
    switch (section) {
      case KlMean:
        return tr("Mean over positions of KL(baseline \u2016 variant), nats");
      case KlMax:
        return tr("Largest per-position KL(baseline \u2016 variant), nats");
      case Top1:
        return tr("Positions whose most likely next token equals the baseline's");
      case Perplexity:
        return tr("Perplexity of the run's own tokens under the run");
      case DeltaPerplexity:
        return tr("Perplexity minus the baseline's");
      case LayerError:
        return tr(
            "Mean over layers of \u2016o \u2212 o_full\u2016 / \u2016o_full\u2016 "
            "(attention output)");
      case KvBytes:
        return tr("KV-cache bytes kept after the last step");
      case PrefillTps:
        return tr("Prompt tokens per second of this run (device in the Throughput view)");
      case DecodeTps:
        return tr("Decoded tokens per second of this run");
      case Needle:
        return tr("Pass-key accuracy of the latest needle test of this variant");
      default:
        return {};
    }
  }
  return {};
}

}  // namespace attnscope::app
