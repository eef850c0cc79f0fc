// Compare view: see compare_view.h.
#include "compare_view.h"

#include <qcustomplot.h>

#include <QCheckBox>
#include <QComboBox>
#include <QEvent>
#include <QHBoxLayout>
#include <QLabel>
#include <QMouseEvent>
#include <QSplitter>
#include <QStackedWidget>
#include <QTimer>
#include <QToolTip>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <limits>

#include "attnscope/trace_export.h"
#include "compare_data_export.h"
#include "compare_metrics_table.h"
#include "compare_panel.h"
#include "map_service.h"
#include "plot_axes.h"
#include "plot_style.h"
#include "selection_model.h"
#include "session_controller.h"
#include "view_parts.h"

namespace attnscope::app {

namespace {

// Below this inner size an axis rect has not been laid out yet: request a middling resolution.
constexpr int kMinLaidOutPixels = 32;
constexpr int kUnlaidResolution = 256;
// Panel column widths are rebalanced when they would make the maps differ by more than this.
constexpr double kBalanceTolerancePixels = 1.5;
const QString kChannelA = QStringLiteral("compare.a");
const QString kChannelB = QStringLiteral("compare.b");

QString tokenText(const SessionDataPtr& session, int token) {
  if (!session || token < 0 || token >= session->tokenLabels.size()) return QString();
  return session->tokenLabels.at(token);
}

}  // namespace

CompareView::CompareView(const AppContext& context, QWidget* parent) : FigureView(context, parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(6, 6, 6, 6);
  layout->setSpacing(4);

  m_bar = new QWidget(this);
  auto* bar = new QHBoxLayout(m_bar);
  bar->setContentsMargins(0, 0, 0, 0);
  bar->setSpacing(6);
  m_comboA = new QComboBox(this);
  m_comboB = new QComboBox(this);
  for (QComboBox* combo : {m_comboA, m_comboB}) {
    combo->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    combo->setMinimumContentsLength(18);
  }
  m_comboA->setToolTip(tr("Run A: the reference side of the difference"));
  m_comboB->setToolTip(tr("Run B: the difference shows B \u2212 A"));
  m_reduce = new QComboBox(this);
  m_reduce->addItem(tr("max"), int(MapRequest::Max));
  m_reduce->addItem(tr("mean"), int(MapRequest::Mean));
  m_reduce->setToolTip(
      tr("How a cell pools the tokens it covers when the map is larger than the "
         "screen (at one token per cell both give the exact probability)"));
  m_log = new QCheckBox(tr("Log colours"), this);
  m_log->setChecked(true);
  m_log->setToolTip(tr("Logarithmic colour scale for A and B (the difference stays linear)"));
  m_status = new QLabel(this);
  m_status->setTextInteractionFlags(Qt::TextSelectableByMouse);
  bar->addWidget(new QLabel(tr("A:"), this));
  bar->addWidget(m_comboA);
  bar->addWidget(new QLabel(tr("B:"), this));
  bar->addWidget(m_comboB);
  bar->addSpacing(12);
  bar->addWidget(new QLabel(tr("Pooling:"), this));
  bar->addWidget(m_reduce);
  bar->addWidget(m_log);
  bar->addSpacing(12);
  bar->addWidget(m_status, 1);
  layout->addWidget(m_bar);

  m_stack = newFigureStack(this, &m_empty);

  auto* splitter = new QSplitter(Qt::Horizontal, m_stack);
  m_plot = new QCustomPlot(splitter);
  m_plot->setMinimumSize(480, 280);
  m_table = new CompareMetricsTable(splitter);
  splitter->addWidget(m_plot);
  splitter->addWidget(m_table);
  splitter->setStretchFactor(0, 3);
  splitter->setStretchFactor(1, 0);
  splitter->setChildrenCollapsible(false);
  m_stack->addWidget(splitter);
  layout->addWidget(m_stack, 1);

  buildPlot();

  m_refreshTimer = newCoalescingTimer(this, [this] { refresh(); });
  m_refineTimer = new QTimer(this);
  m_refineTimer->setSingleShot(true);
  m_refineTimer->setInterval(kRefineDelayMs);
  connect(m_refineTimer, &QTimer::timeout, this, &CompareView::refineVisible);

  connect(m_comboA, qOverload<int>(&QComboBox::activated), this,
          [this](int index) { selection()->setCompare(index, selection()->compareB()); });
  connect(m_comboB, qOverload<int>(&QComboBox::activated), this,
          [this](int index) { selection()->setCompare(selection()->compareA(), index); });
  connect(m_reduce, qOverload<int>(&QComboBox::activated), this, [this] { scheduleRefresh(); });
  connect(m_log, &QCheckBox::toggled, this, [this] {
    fillColorMaps();
    m_plot->replot();
  });

  SelectionModel* s = selection();
  connect(s, &SelectionModel::boundsChanged, this, &CompareView::scheduleRefresh);
  connect(s, &SelectionModel::layerHeadChanged, this, &CompareView::scheduleRefresh);
  connect(s, &SelectionModel::compareChanged, this, &CompareView::scheduleRefresh);
  connect(s, &SelectionModel::queryTokenChanged, this, [this] {
    updateOverlays();
    replotOverlay(*m_plot);
  });
  connect(s, &SelectionModel::hoverTokenChanged, this, [this] {
    updateOverlays();
    replotOverlay(*m_plot);
  });
  connect(controller(), &SessionController::sessionChanged, this, &CompareView::scheduleRefresh);
  connect(controller(), &SessionController::analysisChanged, this, [this](int index) {
    if (index == selection()->compareA() || index == selection()->compareB()) updateTable();
  });

  applyPalette();
  refresh();
}

// No cancel here: the map service may already be gone (the controller is destroyed before the
// views); a pending answer finds its receiver destroyed and is dropped.
CompareView::~CompareView() = default;

// ---------------------------------------------------------------------------------------------
// Plot construction

void CompareView::buildPlot() {
  m_title = resetLayoutWithTitle(m_plot, font());
  auto* grid = new QCPLayoutGrid;
  m_grid = grid;
  m_plot->plotLayout()->addElement(1, 0, grid);
  m_plot->plotLayout()->setRowStretchFactors({0.001, 1.0});
  grid->setColumnSpacing(8);
  grid->setRowSpacing(0);

  m_probScale = new QCPColorScale(m_plot);
  m_probScale->setType(QCPAxis::atRight);
  m_probScale->setBarWidth(12);
  m_probScale->setGradient(attentionGradient());
  m_probScale->axis()->setLabel(tr("attention probability (A, B)"));
  m_diffScale = new QCPColorScale(m_plot);
  m_diffScale->setType(QCPAxis::atRight);
  m_diffScale->setBarWidth(12);
  m_diffScale->setGradient(differenceGradient());
  m_diffScale->axis()->setLabel(tr("B \u2212 A"));
  setColorScaleLog(m_diffScale, false);

  auto* rows = new QCPMarginGroup(m_plot);
  for (int i = 0; i < 3; ++i) {
    m_panels[i] = ComparePanel::create(m_plot, grid, kPanelColumns[i],
                                       i == 2 ? m_diffScale : m_probScale, rows, i == 0);
    QCPAxis* x = m_panels[i].rect->axis(QCPAxis::atBottom);
    QCPAxis* y = m_panels[i].rect->axis(QCPAxis::atLeft);
    connect(x, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), this,
            [this, x] { syncRange(x, true); });
    connect(y, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), this,
            [this, y] { syncRange(y, false); });
  }
  grid->addElement(1, 2, m_probScale);
  grid->addElement(1, 4, m_diffScale);
  m_probScale->setMarginGroup(QCP::msTop | QCP::msBottom, rows);
  m_diffScale->setMarginGroup(QCP::msTop | QCP::msBottom, rows);
  grid->setColumnStretchFactors({1.0, 1.0, 0.001, 1.0, 0.001});
  grid->setRowStretchFactors({0.001, 1.0});

  m_plot->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
  m_plot->setMouseTracking(true);
  m_plot->installEventFilter(this);
  connect(m_plot, &QCustomPlot::mouseMove, this, &CompareView::onMouseMove);
  connect(m_plot, &QCustomPlot::mousePress, this, &CompareView::onMousePress);
  connect(m_plot, &QCustomPlot::mouseRelease, this, [this](QMouseEvent* event) {
    if (event->button() != Qt::LeftButton || !isClick(m_pressPos, event->position())) return;
    const int panel = panelAt(event->position());
    if (panel < 0 || !m_overview.a) return;
    const QCPAxisRect* rect = m_panels[panel].rect;
    const int query =
        int(std::lround(rect->axis(QCPAxis::atLeft)->pixelToCoord(event->position().y())));
    if (query >= 0 && query < tokenCount()) selection()->setQueryToken(query);
  });
  connect(m_plot, &QCustomPlot::mouseDoubleClick, this, [this](QMouseEvent*) { resetZoom(); });
  rethinTicksOnLayout(m_plot, [this] { updateTicks(); });
  connect(m_plot, &QCustomPlot::afterLayout, this, &CompareView::balancePanelWidths);
}

