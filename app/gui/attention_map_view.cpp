// Attention map view: see attention_map_view.h. Maps are asked from MapService for the visible
// token range at the plot's pixel resolution; this view only places and colours them.
#include "attention_map_view.h"

#include <qcustomplot.h>

#include <QComboBox>
#include <QEvent>
#include <QHBoxLayout>
#include <QLabel>
#include <QMouseEvent>
#include <QStackedLayout>
#include <QTimer>
#include <QToolButton>
#include <QToolTip>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include "attnscope/trace_export.h"
#include "map_service.h"
#include "masks_row_mask.h"
#include "plot_axes.h"
#include "plot_style.h"
#include "selection_model.h"
#include "session_controller.h"
#include "view_parts.h"

namespace attnscope::app {

namespace {

const QString kChannel = QStringLiteral("map");
// Smallest zoom window in tokens.
constexpr double kMinSpan = 2.0;
// Mask overlay: a grey a little off the background, nearly opaque, so hidden pairs read as
// "not computed" (the masks view's masked colour) while a trace of the map still shows.
constexpr unsigned char kOverlayAlpha = 215;

QString tokenCountText(int n) {
  return n == 1 ? QObject::tr("1 token") : QObject::tr("%1 tokens").arg(n);
}

// Colour-map cells for n bins over [begin, end) (token t covers [t, t + 1)): a single bin is
// drawn as two equal halves, so every map has the same cell geometry.
int displayCells(int n) {
  return std::max(n, 2);
}
QCPRange binCellCentres(int begin, int end, int n) {
  return cellCentres(begin, end, displayCells(n));
}

}  // namespace

AttentionMapView::AttentionMapView(const AppContext& context, QWidget* parent)
    : FigureView(context, parent) {
  // Toolbar: colours, pooling, mask overlay, reset zoom; the resolution on the right.
  QHBoxLayout* bar = nullptr;
  QVBoxLayout* layout = newToolbarColumn(this, &bar);
  m_logButton = new QToolButton(this);
  m_logButton->setText(tr("Log colours"));
  m_logButton->setCheckable(true);
  m_logButton->setChecked(m_log);
  m_logButton->setToolButtonStyle(Qt::ToolButtonTextOnly);
  m_logButton->setToolTip(logColoursToolTip());
  m_reduceCombo = new QComboBox(this);
  m_reduceCombo->addItem(tr("Max pooling"));
  m_reduceCombo->addItem(tr("Mean pooling"));
  m_reduceCombo->setToolTip(
      tr("When a cell covers several tokens: their largest probability or their mean"));
  m_maskButton = new QToolButton(this);
  m_maskButton->setText(tr("Mask overlay"));
  m_maskButton->setCheckable(true);
  m_maskButton->setToolTip(
      tr("Shade the (query, key) pairs the variant's pattern hides from this head"));
  m_resetButton = new QToolButton(this);
  m_resetButton->setText(tr("Reset zoom"));
  m_resetButton->setToolTip(tr("Show the whole prompt (double-click the map does the same)"));
  m_resolution = new QLabel(this);
  m_resolution->setTextFormat(Qt::PlainText);
  m_resolution->setAlignment(Qt::AlignRight | Qt::AlignVCenter);
  m_resolution->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
  bar->addWidget(m_logButton);
  bar->addWidget(m_reduceCombo);
  bar->addWidget(m_maskButton);
  bar->addWidget(m_resetButton);
  bar->addWidget(m_resolution, 1);

  auto* stackHost = new QWidget(this);
  m_stack = new QStackedLayout(stackHost);
  m_message = newEmptyStateLabel(stackHost);
  m_message->setTextFormat(Qt::PlainText);
  m_plot = new QCustomPlot(stackHost);
  m_plot->setMinimumSize(320, 280);
  m_stack->addWidget(m_message);
  m_stack->addWidget(m_plot);
  layout->addWidget(stackHost, 1);

  m_plot->plotLayout()->insertRow(0);
  m_title = new QCPTextElement(m_plot, QString(),
                               QFont(font().family(), font().pointSize() + 1, QFont::DemiBold));
  m_plot->plotLayout()->addElement(0, 0, m_title);
  QCPAxisRect* rect = m_plot->axisRect();
  m_map = addCellMap(rect);
  m_scale = new QCPColorScale(m_plot);
  m_plot->plotLayout()->addElement(1, 1, m_scale);
  m_scale->setType(QCPAxis::atRight);
  m_scale->setBarWidth(14);
  m_map->setColorScale(m_scale);
  m_map->setGradient(attentionGradient());  // after setColorScale, which adopts the scale's
  auto* group = new QCPMarginGroup(m_plot);
  rect->setMarginGroup(QCP::msBottom | QCP::msTop, group);
  m_scale->setMarginGroup(QCP::msBottom | QCP::msTop, group);

  // Mask overlay: one constant colour, its per-cell alpha says hidden (shaded) or not.
  m_overlay = addCellMap(rect);
  m_overlay->setDataRange(QCPRange(0, 1));
  m_overlay->setVisible(false);

  // Selected query row and the hovered token's crosshair.
  m_queryRow = new QCPItemRect(m_plot);
  m_queryRow->setClipToAxisRect(true);
  m_queryRow->setVisible(false);
  m_hoverKey = new QCPItemStraightLine(m_plot);
  m_hoverQuery = new QCPItemStraightLine(m_plot);
  for (QCPItemStraightLine* line : {m_hoverKey, m_hoverQuery}) {
    line->setClipToAxisRect(true);
    line->setVisible(false);
  }

  m_xTicker.reset(new QCPAxisTickerText);
  m_yTicker.reset(new QCPAxisTickerText);
  m_plot->xAxis->setTicker(m_xTicker);
  m_plot->yAxis->setTicker(m_yTicker);
  m_plot->xAxis->setTickLabelRotation(90);
  m_plot->xAxis->setLabel(tr("key token"));
  m_plot->yAxis->setLabel(tr("query token"));
  m_plot->yAxis->setRangeReversed(true);  // query 0 at the top, like the matrix it shows
  m_plot->xAxis->setSubTicks(false);
  m_plot->yAxis->setSubTicks(false);
  m_plot->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
  m_plot->setMouseTracking(true);
  m_plot->installEventFilter(this);

  m_requestTimer = new QTimer(this);
  m_requestTimer->setSingleShot(true);
  connect(m_requestTimer, &QTimer::timeout, this, &AttentionMapView::requestVisible);

  connect(m_plot, &QCustomPlot::mouseMove, this, &AttentionMapView::onMouseMove);
  connect(m_plot, &QCustomPlot::mousePress, this, [this](QMouseEvent* e) {
    m_pressPos = e->position().toPoint();
    m_pressed = e->button() == Qt::LeftButton;
  });
  connect(m_plot, &QCustomPlot::mouseRelease, this, [this](QMouseEvent* e) {
    const bool click =
        m_pressed && e->button() == Qt::LeftButton && isClick(m_pressPos, e->position());
    m_pressed = false;
    if (!click || !m_shown || !m_trace || !selection()) return;
    if (!m_plot->axisRect()->rect().contains(e->position().toPoint())) return;
    const int query = static_cast<int>(std::floor(m_plot->yAxis->pixelToCoord(e->position().y())));
    if (query >= 0 && query < m_trace->n_tokens()) selection()->setQueryToken(query);
  });
  connect(m_plot, &QCustomPlot::mouseDoubleClick, this, [this](QMouseEvent*) { resetZoom(); });
  connect(m_plot->xAxis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), this,
          [this](const QCPRange&) {
            clampRange(true);
            scheduleRequest(kDebounceMs);
          });
  connect(m_plot->yAxis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), this,
          [this](const QCPRange&) {
            clampRange(false);
            scheduleRequest(kDebounceMs);
          });
  rethinTicksOnLayout(m_plot, [this] { updateTicks(); });

  connect(m_logButton, &QToolButton::toggled, this, &AttentionMapView::setLogScale);
  connect(m_reduceCombo, qOverload<int>(&QComboBox::currentIndexChanged), this,
          [this](int index) { setMeanPooling(index == 1); });
  connect(m_maskButton, &QToolButton::toggled, this, &AttentionMapView::setMaskOverlayShown);
  connect(m_resetButton, &QToolButton::clicked, this, &AttentionMapView::resetZoom);

  if (SessionController* c = controller()) {
    connect(c, &SessionController::sessionChanged, this, [this] { onSessionOrBounds(); });
  }
  if (SelectionModel* s = selection()) {
    connect(s, &SelectionModel::boundsChanged, this, [this] { onSessionOrBounds(); });
    connect(s, &SelectionModel::traceChanged, this, [this] { onSelectionChanged(); });
    connect(s, &SelectionModel::layerHeadChanged, this, [this] { onSelectionChanged(); });
    connect(s, &SelectionModel::hoverTokenChanged, this, [this] {
      updateOverlays();
      m_plot->replot(QCustomPlot::rpQueuedReplot);
    });
    connect(s, &SelectionModel::queryTokenChanged, this, [this] {
      updateOverlays();
      m_plot->replot(QCustomPlot::rpQueuedReplot);
    });
  }
  applyPalette();
  onSessionOrBounds();
}

