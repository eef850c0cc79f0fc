// Query groups view: see query_groups_view.h.
#include "query_groups_view.h"

#include <qcustomplot.h>

#include <QEvent>
#include <QFileInfo>
#include <QLabel>
#include <QMouseEvent>
#include <QStackedWidget>
#include <QTimer>
#include <QToolTip>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <limits>

#include "attnscope/trace_export.h"
#include "plot_axes.h"
#include "plot_style.h"
#include "selection_model.h"
#include "session_controller.h"
#include "token_labels.h"
#include "view_parts.h"

namespace attnscope::app {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// KV heads named in the legend; beyond this the axis and tooltips say which colour is which.
constexpr int kMaxLegendHeads = 12;

// An inactive (SQA) query head's cell: its KV head's colour, greyed, so the allocation stays
// readable while the head is visibly switched off.
QColor greyed(const QColor& color) {
  return mixColors(QColor(0xc8, 0xc8, 0xc8), color, 0.3);
}

// Categories 0 .. nKv-1 = KV heads (seriesColor), nKv .. 2 nKv-1 = the same heads, read by an
// inactive query head (greyed).
QCPColorGradient categoryGradient(int nKv) {
  std::vector<QColor> colors;
  for (int i = 0; i < 2 * nKv; ++i)
    colors.push_back(i < nKv ? seriesColor(i) : greyed(seriesColor(i - nKv)));
  return categoricalGradient(colors);
}

QString joinHeads(const std::vector<int>& heads) {
  QStringList parts;
  for (int h : heads) parts << QString::number(h);
  return parts.join(QStringLiteral(", "));
}

}  // namespace

QueryGroupsView::QueryGroupsView(const AppContext& context, QWidget* parent)
    : FigureView(context, parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(6, 6, 6, 6);
  layout->setSpacing(4);
  m_summary = new QLabel(this);
  m_summary->setWordWrap(true);
  m_summary->setTextInteractionFlags(Qt::TextSelectableByMouse);
  layout->addWidget(m_summary);
  m_stack = newFigureStack(this, &m_empty);
  m_plot = new QCustomPlot(m_stack);
  m_plot->setMinimumSize(420, 320);
  m_stack->addWidget(m_plot);
  layout->addWidget(m_stack, 1);

  buildPlot();

  m_refreshTimer = newCoalescingTimer(this, [this] { refresh(); });
  SelectionModel* s = selection();
  connect(s, &SelectionModel::boundsChanged, this, &QueryGroupsView::scheduleRefresh);
  connect(s, &SelectionModel::traceChanged, this, &QueryGroupsView::scheduleRefresh);
  connect(s, &SelectionModel::layerHeadChanged, this, [this](int layer) {
    if (layer != m_layer || !m_trace) {
      scheduleRefresh();
      return;
    }
    // Same layer, another head: only the marks move.
    m_head = selection()->head();
    updateOverlays();
    m_plot->replot();
  });
  connect(s, &SelectionModel::decodeStepChanged, this, [this] {
    updateOverlays();
    replotOverlay(*m_plot);
  });
  connect(s, &SelectionModel::hoverTokenChanged, this, [this] {
    updateOverlays();
    replotOverlay(*m_plot);
  });
  connect(controller(), &SessionController::sessionChanged, this,
          &QueryGroupsView::scheduleRefresh);

  applyPalette();
  refresh();
}

QueryGroupsView::~QueryGroupsView() = default;

// ---------------------------------------------------------------------------------------------
// Plot construction

