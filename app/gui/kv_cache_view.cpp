// KV cache view: see kv_cache_view.h.
#include "kv_cache_view.h"

#include <qcustomplot.h>

#include <QComboBox>
#include <QEvent>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QMouseEvent>
#include <QStackedWidget>
#include <QTimer>
#include <QToolTip>
#include <QVBoxLayout>
#include <QWidget>
#include <algorithm>
#include <cmath>
#include <limits>

#include "attnscope/trace_export.h"
#include "kv_cache_plot.h"
#include "plot_axes.h"
#include "plot_style.h"
#include "selection_model.h"
#include "session_controller.h"
#include "token_labels.h"
#include "view_parts.h"

namespace attnscope::app {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

QString tokenAt(const SessionDataPtr& session, const TracePtr& trace, int position) {
  if (session && position >= 0 && position < session->tokenLabels.size()) {
    return session->tokenLabels.at(position);
  }
  if (trace && position >= 0 && position < static_cast<int>(trace->token_texts.size())) {
    return tokenDisplayText(trace->token_texts[static_cast<size_t>(position)]);
  }
  return QString();
}

}  // namespace

KvCacheView::KvCacheView(const AppContext& context, QWidget* parent) : FigureView(context, parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(6, 6, 6, 6);
  layout->setSpacing(4);
  m_bar = new QWidget(this);
  auto* bar = new QHBoxLayout(m_bar);
  bar->setContentsMargins(0, 0, 0, 0);
  m_kvCombo = new QComboBox(this);
  m_kvCombo->setSizeAdjustPolicy(QComboBox::AdjustToContents);
  m_kvCombo->setToolTip(
      tr("KV head whose cache is shown (default: the one the selected query "
         "head reads)"));
  m_info = new QLabel(this);
  m_info->setTextInteractionFlags(Qt::TextSelectableByMouse);
  bar->addWidget(new QLabel(tr("KV head:"), this));
  bar->addWidget(m_kvCombo);
  bar->addSpacing(12);
  bar->addWidget(m_info, 1);
  layout->addWidget(m_bar);

  m_stack = newFigureStack(this, &m_empty);
  m_plot = new QCustomPlot(m_stack);
  m_plot->setMinimumSize(420, 320);
  m_stack->addWidget(m_plot);
  layout->addWidget(m_stack, 1);

  buildPlot();

  m_refreshTimer = newCoalescingTimer(this, [this] { refresh(); });
  connect(m_kvCombo, qOverload<int>(&QComboBox::activated), this, [this](int index) {
    m_userKvHead = index;
    refresh();
  });

  SelectionModel* s = selection();
  connect(s, &SelectionModel::boundsChanged, this, &KvCacheView::scheduleRefresh);
  connect(s, &SelectionModel::layerHeadChanged, this, [this] {
    m_userKvHead = -1;
    scheduleRefresh();
  });
  connect(s, &SelectionModel::traceChanged, this, [this] {
    m_userKvHead = -1;
    scheduleRefresh();
  });
  connect(s, &SelectionModel::decodeStepChanged, this, [this] {
    if (!m_trace) return;
    updateLayerBudgets();
    updateOverlays();
    updateTitle();
    m_plot->replot();
  });
  connect(s, &SelectionModel::hoverTokenChanged, this, [this] {
    updateOverlays();
    replotOverlay(*m_plot);
  });
  connect(controller(), &SessionController::sessionChanged, this, &KvCacheView::scheduleRefresh);

  applyPalette();
  refresh();
}

KvCacheView::~KvCacheView() = default;

// ---------------------------------------------------------------------------------------------
// Plot construction

