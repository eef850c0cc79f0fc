// Query groups: per layer, which KV head each query head reads (allocation matrix), the key norms
// and group sizes behind key-driven grouping, SQA's inactive heads, an overview of the allocation
// over all layers, and for dynamic groupings (DGQA/KDGQA) the allocation over decode steps.
//
// Data export: core's export_trace_data(Groups) for the selected layer, by extension: .csv (one
// row per query head: layer, query_head, kv_head, n_kv, key_norm), .json (kv_of_query, group
// sizes and key norms at prefill and at every decode step), .npy (int32 [1, H] kv_of_query).
#pragma once

#include <QPointF>
#include <QSharedPointer>
#include <vector>

#include "app_types.h"
#include "figure_view.h"

class QCPAxis;
class QCPAxisRect;
class QCPAxisTickerText;
class QCPBars;
class QCPColorMap;
class QCPItemRect;
class QCPItemText;
class QCPLayoutGrid;
class QCPLegend;
class QCPTextElement;
class QCustomPlot;
class QLabel;
class QMouseEvent;
class QStackedWidget;
class QTimer;

namespace attnscope::app {

class QueryGroupsView : public FigureView {
  Q_OBJECT
 public:
  explicit QueryGroupsView(const AppContext& context, QWidget* parent = nullptr);
  ~QueryGroupsView() override;

  QString viewTitle() const override { return tr("Query groups"); }
  QString figureName() const override;
  bool hasFigure() const override;
  QString exportFigure(const QString& path, const PlotExportOptions& options) override;
  QStringList dataFormats() const override;
  QString exportData(const QString& path) override;

  // What a colour-map cell shows (tests and inspection): the KV head whose colour it has (-1 =
  // empty cell) and whether it is greyed (an inactive SQA query head).
  struct Cell {
    int kvHead = -1;
    bool inactive = false;
  };
  Cell matrixCell(int queryHead, int kvHead) const;
  Cell overviewCell(int layer, int queryHead) const;
  Cell stepCell(int step, int queryHead) const;
  bool showsSteps() const { return m_showSteps; }
  int layer() const { return m_layer; }
  int kvHeadCount() const { return m_nKv; }
  // Bar heights per KV head ({} when the layer has no key norms).
  std::vector<double> keyNormBars() const;
  std::vector<double> groupSizeBars() const;
  QString titleText() const;
  QString emptyMessage() const { return m_emptyMessage; }
  // Hover text of the matrix row of query head `queryHead` at KV head `kvHead`.
  QString matrixText(int queryHead, int kvHead) const;

  QCustomPlot* plot() const { return m_plot; }
  QCPAxisRect* matrixRect() const { return m_matrixRect; }
  QCPAxisRect* overviewRect() const { return m_overviewRect; }
  QCPAxisRect* stepsRect() const { return m_stepsRect; }

 protected:
  void themeChanged() override;
  bool eventFilter(QObject* watched, QEvent* event) override;

 private:
  void buildPlot();
  void applyPalette();
  void scheduleRefresh();
  void refresh();
  void showEmpty(const QString& message);
  void fillMatrix();
  void fillBars();
  void fillOverview();
  void fillSteps();
  void updateTicks();
  void updateOverlays();
  void updateLegend();
  void onMouseMove(QMouseEvent* event);
  void onMouseRelease(QMouseEvent* event);
  bool isActive(const GroupStep& groups, int queryHead) const;
  const GroupStep* groupsAt(int layer) const;
  const GroupStep* stepGroupsAt(int step) const;  // group_steps[step][m_layer]
  Cell cellValue(const QCPColorMap* map, int key, int value) const;
  QString runName() const;

  QStackedWidget* m_stack = nullptr;
  QLabel* m_empty = nullptr;
  QLabel* m_summary = nullptr;
  QCustomPlot* m_plot = nullptr;
  QCPTextElement* m_title = nullptr;
  QCPLayoutGrid* m_bottom = nullptr;
  QCPAxisRect* m_matrixRect = nullptr;
  QCPAxisRect* m_normsRect = nullptr;
  QCPAxisRect* m_sizesRect = nullptr;
  QCPAxisRect* m_overviewRect = nullptr;
  QCPAxisRect* m_stepsRect = nullptr;
  QCPTextElement* m_stepsTitle = nullptr;  // taken out of the layout with m_stepsRect
  QCPLegend* m_legend = nullptr;
  QCPColorMap* m_matrixMap = nullptr;
  QCPColorMap* m_overviewMap = nullptr;
  QCPColorMap* m_stepsMap = nullptr;
  std::vector<QCPBars*> m_normBars, m_sizeBars, m_swatches;
  QCPItemText* m_noNorms = nullptr;
  QCPItemRect* m_matrixRow = nullptr;
  QCPItemRect* m_overviewCellMark = nullptr;
  QCPItemRect* m_overviewLayerMark = nullptr;
  QCPItemRect* m_stepMark = nullptr;
  QCPItemRect* m_stepHover = nullptr;
  QSharedPointer<QCPAxisTickerText> m_matrixY, m_matrixX, m_overviewX, m_overviewY, m_stepsX,
      m_stepsY, m_barsX;
  QTimer* m_refreshTimer = nullptr;

  SessionDataPtr m_session;
  TracePtr m_trace;
  int m_traceIndex = -1;
  int m_layer = -1, m_head = -1;
  int m_nHeads = 0, m_nKv = 0, m_nLayers = 0, m_nSteps = 0;
  bool m_showSteps = false;
  bool m_stepsInLayout = true;
  QString m_emptyMessage;
  QPointF m_pressPos;
};

}  // namespace attnscope::app