void QueryGroupsView::buildPlot() {
  m_title = resetLayoutWithTitle(m_plot, font());
  auto* top = new QCPLayoutGrid;
  m_plot->plotLayout()->addElement(1, 0, top);
  m_legend = addCentredLegendRow(m_plot, 2);
  m_legend->setWrap(kMaxLegendHeads + 1);
  m_bottom = new QCPLayoutGrid;
  m_plot->plotLayout()->addElement(3, 0, m_bottom);
  m_plot->plotLayout()->setRowStretchFactors({0.001, 1.0, 0.001, 1.0});
  m_plot->plotLayout()->setRowSpacing(6);

  const auto makeRect = [this](const QString& xLabel, const QString& yLabel) {
    auto* rect = newAxisRect(m_plot);
    rect->axis(QCPAxis::atBottom)->setLabel(xLabel);
    rect->axis(QCPAxis::atLeft)->setLabel(yLabel);
    rect->axis(QCPAxis::atBottom)->setSubTicks(false);
    rect->axis(QCPAxis::atLeft)->setSubTicks(false);
    rect->setRangeDrag(Qt::Orientations());
    rect->setRangeZoom(Qt::Orientations());
    return rect;
  };
  m_matrixRect = makeRect(tr("KV head"), tr("query head"));
  m_normsRect = makeRect(tr("KV head"), tr("key norm"));
  m_sizesRect = makeRect(tr("KV head"), tr("query heads in group"));
  m_overviewRect = makeRect(tr("layer"), tr("query head"));
  m_stepsRect = makeRect(tr("decode step (decoded token)"), tr("query head"));
  // Each panel under a short title saying what it shows (row 0 of its grid; the rects in row 1).
  QFont panelFont = font();
  panelFont.setWeight(QFont::DemiBold);
  const auto panelTitle = [&](const QString& text) {
    return new QCPTextElement(m_plot, text, panelFont);
  };
  top->addElement(0, 0, panelTitle(tr("allocation: query head \u2192 KV head")));
  top->addElement(0, 1, panelTitle(tr("key norm per KV head")));
  top->addElement(0, 2, panelTitle(tr("query heads per KV head")));
  top->addElement(1, 0, m_matrixRect);
  top->addElement(1, 1, m_normsRect);
  top->addElement(1, 2, m_sizesRect);
  top->setColumnStretchFactors({1.2, 1.0, 1.0});
  top->setRowStretchFactors({0.001, 1.0});
  top->setRowSpacing(0);
  m_bottom->addElement(0, 0, panelTitle(tr("allocation in every layer")));
  m_stepsTitle = panelTitle(tr("allocation over decode steps"));
  m_bottom->addElement(0, 1, m_stepsTitle);
  m_bottom->addElement(1, 0, m_overviewRect);
  m_bottom->addElement(1, 1, m_stepsRect);
  m_bottom->setRowStretchFactors({0.001, 1.0});
  m_bottom->setRowSpacing(0);
  auto* rows = new QCPMarginGroup(m_plot);
  for (QCPAxisRect* r : {m_matrixRect, m_normsRect, m_sizesRect})
    r->setMarginGroup(QCP::msTop | QCP::msBottom, rows);
  auto* bottomRows = new QCPMarginGroup(m_plot);
  for (QCPAxisRect* r : {m_overviewRect, m_stepsRect})
    r->setMarginGroup(QCP::msTop | QCP::msBottom, bottomRows);
  auto* lefts = new QCPMarginGroup(m_plot);
  m_matrixRect->setMarginGroup(QCP::msLeft, lefts);
  m_overviewRect->setMarginGroup(QCP::msLeft, lefts);

  const auto ticker = [](QCPAxis* axis, QSharedPointer<QCPAxisTickerText>& t) {
    t.reset(new QCPAxisTickerText);
    axis->setTicker(t);
  };
  ticker(m_matrixRect->axis(QCPAxis::atLeft), m_matrixY);
  ticker(m_matrixRect->axis(QCPAxis::atBottom), m_matrixX);
  ticker(m_overviewRect->axis(QCPAxis::atBottom), m_overviewX);
  ticker(m_overviewRect->axis(QCPAxis::atLeft), m_overviewY);
  ticker(m_stepsRect->axis(QCPAxis::atBottom), m_stepsX);
  ticker(m_stepsRect->axis(QCPAxis::atLeft), m_stepsY);
  m_barsX.reset(new QCPAxisTickerText);
  m_normsRect->axis(QCPAxis::atBottom)->setTicker(m_barsX);
  m_sizesRect->axis(QCPAxis::atBottom)->setTicker(m_barsX);
  m_stepsRect->axis(QCPAxis::atBottom)->setTickLabelRotation(90);
  for (QCPAxisRect* r : {m_matrixRect, m_overviewRect, m_stepsRect}) {
    r->axis(QCPAxis::atLeft)->setRangeReversed(true);  // head 0 at the top
  }
  m_normsRect->axis(QCPAxis::atLeft)->grid()->setVisible(true);
  m_sizesRect->axis(QCPAxis::atLeft)->grid()->setVisible(true);
  m_sizesRect->axis(QCPAxis::atLeft)->setTicker(QSharedPointer<QCPAxisTickerFixed>::create());
  m_sizesRect->axis(QCPAxis::atLeft)
      ->ticker()
      .staticCast<QCPAxisTickerFixed>()
      ->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);

  m_matrixMap = addCellMap(m_matrixRect);
  m_overviewMap = addCellMap(m_overviewRect);
  m_stepsMap = addCellMap(m_stepsRect);

  m_noNorms = addAxisRectNote(m_plot, m_normsRect, 0.5, 0.45);
  m_noNorms->setText(tr("no key norms:\nonly key-driven groupings\n(KDGQA, DGQA) compute them"));

  m_matrixRow = addOverlayRect(m_plot, m_matrixRect);
  m_overviewLayerMark = addOverlayRect(m_plot, m_overviewRect);
  m_overviewCellMark = addOverlayRect(m_plot, m_overviewRect);
  m_stepMark = addOverlayRect(m_plot, m_stepsRect);
  m_stepHover = addOverlayRect(m_plot, m_stepsRect);

  m_plot->setMouseTracking(true);
  m_plot->installEventFilter(this);
  connect(m_plot, &QCustomPlot::mouseMove, this, &QueryGroupsView::onMouseMove);
  connect(m_plot, &QCustomPlot::mousePress, this,
          [this](QMouseEvent* event) { m_pressPos = event->position(); });
  connect(m_plot, &QCustomPlot::mouseRelease, this, &QueryGroupsView::onMouseRelease);
  rethinTicksOnLayout(m_plot, [this] { updateTicks(); });
}