// No cancel here: the map service may already be gone (the controller that owns it is destroyed
// first), and its callbacks skip receivers that no longer exist.
AttentionMapView::~AttentionMapView() = default;

// ---------------------------------------------------------------------------------------------
// Selection and requests

void AttentionMapView::onSessionOrBounds() {
  SessionController* c = controller();
  const SessionDataPtr session = c ? c->session() : nullptr;
  const int index = selection() ? selection()->trace() : 0;
  const TracePtr trace = sessionTrace(session, index);
  const bool sameTraces = session && m_session && session->traces == m_session->traces;
  m_session = session;
  if (sameTraces && trace == m_trace) return;  // saved / needle added: nothing to redraw
  m_trace = trace;
  m_labels = m_trace ? traceTokenLabels(*m_session, *m_trace) : QStringList();
  m_shown.reset();
  m_shownTrace.reset();
  m_shownTraceIndex = m_shownLayer = m_shownHead = -1;
  m_error.clear();
  m_haveLastRequest = false;
  m_exactPending = false;
  if (maps()) maps()->cancel(kChannel);
  m_inFlight = false;
  m_map->data()->clear();
  m_overlay->data()->clear();
  resetZoom();
  updateMessage();
  scheduleRequest(0);
  emit figureChanged();
}

void AttentionMapView::onSelectionChanged() {
  const int index = selection() ? selection()->trace() : 0;
  const TracePtr trace = sessionTrace(m_session, index);
  if (trace != m_trace) {
    // Another trace of the same run: same tokens, keep the zoom.
    m_trace = trace;
  }
  m_error.clear();
  scheduleRequest(0);
}

