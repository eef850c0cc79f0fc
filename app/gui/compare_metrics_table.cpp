// Compare metric table: see compare_metrics_table.h.
#include "compare_metrics_table.h"

#include <QHeaderView>
#include <QScrollBar>
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "model_summary_panel.h"

namespace attnscope::app {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr int kMinTableWidth = 300;

double valueOr(const std::map<std::string, double>& values, const std::string& key) {
  const auto it = values.find(key);
  return it == values.end() ? kNaN : it->second;
}

QString formatValue(double value, CompareMetricRow::Kind kind) {
  if (!std::isfinite(value)) return QStringLiteral("\u2014");
  switch (kind) {
    case CompareMetricRow::Fraction:
      return QString::number(value * 100.0, 'f', 1) + QStringLiteral(" %");
    case CompareMetricRow::Bytes:
      return value < 0 ? QStringLiteral("\u2212") + formatByteSize(static_cast<quint64>(-value))
                       : formatByteSize(static_cast<quint64>(value));
    case CompareMetricRow::Rate:
      return QString::number(value, 'f', 1);
    case CompareMetricRow::Number:
      break;
  }
  return QString::number(value, 'g', 4);
}

QString formatDelta(double value, CompareMetricRow::Kind kind) {
  if (!std::isfinite(value)) return QStringLiteral("\u2014");
  const QString sign = value > 0 ? QStringLiteral("+") : QString();
  if (kind == CompareMetricRow::Fraction) {
    return sign + QString::number(value * 100.0, 'f', 1) + QStringLiteral(" pp");  // points
  }
  return sign + formatValue(value, kind);
}

double difference(const CompareMetricRow& row) {
  return std::isfinite(row.a) && std::isfinite(row.b) ? row.b - row.a : kNaN;
}

}  // namespace

std::vector<CompareMetricRow> compareMetricRows(const Trace& a, const Trace& b, int layer, int head,
                                                const HeadMetrics* headA,
                                                const HeadMetrics* headB) {
  std::vector<CompareMetricRow> rows;
  const auto summaryA = trace_summary(a);
  const auto summaryB = trace_summary(b);
  const auto add = [&](const std::string& key, const QString& label, const std::string& summaryKey,
                       CompareMetricRow::Kind kind, const QString& tip) {
    rows.push_back(
        {key, label, tip, kind, valueOr(summaryA, summaryKey), valueOr(summaryB, summaryKey)});
  };
  const QString vsBaseline =
      QObject::tr("against the full-attention baseline, as the trace stores it");
  add("kl_mean", QObject::tr("KL to baseline (nats)"), "metrics.kl_mean", CompareMetricRow::Number,
      QObject::tr("Mean over positions of KL(p_baseline || p_run), %1").arg(vsBaseline));
  add("top1_agreement", QObject::tr("Top-1 agreement"), "metrics.top1_agreement",
      CompareMetricRow::Fraction,
      QObject::tr("Share of positions whose most likely next token matches the baseline's"));
  add("perplexity", QObject::tr("Perplexity"), "metrics.perplexity", CompareMetricRow::Number,
      QObject::tr("Perplexity of the prompt under the run"));
  add("delta_perplexity", QObject::tr("\u0394 perplexity"), "metrics.delta_perplexity",
      CompareMetricRow::Number, QObject::tr("Perplexity minus the baseline's, %1").arg(vsBaseline));
  const auto layerError = [layer](const Trace& t) {
    return layer >= 0 && layer < static_cast<int>(t.layer_rel_error.size())
               ? double(t.layer_rel_error[static_cast<size_t>(layer)])
               : kNaN;
  };
  rows.push_back(
      {"layer_rel_error_L" + std::to_string(layer), QObject::tr("L%1 output rel. error").arg(layer),
       QObject::tr("||o \u2212 o_baseline|| / ||o_baseline|| of the layer's attention output"),
       CompareMetricRow::Number, layerError(a), layerError(b)});
  add("lost_mass_mean", QObject::tr("Lost attention mass"), "lost_mass_mean",
      CompareMetricRow::Number,
      QObject::tr("Full-cache attention probability on evicted entries, mean over decode steps, "
                  "layers and KV heads"));
  add("kv_cache_bytes", QObject::tr("KV cache"), "timings.kv_cache_bytes", CompareMetricRow::Bytes,
      QObject::tr("Bytes the KV cache holds at the end of the run"));
  add("prefill_tokens_per_second", QObject::tr("Prefill tokens/s"),
      "timings.prefill_tokens_per_second", CompareMetricRow::Rate,
      QObject::tr("Prompt tokens per second"));
  add("decode_tokens_per_second", QObject::tr("Decode tokens/s"),
      "timings.decode_tokens_per_second", CompareMetricRow::Rate,
      QObject::tr("Decoded tokens per second"));

  const QString prefix = QStringLiteral("L%1H%2").arg(layer).arg(head);
  const auto addHead = [&](const std::string& key, const QString& label, double HeadMetrics::*field,
                           const QString& tip) {
    rows.push_back({"head_" + prefix.toStdString() + "_" + key,
                    QStringLiteral("%1 %2").arg(prefix, label), tip, CompareMetricRow::Number,
                    headA ? headA->*field : kNaN, headB ? headB->*field : kNaN});
  };
  addHead("entropy", QObject::tr("entropy"), &HeadMetrics::entropy,
          QObject::tr("Mean row entropy of the head's attention (nats)"));
  addHead("sink_mass", QObject::tr("sink mass"), &HeadMetrics::sink_mass,
          QObject::tr("Mean attention on the first sink tokens"));
  addHead("locality", QObject::tr("locality"), &HeadMetrics::locality,
          QObject::tr("Mean attention within the locality window of the query"));
  addHead("retrieval_score", QObject::tr("retrieval score"), &HeadMetrics::retrieval_score,
          QObject::tr("Induction score: attention on the tokens that followed earlier "
                      "occurrences"));
  return rows;
}