void QueryGroupsView::applyPalette() {
  stylePlot(*m_plot, palette());
  m_noNorms->setColor(palette().color(QPalette::PlaceholderText));
  updateOverlays();
}

void QueryGroupsView::themeChanged() {
  applyPalette();
  m_plot->replot();
}

bool QueryGroupsView::eventFilter(QObject* watched, QEvent* event) {
  if (watched == m_plot && event->type() == QEvent::Leave) {
    QToolTip::hideText();
    if (selection()->hoverToken() >= 0 && m_showSteps) selection()->setHoverToken(-1);
  }
  return FigureView::eventFilter(watched, event);
}

// ---------------------------------------------------------------------------------------------
// State

void QueryGroupsView::scheduleRefresh() {
  m_refreshTimer->start();
}

QString QueryGroupsView::runName() const {
  return m_session && m_traceIndex >= 0 ? m_session->traceName(m_traceIndex) : QString();
}

const GroupStep* QueryGroupsView::groupsAt(int layer) const {
  if (!m_trace || layer < 0 || layer >= static_cast<int>(m_trace->groups.size())) return nullptr;
  return &m_trace->groups[static_cast<size_t>(layer)];
}

const GroupStep* QueryGroupsView::stepGroupsAt(int step) const {
  if (!m_trace || step < 0 || step >= static_cast<int>(m_trace->group_steps.size())) return nullptr;
  const auto& layers = m_trace->group_steps[static_cast<size_t>(step)];
  if (m_layer < 0 || m_layer >= static_cast<int>(layers.size())) return nullptr;
  return &layers[static_cast<size_t>(m_layer)];
}

bool QueryGroupsView::isActive(const GroupStep& groups, int queryHead) const {
  if (groups.active_query_heads.empty()) return true;
  return std::binary_search(groups.active_query_heads.begin(), groups.active_query_heads.end(),
                            queryHead);
}

void QueryGroupsView::showEmpty(const QString& message) {
  const bool hadFigure = hasFigure();
  m_emptyMessage = message;
  m_trace = nullptr;
  m_empty->setText(message);
  m_summary->clear();
  m_summary->setVisible(false);
  m_stack->setCurrentIndex(0);
  if (hadFigure) emit figureChanged();
}

QString QueryGroupsView::titleText() const {
  if (!m_trace) return QString();
  const PartConfig& grouping = m_trace->variant.grouping;
  const PartSpec* part = find_part(PartKind::Grouping, grouping.name);
  QString name = part ? QString::fromStdString(part->title) : QString::fromStdString(grouping.name);
  QStringList params;
  for (const auto& [key, value] : grouping.params) {
    params << QStringLiteral("%1=%2").arg(QString::fromStdString(key),
                                          QString::fromStdString(value));
  }
  if (!params.isEmpty()) name += QStringLiteral(": ") + params.join(QStringLiteral(", "));
  QString title = tr("%1 \u00b7 layer %2 \u2014 %3 query heads on %4 KV heads")
                      .arg(runName())
                      .arg(m_layer)
                      .arg(m_nHeads)
                      .arg(m_nKv);
  if (part && part->label.find("simulation") != std::string::npos) {
    title += QStringLiteral(" \u00b7 ") + QString::fromStdString(part->label);
  } else if (m_trace->variant.needs_training()) {
    title += tr(" \u00b7 simulation (needs training)");
  }
  // The grouping part and its parameters on a line of their own (they can be long).
  return title + QStringLiteral("\n") + tr("grouping: %1").arg(name);
}