void AttentionMapView::scheduleRequest(int delayMs) {
  if (!m_trace) return;
  m_requestTimer->start(delayMs);
}

bool AttentionMapView::isSettled() const {
  return !m_requestTimer->isActive() && !m_inFlight && !m_exactPending;
}

void AttentionMapView::requestVisible() {
  if (!m_trace || !maps() || !selection()) return;
  const int T = m_trace->n_tokens();
  if (T <= 0) return;
  const QCPRange xr = m_plot->xAxis->range();
  const QCPRange yr = m_plot->yAxis->range();
  MapRequest r;
  r.layer = selection()->layer();
  r.head = selection()->head();
  r.q_begin = std::clamp(static_cast<int>(std::floor(yr.lower)), 0, T - 1);
  r.q_end = std::clamp(static_cast<int>(std::ceil(yr.upper)), r.q_begin + 1, T);
  r.k_begin = std::clamp(static_cast<int>(std::floor(xr.lower)), 0, T - 1);
  r.k_end = std::clamp(static_cast<int>(std::ceil(xr.upper)), r.k_begin + 1, T);
  // Keys after the last visible query are hidden by causality: not worth a column.
  r.k_end = std::max(r.k_begin + 1, std::min(r.k_end, r.q_end));
  // Screen resolution: one output cell per pixel of the visible range, capped. The plot may not
  // be laid out yet (hidden tab): assume a typical size then.
  const QRect px = m_plot->axisRect()->rect();
  const double qSpan = std::max(1e-9, yr.size()), kSpan = std::max(1e-9, xr.size());
  const int rowsPx = px.height() > 10 ? px.height() : 600;
  const int colsPx = px.width() > 10 ? px.width() : 800;
  r.out_rows = std::clamp(static_cast<int>(std::ceil(rowsPx * (r.q_end - r.q_begin) / qSpan)), 1,
                          kMaxResolution);
  r.out_cols = std::clamp(static_cast<int>(std::ceil(colsPx * (r.k_end - r.k_begin) / kSpan)), 1,
                          kMaxResolution);
  r.reduce = m_reduceMean ? MapRequest::Mean : MapRequest::Max;
  r.apply_kv = true;
  r.sample_rows = 0;
  const bool same = m_haveLastRequest && m_lastRequestTrace == m_trace &&
                    m_lastRequest.layer == r.layer && m_lastRequest.head == r.head &&
                    m_lastRequest.q_begin == r.q_begin && m_lastRequest.q_end == r.q_end &&
                    m_lastRequest.k_begin == r.k_begin && m_lastRequest.k_end == r.k_end &&
                    m_lastRequest.out_rows == r.out_rows && m_lastRequest.out_cols == r.out_cols &&
                    m_lastRequest.reduce == r.reduce;
  if (same && m_error.isEmpty()) return;
  m_haveLastRequest = true;
  m_lastRequest = r;
  m_lastRequestTrace = m_trace;
  const int rowsPerBin = (r.q_end - r.q_begin + r.out_rows - 1) / r.out_rows;
  if (T > kSampleFirstAbove && rowsPerBin > kSampledRowsFirst) {
    MapRequest fast = r;
    fast.sample_rows = kSampledRowsFirst;
    sendRequest(fast, true, r);
  } else {
    sendRequest(r, false, r);
  }
}