void KvCacheView::buildPlot() {
  m_fig = KvCachePlot::build(m_plot, font());
  QCPAxis* mx = m_fig.mapRect->axis(QCPAxis::atBottom);
  QCPAxis* my = m_fig.mapRect->axis(QCPAxis::atLeft);
  QCPAxis* ky = m_fig.keptRect->axis(QCPAxis::atLeft);
  connect(my, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), this, [this, my, ky] {
    if (m_syncing) return;
    clampAxisRange(my, -0.5, std::max(1, m_steps) - 0.5);
    m_syncing = true;
    ky->setRange(my->range());
    m_syncing = false;
  });
  connect(ky, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), this, [this, my, ky] {
    if (m_syncing) return;
    clampAxisRange(ky, -0.5, std::max(1, m_steps) - 0.5);
    m_syncing = true;
    my->setRange(ky->range());
    m_syncing = false;
  });
  connect(mx, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), this,
          [this, mx] { clampAxisRange(mx, -0.5, std::max(1, m_positions) - 0.5); });

  m_plot->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
  m_plot->setMouseTracking(true);
  m_plot->installEventFilter(this);
  connect(m_plot, &QCustomPlot::mouseMove, this, &KvCacheView::onMouseMove);
  connect(m_plot, &QCustomPlot::mousePress, this,
          [this](QMouseEvent* event) { m_pressPos = event->position(); });
  connect(m_plot, &QCustomPlot::mouseRelease, this, &KvCacheView::onMouseRelease);
  connect(m_plot, &QCustomPlot::mouseDoubleClick, this, [this](QMouseEvent*) { resetZoom(); });
  rethinTicksOnLayout(m_plot, [this] { updateTicks(); });
}

void KvCacheView::applyPalette() {
  stylePlot(*m_plot, palette());
  const QPalette pal = palette();
  m_fig.applyPalette(pal);
  updateOverlays();
}

void KvCacheView::themeChanged() {
  applyPalette();
  m_plot->replot();
}

bool KvCacheView::eventFilter(QObject* watched, QEvent* event) {
  if (watched == m_plot && event->type() == QEvent::Leave) clearHover();
  return FigureView::eventFilter(watched, event);
}

// ---------------------------------------------------------------------------------------------
// State

void KvCacheView::scheduleRefresh() {
  m_refreshTimer->start();
}

QString KvCacheView::runName() const {
  if (!m_session || m_traceIndex < 0) return QString();
  QString name = m_session->traceName(m_traceIndex);
  if (m_trace && m_trace->variant.needs_training()) name += tr(" (simulation, needs training)");
  return name;
}

const KvStep* KvCacheView::stepAt(int step) const {
  if (!m_trace || step < 0 || step >= static_cast<int>(m_trace->kv_steps.size())) return nullptr;
  const auto& layers = m_trace->kv_steps[static_cast<size_t>(step)];
  if (m_layer < 0 || m_layer >= static_cast<int>(layers.size())) return nullptr;
  return &layers[static_cast<size_t>(m_layer)];
}

int KvCacheView::shownStep() const {
  const int step = selection()->decodeStep();
  return step >= 0 && step < m_steps ? step : m_steps - 1;
}

void KvCacheView::showEmpty(const QString& message) {
  const bool hadFigure = hasFigure();
  m_emptyMessage = message;
  m_trace = nullptr;
  m_builtTrace = nullptr;
  m_builtLayer = m_builtKvHead = -1;
  m_steps = m_positions = 0;
  m_kvHead = -1;
  m_fig.reasonMap->data()->clear();
  m_empty->setText(message);
  m_stack->setCurrentIndex(0);
  m_bar->setVisible(false);
  m_info->clear();
  const QSignalBlocker block(m_kvCombo);
  m_kvCombo->clear();
  m_kvCombo->setEnabled(false);
  if (hadFigure) emit figureChanged();
}