void QueryGroupsView::refresh() {
  m_session = controller()->session();
  if (!m_session || !m_session->hasRun()) {
    m_traceIndex = -1;
    showEmpty(
        tr("Run a prompt (F5) to see which KV head every query head reads.\n\n"
           "Key-driven groupings (grouping=kdgqa, grouping=dgqa) reallocate query heads by "
           "key norms; SQA keeps fewer query heads."));
    return;
  }
  m_traceIndex = std::clamp(selection()->trace(), 0, m_session->traceCount() - 1);
  m_trace = m_session->traces[static_cast<size_t>(m_traceIndex)];
  if (m_trace->groups.empty()) {
    showEmpty(tr("\u201c%1\u201d records no query-head allocation.").arg(runName()));
    return;
  }
  m_nLayers = static_cast<int>(m_trace->groups.size());
  m_layer = std::clamp(selection()->layer(), 0, m_nLayers - 1);
  m_head = selection()->head();
  m_nHeads = m_trace->model.n_head;
  const GroupStep& g = m_trace->groups[static_cast<size_t>(m_layer)];
  m_nHeads = std::max(m_nHeads, static_cast<int>(g.kv_of_query.size()));
  m_nKv = std::max(1, g.n_kv);
  m_nSteps = static_cast<int>(m_trace->group_steps.size());
  const std::string& grouping = m_trace->variant.grouping.name;
  bool varies = false;
  for (int s = 0; s < m_nSteps && !varies; ++s) {
    const GroupStep* step = stepGroupsAt(s);
    varies = step && step->kv_of_query != g.kv_of_query;
  }
  m_showSteps = m_nSteps > 0 && (varies || grouping == "dgqa" || grouping == "kdgqa");
  if (m_showSteps != m_stepsInLayout) {
    if (m_showSteps) {
      m_bottom->addElement(0, 1, m_stepsTitle);
      m_bottom->addElement(1, 1, m_stepsRect);
    } else {
      m_bottom->take(m_stepsTitle);
      m_bottom->take(m_stepsRect);
      m_bottom->simplify();
    }
    // Detached elements would still draw where they were.
    m_stepsRect->setVisible(m_showSteps);
    m_stepsTitle->setVisible(m_showSteps);
    m_stepsInLayout = m_showSteps;
  }
  m_bottom->setColumnStretchFactors(m_showSteps ? QList<double>{1.0, 1.4} : QList<double>{1.0});

  const bool hadFigure = hasFigure();
  m_emptyMessage.clear();
  m_stack->setCurrentIndex(1);
  // Every map shares one categorical scale: colour = KV head index, grey = inactive head.
  int categories = m_nKv;
  for (const GroupStep& layer : m_trace->groups) categories = std::max(categories, layer.n_kv);
  for (const auto& step : m_trace->group_steps) {
    for (const GroupStep& layer : step) categories = std::max(categories, layer.n_kv);
  }
  for (QCPColorMap* map : {m_matrixMap, m_overviewMap, m_stepsMap}) {
    map->setGradient(categoryGradient(categories));
    map->setDataRange(QCPRange(0, 2 * categories - 1));
    map->setProperty("inactiveLevel", categories);
  }
  fillMatrix();
  fillBars();
  fillOverview();
  fillSteps();
  updateLegend();
  m_title->setText(titleText());
  const PartSpec* part = find_part(PartKind::Grouping, grouping);
  QString summary = part ? QString::fromStdString(part->summary) : QString();
  if (!g.active_query_heads.empty()) {
    summary += tr(" Active query heads in layer %1: %2 (grey: output zeroed).")
                   .arg(m_layer)
                   .arg(joinHeads(g.active_query_heads));
  }
  m_summary->setText(summary);
  m_summary->setVisible(!summary.isEmpty());
  updateOverlays();
  m_plot->replot();
  if (!hadFigure) emit figureChanged();
}

// ---------------------------------------------------------------------------------------------
// Filling

void QueryGroupsView::fillMatrix() {
  const GroupStep& g = *groupsAt(m_layer);
  const int inactive = m_matrixMap->property("inactiveLevel").toInt();
  QCPColorMapData* cells = m_matrixMap->data();
  cells->setSize(m_nKv, m_nHeads);
  cells->setRange(indexCellCentres(m_nKv), indexCellCentres(m_nHeads));
  cells->fill(kNaN);
  for (int h = 0; h < m_nHeads && h < static_cast<int>(g.kv_of_query.size()); ++h) {
    const int kv = g.kv_of_query[static_cast<size_t>(h)];
    if (kv < 0 || kv >= m_nKv) continue;
    cells->setCell(kv, h, categoryCellValue(isActive(g, h) ? kv : inactive + kv));
  }
  m_matrixRect->axis(QCPAxis::atBottom)->setRange(-0.5, m_nKv - 0.5);
  m_matrixRect->axis(QCPAxis::atLeft)->setRange(-0.5, m_nHeads - 0.5);
}

std::vector<double> QueryGroupsView::keyNormBars() const {
  const GroupStep* g = groupsAt(m_layer);
  if (!g) return {};
  return std::vector<double>(g->key_norms.begin(), g->key_norms.end());
}

std::vector<double> QueryGroupsView::groupSizeBars() const {
  const GroupStep* g = groupsAt(m_layer);
  if (!g) return {};
  std::vector<double> sizes(static_cast<size_t>(m_nKv), 0.0);
  for (int kv : g->kv_of_query) {
    if (kv >= 0 && kv < m_nKv) sizes[static_cast<size_t>(kv)] += 1.0;
  }
  return sizes;
}