void AttentionMapView::sendRequest(const MapRequest& request, bool exactFollows,
                                   const MapRequest& exact) {
  const int traceIndex = selection() ? selection()->trace() : 0;
  const TracePtr trace = m_trace;
  m_inFlight = true;
  m_exactPending = exactFollows;
  maps()->request(
      kChannel, trace, request, this,
      [this, trace, traceIndex, request, exactFollows, exact](const PooledMapPtr& map) {
        m_inFlight = false;
        if (trace != m_trace) return;
        showMap(map, traceIndex, request.layer, request.head);
        if (exactFollows) {
          sendRequest(exact, false, exact);  // refine: the exact map replaces the sampled one
        } else {
          m_exactPending = false;
        }
        updateMessage();
      },
      [this, trace](const QString& message) {
        m_inFlight = false;
        m_exactPending = false;
        if (trace != m_trace) return;
        m_error = message;
        m_shown.reset();
        m_map->data()->clear();
        updateMessage();
        emit figureChanged();
      });
}

// ---------------------------------------------------------------------------------------------
// Drawing

void AttentionMapView::showMap(const PooledMapPtr& map, int traceIndex, int layer, int head) {
  const bool had = m_shown != nullptr;
  m_shown = map;
  m_shownTrace = m_trace;
  m_shownTraceIndex = traceIndex;
  m_shownLayer = layer;
  m_shownHead = head;
  m_shownMean = m_reduceMean;
  m_error.clear();
  fillColorMap();
  fillMaskOverlay();
  updateOverlays();
  m_title->setText(titleText());
  m_resolution->setText(resolutionText());
  m_plot->replot();
  // The plot may have been hidden (message shown) or resized while this map was computed: check
  // the resolution against the laid-out plot (an identical request is not sent again).
  scheduleRequest(kDebounceMs);
  if (!had) emit figureChanged();
  emit mapShown();
}

void AttentionMapView::fillColorMap() {
  if (!m_shown) return;
  const PooledMap& m = *m_shown;
  float top = 0, minPositive = 0;
  for (const float v : m.values) {
    if (v > top) top = v;
    if (v > 0 && (minPositive == 0 || v < minPositive)) minPositive = v;
  }
  const double hi = top > 0 ? top : 1.0;
  const bool log = m_log && top > 0;
  const double lo = log ? std::max<double>(minPositive, hi * kLogFloorRatio) : 0.0;
  const int kc = displayCells(m.cols), vc = displayCells(m.rows);
  QCPColorMapData* cells = m_map->data();
  cells->setSize(kc, vc);
  cells->setRange(binCellCentres(m.k_begin, m.k_end, m.cols),
                  binCellCentres(m.q_begin, m.q_end, m.rows));
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (int y = 0; y < vc; ++y) {
    const int r = m.rows == 1 ? 0 : y;
    const int lastQuery = m.row_edges[static_cast<size_t>(r) + 1] - 1;
    for (int x = 0; x < kc; ++x) {
      const int c = m.cols == 1 ? 0 : x;
      double v = m.values[static_cast<size_t>(r) * m.cols + c];
      // Bins whose keys all follow all their queries: causally hidden, left transparent.
      if (m.col_edges[static_cast<size_t>(c)] > lastQuery) {
        v = nan;
      } else if (log) {
        v = std::max(v, lo);
      }
      cells->setCell(x, y, v);
    }
  }
  setColorScaleLog(m_scale, log);
  m_scale->setDataRange(QCPRange(lo, hi <= lo ? lo * 10 : hi));
  const bool exact = m.row_stride == 1 && m.col_stride == 1;
  m_scale->axis()->setLabel(exact ? tr("attention probability")
                                  : (m_shownMean ? tr("attention probability (mean over cell)")
                                                 : tr("attention probability (max over cell)")));
}

