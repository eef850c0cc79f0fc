// Throughput: prefill and decode tokens/s, attention time and KV-cache bytes of every run of the
// session as bars (one small chart each, device named), and tokens/s over prompt length from the
// session's throughput sweeps as lines: variants by colour, devices (CPU, CUDA, ...) by line
// style and marker, side by side. Numbers come from Trace::timings and ThroughputResult only.
#pragma once

#include <QPointF>
#include <string>
#include <vector>

#include "app_types.h"
#include "figure_view.h"

class QCheckBox;
class QComboBox;
class QCPAxisRect;
class QCPBars;
class QCPGraph;
class QCPLayoutElement;
class QCPLayoutGrid;
class QCPLegend;
class QCustomPlot;
class QFont;
class QMouseEvent;

namespace attnscope::app {

class ThroughputView : public FigureView {
  Q_OBJECT
 public:
  // The four bar charts, left to right.
  enum BarMetric { PrefillRate, DecodeRate, AttentionTime, KvBytes, BarMetricCount };

  explicit ThroughputView(const AppContext& context, QWidget* parent = nullptr);
  ~ThroughputView() override;

  QString viewTitle() const override { return tr("Throughput"); }
  QString figureName() const override;
  bool hasFigure() const override;
  QString exportFigure(const QString& path, const PlotExportOptions& options) override;
  // csv / json: one row per run bar and per sweep point shown (source = "run" / "sweep").
  QStringList dataFormats() const override;
  QString exportData(const QString& path) override;

  // For tests and scripted figures.
  QCustomPlot* plot() const { return m_plot; }
  QComboBox* sweepCombo() const { return m_sweepCombo; }
  QCheckBox* logYBox() const { return m_logY; }
  // The bar chart of `metric` (BarMetric), or null when the session has no runs.
  QCPAxisRect* barRect(int metric) const {
    return metric >= 0 && metric < static_cast<int>(m_barRects.size())
               ? m_barRects[static_cast<size_t>(metric)]
               : nullptr;
  }
  // The sweeps drawn (indices into session->throughput): all, or the one chosen.
  std::vector<int> shownSweeps() const;
  // The value drawn for trace `trace` in bar chart `metric` in the timing's own unit
  // (tokens/s, seconds, bytes); NaN when no bar is drawn.
  double barValue(int metric, int trace) const;
  // The line of (sweep, spec) in the prefill (decode = false) or decode plot, or null.
  QCPGraph* sweepGraph(int sweep, const std::string& spec, bool decode) const;
  // Text of the empty-state / section messages currently drawn (tests read them).
  QStringList messages() const { return m_messages; }

 protected:
  void themeChanged() override;

 private:
  struct BarInfo {
    int metric = 0;
    int trace = 0;
    double value = 0;  // in the timing's unit
    QCPBars* bars = nullptr;
  };
  struct LineInfo {
    int sweep = 0;
    std::string spec;
    bool decode = false;
    QCPGraph* graph = nullptr;
  };

  void onSessionChanged();
  void rebuildSweepCombo();
  void rebuild();
  void buildBars(QCPLayoutGrid* grid);
  // Minimum margins of the first and last bar chart so every (turned) run name fits the figure.
  void reserveBarLabelRoom(const QFont& font);
  void buildSweeps(QCPLayoutGrid* grid, QCPLegend* legend);
  QCPLayoutElement* messageElement(const QString& text);
  QColor variantColor(const std::string& spec) const;
  void onMouseMove(QMouseEvent* event);
  void onMouseRelease(QMouseEvent* event);
  QString barTooltip(int trace) const;
  int barAt(const QPointF& pos, int* metric) const;

  SessionDataPtr m_session;
  int m_sweepCount = 0;
  bool m_logChosen = false;  // the user toggled the log axis: no automatic choice any more
  QComboBox* m_sweepCombo = nullptr;
  QCheckBox* m_logY = nullptr;
  QCustomPlot* m_plot = nullptr;
  std::vector<QCPAxisRect*> m_barRects;    // [BarMetricCount] when the session has runs
  std::vector<QCPAxisRect*> m_sweepRects;  // [prefill, decode] when sweeps are shown
  std::vector<BarInfo> m_bars;
  std::vector<LineInfo> m_lines;
  std::vector<std::string> m_specOrder;  // colour order of variants not in the session's runs
  QStringList m_messages;
  QPointF m_pressPos;
};

}  // namespace attnscope::app