void QueryGroupsView::fillBars() {
  // One bar object per KV head, so each bar carries its head's colour.
  for (auto* list : {&m_normBars, &m_sizeBars}) {
    for (QCPBars* bars : *list) m_plot->removePlottable(bars);
    list->clear();
  }
  const std::vector<double> norms = keyNormBars();
  const std::vector<double> sizes = groupSizeBars();
  const auto addBar = [](QCPAxisRect* rect, int kv, double value) {
    auto* bars = new QCPBars(rect->axis(QCPAxis::atBottom), rect->axis(QCPAxis::atLeft));
    const QColor color = seriesColor(kv);
    bars->setWidth(0.7);
    bars->setBrush(color);
    bars->setPen(QPen(color.darker(130)));
    bars->setSelectable(QCP::stNone);
    bars->addData(kv, value);
    return bars;
  };
  double topNorm = 0, topSize = 1;
  for (int kv = 0; kv < m_nKv; ++kv) {
    if (static_cast<size_t>(kv) < norms.size()) {
      m_normBars.push_back(addBar(m_normsRect, kv, norms[static_cast<size_t>(kv)]));
      topNorm = std::max(topNorm, norms[static_cast<size_t>(kv)]);
    }
    m_sizeBars.push_back(addBar(m_sizesRect, kv, sizes[static_cast<size_t>(kv)]));
    topSize = std::max(topSize, sizes[static_cast<size_t>(kv)]);
  }
  m_noNorms->setVisible(norms.empty());
  for (QCPAxisRect* rect : {m_normsRect, m_sizesRect})
    rect->axis(QCPAxis::atBottom)->setRange(-0.6, m_nKv - 0.4);
  m_normsRect->axis(QCPAxis::atLeft)->setRange(0, topNorm > 0 ? topNorm * 1.12 : 1.0);
  m_sizesRect->axis(QCPAxis::atLeft)->setRange(0, topSize + 0.6);
  m_normsRect->axis(QCPAxis::atLeft)->setTickLabels(!norms.empty());
}

void QueryGroupsView::fillOverview() {
  const int inactive = m_overviewMap->property("inactiveLevel").toInt();
  QCPColorMapData* cells = m_overviewMap->data();
  cells->setSize(m_nLayers, m_nHeads);
  cells->setRange(indexCellCentres(m_nLayers), indexCellCentres(m_nHeads));
  cells->fill(kNaN);
  for (int l = 0; l < m_nLayers; ++l) {
    const GroupStep& g = m_trace->groups[static_cast<size_t>(l)];
    for (int h = 0; h < m_nHeads && h < static_cast<int>(g.kv_of_query.size()); ++h) {
      const int kv = g.kv_of_query[static_cast<size_t>(h)];
      if (kv < 0) continue;
      cells->setCell(l, h, categoryCellValue(isActive(g, h) ? kv : inactive + kv));
    }
  }
  m_overviewRect->axis(QCPAxis::atBottom)->setRange(-0.5, m_nLayers - 0.5);
  m_overviewRect->axis(QCPAxis::atLeft)->setRange(-0.5, m_nHeads - 0.5);
}

void QueryGroupsView::fillSteps() {
  QCPColorMapData* cells = m_stepsMap->data();
  if (!m_showSteps) {
    cells->clear();
    return;
  }
  const int inactive = m_stepsMap->property("inactiveLevel").toInt();
  cells->setSize(m_nSteps, m_nHeads);
  cells->setRange(indexCellCentres(m_nSteps), indexCellCentres(m_nHeads));
  cells->fill(kNaN);
  for (int s = 0; s < m_nSteps; ++s) {
    const GroupStep* g = stepGroupsAt(s);
    if (!g) continue;
    for (int h = 0; h < m_nHeads && h < static_cast<int>(g->kv_of_query.size()); ++h) {
      const int kv = g->kv_of_query[static_cast<size_t>(h)];
      if (kv < 0) continue;
      cells->setCell(s, h, categoryCellValue(isActive(*g, h) ? kv : inactive + kv));
    }
  }
  m_stepsRect->axis(QCPAxis::atBottom)->setRange(-0.5, m_nSteps - 0.5);
  m_stepsRect->axis(QCPAxis::atLeft)->setRange(-0.5, m_nHeads - 0.5);
}

void QueryGroupsView::updateLegend() {
  for (QCPBars* swatch : m_swatches) m_plot->removePlottable(swatch);
  m_swatches.clear();
  QCPAxis* x = m_matrixRect->axis(QCPAxis::atBottom);
  QCPAxis* y = m_matrixRect->axis(QCPAxis::atLeft);
  const auto add = [&](const QString& name, const QColor& color) {
    auto* swatch = new QCPBars(x, y);  // no data: a legend entry only
    swatch->setName(name);
    swatch->setBrush(color);
    swatch->setPen(QPen(color.darker(130)));
    swatch->setSelectable(QCP::stNone);
    swatch->addToLegend(m_legend);
    m_swatches.push_back(swatch);
  };
  for (int kv = 0; kv < std::min(m_nKv, kMaxLegendHeads); ++kv)
    add(tr("KV head %1").arg(kv), seriesColor(kv));
  bool anyInactive = false;
  for (const GroupStep& g : m_trace->groups)
    anyInactive = anyInactive || !g.active_query_heads.empty();
  if (anyInactive) add(tr("greyed: inactive query head (output zeroed)"), greyed(seriesColor(0)));
  stylePlot(*m_plot, palette());
}