const HeadMask* AttentionMapView::maskForRow(int query, HeadMask* scratch) const {
  return m_shownTrace ? maskForQueryRow(*m_shownTrace, m_shownLayer, m_shownHead, query, scratch)
                      : nullptr;
}

void AttentionMapView::fillMaskOverlay() {
  QCPColorMapData* cells = m_overlay->data();
  if (!m_shown || !m_shownTrace || !m_maskShown) {
    cells->clear();
    m_overlay->setVisible(false);
    return;
  }
  const PooledMap& m = *m_shown;
  const int kc = displayCells(m.cols), vc = displayCells(m.rows);
  cells->setSize(kc, vc);
  cells->setRange(binCellCentres(m.k_begin, m.k_end, m.cols),
                  binCellCentres(m.q_begin, m.q_end, m.rows));
  cells->fill(1.0);
  cells->fillAlpha(0);
  HeadMask scratch;
  // Each cell is judged at its bin's centre pair: exact at one cell per token.
  for (int y = 0; y < vc; ++y) {
    const int r = m.rows == 1 ? 0 : y;
    const int i =
        (m.row_edges[static_cast<size_t>(r)] + m.row_edges[static_cast<size_t>(r) + 1] - 1) / 2;
    const HeadMask* mask = maskForRow(i, &scratch);
    if (!mask || maskIsFullCausal(*mask)) continue;
    for (int x = 0; x < kc; ++x) {
      const int c = m.cols == 1 ? 0 : x;
      const int j =
          (m.col_edges[static_cast<size_t>(c)] + m.col_edges[static_cast<size_t>(c) + 1] - 1) / 2;
      if (j <= i && !mask->visible(i, j)) cells->setAlpha(x, y, kOverlayAlpha);
    }
  }
  m_overlay->setVisible(true);
}

void AttentionMapView::updateOverlays() {
  const SelectionModel* s = selection();
  const int T = m_trace ? m_trace->n_tokens() : 0;
  const QPalette pal = palette();
  QColor highlight = pal.color(QPalette::Highlight);
  const int hover = s ? s->hoverToken() : -1;
  const bool showHover = m_shown && hover >= 0 && hover < T;
  QColor cross = highlight.lighter(130);
  cross.setAlpha(220);
  m_hoverKey->setVisible(showHover);
  m_hoverQuery->setVisible(showHover);
  if (showHover) {
    m_hoverKey->setPen(QPen(cross, 1.5, Qt::DashLine));
    m_hoverQuery->setPen(QPen(cross, 1.5, Qt::DashLine));
    m_hoverKey->point1->setCoords(hover + 0.5, 0);
    m_hoverKey->point2->setCoords(hover + 0.5, 1);
    m_hoverQuery->point1->setCoords(0, hover + 0.5);
    m_hoverQuery->point2->setCoords(1, hover + 0.5);
  }
  const int query = s ? s->queryToken() : -1;
  const bool showQuery = m_shown && query >= 0 && query < T;
  m_queryRow->setVisible(showQuery);
  if (showQuery) {
    QColor fill = highlight;
    fill.setAlpha(40);
    m_queryRow->setPen(QPen(highlight, 1.5));
    m_queryRow->setBrush(fill);
    m_queryRow->topLeft->setCoords(0, query);
    m_queryRow->bottomRight->setCoords(T, query + 1);
  }
}

void AttentionMapView::updateTicks() {
  m_xTicker->clear();
  m_yTicker->clear();
  if (!m_trace) return;
  const int T = m_trace->n_tokens();
  // Token t covers [t, t + 1): its tick sits at its centre.
  const auto labelOf = [this](int token) { return tokenLabel(token); };
  setTokenTicks(*m_xTicker, m_plot->xAxis, T, m_plot->axisRect()->width(), labelOf, 0.5);
  setTokenTicks(*m_yTicker, m_plot->yAxis, T, m_plot->axisRect()->height(), labelOf, 0.5);
}

