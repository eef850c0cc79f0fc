// The Compare view's metric table: quality, cache and speed figures of runs A and B as their traces
// store them (several are measured against the full-attention baseline), the selected layer's
// output error and the selected head's metrics, each with B - A. Rows are built from core results
// only (trace metrics/timings, trace_summary, head metrics of the analyses).
#pragma once

#include <QString>
#include <QTableWidget>
#include <string>
#include <vector>

#include "attnscope/metrics.h"
#include "attnscope/trace.h"
#include "attnscope/trace_export.h"

namespace attnscope::app {

struct CompareMetricRow {
  enum Kind { Number, Fraction, Bytes, Rate };
  std::string key;  // export name, e.g. "kl_mean", "head_L3H2_entropy"
  QString label;    // table text
  QString tip;      // what the figure means
  Kind kind = Number;
  double a = 0, b = 0;  // NaN = not in that trace (e.g. the baseline's KL against itself)
};

// The rows for runs a and b at (layer, head); headA / headB are the head's metrics from the
// analyses, null while they are being computed.
std::vector<CompareMetricRow> compareMetricRows(const Trace& a, const Trace& b, int layer, int head,
                                                const HeadMetrics* headA, const HeadMetrics* headB);
// As exported (write_table): metric, label, a, b, b_minus_a (NaN where a side is missing).
DataTable compareMetricTable(const std::vector<CompareMetricRow>& rows);

class CompareMetricsTable : public QTableWidget {
  Q_OBJECT
 public:
  explicit CompareMetricsTable(QWidget* parent = nullptr);
  // headMetricsPending: the analyses are still running (missing head metrics say so).
  void setRows(const std::vector<CompareMetricRow>& rows, bool headMetricsPending);
  const std::vector<CompareMetricRow>& rows() const { return m_rows; }

 private:
  std::vector<CompareMetricRow> m_rows;
};

}  // namespace attnscope::app