QueryGroupsView::Cell QueryGroupsView::cellValue(const QCPColorMap* map, int key, int value) const {
  Cell cell;
  if (!m_trace) return cell;
  QCPColorMapData* cells = map->data();
  if (key < 0 || value < 0 || key >= cells->keySize() || value >= cells->valueSize()) return cell;
  const double v = cells->cell(key, value);
  if (!std::isfinite(v)) return cell;
  const int level = int(std::floor(v));
  const int inactive = map->property("inactiveLevel").toInt();
  cell.inactive = level >= inactive;
  cell.kvHead = cell.inactive ? level - inactive : level;
  return cell;
}

QueryGroupsView::Cell QueryGroupsView::matrixCell(int queryHead, int kvHead) const {
  return cellValue(m_matrixMap, kvHead, queryHead);
}

QueryGroupsView::Cell QueryGroupsView::overviewCell(int layer, int queryHead) const {
  return cellValue(m_overviewMap, layer, queryHead);
}

QueryGroupsView::Cell QueryGroupsView::stepCell(int step, int queryHead) const {
  return m_showSteps ? cellValue(m_stepsMap, step, queryHead) : Cell{};
}

// ---------------------------------------------------------------------------------------------
// Ticks and marks

void QueryGroupsView::updateTicks() {
  for (const auto& t :
       {m_matrixX, m_matrixY, m_overviewX, m_overviewY, m_stepsX, m_stepsY, m_barsX})
    t->clear();
  if (!m_trace) return;
  const GroupStep* g = groupsAt(m_layer);
  const auto headLabel = [&](int h, bool markInactive) {
    QString label = QStringLiteral("%1").arg(h);
    if (markInactive && g && !isActive(*g, h)) label += tr(" (off)");
    return label;
  };
  for (int h :
       thinnedTicks(m_matrixRect->axis(QCPAxis::atLeft), m_nHeads, m_matrixRect->height())) {
    m_matrixY->addTick(h, headLabel(h, true));
  }
  for (int kv :
       thinnedTicks(m_matrixRect->axis(QCPAxis::atBottom), m_nKv, m_matrixRect->width() / 2)) {
    m_matrixX->addTick(kv, QString::number(kv));
  }
  for (int kv :
       thinnedTicks(m_normsRect->axis(QCPAxis::atBottom), m_nKv, m_normsRect->width() / 2)) {
    m_barsX->addTick(kv, QString::number(kv));
  }
  for (int l : thinnedTicks(m_overviewRect->axis(QCPAxis::atBottom), m_nLayers,
                            m_overviewRect->width() / 2)) {
    m_overviewX->addTick(l, QString::number(l));
  }
  for (int h :
       thinnedTicks(m_overviewRect->axis(QCPAxis::atLeft), m_nHeads, m_overviewRect->height())) {
    m_overviewY->addTick(h, QString::number(h));
    m_stepsY->addTick(h, headLabel(h, false));
  }
  if (m_showSteps) {
    for (int s :
         thinnedTicks(m_stepsRect->axis(QCPAxis::atBottom), m_nSteps, m_stepsRect->width())) {
      const int position = m_trace->n_prompt + s;
      const QString token = m_session && position < m_session->tokenLabels.size()
                                ? elideLabel(m_session->tokenLabels.at(position))
                                : QString();
      m_stepsX->addTick(s, QStringLiteral("%1 %2").arg(s).arg(token).trimmed());
    }
  }
}