void KvCacheView::refresh() {
  m_session = controller()->session();
  if (!m_session || !m_session->hasRun()) {
    m_traceIndex = -1;
    showEmpty(
        tr("Run a prompt (F5) with decode steps and a KV policy (for example "
           "kv=snapkv) to see which cache entries every decode step keeps, and why."));
    return;
  }
  m_traceIndex = std::clamp(selection()->trace(), 0, m_session->traceCount() - 1);
  const TracePtr trace = m_session->traces[static_cast<size_t>(m_traceIndex)];
  // model.n_layer, not n_layer(): a trace opened without Q/K still has its KV decisions.
  m_layer = std::clamp(selection()->layer(), 0, std::max(0, trace->model.n_layer - 1));
  m_head = selection()->head();
  const QString name = m_session->traceName(m_traceIndex);
  if (trace->variant.kv.name == "full" || trace->variant.kv.name.empty()) {
    // Point at the runs of this session that do have decisions.
    QStringList withPolicy;
    for (int i = 0; i < m_session->traceCount(); ++i) {
      const Trace& t = *m_session->traces[static_cast<size_t>(i)];
      if (t.variant.kv.name != "full" && !t.kv_steps.empty()) {
        withPolicy << QStringLiteral("%1: %2").arg(i).arg(m_session->traceName(i));
      }
    }
    const QString choose =
        withPolicy.isEmpty()
            ? tr("Add a variant with a KV policy (for example kv=snapkv or kv=streamingllm) and "
                 "run with decode steps.")
            : tr("Runs of this session with KV decisions: %1. Choose one in the selection bar.")
                  .arg(withPolicy.join(QStringLiteral(", ")));
    showEmpty(tr("\u201c%1\u201d keeps the full KV cache (KV policy \u201cfull\u201d): nothing is "
                 "evicted.\n\n%2")
                  .arg(name, choose));
    return;
  }
  if (trace->kv_steps.empty()) {
    showEmpty(tr("\u201c%1\u201d has no KV decisions: it was run without decode steps.\n\n"
                 "Set decode steps in the Variants panel and run again (F5): the policy decides "
                 "what to keep at every decoded token.")
                  .arg(name));
    return;
  }
  m_trace = trace;
  const KvStep* first = stepAt(0);
  if (!first || first->reasons.empty()) {
    showEmpty(tr("\u201c%1\u201d records no KV decisions for layer %2.").arg(name).arg(m_layer));
    m_trace = nullptr;
    return;
  }
  m_emptyMessage.clear();
  m_steps = static_cast<int>(m_trace->kv_steps.size());
  m_positions = 0;
  for (int s = 0; s < m_steps; ++s) {
    if (const KvStep* k = stepAt(s)) {
      for (const auto& r : k->reasons)
        m_positions = std::max(m_positions, static_cast<int>(r.size()));
    }
  }
  fillKvCombo();
  const bool hadFigure = m_stack->currentIndex() == 1;
  m_stack->setCurrentIndex(1);
  m_bar->setVisible(true);
  rebuildImage();
  updateSeries();
  updateLayerBudgets();
  updateTitle();
  updateOverlays();
  m_plot->replot();
  if (!hadFigure) emit figureChanged();
}

void KvCacheView::fillKvCombo() {
  const KvStep* first = stepAt(0);
  const int nKv = first ? static_cast<int>(first->reasons.size()) : 0;
  // The KV head the selected query head reads; pooled groupings may have fewer heads than the
  // allocation names, hence the clamp.
  int defaultKv = 0;
  if (m_layer < static_cast<int>(m_trace->groups.size())) {
    const GroupStep& g = m_trace->groups[static_cast<size_t>(m_layer)];
    if (m_head >= 0 && m_head < static_cast<int>(g.kv_of_query.size())) {
      defaultKv = g.kv_of_query[static_cast<size_t>(m_head)];
    }
  }
  defaultKv = std::clamp(defaultKv, 0, std::max(0, nKv - 1));
  m_kvHead = m_userKvHead >= 0 && m_userKvHead < nKv ? m_userKvHead : defaultKv;
  const QSignalBlocker block(m_kvCombo);
  m_kvCombo->clear();
  for (int kv = 0; kv < nKv; ++kv) {
    QStringList readers;
    if (m_layer < static_cast<int>(m_trace->groups.size())) {
      const GroupStep& g = m_trace->groups[static_cast<size_t>(m_layer)];
      for (size_t h = 0; h < g.kv_of_query.size(); ++h) {
        if (g.kv_of_query[h] == kv) readers << QString::number(h);
      }
    }
    m_kvCombo->addItem(
        readers.isEmpty()
            ? tr("%1 (no query head)").arg(kv)
            : tr("%1 (query heads %2)").arg(kv).arg(readers.join(QStringLiteral(", "))));
  }
  m_kvCombo->setCurrentIndex(m_kvHead);
  m_kvCombo->setEnabled(nKv > 1);
}