void CompareView::balancePanelWidths() {
  // Only A labels the (shared) query rows, so its column must be wider by its labels' margin for
  // the three maps to come out the same size: each map column gets the maps' common width plus
  // its own margins.
  double margins[3], outer = 0, sumMargins = 0;
  for (int i = 0; i < 3; ++i) {
    const QCPAxisRect* rect = m_panels[i].rect;
    margins[i] = rect->margins().left() + rect->margins().right();
    outer += rect->outerRect().width();
    sumMargins += margins[i];
  }
  const double inner = (outer - sumMargins) / 3;
  if (inner <= 0) return;
  double largestError = 0;
  for (int i = 0; i < 3; ++i) {
    largestError = std::max(largestError, std::abs(m_panels[i].rect->width() - inner));
  }
  if (largestError <= kBalanceTolerancePixels) return;
  QList<double> factors = m_grid->columnStretchFactors();
  bool changed = false;
  for (int i = 0; i < 3; ++i) {
    const double wanted = (inner + margins[i]) / inner;
    // Where minimum sizes keep the maps apart, the same factors would only replot again.
    changed = changed || std::abs(factors[kPanelColumns[i]] - wanted) > 1e-3;
    factors[kPanelColumns[i]] = wanted;
  }
  if (!changed) return;
  m_grid->setColumnStretchFactors(factors);
  m_plot->replot(QCustomPlot::rpQueuedReplot);
  // The maps' resolution follows their new width.
  if (m_overview.a) m_refineTimer->start();
}

