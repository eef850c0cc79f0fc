// Compare: the same head of two traces side by side and their difference (diverging colours), with
// synchronized zoom and selection and the metric deltas beside them. A and B are requested through
// MapService with identical MapRequests (same ranges and resolution), so core's difference_map sees
// the same bins; zooming re-requests the visible range so the maps refine as you zoom in.
//
// Data export, by extension:
//   .npy  the difference B - A as float32 [rows, cols] (write_matrix; no labels);
//   .csv  the difference with query/key labels (write_matrix), and the metric table beside it as
//         <name>_metrics.csv (write_table: metric, a, b, b_minus_a; empty = not in the trace);
//   .json one row per cell with its query/key bin and a, b, b_minus_a (write_table), and the
//         metric table beside it as <name>_metrics.json.
#pragma once

#include <QPointF>
#include <vector>

#include "app_types.h"
#include "attnscope/trace_export.h"
#include "compare_panel.h"
#include "figure_view.h"

class QCheckBox;
class QComboBox;
class QCPAxis;
class QCPAxisRect;
class QCPColorScale;
class QCPLayoutGrid;
class QCPRange;
class QCPTextElement;
class QCustomPlot;
class QLabel;
class QMouseEvent;
class QStackedWidget;
class QTimer;

namespace attnscope::app {

class CompareMetricsTable;

class CompareView : public FigureView {
  Q_OBJECT
 public:
  explicit CompareView(const AppContext& context, QWidget* parent = nullptr);
  ~CompareView() override;

  QString viewTitle() const override { return tr("Compare"); }
  QString figureName() const override;
  bool hasFigure() const override;
  QString exportFigure(const QString& path, const PlotExportOptions& options) override;
  QStringList dataFormats() const override;
  QString exportData(const QString& path) override;

  // Pixel cap of the requested resolution per axis: finer than this adds nothing on screen.
  static constexpr int kMaxMapCells = 768;
  // Quiet time after a zoom/pan/resize before the visible range is requested again.
  static constexpr int kRefineDelayMs = 180;
  // While the tab is hidden, maps are requested only for prompts up to this length (cheap, and
  // "export all" finds a figure); longer ones wait until the tab is shown.
  static constexpr int kEagerTokensWhileHidden = 2048;

  // What is shown (for tests and inspection): the finest maps covering the view (the zoomed-in
  // detail when there is one, else the whole-range overview), and the request they answer.
  PooledMapPtr mapA() const;
  PooledMapPtr mapB() const;
  PooledMapPtr difference() const;
  PooledMapPtr overviewA() const { return m_overview.a; }
  bool hasDetail() const { return m_detail.a != nullptr; }
  const MapRequest& lastRequest() const { return m_lastRequest; }
  // The hover text of the cell holding (query, key); empty outside the maps.
  QString cellText(int query, int key) const;
  // The text shown instead of the figure when there is nothing to compare (empty otherwise).
  QString emptyMessage() const;
  // The metric table's rows as exported (metric, a, b, b_minus_a; NaN = not in the trace).
  DataTable metricTable() const;

  QCustomPlot* plot() const { return m_plot; }
  CompareMetricsTable* metricWidget() const { return m_table; }
  QComboBox* comboA() const { return m_comboA; }
  QComboBox* comboB() const { return m_comboB; }
  QCheckBox* logToggle() const { return m_log; }
  // 0 = A, 1 = B, 2 = B - A.
  QCPAxisRect* axisRect(int index) const { return m_panels[index].rect; }
  QCPColorScale* probabilityScale() const { return m_probScale; }
  QCPColorScale* differenceScale() const { return m_diffScale; }

 protected:
  void themeChanged() override;
  void resizeEvent(QResizeEvent* event) override;
  void showEvent(QShowEvent* event) override;
  bool eventFilter(QObject* watched, QEvent* event) override;

 private:
  // A, B and B - A of one request.
  struct MapSet {
    PooledMapPtr a, b, diff;
  };
  struct Pending {
    quint64 id = 0;
    MapRequest request;
    bool detail = false;
    PooledMapPtr a, b;
  };

  void buildPlot();
  void applyPalette();
  // Column widths that give A (which alone labels the query rows) room for its labels, so the
  // three maps are the same size.
  void balancePanelWidths();
  void scheduleRefresh();
  void refresh();
  void fillCombos();
  void requestMaps(bool detail);
  // requestMaps(false) now, or when the tab is shown (see kEagerTokensWhileHidden).
  void requestWhenUseful();
  void install(const Pending& pending);
  void fillColorMaps();
  void updateScales();
  void updateTitles();
  void updateTable();
  void updateOverlays();
  void updateTicks();
  void syncRange(QCPAxis* source, bool horizontal);
  void resetZoom();
  void refineVisible();
  bool zoomed() const;
  // Cells per axis for a request over `tokens` tokens: the plot's pixels, capped.
  int resolutionFor(int tokens, int pixels) const;
  void onMouseMove(QMouseEvent* event);
  void onMousePress(QMouseEvent* event);
  void clearHover();
  // The panel whose inner rect contains `pos`, or -1.
  int panelAt(const QPointF& pos) const;
  // The shown cell (query, key) in `map`'s bins; false outside.
  static bool binOf(const PooledMap& map, int query, int key, int* row, int* col);
  TracePtr traceAt(int index) const;
  int tokenCount() const;  // tokens both traces hold
  QString runLabel(int index) const;

  QWidget* m_bar = nullptr;  // run choice and options (hidden with the figure)
  QStackedWidget* m_stack = nullptr;
  QLabel* m_empty = nullptr;
  QComboBox* m_comboA = nullptr;
  QComboBox* m_comboB = nullptr;
  QComboBox* m_reduce = nullptr;
  QCheckBox* m_log = nullptr;
  QLabel* m_status = nullptr;
  QCustomPlot* m_plot = nullptr;
  QCPTextElement* m_title = nullptr;
  QCPLayoutGrid* m_grid = nullptr;  // panel titles over panels, with the colour scales
  // Grid columns of A, B and B - A (the probability scale sits in column 2, the difference's in 4).
  static constexpr int kPanelColumns[3] = {0, 1, 3};
  ComparePanel m_panels[3];
  QCPColorScale* m_probScale = nullptr;
  QCPColorScale* m_diffScale = nullptr;
  CompareMetricsTable* m_table = nullptr;
  QTimer* m_refreshTimer = nullptr;
  QTimer* m_refineTimer = nullptr;
  bool m_deferred = false;  // maps wanted, waiting for the tab to be shown

  SessionDataPtr m_session;
  TracePtr m_traceA, m_traceB;  // what the maps shown belong to
  int m_layer = -1, m_head = -1;
  MapRequest::Reduce m_reduceMode = MapRequest::Max;
  MapSet m_overview, m_detail;
  Pending m_pending;
  quint64 m_nextRequestId = 0;
  MapRequest m_lastRequest;
  QString m_failure;   // last map failure, shown until the next success
  QPointF m_pressPos;  // where the left button went down (a click or the start of a drag)
  bool m_syncing = false;
  bool m_hoverFromHere = false;
  int m_hoverQuery = -1, m_hoverKey = -1;  // crosshair cell, -1 = none
};

}  // namespace attnscope::app