void KvCacheView::rebuildImage() {
  if (m_builtTrace == m_trace && m_builtLayer == m_layer && m_builtKvHead == m_kvHead) return;
  const bool sameShape = m_builtTrace == m_trace;
  m_builtTrace = m_trace;
  m_builtLayer = m_layer;
  m_builtKvHead = m_kvHead;
  ++m_imageBuilds;
  QCPColorMapData* cells = m_fig.reasonMap->data();
  cells->setSize(std::max(1, m_positions), std::max(1, m_steps));
  cells->setRange(indexCellCentres(m_positions), indexCellCentres(m_steps));
  cells->fill(kNaN);
  for (int s = 0; s < m_steps; ++s) {
    const KvStep* k = stepAt(s);
    if (!k || m_kvHead >= static_cast<int>(k->reasons.size())) continue;
    const std::vector<uint8_t>& reasons = k->reasons[static_cast<size_t>(m_kvHead)];
    const int n = std::min(static_cast<int>(reasons.size()), m_positions);
    for (int p = 0; p < n; ++p) {
      const int reason = std::min<int>(reasons[static_cast<size_t>(p)], kKvReasonCount - 1);
      cells->setCell(p, s, categoryCellValue(reason));
    }
  }
  m_fig.reasonMap->setDataRange(QCPRange(0, kKvReasonCount - 1));
  if (!sameShape) resetZoom();
}

void KvCacheView::updateSeries() {
  QVector<double> steps, kept, budgets, lost, lostMean;
  int maxCount = 1;
  double maxLost = 0;
  for (int s = 0; s < m_steps; ++s) {
    const KvStep* k = stepAt(s);
    if (!k) continue;
    steps << s;
    const auto kvh = static_cast<size_t>(m_kvHead);
    int count = 0;
    if (kvh < k->reasons.size()) {
      for (uint8_t r : k->reasons[kvh]) count += r != 0 ? 1 : 0;
    }
    kept << count;
    const double budget = kvh < k->budgets.size() ? k->budgets[kvh] : kNaN;
    budgets << budget;
    maxCount = std::max({maxCount, count, std::isfinite(budget) ? int(budget) : 0});
    const double l = kvh < k->lost_mass.size() ? double(k->lost_mass[kvh]) : kNaN;
    lost << l;
    double sum = 0;
    int n = 0;
    for (float m : k->lost_mass) {
      if (std::isfinite(m)) {
        sum += m;
        ++n;
      }
    }
    lostMean << (n > 0 ? sum / n : kNaN);
    if (std::isfinite(l)) maxLost = std::max(maxLost, l);
    if (n > 0) maxLost = std::max(maxLost, sum / n);
  }
  m_fig.keptGraph->setData(steps, kept, true);
  m_fig.budgetGraph->setData(steps, budgets, true);
  m_fig.lostGraph->setData(steps, lost, true);
  m_fig.lostMeanGraph->setData(steps, lostMean, true);
  m_fig.lostGraph->setName(tr("KV head %1").arg(m_kvHead));
  m_fig.keptRect->axis(QCPAxis::atBottom)->setRange(0, maxCount * 1.08 + 1);
  m_fig.lostRect->axis(QCPAxis::atBottom)->setRange(-0.5, std::max(1, m_steps) - 0.5);
  // Head room above the curves for the legend in the top right corner.
  m_fig.lostRect->axis(QCPAxis::atLeft)->setRange(0, maxLost > 0 ? maxLost * 1.5 : 1e-3);
}