void CompareView::applyPalette() {
  stylePlot(*m_plot, palette());
  updateOverlays();
}

void CompareView::themeChanged() {
  applyPalette();
  m_plot->replot();
}

void CompareView::requestWhenUseful() {
  m_deferred = false;
  if (isVisible() || tokenCount() <= kEagerTokensWhileHidden) {
    // A hidden tab keeps a figure ready (export all) while maps are cheap; a newer request
    // supersedes a waiting one, so stepping through heads queues nothing.
    requestMaps(false);
  } else {
    // Long prompts: the map thread belongs to the views on screen; compute when shown.
    m_deferred = true;
    m_pending = {};
  }
}

void CompareView::showEvent(QShowEvent* event) {
  FigureView::showEvent(event);
  if (m_deferred) requestWhenUseful();
}

void CompareView::resizeEvent(QResizeEvent* event) {
  FigureView::resizeEvent(event);
  // A larger (or smaller) plot wants another resolution; wait until resizing stops.
  if (m_overview.a) m_refineTimer->start();
}

bool CompareView::eventFilter(QObject* watched, QEvent* event) {
  if (watched == m_plot && event->type() == QEvent::Leave) clearHover();
  return FigureView::eventFilter(watched, event);
}

// ---------------------------------------------------------------------------------------------
// State

TracePtr CompareView::traceAt(int index) const {
  return sessionTrace(m_session, index);
}

int CompareView::tokenCount() const {
  if (!m_traceA || !m_traceB) return 0;
  return std::min(m_traceA->n_tokens(), m_traceB->n_tokens());
}

QString CompareView::runLabel(int index) const {
  const TracePtr trace = traceAt(index);
  if (!trace) return QString();
  QString text = m_session->traceName(index);
  if (index > 0 || !trace->variant.is_baseline())
    text = QStringLiteral("%1: %2").arg(index).arg(text);
  if (trace->variant.needs_training()) text += tr(" \u00b7 simulation (needs training)");
  return text;
}

void CompareView::scheduleRefresh() {
  m_refreshTimer->start();
}