QString AttentionMapView::tokenLabel(int token) const {
  return token >= 0 && token < m_labels.size() ? m_labels.at(token) : QString();
}

void AttentionMapView::updateMessage() {
  const QString text = messageText();
  m_message->setText(text);
  m_stack->setCurrentWidget(text.isEmpty() ? static_cast<QWidget*>(m_plot) : m_message);
  m_resolution->setText(m_shown ? resolutionText() : QString());
  const bool enabled = m_shown != nullptr;
  for (QWidget* w :
       std::initializer_list<QWidget*>{m_logButton, m_reduceCombo, m_maskButton, m_resetButton}) {
    w->setEnabled(enabled);
  }
}

QString AttentionMapView::messageText() const {
  if (!m_session || !m_session->hasRun())
    return tr("Run a prompt (F5) to see the attention map of a head.");
  if (!m_error.isEmpty()) return tr("Cannot show this map:\n%1").arg(m_error);
  if (!m_shown) return tr("Computing the attention map\u2026");
  return {};
}

QString AttentionMapView::titleText() const {
  if (!m_shown || !m_shownTrace || !m_session) return {};
  const Trace& t = *m_shownTrace;
  QStringList parts;
  if (!t.model.name.empty()) parts << QString::fromStdString(t.model.name);
  QString run = m_session->traceName(m_shownTraceIndex);
  if (t.variant.needs_training()) run += tr(" (simulation: needs training)");
  parts << run << tr("layer %1, head %2").arg(m_shownLayer).arg(m_shownHead)
        << tokenCountText(t.n_tokens());
  return parts.join(QStringLiteral(" \u00b7 "));
}

QString AttentionMapView::resolutionText() const {
  if (!m_shown) return {};
  const PooledMap& m = *m_shown;
  QString text;
  if (m.row_stride == 1 && m.col_stride == 1) {
    text = tr("exact: one cell per token");
  } else {
    text = tr("%1 over %2\u00d7%3-token cells")
               .arg(m_shownMean ? tr("mean") : tr("max"))
               .arg(m.row_stride)
               .arg(m.col_stride);
  }
  if (m.sampled) text += tr(", sampled rows (refining\u2026)");
  if (m_maskShown) {
    HeadMask scratch;
    const HeadMask* mask = maskForRow(m.q_begin, &scratch);
    const bool anyMask = m_shownTrace && !m_shownTrace->mask_steps.empty();
    if (!anyMask && (!mask || maskIsFullCausal(*mask))) text += tr(" \u00b7 full causal: no mask");
  }
  return text;
}

void AttentionMapView::applyPalette() {
  stylePlot(*m_plot, palette());
  // The masks view's masked colour, so hidden pairs read the same in both views.
  const QColor grey = maskedGrey(palette());
  QCPColorGradient flat;
  flat.clearColorStops();
  flat.setColorStopAt(0, grey);
  flat.setColorStopAt(1, grey);
  m_overlay->setGradient(flat);
  m_plot->xAxis->grid()->setVisible(false);
  m_plot->yAxis->grid()->setVisible(false);
  updateOverlays();
}

void AttentionMapView::themeChanged() {
  applyPalette();
  m_plot->replot();
}

// ---------------------------------------------------------------------------------------------
// Interaction

void AttentionMapView::setLogScale(bool log) {
  if (log == m_log) return;
  m_log = log;
  {
    const QSignalBlocker blocker(m_logButton);
    m_logButton->setChecked(log);
  }
  fillColorMap();
  m_plot->replot();
}

void AttentionMapView::setMeanPooling(bool mean) {
  if (mean == m_reduceMean) return;
  m_reduceMean = mean;
  {
    const QSignalBlocker blocker(m_reduceCombo);
    m_reduceCombo->setCurrentIndex(mean ? 1 : 0);
  }
  scheduleRequest(0);
}

void AttentionMapView::setMaskOverlayShown(bool shown) {
  if (shown == m_maskShown) return;
  m_maskShown = shown;
  {
    const QSignalBlocker blocker(m_maskButton);
    m_maskButton->setChecked(shown);
  }
  fillMaskOverlay();
  m_resolution->setText(resolutionText());
  m_plot->replot();
}

void AttentionMapView::resetZoom() {
  const int T = m_trace ? std::max(1, m_trace->n_tokens()) : 1;
  zoomTo(0, T, 0, T);
}