void KvCacheView::updateLayerBudgets() {
  const int step = shownStep();
  QVector<double> layers, budgets, selectedKey, selectedValue;
  double top = 1;
  if (m_trace && step >= 0 && step < m_steps) {
    const auto& all = m_trace->kv_steps[static_cast<size_t>(step)];
    for (size_t l = 0; l < all.size(); ++l) {
      const KvStep& k = all[l];
      if (k.budgets.empty()) continue;
      // The selected KV head's budget where the layer has it (pooled groupings: fewer heads).
      const size_t kvh = std::min(static_cast<size_t>(std::max(0, m_kvHead)), k.budgets.size() - 1);
      const double b = k.budgets[kvh];
      top = std::max(top, b);
      if (static_cast<int>(l) == m_layer) {
        selectedKey << double(l);
        selectedValue << b;
      } else {
        layers << double(l);
        budgets << b;
      }
    }
  }
  m_fig.layerBars->setData(layers, budgets, true);
  m_fig.layerBarSelected->setData(selectedKey, selectedValue, true);
  const int nLayers =
      m_trace ? static_cast<int>(m_trace->kv_steps.empty() ? 0 : m_trace->kv_steps.front().size())
              : 0;
  m_fig.budgetRect->axis(QCPAxis::atBottom)->setRange(-0.6, std::max(1, nLayers) - 0.4);
  m_fig.budgetRect->axis(QCPAxis::atLeft)->setRange(0, top * 1.12);
  m_fig.budgetRect->axis(QCPAxis::atBottom)->setLabel(tr("layer (budgets at step %1)").arg(step));
}

void KvCacheView::updateTitle() {
  if (!m_trace) return;
  const int step = shownStep();
  const KvStep* k = stepAt(step);
  QString title = tr("%1 \u00b7 layer %2, KV head %3").arg(runName()).arg(m_layer).arg(m_kvHead);
  title += tr(" \u2014 %1 decode steps, cache up to %2 positions").arg(m_steps).arg(m_positions);
  m_fig.title->setText(title);
  QString info;
  if (const PartSpec* part = find_part(PartKind::Kv, m_trace->variant.kv.name)) {
    info = QString::fromStdString(part->title);
  }
  if (k) {
    const auto kvh = static_cast<size_t>(m_kvHead);
    int count = 0;
    if (kvh < k->reasons.size()) {
      for (uint8_t r : k->reasons[kvh]) count += r != 0 ? 1 : 0;
    }
    info += tr("  \u00b7  step %1: kept %2 of %3 positions, budget %4, lost mass %5")
                .arg(step)
                .arg(count)
                .arg(kvh < k->reasons.size() ? k->reasons[kvh].size() : 0)
                .arg(kvh < k->budgets.size() ? QString::number(k->budgets[kvh])
                                             : QStringLiteral("\u2014"))
                .arg(kvh < k->lost_mass.size() ? QString::number(k->lost_mass[kvh], 'g', 4)
                                               : QStringLiteral("\u2014"));
  }
  m_info->setText(info);
}