void CompareView::fillCombos() {
  const QSignalBlocker blockA(m_comboA);
  const QSignalBlocker blockB(m_comboB);
  m_comboA->clear();
  m_comboB->clear();
  const int n = m_session ? m_session->traceCount() : 0;
  for (int i = 0; i < n; ++i) {
    const QString label = runLabel(i);
    const QString spec = QString::fromStdString(traceAt(i)->variant.to_string());
    for (QComboBox* combo : {m_comboA, m_comboB}) {
      combo->addItem(label);
      combo->setItemData(i, spec, Qt::ToolTipRole);
    }
  }
  m_comboA->setCurrentIndex(n > 0 ? selection()->compareA() : -1);
  m_comboB->setCurrentIndex(n > 0 ? selection()->compareB() : -1);
  m_comboA->setEnabled(n > 0);
  m_comboB->setEnabled(n > 0);
}

QString CompareView::emptyMessage() const {
  if (!m_session || !m_session->hasRun()) {
    return tr(
        "Run a prompt (F5) to compare the attention of two runs.\n\n"
        "Choose runs A and B; the third map shows B \u2212 A for the selected layer and "
        "head, and the table beside it the quality and speed of both.");
  }
  return QString();
}

void CompareView::refresh() {
  const bool hadFigure = hasFigure();
  const SessionDataPtr session = controller()->session();
  const bool newTraces = !session || !m_session || session->traces != m_session->traces;
  m_session = session;
  fillCombos();
  if (!session || !session->hasRun()) {
    maps()->cancel(kChannelA);
    maps()->cancel(kChannelB);
    m_traceA = m_traceB = nullptr;
    m_deferred = false;
    m_overview = m_detail = {};
    m_pending = {};
    m_failure.clear();
    m_empty->setText(emptyMessage());
    m_stack->setCurrentIndex(0);
    m_bar->setVisible(false);
    m_status->clear();
    m_table->setRows({}, false);
    if (hadFigure != hasFigure()) emit figureChanged();
    return;
  }
  m_stack->setCurrentIndex(1);
  m_bar->setVisible(true);
  const TracePtr a = traceAt(selection()->compareA());
  const TracePtr b = traceAt(selection()->compareB());
  const int layer = selection()->layer();
  const int head = selection()->head();
  const auto reduce = static_cast<MapRequest::Reduce>(m_reduce->currentData().toInt());
  const bool changed = a != m_traceA || b != m_traceB || layer != m_layer || head != m_head ||
                       reduce != m_reduceMode;
  m_traceA = a;
  m_traceB = b;
  m_layer = layer;
  m_head = head;
  m_reduceMode = reduce;
  if (newTraces) resetZoom();
  if (changed || newTraces) {
    // The maps shown belong to the previous choice: drop them (hover must not report them) but
    // keep their picture until the new ones arrive, so stepping through heads does not flicker.
    m_overview = m_detail = {};
    m_failure.clear();
    requestWhenUseful();
  }
  updateTitles();
  updateTable();
  updateOverlays();
  m_plot->replot();
  if (hadFigure != hasFigure()) emit figureChanged();
}

bool CompareView::hasFigure() const {
  return m_overview.a != nullptr && m_overview.b != nullptr && m_overview.diff != nullptr;
}

PooledMapPtr CompareView::mapA() const {
  return m_detail.a ? m_detail.a : m_overview.a;
}
PooledMapPtr CompareView::mapB() const {
  return m_detail.b ? m_detail.b : m_overview.b;
}
PooledMapPtr CompareView::difference() const {
  return m_detail.diff ? m_detail.diff : m_overview.diff;
}

// ---------------------------------------------------------------------------------------------
// Maps