void QueryGroupsView::updateOverlays() {
  const QPalette pal = palette();
  const QColor text = pal.color(QPalette::WindowText);
  QColor fill = pal.color(QPalette::Highlight);
  fill.setAlpha(70);
  const bool have = m_trace != nullptr;
  const int head = selection()->head();
  const bool headOk = have && head >= 0 && head < m_nHeads;
  m_matrixRow->setVisible(headOk);
  m_matrixRow->setPen(QPen(text, 2));
  m_matrixRow->setBrush(Qt::NoBrush);
  m_overviewCellMark->setVisible(headOk);
  m_overviewCellMark->setPen(QPen(text, 2));
  m_overviewCellMark->setBrush(Qt::NoBrush);
  QColor layerEdge = text;
  layerEdge.setAlpha(120);
  m_overviewLayerMark->setVisible(have);
  m_overviewLayerMark->setPen(QPen(layerEdge, 1, Qt::DashLine));
  m_overviewLayerMark->setBrush(Qt::NoBrush);
  if (headOk) {
    m_matrixRow->topLeft->setCoords(-0.5, head - 0.5);
    m_matrixRow->bottomRight->setCoords(m_nKv - 0.5, head + 0.5);
    m_overviewCellMark->topLeft->setCoords(m_layer - 0.5, head - 0.5);
    m_overviewCellMark->bottomRight->setCoords(m_layer + 0.5, head + 0.5);
  }
  if (have) {
    m_overviewLayerMark->topLeft->setCoords(m_layer - 0.5, -0.5);
    m_overviewLayerMark->bottomRight->setCoords(m_layer + 0.5, m_nHeads - 0.5);
  }
  const int step = selection()->decodeStep() >= 0 ? selection()->decodeStep() : m_nSteps - 1;
  const bool stepOk = have && m_showSteps && step >= 0 && step < m_nSteps;
  m_stepMark->setVisible(stepOk);
  m_stepMark->setPen(QPen(text, 1.5));
  m_stepMark->setBrush(Qt::NoBrush);
  if (stepOk) {
    m_stepMark->topLeft->setCoords(step - 0.5, -0.5);
    m_stepMark->bottomRight->setCoords(step + 0.5, m_nHeads - 0.5);
  }
  // A hovered decoded token is the step that decoded it.
  const int hoverStep = have ? selection()->hoverToken() - m_trace->n_prompt : -1;
  const bool hoverOk = have && m_showSteps && hoverStep >= 0 && hoverStep < m_nSteps;
  m_stepHover->setVisible(hoverOk);
  m_stepHover->setPen(QPen(pal.color(QPalette::Highlight), 1));
  m_stepHover->setBrush(fill);
  if (hoverOk) {
    m_stepHover->topLeft->setCoords(hoverStep - 0.5, -0.5);
    m_stepHover->bottomRight->setCoords(hoverStep + 0.5, m_nHeads - 0.5);
  }
}

// ---------------------------------------------------------------------------------------------
// Hover and click

QString QueryGroupsView::matrixText(int queryHead, int kvHead) const {
  const GroupStep* g = groupsAt(m_layer);
  if (!g || queryHead < 0 || queryHead >= static_cast<int>(g->kv_of_query.size())) return QString();
  const int kv = g->kv_of_query[static_cast<size_t>(queryHead)];
  std::vector<int> group;
  for (size_t h = 0; h < g->kv_of_query.size(); ++h) {
    if (g->kv_of_query[h] == kv) group.push_back(static_cast<int>(h));
  }
  QString text =
      tr("layer %1: query head %2 reads KV head %3\nKV head %3 serves %4 query head(s): %5")
          .arg(m_layer)
          .arg(queryHead)
          .arg(kv)
          .arg(group.size())
          .arg(joinHeads(group));
  if (kv >= 0 && static_cast<size_t>(kv) < g->key_norms.size()) {
    text += tr("\nkey norm of KV head %1: %2")
                .arg(kv)
                .arg(g->key_norms[static_cast<size_t>(kv)], 0, 'g', 5);
  }
  if (!isActive(*g, queryHead)) text += tr("\ninactive: its output is zeroed (SQA simulation)");
  if (kvHead >= 0 && kvHead != kv) text += tr("\n(not KV head %1)").arg(kvHead);
  return text;
}