void KvCacheView::updateOverlays() {
  const QPalette pal = palette();
  QColor fill = pal.color(QPalette::Highlight);
  fill.setAlpha(70);
  const QColor text = pal.color(QPalette::WindowText);
  // The mouse's own column is left out of exports; a token hovered in another view stays.
  const int hover = m_exporting && m_hoverFromHere ? -1 : selection()->hoverToken();
  const bool showHover = m_trace && hover >= 0 && hover < m_positions;
  m_fig.hoverColumn->setVisible(showHover);
  m_fig.hoverColumn->setPen(QPen(pal.color(QPalette::Highlight), 1));
  m_fig.hoverColumn->setBrush(fill);
  if (showHover) {
    m_fig.hoverColumn->topLeft->setCoords(hover - 0.5, -0.5);
    m_fig.hoverColumn->bottomRight->setCoords(hover + 0.5, m_steps - 0.5);
  }
  const int step = shownStep();
  const bool showStep = m_trace && step >= 0 && step < m_steps;
  m_fig.stepRow->setVisible(showStep);
  m_fig.stepRow->setPen(QPen(text, 1.5));
  m_fig.stepRow->setBrush(Qt::NoBrush);
  m_fig.keptStepLine->setVisible(showStep);
  m_fig.lostStepLine->setVisible(showStep);
  QColor line = text;
  line.setAlpha(140);
  m_fig.keptStepLine->setPen(QPen(line, 1, Qt::DashLine));
  m_fig.lostStepLine->setPen(QPen(line, 1, Qt::DashLine));
  if (showStep) {
    m_fig.stepRow->topLeft->setCoords(-0.5, step - 0.5);
    m_fig.stepRow->bottomRight->setCoords(m_positions - 0.5, step + 0.5);
    m_fig.keptStepLine->point1->setCoords(0, step);
    m_fig.keptStepLine->point2->setCoords(1, step);
    m_fig.lostStepLine->point1->setCoords(step, 0);
    m_fig.lostStepLine->point2->setCoords(step, 1);
  }
}

void KvCacheView::updateTicks() {
  m_fig.xTicks->clear();
  m_fig.yTicks->clear();
  if (!m_trace) return;
  setTokenTicks(*m_fig.xTicks, m_fig.mapRect->axis(QCPAxis::atBottom), m_positions,
                m_fig.mapRect->width(), [this](int p) { return tokenAt(m_session, m_trace, p); });
  // Steps are named by the token they decoded.
  for (int s :
       thinnedTicks(m_fig.mapRect->axis(QCPAxis::atLeft), m_steps, m_fig.mapRect->height())) {
    const KvStep* k = stepAt(s);
    const QString token = k ? elideLabel(tokenAt(m_session, m_trace, k->position)) : QString();
    m_fig.yTicks->addTick(s, QStringLiteral("%1 %2").arg(s).arg(token));
  }
}

void KvCacheView::resetZoom() {
  m_fig.mapRect->axis(QCPAxis::atBottom)->setRange(-0.5, std::max(1, m_positions) - 0.5);
  m_fig.mapRect->axis(QCPAxis::atLeft)->setRange(-0.5, std::max(1, m_steps) - 0.5);
  m_fig.lostRect->axis(QCPAxis::atBottom)->setRange(-0.5, std::max(1, m_steps) - 0.5);
  m_plot->replot();
}

// ---------------------------------------------------------------------------------------------
// Hover and click

int KvCacheView::reasonAt(int step, int position) const {
  if (!m_trace || step < 0 || step >= m_steps || position < 0 || position >= m_positions) return -1;
  const double v = m_fig.reasonMap->data()->cell(position, step);
  return std::isfinite(v) ? int(std::floor(v)) : -1;
}

QString KvCacheView::cellText(int step, int position) const {
  const KvStep* k = stepAt(step);
  if (!k || position < 0 || position >= m_positions) return QString();
  const auto kvh = static_cast<size_t>(m_kvHead);
  QString text = tr("step %1 (decoding position %2 \u201c%3\u201d)\nposition %4 \u201c%5\u201d\n")
                     .arg(step)
                     .arg(k->position)
                     .arg(tokenAt(m_session, m_trace, k->position))
                     .arg(position)
                     .arg(tokenAt(m_session, m_trace, position));
  const int reason = reasonAt(step, position);
  if (reason < 0) {
    text +=
        tr("not cached yet (the cache holds positions 0\u2013%1 at this step)").arg(k->position);
  } else {
    text += kvReasonLabel(reason);
  }
  if (kvh < k->lost_mass.size()) {
    text += tr("\nlost mass at this step: %1 (KV head %2)")
                .arg(k->lost_mass[kvh], 0, 'g', 4)
                .arg(m_kvHead);
  }
  if (kvh < k->budgets.size()) text += tr("\nbudget: %1 tokens").arg(k->budgets[kvh]);
  return text;
}