void CompareView::requestMaps(bool detail) {
  const int T = tokenCount();
  if (!m_traceA || !m_traceB || T <= 0) return;
  const QCPAxisRect* rect = m_panels[0].rect;
  MapRequest request;
  request.layer = m_layer;
  request.head = m_head;
  request.reduce = m_reduceMode;
  request.apply_kv = true;
  request.q_begin = 0;
  request.q_end = T;
  request.k_begin = 0;
  request.k_end = T;
  if (detail) {
    // Every token that overlaps the visible area: token j covers [j - 0.5, j + 0.5].
    const QCPRange xr = rect->axis(QCPAxis::atBottom)->range();
    const QCPRange yr = rect->axis(QCPAxis::atLeft)->range();
    const auto first = [T](double lo) {
      return std::clamp(int(std::floor(lo - 0.5)) + 1, 0, T - 1);
    };
    const auto end = [T](double hi) { return std::clamp(int(std::ceil(hi + 0.5)), 1, T); };
    request.k_begin = first(xr.lower);
    request.k_end = std::max(request.k_begin + 1, end(xr.upper));
    request.q_begin = first(yr.lower);
    request.q_end = std::max(request.q_begin + 1, end(yr.upper));
  }
  // The same request for A and B: same ranges, same resolution, hence the same bins.
  request.out_cols = resolutionFor(request.k_end - request.k_begin, rect->width());
  request.out_rows = resolutionFor(request.q_end - request.q_begin, rect->height());

  m_pending = {};
  m_pending.id = ++m_nextRequestId;
  m_pending.request = request;
  m_pending.detail = detail;
  const quint64 id = m_pending.id;
  const auto deliver = [this, id](bool isA, const PooledMapPtr& map) {
    if (id != m_pending.id) return;
    (isA ? m_pending.a : m_pending.b) = map;
    if (m_pending.a && m_pending.b) {
      const Pending done = m_pending;
      m_pending = {};
      install(done);
    }
  };
  const auto fail = [this, id](const QString& message) {
    if (id != m_pending.id) return;
    m_pending = {};
    m_failure = message;
    if (!m_overview.a) {
      // Nothing valid to show for this choice: clear the old picture too.
      for (ComparePanel& p : m_panels) {
        p.overview->data()->clear();
        p.detail->setVisible(false);
      }
    }
    updateTitles();
    m_plot->replot();
  };
  maps()->request(
      kChannelA, m_traceA, request, this,
      [deliver](const PooledMapPtr& map) { deliver(true, map); }, fail);
  maps()->request(
      kChannelB, m_traceB, request, this,
      [deliver](const PooledMapPtr& map) { deliver(false, map); }, fail);
  updateTitles();
}

void CompareView::install(const Pending& pending) {
  const bool hadFigure = hasFigure();
  MapSet set{pending.a, pending.b, nullptr};
  const QString error = errorText(
      [&] { set.diff = std::make_shared<PooledMap>(difference_map(*pending.a, *pending.b)); });
  if (!error.isEmpty()) {
    m_failure = error;
    updateTitles();
    m_plot->replot();
    return;
  }
  m_failure.clear();
  m_lastRequest = pending.request;
  if (pending.detail) {
    m_detail = set;
  } else {
    m_overview = set;
    if (!zoomed()) m_detail = {};
  }
  fillColorMaps();
  updateTitles();
  updateOverlays();
  m_plot->replot();
  if (hadFigure != hasFigure()) emit figureChanged();
  // Chain: a fresh overview under a zoomed view wants its detail; a detail that arrived while
  // its overview was superseded wants the overview back (for panning outside the detail).
  if (!pending.detail && zoomed()) {
    m_refineTimer->start();
  } else if (pending.detail && !m_overview.a) {
    requestMaps(false);
  }
}

int CompareView::resolutionFor(int tokens, int pixels) const {
  const int cells =
      pixels >= kMinLaidOutPixels ? std::min(pixels, kMaxMapCells) : kUnlaidResolution;
  return std::max(1, std::min(tokens, cells));
}

bool CompareView::zoomed() const {
  const int T = tokenCount();
  if (T <= 0) return false;
  const QCPRange xr = m_panels[0].rect->axis(QCPAxis::atBottom)->range();
  const QCPRange yr = m_panels[0].rect->axis(QCPAxis::atLeft)->range();
  const double full = T;  // [-0.5, T - 0.5]
  return xr.size() < full - 0.5 || yr.size() < full - 0.5;
}

void CompareView::refineVisible() {
  if (!m_traceA || !m_traceB) return;
  if (!zoomed()) {
    const bool hadDetail = m_detail.a != nullptr;
    m_detail = {};
    // The overview may have been computed for another plot size.
    const QCPAxisRect* rect = m_panels[0].rect;
    const int wantCols = resolutionFor(tokenCount(), rect->width());
    const int wantRows = resolutionFor(tokenCount(), rect->height());
    if (!m_overview.a || m_overview.a->cols != wantCols || m_overview.a->rows != wantRows) {
      requestMaps(false);
    } else if (hadDetail) {
      fillColorMaps();
      m_plot->replot();
    }
    return;
  }
  // Zoomed in: worth a request only where the overview pooled several tokens per cell.
  if (m_overview.a && m_overview.a->row_stride <= 1 && m_overview.a->col_stride <= 1) {
    m_detail = {};
    return;
  }
  requestMaps(true);
}