void QueryGroupsView::onMouseMove(QMouseEvent* event) {
  if (!m_trace) return;
  const QPointF pos = event->position();
  const auto index = [&](QCPAxisRect* rect, bool horizontal) {
    QCPAxis* axis = rect->axis(horizontal ? QCPAxis::atBottom : QCPAxis::atLeft);
    return int(std::lround(axis->pixelToCoord(horizontal ? pos.x() : pos.y())));
  };
  QString text;
  int hoverToken = -1;
  if (m_matrixRect->rect().contains(pos.toPoint())) {
    const int h = index(m_matrixRect, false), kv = index(m_matrixRect, true);
    if (h >= 0 && h < m_nHeads && kv >= 0 && kv < m_nKv)
      text = matrixText(h, kv) + tr("\nclick to select the head");
  } else if (m_normsRect->rect().contains(pos.toPoint()) ||
             m_sizesRect->rect().contains(pos.toPoint())) {
    const bool norms = m_normsRect->rect().contains(pos.toPoint());
    const int kv = index(norms ? m_normsRect : m_sizesRect, true);
    const std::vector<double> n = keyNormBars(), sizes = groupSizeBars();
    if (kv >= 0 && kv < m_nKv) {
      text = tr("KV head %1: %2 query head(s)").arg(kv).arg(sizes[static_cast<size_t>(kv)]);
      if (static_cast<size_t>(kv) < n.size())
        text += tr(", key norm %1").arg(n[static_cast<size_t>(kv)], 0, 'g', 5);
    }
  } else if (m_overviewRect->rect().contains(pos.toPoint())) {
    const int l = index(m_overviewRect, true), h = index(m_overviewRect, false);
    const Cell cell = overviewCell(l, h);
    if (l >= 0 && l < m_nLayers && h >= 0 && h < m_nHeads && cell.kvHead >= 0) {
      const GroupStep& g = m_trace->groups[static_cast<size_t>(l)];
      text = tr("layer %1, query head %2 \u2192 KV head %3 (of %4)%5\nclick to select")
                 .arg(l)
                 .arg(h)
                 .arg(g.kv_of_query[static_cast<size_t>(h)])
                 .arg(g.n_kv)
                 .arg(cell.inactive ? tr(", inactive: output zeroed") : QString());
    }
  } else if (m_showSteps && m_stepsRect->rect().contains(pos.toPoint())) {
    const int s = index(m_stepsRect, true), h = index(m_stepsRect, false);
    const GroupStep* g = stepGroupsAt(s);
    if (g && h >= 0 && h < static_cast<int>(g->kv_of_query.size())) {
      const int position = m_trace->n_prompt + s;
      const QString token = m_session && position < m_session->tokenLabels.size()
                                ? m_session->tokenLabels.at(position)
                                : QString();
      text =
          tr("decode step %1 (token %2 \u201c%3\u201d), layer %4\nquery head %5 \u2192 KV head %6")
              .arg(s)
              .arg(position)
              .arg(token)
              .arg(m_layer)
              .arg(h)
              .arg(g->kv_of_query[static_cast<size_t>(h)]);
      if (static_cast<size_t>(g->kv_of_query[static_cast<size_t>(h)]) < g->key_norms.size()) {
        text += tr(", key norm %1")
                    .arg(g->key_norms[static_cast<size_t>(g->kv_of_query[static_cast<size_t>(h)])],
                         0, 'g', 5);
      }
      hoverToken = position;
    }
  }
  if (m_showSteps) selection()->setHoverToken(hoverToken);
  showPlotToolTip(*m_plot, pos, text);
}

void QueryGroupsView::onMouseRelease(QMouseEvent* event) {
  if (!m_trace || event->button() != Qt::LeftButton || !isClick(m_pressPos, event->position())) {
    return;
  }
  const QPointF pos = event->position();
  const auto index = [&](QCPAxisRect* rect, bool horizontal) {
    QCPAxis* axis = rect->axis(horizontal ? QCPAxis::atBottom : QCPAxis::atLeft);
    return int(std::lround(axis->pixelToCoord(horizontal ? pos.x() : pos.y())));
  };
  if (m_matrixRect->rect().contains(pos.toPoint())) {
    const int h = index(m_matrixRect, false);
    if (h >= 0 && h < m_nHeads) selection()->setHead(h);
  } else if (m_overviewRect->rect().contains(pos.toPoint())) {
    const int l = index(m_overviewRect, true), h = index(m_overviewRect, false);
    if (l >= 0 && l < m_nLayers && h >= 0 && h < m_nHeads) selection()->setLayerHead(l, h);
  } else if (m_showSteps && m_stepsRect->rect().contains(pos.toPoint())) {
    const int s = index(m_stepsRect, true), h = index(m_stepsRect, false);
    if (s >= 0 && s < m_nSteps) selection()->setDecodeStep(s);
    if (h >= 0 && h < m_nHeads) selection()->setHead(h);
  }
}

// ---------------------------------------------------------------------------------------------
// Export

bool QueryGroupsView::hasFigure() const {
  return m_trace != nullptr && m_emptyMessage.isEmpty();
}

QString QueryGroupsView::figureName() const {
  if (!hasFigure()) return QStringLiteral("query_groups");
  return figureFileStem(QStringLiteral("groups_L%1_%2").arg(m_layer).arg(runName()));
}

QString QueryGroupsView::exportFigure(const QString& path, const PlotExportOptions& options) {
  if (!hasFigure()) return tr("%1: there is no query-group figure to export yet").arg(path);
  const PlotExportOptions o = plotExportOptions(options, *this, *m_plot, titleText());
  const QString error = exportPlot(*m_plot, path, o);
  m_plot->replot();
  return error;
}

QStringList QueryGroupsView::dataFormats() const {
  return {QStringLiteral("csv"), QStringLiteral("json"), QStringLiteral("npy")};
}

QString QueryGroupsView::exportData(const QString& path) {
  if (!hasFigure()) return tr("%1: there is no query-group data to export yet").arg(path);
  const QString error = errorText([&] {
    const ExportFormat format =
        parse_export_format(QFileInfo(path).suffix().toLower().toStdString());
    TraceExportOptions options;
    options.layer = m_layer;
    export_trace_data(*m_trace, ExportWhat::Groups, format, path.toStdString(), options,
                      path.toStdString());
  });
  return exportError(path, error);
}

}  // namespace attnscope::app