void KvCacheView::onMouseMove(QMouseEvent* event) {
  if (event->buttons() != Qt::NoButton || !m_trace) return;
  const QPointF pos = event->position();
  QString text;
  int hoverPosition = -1;
  if (m_fig.mapRect->rect().contains(pos.toPoint())) {
    const int p = int(std::lround(m_fig.mapRect->axis(QCPAxis::atBottom)->pixelToCoord(pos.x())));
    const int s = int(std::lround(m_fig.mapRect->axis(QCPAxis::atLeft)->pixelToCoord(pos.y())));
    text = cellText(s, p);
    if (!text.isEmpty()) hoverPosition = p;
  } else if (m_fig.keptRect->rect().contains(pos.toPoint()) ||
             m_fig.lostRect->rect().contains(pos.toPoint())) {
    const bool kept = m_fig.keptRect->rect().contains(pos.toPoint());
    const int s =
        int(std::lround(kept ? m_fig.keptRect->axis(QCPAxis::atLeft)->pixelToCoord(pos.y())
                             : m_fig.lostRect->axis(QCPAxis::atBottom)->pixelToCoord(pos.x())));
    if (const KvStep* k = stepAt(s)) {
      const auto kvh = static_cast<size_t>(m_kvHead);
      const double kc =
          s < m_fig.keptGraph->dataCount() ? (m_fig.keptGraph->data()->begin() + s)->value : kNaN;
      const double mean = s < m_fig.lostMeanGraph->dataCount()
                              ? (m_fig.lostMeanGraph->data()->begin() + s)->value
                              : kNaN;
      text = tr("step %1 (position %2 \u201c%3\u201d)\nkept %4 entries, budget %5\nlost mass: %6 "
                "(KV head %7), "
                "layer mean %8")
                 .arg(s)
                 .arg(k->position)
                 .arg(tokenAt(m_session, m_trace, k->position))
                 .arg(kc)
                 .arg(kvh < k->budgets.size() ? QString::number(k->budgets[kvh])
                                              : QStringLiteral("\u2014"))
                 .arg(kvh < k->lost_mass.size() ? QString::number(k->lost_mass[kvh], 'g', 4)
                                                : QStringLiteral("\u2014"))
                 .arg(m_kvHead)
                 .arg(QString::number(mean, 'g', 4));
    }
  } else if (m_fig.budgetRect->rect().contains(pos.toPoint())) {
    const int l =
        int(std::lround(m_fig.budgetRect->axis(QCPAxis::atBottom)->pixelToCoord(pos.x())));
    const int step = shownStep();
    if (step >= 0 && l >= 0 &&
        l < static_cast<int>(m_trace->kv_steps[static_cast<size_t>(step)].size())) {
      const KvStep& k = m_trace->kv_steps[static_cast<size_t>(step)][static_cast<size_t>(l)];
      if (!k.budgets.empty()) {
        const size_t kvh =
            std::min(static_cast<size_t>(std::max(0, m_kvHead)), k.budgets.size() - 1);
        text = tr("layer %1 at step %2: budget %3 tokens (KV head %4)\nclick to select the layer")
                   .arg(l)
                   .arg(step)
                   .arg(k.budgets[kvh])
                   .arg(kvh);
      }
    }
  }
  if (hoverPosition != m_hoverPosition || m_hoverFromHere != (hoverPosition >= 0)) {
    m_hoverPosition = hoverPosition;
    m_hoverFromHere = hoverPosition >= 0;
    selection()->setHoverToken(hoverPosition);
    updateOverlays();
    replotOverlay(*m_plot);
  }
  showPlotToolTip(*m_plot, pos, text);
}