void CompareView::updateScales() {
  // A and B share one scale, so equal colours mean equal probabilities; the difference has its
  // own, symmetric around 0 (white).
  double top = 0, minPositive = std::numeric_limits<double>::infinity(), extreme = 0;
  for (const MapSet* set : {&m_overview, &m_detail}) {
    for (const PooledMapPtr& m : {set->a, set->b}) {
      if (!m) continue;
      for (float v : m->values) {
        if (!std::isfinite(v)) continue;
        top = std::max(top, double(v));
        if (v > 0) minPositive = std::min(minPositive, double(v));
      }
    }
    if (set->diff) {
      for (float v : set->diff->values) {
        if (std::isfinite(v)) extreme = std::max(extreme, std::abs(double(v)));
      }
    }
  }
  if (top <= 0) top = 1.0;
  const bool useLog = m_log->isChecked();
  setColorScaleLog(m_probScale, useLog);
  if (useLog) {
    const double floor = std::isfinite(minPositive) ? std::max(minPositive, top * kLogFloorRatio)
                                                    : top * kLogFloorRatio;
    m_probScale->setDataRange(QCPRange(std::min(floor, top * 0.999), top));
  } else {
    m_probScale->setDataRange(QCPRange(0, top));
  }
  if (extreme <= 0) extreme = 1e-6;  // identical maps: everything white
  m_diffScale->setDataRange(QCPRange(-extreme, extreme));
}

void CompareView::fillColorMaps() {
  updateScales();
  const MapSet* sets[2] = {&m_overview, &m_detail};
  for (int i = 0; i < 3; ++i) {
    ComparePanel& p = m_panels[i];
    const auto pick = [i](const MapSet& s) { return i == 0 ? s.a : i == 1 ? s.b : s.diff; };
    // A and B share the log floor of their scale; the difference is linear.
    const double floor = i < 2 && m_log->isChecked() ? m_probScale->dataRange().lower : 0.0;
    ComparePanel::fill(p.overview, pick(*sets[0]).get(), floor);
    const PooledMapPtr detail = pick(*sets[1]);
    ComparePanel::fill(p.detail, detail.get(), floor);
    p.detail->setVisible(detail != nullptr);
  }
}

// ---------------------------------------------------------------------------------------------
// Titles, table, overlays, ticks

void CompareView::updateTitles() {
  if (!m_session || !m_session->hasRun()) return;
  const int a = selection()->compareA(), b = selection()->compareB();
  QString title = tr("Layer %1, head %2").arg(m_layer).arg(m_head);
  const QString model = QString::fromStdString(m_traceA ? m_traceA->model.name : std::string());
  if (!model.isEmpty()) title = model + QStringLiteral(" \u00b7 ") + title;
  title += tr(" \u2014 %1 tokens").arg(tokenCount());
  const PooledMapPtr shown = mapA();
  if (shown && (shown->row_stride > 1 || shown->col_stride > 1)) {
    title += tr(" (up to %1\u00d7%2 tokens per cell, %3)")
                 .arg(shown->row_stride)
                 .arg(shown->col_stride)
                 .arg(m_reduceMode == MapRequest::Max ? tr("max") : tr("mean"));
  }
  // Panel titles stay short (a long run name would widen its column); the names go below.
  title += QStringLiteral("\nA: %1     B: %2").arg(runLabel(a), runLabel(b));
  m_title->setText(title);
  m_panels[0].title->setText(QStringLiteral("A"));
  m_panels[1].title->setText(QStringLiteral("B"));
  m_panels[2].title->setText(tr("B \u2212 A"));

  QString status;
  if (!m_failure.isEmpty()) {
    status = tr("Cannot compute the maps: %1").arg(m_failure);
  } else if (m_pending.id != 0 || m_deferred) {
    status = tr("computing\u2026");
  } else if (a == b) {
    status = tr("A and B are the same run: choose another run to compare");
  } else if (m_traceA && m_traceB && m_traceA->n_tokens() != m_traceB->n_tokens()) {
    status = tr("the runs hold %1 and %2 tokens: comparing the first %3")
                 .arg(m_traceA->n_tokens())
                 .arg(m_traceB->n_tokens())
                 .arg(tokenCount());
  }
  m_status->setText(status);
}

DataTable CompareView::metricTable() const {
  return compareMetricTable(m_table->rows());
}

