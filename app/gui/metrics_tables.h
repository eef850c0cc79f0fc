// Table models behind the Metrics view: the head metrics of one trace (with a filter that
// understands "sink", "L3", "entropy<1.5"), the quality of every run against the baseline, and
// a proxy that sorts by raw numbers. They only adapt core results (TraceAnalysis, Trace::metrics,
// Trace::timings, NeedleResult) to Qt's item models; nothing is computed here but formatting.
#pragma once

#include <QAbstractTableModel>
#include <QSortFilterProxyModel>
#include <QString>
#include <QStringList>
#include <optional>
#include <vector>

#include "app_types.h"

namespace attnscope::app {

// Role holding the raw value of a cell (double for numbers, QString for texts; invalid when
// the value is absent): sorting, the filter and tests read it instead of the formatted text.
inline constexpr int kMetricsValueRole = Qt::UserRole + 1;

// "sink · local · retrieval" for a HeadBadge bit set (empty for none).
QString headBadgeText(uint8_t badges);

// One row per (layer, head) of a TraceAnalysis, in (layer, head) order.
class HeadMetricsModel : public QAbstractTableModel {
  Q_OBJECT
 public:
  enum Column { Layer, Head, Entropy, SinkMass, Locality, Retrieval, Badges, ColumnCount };
  explicit HeadMetricsModel(QObject* parent = nullptr);

  // Null or an analysis without metrics empties the table.
  void setAnalysis(const TraceAnalysisPtr& analysis);
  const TraceAnalysisPtr& analysis() const { return m_analysis; }
  // Row of (layer, head), or -1.
  int rowOf(int layer, int head) const;
  const HeadMetrics* metricsAt(int row) const;
  // The snake_case key of a column ("layer", "sink_mass", ...), as the filter and exports name it.
  static QString columnKey(int column);

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role) const override;

 private:
  TraceAnalysisPtr m_analysis;
};

// Sorts by kMetricsValueRole (numbers numerically, absent values first in ascending order).
class NumericSortProxy : public QSortFilterProxyModel {
  Q_OBJECT
 public:
  using QSortFilterProxyModel::QSortFilterProxyModel;

 protected:
  bool lessThan(const QModelIndex& left, const QModelIndex& right) const override;
};

// The head table's filter. Whitespace-separated terms, all of which must match a row:
//   sink | local | retrieval | none   heads carrying that badge (none = no badge)
//   L3, H2, L3H2                      that layer / head / both
//   <column><op><number>              e.g. entropy<1.5, sink>=0.6, layer=3 (ops < <= > >= = !=;
//                                     a column is named by any prefix of its key: "ret>0.2")
// Any other word matches the badge text. An expression that cannot be read matches nothing and
// is reported by filterError().
class HeadFilterProxy : public NumericSortProxy {
  Q_OBJECT
 public:
  using NumericSortProxy::NumericSortProxy;
  void setFilterExpression(const QString& expression);
  QString filterExpression() const { return m_expression; }
  QString filterError() const { return m_error; }

 protected:
  bool filterAcceptsRow(int sourceRow, const QModelIndex& sourceParent) const override;

 private:
  struct Term {
    enum Kind { Word, LayerIs, HeadIs, LayerHeadIs, Compare } kind = Word;
    QString word;
    int layer = -1, head = -1;
    int column = -1;
    QString op;
    double value = 0;
  };
  bool matches(const Term& term, int sourceRow) const;
  QString m_expression;
  QString m_error;
  std::vector<Term> m_terms;
};

// One row per trace of the session: quality against the baseline, speed, KV-cache size and the
// needle accuracy of the latest needle result for the same variant spec.
class QualityModel : public QAbstractTableModel {
  Q_OBJECT
 public:
  enum Column {
    Name,
    Label,
    KlMean,
    KlMax,
    Top1,
    Perplexity,
    DeltaPerplexity,
    LayerError,
    KvBytes,
    PrefillTps,
    DecodeTps,
    Needle,
    ColumnCount
  };
  explicit QualityModel(QObject* parent = nullptr);

  void setSession(const SessionDataPtr& session);
  const SessionDataPtr& session() const { return m_session; }
  // "training-free", "simulation (needs training)" or "baseline" for the row's variant.
  QString labelOf(int row) const;
  // The raw value of a numeric cell, nullopt when the trace lacks it.
  std::optional<double> value(int row, int column) const;
  // Index into session()->needle of the needle result shown for the row, or -1.
  int needleIndexOf(int row) const;
  static QString columnKey(int column);

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role) const override;

 private:
  SessionDataPtr m_session;
  std::vector<int> m_needleOf;  // [traces] index into session->needle or -1
};

// Index of the latest needle result whose spec equals `spec` (compared as parsed specs, so the
// text form may differ), or -1.
int latestNeedleFor(const std::vector<NeedleResult>& needle, const VariantSpec& spec);
// "kdgqa" / "baseline" for a NeedleResult::variant text (the raw text when it does not parse).
QString needleVariantName(const std::string& variantText);
// Whether a NeedleResult::variant text names a simulated (needs training) variant.
bool needleVariantNeedsTraining(const std::string& variantText);

}  // namespace attnscope::app