void AttentionMapView::zoomTo(double q0, double q1, double k0, double k1) {
  {
    const QSignalBlocker bx(m_plot->xAxis), by(m_plot->yAxis);
    m_plot->xAxis->setRange(k0, k1);
    m_plot->yAxis->setRange(q0, q1);
  }
  clampRange(true);
  clampRange(false);
  m_plot->replot();
  scheduleRequest(kDebounceMs);
}

void AttentionMapView::clampRange(bool horizontal) {
  // Zooming out stops at the whole prompt, panning at its edges, zooming in at a few tokens.
  clampAxisRange(horizontal ? m_plot->xAxis : m_plot->yAxis, 0,
                 m_trace ? std::max(1, m_trace->n_tokens()) : 1, kMinSpan);
}

AttentionMapView::KeyState AttentionMapView::keyState(int query, int key) const {
  if (key > query) return KeyState::AfterQuery;
  HeadMask scratch;
  if (const HeadMask* mask = maskForRow(query, &scratch); mask && !mask->visible(query, key)) {
    return KeyState::Masked;
  }
  // Decode rows: the KV policy's keep set at that step (what compute_map applies).
  if (m_shownTrace && query >= m_shownTrace->n_prompt) {
    const Trace& t = *m_shownTrace;
    const auto L = static_cast<size_t>(m_shownLayer);
    for (size_t s = 0; s < t.kv_steps.size(); ++s) {
      if (L >= t.kv_steps[s].size() || t.kv_steps[s][L].position != query) continue;
      const std::vector<GroupStep>* groups = s < t.group_steps.size() ? &t.group_steps[s] : nullptr;
      const GroupStep* g = groups && L < groups->size()
                               ? &(*groups)[L]
                               : (L < t.groups.size() ? &t.groups[L] : nullptr);
      const int kv = g && static_cast<size_t>(m_shownHead) < g->kv_of_query.size()
                         ? g->kv_of_query[static_cast<size_t>(m_shownHead)]
                         : 0;
      const KvStep& step = t.kv_steps[s][L];
      if (static_cast<size_t>(kv) < step.reasons.size() &&
          static_cast<size_t>(key) < step.reasons[static_cast<size_t>(kv)].size() &&
          step.reasons[static_cast<size_t>(kv)][static_cast<size_t>(key)] == 0) {
        return KeyState::Evicted;
      }
    }
  }
  return KeyState::Visible;
}

QString AttentionMapView::cellDescription(int query, int key) const {
  if (!m_shown) return {};
  const PooledMap& m = *m_shown;
  const int r = binIndex(m.row_edges, query), c = binIndex(m.col_edges, key);
  const int T = m_shownTrace ? m_shownTrace->n_tokens() : 0;
  if (query < 0 || key < 0 || query >= T || key >= T) return {};
  const auto quoted = [this](int token) {
    return QStringLiteral("\u201c%1\u201d").arg(tokenLabel(token));
  };
  if (r < 0 || c < 0) {
    // Outside the requested range: keys after every visible query.
    return tr("query %1 %2\nkey %3 %4\nafter the query (never attended)")
        .arg(query)
        .arg(quoted(query))
        .arg(key)
        .arg(quoted(key));
  }
  const float v = m.values[static_cast<size_t>(r) * m.cols + c];
  const int q0 = m.row_edges[static_cast<size_t>(r)],
            q1 = m.row_edges[static_cast<size_t>(r) + 1] - 1;
  const int k0 = m.col_edges[static_cast<size_t>(c)],
            k1 = m.col_edges[static_cast<size_t>(c) + 1] - 1;
  if (q0 == q1 && k0 == k1) {
    QString text = tr("query %1 %2\nkey %3 %4\n").arg(q0).arg(quoted(q0)).arg(k0).arg(quoted(k0));
    switch (keyState(q0, k0)) {
      case KeyState::AfterQuery:
        return text + tr("after the query (causal: never attended)");
      case KeyState::Masked:
        return text + tr("masked: the pattern hides this key from the query (p = 0)");
      case KeyState::Evicted:
        return text + tr("evicted from the KV cache at this step (p = 0)");
      case KeyState::Visible:
        break;
    }
    return text + tr("p = %1").arg(double(v), 0, 'g', 4);
  }
  const auto range = [&](int a, int b) {
    return a == b ? QStringLiteral("%1 %2").arg(a).arg(quoted(a))
                  : QStringLiteral("%1\u2013%2 (%3 \u2026 %4)")
                        .arg(a)
                        .arg(b)
                        .arg(quoted(a), quoted(b));
  };
  QString text = tr("queries %1\nkeys %2\n").arg(range(q0, q1), range(k0, k1));
  if (k0 > q1) return text + tr("after the queries (causal: never attended)");
  text += tr("%1 p = %2").arg(m_shownMean ? tr("mean") : tr("max")).arg(double(v), 0, 'g', 4);
  if (m.sampled) text += tr(" (sampled rows)");
  if (q0 <= q1 && key <= query) {
    switch (keyState(query, key)) {
      case KeyState::Masked:
        text += tr("\nunder the cursor: masked by the pattern");
        break;
      case KeyState::Evicted:
        text += tr("\nunder the cursor: evicted from the KV cache");
        break;
      default:
        break;
    }
  }
  return text;
}