void KvCacheView::onMouseRelease(QMouseEvent* event) {
  if (!m_trace || event->button() != Qt::LeftButton || !isClick(m_pressPos, event->position())) {
    return;
  }
  const QPointF pos = event->position();
  int step = -1;
  if (m_fig.mapRect->rect().contains(pos.toPoint())) {
    step = int(std::lround(m_fig.mapRect->axis(QCPAxis::atLeft)->pixelToCoord(pos.y())));
  } else if (m_fig.keptRect->rect().contains(pos.toPoint())) {
    step = int(std::lround(m_fig.keptRect->axis(QCPAxis::atLeft)->pixelToCoord(pos.y())));
  } else if (m_fig.lostRect->rect().contains(pos.toPoint())) {
    step = int(std::lround(m_fig.lostRect->axis(QCPAxis::atBottom)->pixelToCoord(pos.x())));
  } else if (m_fig.budgetRect->rect().contains(pos.toPoint())) {
    const int l =
        int(std::lround(m_fig.budgetRect->axis(QCPAxis::atBottom)->pixelToCoord(pos.x())));
    if (l >= 0 && l < m_trace->model.n_layer) selection()->setLayer(l);
    return;
  }
  if (step >= 0 && step < m_steps) selection()->setDecodeStep(step);
}

void KvCacheView::clearHover() {
  QToolTip::hideText();
  if (!m_hoverFromHere) return;
  m_hoverFromHere = false;
  m_hoverPosition = -1;
  selection()->setHoverToken(-1);
  updateOverlays();
  replotOverlay(*m_plot);
}

// ---------------------------------------------------------------------------------------------
// Export

bool KvCacheView::hasFigure() const {
  return m_trace != nullptr && m_emptyMessage.isEmpty() && m_steps > 0;
}

QString KvCacheView::figureName() const {
  if (!hasFigure()) return QStringLiteral("kv_cache");
  return figureFileStem(QStringLiteral("kv_L%1_KV%2_%3")
                            .arg(m_layer)
                            .arg(m_kvHead)
                            .arg(m_session->traceName(m_traceIndex)));
}

QString KvCacheView::exportFigure(const QString& path, const PlotExportOptions& options) {
  if (!hasFigure())
    return tr("%1: there is no KV cache figure to export (%2)")
        .arg(path, m_emptyMessage.section(QLatin1Char('\n'), 0, 0));
  const PlotExportOptions o = plotExportOptions(options, *this, *m_plot, m_fig.title->text());
  m_exporting = true;
  updateOverlays();
  const QString error = exportPlot(*m_plot, path, o);
  m_exporting = false;
  updateOverlays();
  m_plot->replot();
  return error;
}

QStringList KvCacheView::dataFormats() const {
  return {QStringLiteral("csv"), QStringLiteral("json"), QStringLiteral("npy")};
}

QString KvCacheView::exportData(const QString& path) {
  if (!hasFigure()) return tr("%1: there is no KV cache data to export").arg(path);
  const QString suffix = QFileInfo(path).suffix().toLower();
  const std::filesystem::path out = path.toStdString();
  const QString error = errorText([&] {
    if (suffix == QLatin1String("npy")) {
      std::vector<float> values(static_cast<size_t>(m_steps) * m_positions, -1.0f);
      for (int s = 0; s < m_steps; ++s) {
        for (int p = 0; p < m_positions; ++p) {
          values[static_cast<size_t>(s) * m_positions + p] = static_cast<float>(reasonAt(s, p));
        }
      }
      write_matrix(out, m_steps, m_positions, values.data());
    } else {
      TraceExportOptions options;
      options.layer = m_layer;
      options.head = m_kvHead;
      export_trace_data(*m_trace, ExportWhat::Kv,
                        suffix == QLatin1String("json") ? ExportFormat::Json : ExportFormat::Csv,
                        out, options, path.toStdString());
    }
  });
  return exportError(path, error);
}

}  // namespace attnscope::app