void CompareView::updateTable() {
  if (!m_traceA || !m_traceB) {
    m_table->setRows({}, false);
    return;
  }
  const auto headMetrics = [this](int index, const TracePtr& trace) -> const HeadMetrics* {
    const TraceAnalysisPtr analysis = controller()->analysis(index);
    if (!analysis || analysis->trace != trace || !analysis->hasMetrics()) return nullptr;
    if (m_layer < 0 || m_layer >= analysis->nLayers || m_head < 0 || m_head >= analysis->nHeads) {
      return nullptr;
    }
    return &analysis->metrics(m_layer, m_head);
  };
  m_table->setRows(compareMetricRows(*m_traceA, *m_traceB, m_layer, m_head,
                                     headMetrics(selection()->compareA(), m_traceA),
                                     headMetrics(selection()->compareB(), m_traceB)),
                   controller()->isAnalysing());
}

void CompareView::updateOverlays() {
  ComparePanel::Marks marks;
  marks.tokens = tokenCount();
  // The mouse's own row is the crosshair here; bands mark a token hovered in another view.
  marks.hoverToken = m_hoverFromHere ? -1 : selection()->hoverToken();
  marks.queryToken = selection()->queryToken();
  marks.crossQuery = m_hoverQuery;
  marks.crossKey = m_hoverKey;
  for (ComparePanel& p : m_panels) p.placeMarks(marks, palette());
}

void CompareView::updateTicks() {
  const QStringList labels = m_session ? m_session->tokenLabels : QStringList();
  for (ComparePanel& p : m_panels) p.updateTicks(tokenCount(), labels);
}

// ---------------------------------------------------------------------------------------------
// Zoom, hover, click

void CompareView::syncRange(QCPAxis* source, bool horizontal) {
  if (m_syncing) return;
  const int T = std::max(1, tokenCount());
  // Zooming out stops at the whole map; panning stops at its edges.
  const QCPRange range = clampedRange(source->range(), -0.5, T - 0.5);
  m_syncing = true;
  for (ComparePanel& p : m_panels) {
    QCPAxis* axis = p.rect->axis(horizontal ? QCPAxis::atBottom : QCPAxis::atLeft);
    if (axis->range() != range) axis->setRange(range);
  }
  m_syncing = false;
  if (m_overview.a) m_refineTimer->start();
}

void CompareView::resetZoom() {
  const int T = std::max(1, tokenCount());
  m_syncing = true;
  for (ComparePanel& p : m_panels) {
    p.rect->axis(QCPAxis::atBottom)->setRange(-0.5, T - 0.5);
    p.rect->axis(QCPAxis::atLeft)->setRange(-0.5, T - 0.5);
  }
  m_syncing = false;
  if (m_detail.a) {
    m_detail = {};
    fillColorMaps();
  }
  m_plot->replot();
}

int CompareView::panelAt(const QPointF& pos) const {
  for (int i = 0; i < 3; ++i) {
    if (m_panels[i].rect->rect().contains(pos.toPoint())) return i;
  }
  return -1;
}

bool CompareView::binOf(const PooledMap& map, int query, int key, int* row, int* col) {
  *row = binIndex(map.row_edges, query);
  *col = binIndex(map.col_edges, key);
  return *row >= 0 && *col >= 0;
}

QString CompareView::cellText(int query, int key) const {
  const int T = tokenCount();
  if (!m_overview.a || query < 0 || key < 0 || query >= T || key >= T) return QString();
  const MapSet& set = [&]() -> const MapSet& {
    int r = 0, c = 0;
    if (m_detail.a && binOf(*m_detail.a, query, key, &r, &c)) return m_detail;
    return m_overview;
  }();
  int r = 0, c = 0;
  if (!binOf(*set.a, query, key, &r, &c)) return QString();
  const PooledMap& m = *set.a;
  const int q0 = m.row_edges[static_cast<size_t>(r)], q1 = m.row_edges[static_cast<size_t>(r) + 1];
  const int k0 = m.col_edges[static_cast<size_t>(c)], k1 = m.col_edges[static_cast<size_t>(c) + 1];
  const size_t cell = static_cast<size_t>(r) * m.cols + c;
  const double a = set.a->values[cell], b = set.b->values[cell], d = set.diff->values[cell];
  QString text;
  if (q1 - q0 == 1 && k1 - k0 == 1) {
    text = tr("query %1 \u201c%2\u201d\nkey %3 \u201c%4\u201d\n")
               .arg(q0)
               .arg(tokenText(m_session, q0))
               .arg(k0)
               .arg(tokenText(m_session, k0));
    if (k0 > q0) return text + tr("key after query: causally hidden");
  } else {
    text = tr("queries %1\u2013%2 (from \u201c%3\u201d)\nkeys %4\u2013%5 (from \u201c%6\u201d)\n%7 "
              "of the cell\n")
               .arg(q0)
               .arg(q1 - 1)
               .arg(tokenText(m_session, q0))
               .arg(k0)
               .arg(k1 - 1)
               .arg(tokenText(m_session, k0))
               .arg(m_reduceMode == MapRequest::Max ? tr("max") : tr("mean"));
    if (k0 > q1 - 1) return text + tr("keys after queries: causally hidden");
  }
  const auto p = [](double v) { return QString::number(v, 'g', 4); };
  text += tr("A: %1\nB: %2\nB \u2212 A: %3%4")
              .arg(p(a), p(b), d > 0 ? QStringLiteral("+") : QString(), p(d));
  return text;
}

