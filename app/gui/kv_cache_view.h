// KV eviction: for a layer and KV head, which cached tokens (x) each decode step (y) keeps and why
// (sink, recent, scored, window, evicted), the kept count against the budget, the attention mass
// lost against the full cache over steps, and the per-layer budgets at the selected step
// (PyramidKV/CompressKV vary them by layer). The reason image is built once per (run, layer, KV
// head); hover, selection and step changes only move overlays, so 8000 positions x 64 steps stay
// fast.
//
// Data export, by extension:
//   .csv / .json  core's export_trace_data(Kv) for this layer and KV head (every step: position,
//                 budget, lost mass, reasons);
//   .npy          the reason matrix shown, float32 [steps, positions] (write_matrix): KeepReason
//                 codes 0 evicted, 1 sink, 2 recent, 3 kept (score), 4 window; -1 = not cached yet.
#pragma once

#include <QPointF>
#include <vector>

#include "app_types.h"
#include "figure_view.h"
#include "kv_cache_plot.h"

class QComboBox;
class QCPAxis;
class QCPAxisRect;
class QCPBars;
class QCPColorMap;
class QCPGraph;
class QCustomPlot;
class QLabel;
class QMouseEvent;
class QStackedWidget;
class QTimer;

namespace attnscope::app {

class KvCacheView : public FigureView {
  Q_OBJECT
 public:
  explicit KvCacheView(const AppContext& context, QWidget* parent = nullptr);
  ~KvCacheView() override;

  QString viewTitle() const override { return tr("KV cache"); }
  QString figureName() const override;
  bool hasFigure() const override;
  QString exportFigure(const QString& path, const PlotExportOptions& options) override;
  QStringList dataFormats() const override;
  QString exportData(const QString& path) override;

  // What is shown (tests and inspection).
  int kvHead() const { return m_kvHead; }
  int layer() const { return m_layer; }
  int stepCount() const { return m_steps; }
  int positionCount() const { return m_positions; }
  // The decode step whose per-layer budgets are shown (the selection's, or the last).
  int shownStep() const;
  // The reason shown at (step, position): a KeepReason value, or -1 where the position did not
  // exist yet at that step (or outside the figure).
  int reasonAt(int step, int position) const;
  // The hover text at (step, position); empty outside.
  QString cellText(int step, int position) const;
  // Why there is no figure ("" when there is one).
  QString emptyMessage() const { return m_emptyMessage; }
  // How many times the reason image was rebuilt (a rebuild per selection change, none per hover).
  int imageBuilds() const { return m_imageBuilds; }

  QCustomPlot* plot() const { return m_plot; }
  QComboBox* kvHeadCombo() const { return m_kvCombo; }
  QCPColorMap* reasonMap() const { return m_fig.reasonMap; }
  QCPAxisRect* mapRect() const { return m_fig.mapRect; }
  QCPGraph* keptGraph() const { return m_fig.keptGraph; }
  QCPGraph* budgetGraph() const { return m_fig.budgetGraph; }
  QCPGraph* lostGraph() const { return m_fig.lostGraph; }
  QCPGraph* lostMeanGraph() const { return m_fig.lostMeanGraph; }
  QCPBars* layerBudgetBars() const { return m_fig.layerBars; }
  QCPAxisRect* lostRect() const { return m_fig.lostRect; }
  QCPAxisRect* budgetRect() const { return m_fig.budgetRect; }

 protected:
  void themeChanged() override;
  bool eventFilter(QObject* watched, QEvent* event) override;

 private:
  void buildPlot();
  void applyPalette();
  void scheduleRefresh();
  void refresh();
  void fillKvCombo();
  void rebuildImage();
  void updateSeries();
  void updateLayerBudgets();
  void updateOverlays();
  void updateTicks();
  void updateTitle();
  void showEmpty(const QString& message);
  void resetZoom();
  void onMouseMove(QMouseEvent* event);
  void onMouseRelease(QMouseEvent* event);
  void clearHover();
  const KvStep* stepAt(int step) const;  // kv_steps[step][layer] or null
  QString runName() const;

  QStackedWidget* m_stack = nullptr;
  QLabel* m_empty = nullptr;
  QWidget* m_bar = nullptr;  // KV head and step summary (hidden with the figure)
  QComboBox* m_kvCombo = nullptr;
  QLabel* m_info = nullptr;
  QCustomPlot* m_plot = nullptr;
  KvCachePlot m_fig;  // the figure's elements
  QTimer* m_refreshTimer = nullptr;

  SessionDataPtr m_session;
  TracePtr m_trace;
  int m_traceIndex = -1;
  int m_layer = -1, m_head = -1;
  int m_kvHead = -1;
  int m_userKvHead = -1;  // chosen in the combo; reset when layer, head or run change
  int m_steps = 0, m_positions = 0;
  // The image's key: rebuilt only when one of these changes.
  TracePtr m_builtTrace;
  int m_builtLayer = -1, m_builtKvHead = -1;
  int m_imageBuilds = 0;
  QString m_emptyMessage;
  QPointF m_pressPos;
  int m_hoverPosition = -1;
  bool m_hoverFromHere = false;  // the hovered token is the one under the mouse here
  bool m_exporting = false;
  bool m_syncing = false;
};

}  // namespace attnscope::app