DataTable compareMetricTable(const std::vector<CompareMetricRow>& rows) {
  DataColumn metric{"metric", true, {}, {}};
  DataColumn label{"label", true, {}, {}};
  DataColumn a{"a", false, {}, {}}, b{"b", false, {}, {}}, delta{"b_minus_a", false, {}, {}};
  for (const CompareMetricRow& row : rows) {
    metric.texts.push_back(row.key);
    label.texts.push_back(row.label.toStdString());
    a.numbers.push_back(row.a);
    b.numbers.push_back(row.b);
    delta.numbers.push_back(difference(row));
  }
  DataTable table;
  table.columns = {metric, label, a, b, delta};
  return table;
}

CompareMetricsTable::CompareMetricsTable(QWidget* parent) : QTableWidget(0, 4, parent) {
  setHorizontalHeaderLabels({tr("Metric"), tr("A"), tr("B"), tr("B \u2212 A")});
  verticalHeader()->setVisible(false);
  setEditTriggers(QAbstractItemView::NoEditTriggers);
  setSelectionMode(QAbstractItemView::NoSelection);
  setWordWrap(false);
  horizontalHeader()->setStretchLastSection(false);
  QFont small = font();
  small.setPointSizeF(small.pointSizeF() * 0.92);
  setFont(small);
  verticalHeader()->setDefaultSectionSize(QFontMetrics(small).height() + 6);
  setMinimumWidth(kMinTableWidth);
}

void CompareMetricsTable::setRows(const std::vector<CompareMetricRow>& rows,
                                  bool headMetricsPending) {
  m_rows = rows;
  setRowCount(static_cast<int>(rows.size()));
  for (int r = 0; r < rowCount(); ++r) {
    const CompareMetricRow& row = rows[static_cast<size_t>(r)];
    const double values[3] = {row.a, row.b, difference(row)};
    const QString cells[4] = {row.label, formatValue(row.a, row.kind), formatValue(row.b, row.kind),
                              formatDelta(values[2], row.kind)};
    for (int c = 0; c < 4; ++c) {
      auto* item = new QTableWidgetItem(cells[c]);
      if (c > 0) item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
      if (c > 0 && !std::isfinite(values[c - 1])) {
        const bool head = row.key.rfind("head_", 0) == 0;
        item->setToolTip(head && headMetricsPending
                             ? tr("head metrics are being computed\u2026")
                             : tr("not in this trace (the baseline has no figures against "
                                  "itself; timings need a run)"));
      } else {
        item->setToolTip(row.tip);
      }
      setItem(r, c, item);
    }
  }
  // Wide enough for every column: the splitter gives the plot the rest.
  resizeColumnsToContents();
  int width = 2 * frameWidth() + 2;
  for (int c = 0; c < columnCount(); ++c) width += columnWidth(c);
  if (verticalScrollBar()->isVisible()) width += verticalScrollBar()->width();
  setMinimumWidth(std::max(kMinTableWidth, width));
}

}  // namespace attnscope::app
