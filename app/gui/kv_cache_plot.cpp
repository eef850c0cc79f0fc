// KV cache figure layout: see kv_cache_plot.h.
#include "kv_cache_plot.h"

#include <qcustomplot.h>

#include "plot_axes.h"
#include "plot_style.h"

namespace attnscope::app {

namespace {

// One colour level per KeepReason, exactly kvReasonColor (the legend's swatches).
QCPColorGradient reasonGradient() {
  std::vector<QColor> colors;
  for (int r = 0; r < kKvReasonCount; ++r) colors.push_back(kvReasonColor(static_cast<uint8_t>(r)));
  return categoricalGradient(colors);
}

}  // namespace

QString kvReasonLabel(int reason) {
  if (reason == 0) return QObject::tr("evicted");
  if (reason == 3) return QObject::tr("kept: score");
  return QObject::tr("kept: %1").arg(kvReasonName(static_cast<uint8_t>(reason)));
}

KvCachePlot KvCachePlot::build(QCustomPlot* plot, const QFont& font) {
  KvCachePlot f;
  f.title = resetLayoutWithTitle(plot, font);
  auto* top = new QCPLayoutGrid;
  plot->plotLayout()->addElement(1, 0, top);
  f.legend = addCentredLegendRow(plot, 2);
  f.legend->setWrap(8);
  f.legend->setRowSpacing(0);
  auto* bottom = new QCPLayoutGrid;
  plot->plotLayout()->addElement(3, 0, bottom);
  plot->plotLayout()->setRowStretchFactors({0.001, 3.0, 0.001, 1.5});
  plot->plotLayout()->setRowSpacing(4);

  const auto makeRect = [plot]() {
    auto* rect = newAxisRect(plot);
    rect->setRangeDrag(Qt::Horizontal | Qt::Vertical);
    rect->setRangeZoom(Qt::Horizontal | Qt::Vertical);
    return rect;
  };
  f.mapRect = makeRect();
  f.keptRect = makeRect();
  f.lostRect = makeRect();
  f.budgetRect = makeRect();
  top->addElement(0, 0, f.mapRect);
  top->addElement(0, 1, f.keptRect);
  top->setColumnStretchFactors({5.0, 1.0});
  bottom->addElement(0, 0, f.lostRect);
  bottom->addElement(0, 1, f.budgetRect);
  bottom->setColumnStretchFactors({3.0, 2.0});
  auto* rows = new QCPMarginGroup(plot);
  f.mapRect->setMarginGroup(QCP::msTop | QCP::msBottom, rows);
  f.keptRect->setMarginGroup(QCP::msTop | QCP::msBottom, rows);
  auto* lefts = new QCPMarginGroup(plot);
  f.mapRect->setMarginGroup(QCP::msLeft, lefts);
  f.lostRect->setMarginGroup(QCP::msLeft, lefts);
  auto* bottomRow = new QCPMarginGroup(plot);
  f.lostRect->setMarginGroup(QCP::msTop | QCP::msBottom, bottomRow);
  f.budgetRect->setMarginGroup(QCP::msTop | QCP::msBottom, bottomRow);

  // The reason map: x = cache position, y = decode step (step 0 at the top, time flows down).
  QCPAxis* mx = f.mapRect->axis(QCPAxis::atBottom);
  QCPAxis* my = f.mapRect->axis(QCPAxis::atLeft);
  f.xTicks.reset(new QCPAxisTickerText);
  f.yTicks.reset(new QCPAxisTickerText);
  mx->setTicker(f.xTicks);
  my->setTicker(f.yTicks);
  mx->setSubTicks(false);
  my->setSubTicks(false);
  mx->setTickLabelRotation(90);
  mx->setLabel(QObject::tr("cache position (token)"));
  my->setLabel(QObject::tr("decode step (decoded token)"));
  my->setRangeReversed(true);
  f.reasonMap = addCellMap(f.mapRect);
  f.reasonMap->setGradient(reasonGradient());
  f.reasonMap->setDataRange(QCPRange(0, kKvReasonCount - 1));

  // Legend swatches: the reasons, then "not cached yet" (the background shows through).
  for (int r = 0; r < kKvReasonCount; ++r) {
    auto* swatch = new QCPBars(mx, my);
    swatch->setName(kvReasonLabel(r));
    swatch->setBrush(kvReasonColor(static_cast<uint8_t>(r)));
    swatch->setPen(QPen(kvReasonColor(static_cast<uint8_t>(r)).darker(140)));
    swatch->addToLegend(f.legend);
    swatch->setSelectable(QCP::stNone);
    f.reasonSwatches.push_back(swatch);
  }
  auto* notYet = new QCPBars(mx, my);
  notYet->setName(QObject::tr("not cached yet"));
  notYet->addToLegend(f.legend);
  notYet->setSelectable(QCP::stNone);
  f.reasonSwatches.push_back(notYet);

  // Kept entries and budget per step, sharing the map's step axis.
  QCPAxis* ky = f.keptRect->axis(QCPAxis::atLeft);
  QCPAxis* kx = f.keptRect->axis(QCPAxis::atBottom);
  ky->setRangeReversed(true);
  ky->setTickLabels(false);
  ky->setTicker(f.yTicks);
  kx->setLabel(QObject::tr("entries kept"));
  kx->ticker()->setTickCount(3);
  f.keptRect->setRangeDrag(Qt::Vertical);
  f.keptRect->setRangeZoom(Qt::Vertical);
  f.keptGraph = new QCPGraph(ky, kx);  // key = step (vertical), value = count
  f.keptGraph->setName(QObject::tr("entries kept"));
  f.keptGraph->setPen(QPen(seriesColor(0), 2));
  f.keptGraph->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, 5));
  f.keptGraph->addToLegend(f.legend);
  f.budgetGraph = new QCPGraph(ky, kx);
  f.budgetGraph->setName(QObject::tr("budget"));
  f.budgetGraph->setLineStyle(QCPGraph::lsStepCenter);
  f.budgetGraph->addToLegend(f.legend);

  // Lost attention mass over steps.
  QCPAxis* lx = f.lostRect->axis(QCPAxis::atBottom);
  QCPAxis* ly = f.lostRect->axis(QCPAxis::atLeft);
  lx->setLabel(QObject::tr("decode step"));
  ly->setLabel(QObject::tr("lost attention mass"));
  lx->setTicker(QSharedPointer<QCPAxisTickerFixed>::create());
  lx->ticker().staticCast<QCPAxisTickerFixed>()->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
  lx->grid()->setVisible(true);
  ly->grid()->setVisible(true);
  f.lostRect->setRangeDrag(Qt::Horizontal);
  f.lostRect->setRangeZoom(Qt::Horizontal);
  f.lostMeanGraph = new QCPGraph(lx, ly);
  f.lostMeanGraph->setName(QObject::tr("layer mean (all KV heads)"));
  f.lostGraph = new QCPGraph(lx, ly);
  f.lostGraph->setPen(QPen(seriesColor(2), 2));
  f.lostGraph->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, 5));
  auto* lostLegend = new QCPLegend;
  f.lostRect->insetLayout()->addElement(lostLegend, Qt::AlignTop | Qt::AlignRight);
  lostLegend->setLayer(QStringLiteral("legend"));
  lostLegend->setIconSize(18, 8);
  f.lostGraph->addToLegend(lostLegend);
  f.lostMeanGraph->addToLegend(lostLegend);

  // Budgets per layer at the selected step.
  QCPAxis* bx = f.budgetRect->axis(QCPAxis::atBottom);
  QCPAxis* by = f.budgetRect->axis(QCPAxis::atLeft);
  bx->setLabel(QObject::tr("layer"));
  by->setLabel(QObject::tr("budget (tokens)"));
  bx->setTicker(QSharedPointer<QCPAxisTickerFixed>::create());
  bx->ticker().staticCast<QCPAxisTickerFixed>()->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
  bx->setSubTicks(false);
  by->grid()->setVisible(true);
  f.budgetRect->setRangeDrag(Qt::Horizontal);
  f.budgetRect->setRangeZoom(Qt::Horizontal);
  f.layerBars = new QCPBars(bx, by);
  f.layerBars->setWidth(0.75);
  f.layerBars->setBrush(seriesColor(0));
  f.layerBars->setPen(Qt::NoPen);
  f.layerBarSelected = new QCPBars(bx, by);
  f.layerBarSelected->setWidth(0.75);
  f.layerBarSelected->setBrush(seriesColor(1));
  f.layerBarSelected->setPen(Qt::NoPen);

  // Overlays (buffered layer: hover repaints only them).
  f.hoverColumn = addOverlayRect(plot, f.mapRect);
  f.stepRow = addOverlayRect(plot, f.mapRect);
  f.keptStepLine = addOverlayLine(plot, f.keptRect);
  f.lostStepLine = addOverlayLine(plot, f.lostRect);
  return f;
}

void KvCachePlot::applyPalette(const QPalette& palette) {
  QColor mid = palette.color(QPalette::WindowText);
  mid.setAlpha(150);
  budgetGraph->setPen(QPen(mid, 1.5, Qt::DashLine));
  lostMeanGraph->setPen(QPen(mid, 1.5, Qt::DashLine));
  reasonSwatches.back()->setBrush(palette.color(QPalette::Base));
  reasonSwatches.back()->setPen(QPen(palette.color(QPalette::Mid)));
}

}  // namespace attnscope::app
