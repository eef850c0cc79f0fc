// Attention map of the selected (trace, layer, head): zoom/pan, token labels, hover values,
// log/linear colours, pooled rendering that refines as you zoom (core MapRequest), optional mask
// overlay; clicking a row selects that query token.
#pragma once

#include <QPoint>
#include <QSharedPointer>
#include <QSize>

#include "app_types.h"
#include "figure_view.h"

class QCPAxisTickerText;
class QCPColorMap;
class QCPColorScale;
class QCPItemRect;
class QCPItemStraightLine;
class QCPTextElement;
class QCustomPlot;
class QComboBox;
class QLabel;
class QMouseEvent;
class QStackedLayout;
class QTimer;
class QToolButton;

namespace attnscope::app {

class AttentionMapView : public FigureView {
  Q_OBJECT
 public:
  explicit AttentionMapView(const AppContext& context, QWidget* parent = nullptr);
  ~AttentionMapView() override;

  QString viewTitle() const override { return tr("Attention map"); }
  QString figureName() const override;
  bool hasFigure() const override;
  QString exportFigure(const QString& path, const PlotExportOptions& options) override;
  QStringList dataFormats() const override;
  // The PooledMap now shown (write_matrix): rows = query bins, cols = key bins; labels are
  // "<position>:<token>" at one cell per token, else the bins' token ranges "a-b" (inclusive).
  QString exportData(const QString& path) override;

  // Prompts longer than this get a fast map with sampled rows first, then the exact one.
  static constexpr int kSampleFirstAbove = 2048;
  static constexpr int kSampledRowsFirst = 2;  // MapRequest::sample_rows of the fast map
  static constexpr int kMaxResolution = 1024;  // cap on out_rows / out_cols
  static constexpr int kDebounceMs = 120;      // zoom/pan settle time before a new request

  // What is shown (tests): the map, and the (trace, layer, head, reduce) it belongs to.
  PooledMapPtr shownMap() const { return m_shown; }
  int shownLayer() const { return m_shownLayer; }
  int shownHead() const { return m_shownHead; }
  int shownTrace() const { return m_shownTraceIndex; }
  QCustomPlot* plot() const { return m_plot; }
  QCPColorMap* colorMap() const { return m_map; }
  QCPColorMap* maskOverlay() const { return m_overlay; }
  // The hovered token's crosshair (vertical: key, horizontal: query) and the selected query row.
  QCPItemStraightLine* hoverKeyLine() const { return m_hoverKey; }
  QCPItemStraightLine* hoverQueryLine() const { return m_hoverQuery; }
  QCPItemRect* queryRowMark() const { return m_queryRow; }
  // "exact: one cell per token", "max over 8x8-token cells", "... sampled rows" (toolbar).
  QString resolutionText() const;
  QString titleText() const;
  // The empty-state / error message (empty while a map is shown).
  QString messageText() const;
  // True when no request is waiting (debounce, pending map or the exact follow-up).
  bool isSettled() const;

  bool logScale() const { return m_log; }
  void setLogScale(bool log);
  bool meanPooling() const { return m_reduceMean; }
  void setMeanPooling(bool mean);
  bool maskOverlayShown() const { return m_maskShown; }
  void setMaskOverlayShown(bool shown);
  // Shows the whole prompt (both axes 0..T).
  void resetZoom();
  // Zooms to query tokens [q0, q1) and key tokens [k0, k1) (tests, scripted figures).
  void zoomTo(double q0, double q1, double k0, double k1);

  // Tooltip text for the cell under (query token, key token) of the shown map.
  QString cellDescription(int query, int key) const;

 signals:
  // A map was placed on the plot (a sampled first map, its exact refinement, a new head...).
  void mapShown();

 protected:
  void themeChanged() override;
  bool eventFilter(QObject* watched, QEvent* event) override;

 private:
  enum class KeyState { Visible, AfterQuery, Masked, Evicted };
  void onSessionOrBounds();
  void onSelectionChanged();
  void scheduleRequest(int delayMs);
  void requestVisible();
  void sendRequest(const MapRequest& request, bool exactFollows, const MapRequest& exact);
  void showMap(const PooledMapPtr& map, int traceIndex, int layer, int head);
  void fillColorMap();
  void fillMaskOverlay();
  void updateOverlays();
  void updateTicks();
  void updateMessage();
  void clampRange(bool horizontal);
  void onMouseMove(QMouseEvent* event);
  KeyState keyState(int query, int key) const;
  const HeadMask* maskForRow(int query, HeadMask* scratch) const;
  QString tokenLabel(int token) const;
  void applyPalette();

  QCustomPlot* m_plot = nullptr;
  QCPTextElement* m_title = nullptr;
  QCPColorMap* m_map = nullptr;
  QCPColorMap* m_overlay = nullptr;
  QCPColorScale* m_scale = nullptr;
  QCPItemStraightLine* m_hoverKey = nullptr;
  QCPItemStraightLine* m_hoverQuery = nullptr;
  QCPItemRect* m_queryRow = nullptr;
  QSharedPointer<QCPAxisTickerText> m_xTicker, m_yTicker;
  QToolButton* m_logButton = nullptr;
  QComboBox* m_reduceCombo = nullptr;
  QToolButton* m_maskButton = nullptr;
  QToolButton* m_resetButton = nullptr;
  QLabel* m_resolution = nullptr;
  QLabel* m_message = nullptr;
  QStackedLayout* m_stack = nullptr;
  QTimer* m_requestTimer = nullptr;

  SessionDataPtr m_session;
  TracePtr m_trace;      // the selected trace
  QStringList m_labels;  // [T] display text of the selected trace's tokens
  PooledMapPtr m_shown;
  int m_hoverSetByUs = -1;  // the hover token this view set (cleared when the mouse leaves)
  TracePtr m_shownTrace;
  int m_shownTraceIndex = -1, m_shownLayer = -1, m_shownHead = -1;
  bool m_shownMean = false;
  bool m_log = true;
  bool m_reduceMean = false;
  bool m_maskShown = false;
  QString m_error;
  // The last request sent (an identical one is not sent again) and whether the exact map of a
  // sampled first request is still to come.
  bool m_haveLastRequest = false;
  MapRequest m_lastRequest;
  TracePtr m_lastRequestTrace;
  bool m_exactPending = false;
  bool m_inFlight = false;
  QPoint m_pressPos;
  bool m_pressed = false;
};

}  // namespace attnscope::app