void AttentionMapView::onMouseMove(QMouseEvent* event) {
  if (!m_shown || event->buttons() != Qt::NoButton) return;
  const QPointF pos = event->position();
  if (!m_plot->axisRect()->rect().contains(pos.toPoint())) {
    QToolTip::hideText();
    return;
  }
  const int key = static_cast<int>(std::floor(m_plot->xAxis->pixelToCoord(pos.x())));
  const int query = static_cast<int>(std::floor(m_plot->yAxis->pixelToCoord(pos.y())));
  const QString text = cellDescription(query, key);
  showPlotToolTip(*m_plot, pos, text);
  // The row's token is the one being looked at: every other view marks it (as Compare does).
  if (m_session && query >= 0 && query < m_session->nTokens()) {
    m_hoverSetByUs = query;
    selection()->setHoverToken(query);
  }
}

bool AttentionMapView::eventFilter(QObject* watched, QEvent* event) {
  if (watched == m_plot && event->type() == QEvent::Leave) {
    QToolTip::hideText();
    if (m_hoverSetByUs >= 0 && selection()->hoverToken() == m_hoverSetByUs) {
      selection()->setHoverToken(-1);
    }
    m_hoverSetByUs = -1;
  }
  if (watched == m_plot && event->type() == QEvent::Resize)
    scheduleRequest(kDebounceMs);  // resolution follows the size
  return FigureView::eventFilter(watched, event);
}

// ---------------------------------------------------------------------------------------------
// Export

QString AttentionMapView::figureName() const {
  const QString run = m_session ? m_session->traceName(m_shownTraceIndex) : QString();
  return figureFileStem(
      QStringLiteral("attention_L%1_H%2_%3").arg(m_shownLayer).arg(m_shownHead).arg(run));
}

bool AttentionMapView::hasFigure() const {
  return m_shown != nullptr;
}

QString AttentionMapView::exportFigure(const QString& path, const PlotExportOptions& options) {
  if (!m_shown) return tr("%1: there is no attention map to export yet").arg(path);
  PlotExportOptions o = options;
  if (o.title.isEmpty()) o.title = titleText();
  if (m_stack->currentWidget() != m_plot) m_stack->setCurrentWidget(m_plot);
  return exportPlot(*m_plot, path, o);
}

QStringList AttentionMapView::dataFormats() const {
  return {QStringLiteral("csv"), QStringLiteral("json"), QStringLiteral("npy")};
}

QString AttentionMapView::exportData(const QString& path) {
  if (!m_shown) return tr("%1: there is no attention map to export yet").arg(path);
  const PooledMap& m = *m_shown;
  const auto labels = [this](const std::vector<int>& edges, int n, bool exact) {
    std::vector<std::string> out;
    out.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      const int a = edges[static_cast<size_t>(i)], b = edges[static_cast<size_t>(i) + 1] - 1;
      const QString text = exact ? QStringLiteral("%1:%2").arg(a).arg(tokenLabel(a))
                                 : QStringLiteral("%1-%2").arg(a).arg(b);
      out.push_back(text.toStdString());
    }
    return out;
  };
  const std::vector<std::string> rows = labels(m.row_edges, m.rows, m.row_stride == 1);
  const std::vector<std::string> cols = labels(m.col_edges, m.cols, m.col_stride == 1);
  const QString error = errorText(
      [&] { write_matrix(exportFilePath(path), m.rows, m.cols, m.values.data(), rows, cols); });
  return exportError(path, error);
}

}  // namespace attnscope::app