void CompareView::onMouseMove(QMouseEvent* event) {
  if (event->buttons() != Qt::NoButton) return;  // dragging: no tooltip
  const int panel = panelAt(event->position());
  if (panel < 0 || !m_overview.a) {
    clearHover();
    return;
  }
  const QCPAxisRect* rect = m_panels[panel].rect;
  const int key =
      int(std::lround(rect->axis(QCPAxis::atBottom)->pixelToCoord(event->position().x())));
  const int query =
      int(std::lround(rect->axis(QCPAxis::atLeft)->pixelToCoord(event->position().y())));
  const QString text = cellText(query, key);
  if (text.isEmpty()) {
    clearHover();
    return;
  }
  if (query != m_hoverQuery || key != m_hoverKey) {
    m_hoverQuery = query;
    m_hoverKey = key;
    m_hoverFromHere = true;
    selection()->setHoverToken(query);  // the row's token: where this attention comes from
    updateOverlays();
    replotOverlay(*m_plot);
  }
  QToolTip::showText(m_plot->mapToGlobal(event->position().toPoint()), text, m_plot);
}

void CompareView::onMousePress(QMouseEvent* event) {
  m_pressPos = event->position();
}

void CompareView::clearHover() {
  if (m_hoverQuery < 0 && !m_hoverFromHere) return;
  m_hoverQuery = m_hoverKey = -1;
  if (m_hoverFromHere) {
    m_hoverFromHere = false;
    selection()->setHoverToken(-1);
  }
  QToolTip::hideText();
  updateOverlays();
  replotOverlay(*m_plot);
}

// ---------------------------------------------------------------------------------------------
// Export

QString CompareView::figureName() const {
  if (!m_session || !m_session->hasRun()) return QStringLiteral("compare");
  return figureFileStem(QStringLiteral("compare_L%1_H%2_%3_vs_%4")
                            .arg(m_layer)
                            .arg(m_head)
                            .arg(m_session->traceName(selection()->compareA()),
                                 m_session->traceName(selection()->compareB())));
}

QString CompareView::exportFigure(const QString& path, const PlotExportOptions& options) {
  if (!hasFigure()) return tr("%1: there is no comparison to export yet").arg(path);
  const PlotExportOptions o = plotExportOptions(options, *this, *m_plot, m_title->text());
  // The crosshair follows the mouse; it is not part of a figure.
  const int hq = m_hoverQuery, hk = m_hoverKey;
  m_hoverQuery = m_hoverKey = -1;
  updateOverlays();
  const QString error = exportPlot(*m_plot, path, o);
  m_hoverQuery = hq;
  m_hoverKey = hk;
  updateOverlays();
  m_plot->replot();
  return error;
}

QStringList CompareView::dataFormats() const {
  return {QStringLiteral("npy"), QStringLiteral("csv"), QStringLiteral("json")};
}

QString CompareView::exportData(const QString& path) {
  if (!hasFigure()) return tr("%1: there is no comparison to export yet").arg(path);
  const PooledMapPtr a = mapA(), b = mapB(), diff = difference();
  const QString error = errorText([&] {
    writeCompareData(path.toStdString(), *a, *b, *diff, m_session->tokenLabels, metricTable());
  });
  return exportError(path, error);
}

}  // namespace attnscope::app
