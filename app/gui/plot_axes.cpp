// Shared QCustomPlot building blocks: see plot_axes.h.
#include "plot_axes.h"

#include <qcustomplot.h>

#include <QToolTip>
#include <algorithm>
#include <cmath>
#include <memory>

#include "plot_style.h"
#include "token_labels.h"

namespace attnscope::app {

namespace {

// Inner sizes of every axis rect of `plot`, to notice a layout change.
std::vector<int> rectSizes(const QCustomPlot& plot) {
  std::vector<int> sizes;
  for (const QCPAxisRect* rect : plot.axisRects()) {
    sizes.push_back(rect->width());
    sizes.push_back(rect->height());
  }
  return sizes;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Layout

QCPTextElement* resetLayoutWithTitle(QCustomPlot* plot, const QFont& font) {
  plot->plotLayout()->clear();
  plot->setAutoAddPlottableToLegend(false);
  auto* title = new QCPTextElement(plot, QString(), figureTitleFont(font));
  plot->plotLayout()->addElement(0, 0, title);
  return title;
}

QCPLegend* addCentredLegendRow(QCustomPlot* plot, int row) {
  auto* legend = new QCPLegend;
  auto* legendRow = new QCPLayoutGrid;
  plot->plotLayout()->addElement(row, 0, legendRow);
  legendRow->addElement(0, 0, new QCPLayoutElement(plot));
  legendRow->addElement(0, 1, legend);
  legendRow->addElement(0, 2, new QCPLayoutElement(plot));
  legendRow->setColumnStretchFactors({1.0, 0.001, 1.0});
  legend->setLayer(QStringLiteral("legend"));
  legend->setFillOrder(QCPLayoutGrid::foColumnsFirst);
  legend->setIconSize(14, 10);
  legend->setColumnSpacing(10);
  return legend;
}

void packLegendLeft(QCPLegend* legend, int columns) {
  legend->addElement(0, columns, new QCPLayoutElement(legend->parentPlot()));
  for (int c = 0; c < columns; ++c) legend->setColumnStretchFactor(c, 0.001);
  legend->setColumnStretchFactor(columns, 1.0);
}

QCPAxisRect* newAxisRect(QCustomPlot* plot) {
  auto* rect = new QCPAxisRect(plot, true);
  rect->axis(QCPAxis::atTop)->setVisible(false);
  rect->axis(QCPAxis::atRight)->setVisible(false);
  return rect;
}

QCPColorMap* addCellMap(QCPAxisRect* rect) {
  auto* map = new QCPColorMap(rect->axis(QCPAxis::atBottom), rect->axis(QCPAxis::atLeft));
  map->setInterpolate(false);
  // The image covers whole cells (half a cell beyond the first and last centres).
  map->setTightBoundary(false);
  return map;
}

// ---------------------------------------------------------------------------------------------
// Items

void attachToAxisRect(QCPAbstractItem* item, QCPAxisRect* rect) {
  for (QCPItemPosition* position : item->positions()) {
    position->setAxes(rect->axis(QCPAxis::atBottom), rect->axis(QCPAxis::atLeft));
    position->setAxisRect(rect);
  }
  item->setClipAxisRect(rect);
  item->setClipToAxisRect(true);
}

namespace {

template <typename Item>
Item* addOverlayItem(QCustomPlot* plot, QCPAxisRect* rect) {
  auto* item = new Item(plot);
  item->setLayer(QStringLiteral("overlay"));  // buffered: hover repaints only the marks
  attachToAxisRect(item, rect);
  item->setSelectable(false);
  item->setVisible(false);
  return item;
}

}  // namespace

QCPItemRect* addOverlayRect(QCustomPlot* plot, QCPAxisRect* rect) {
  return addOverlayItem<QCPItemRect>(plot, rect);
}

QCPItemStraightLine* addOverlayLine(QCustomPlot* plot, QCPAxisRect* rect) {
  return addOverlayItem<QCPItemStraightLine>(plot, rect);
}

QCPItemText* addAxisRectNote(QCustomPlot* plot, QCPAxisRect* rect, double x, double y) {
  auto* text = new QCPItemText(plot);
  text->setClipAxisRect(rect);
  text->position->setType(QCPItemPosition::ptAxisRectRatio);
  text->position->setAxisRect(rect);
  text->position->setCoords(x, y);
  text->setPositionAlignment(Qt::AlignCenter);
  text->setTextAlignment(Qt::AlignCenter);
  text->setSelectable(false);
  return text;
}

void replotOverlay(QCustomPlot& plot) {
  if (!plot.isVisible()) {
    plot.replot(QCustomPlot::rpQueuedReplot);
    return;
  }
  plot.layer(QStringLiteral("overlay"))->replot();
}

// ---------------------------------------------------------------------------------------------
// Colour-map cells

QCPRange cellCentres(double lo, double hi, int cells) {
  if (cells <= 1) return QCPRange(lo, hi);
  const double w = (hi - lo) / cells;
  return QCPRange(lo + w / 2, hi - w / 2);
}

QCPRange indexCellCentres(int count) {
  return cellCentres(-0.5, std::max(1, count) - 0.5, count);
}

int binIndex(const std::vector<int>& edges, int position) {
  if (edges.size() < 2 || position < edges.front() || position >= edges.back()) return -1;
  const auto it = std::upper_bound(edges.begin(), edges.end(), position);
  return static_cast<int>(it - edges.begin()) - 1;
}

// ---------------------------------------------------------------------------------------------
// Ticks

QVector<int> thinnedTicks(const QCPAxis* axis, int count, int pixels, int* stride, double centre) {
  QVector<int> ticks;
  if (stride) *stride = 1;
  if (count <= 0) return ticks;
  const QFontMetrics metrics(axis->tickLabelFont());
  const int maxLabels = std::max(1, int(pixels / (metrics.height() * kTickLabelSpacing)));
  const QCPRange range = axis->range();
  const int first = std::clamp(int(std::ceil(range.lower - centre)), 0, count - 1);
  const int last = std::clamp(int(std::floor(range.upper - centre)), 0, count - 1);
  const int step = niceStride((last - first + 1 + maxLabels - 1) / maxLabels);
  for (int i = (first + step - 1) / step * step; i <= last; i += step) ticks << i;
  if (stride) *stride = step;
  return ticks;
}

QString tokenTickLabel(int position, const QString& text, int stride) {
  if (stride <= 1 && !text.isEmpty()) return text;
  return QStringLiteral("%1 %2").arg(position).arg(text).trimmed();
}

void setTokenTicks(QCPAxisTickerText& ticker, const QCPAxis* axis, int count, int pixels,
                   const std::function<QString(int)>& labelOf, double centre) {
  int stride = 1;
  for (int i : thinnedTicks(axis, count, pixels, &stride, centre)) {
    ticker.addTick(i + centre, tokenTickLabel(i, elideLabel(labelOf(i)), stride));
  }
}

void rethinTicksOnLayout(QCustomPlot* plot, std::function<void()> updateTicks) {
  // The axis rect sizes the labels were last thinned for.
  auto thinnedFor = std::make_shared<std::vector<int>>();
  QObject::connect(plot, &QCustomPlot::beforeReplot, plot,
                   [plot, thinnedFor, update = std::move(updateTicks)] {
                     *thinnedFor = rectSizes(*plot);
                     update();
                   });
  QObject::connect(plot, &QCustomPlot::afterLayout, plot, [plot, thinnedFor] {
    if (rectSizes(*plot) != *thinnedFor) plot->replot(QCustomPlot::rpQueuedReplot);
  });
}

// ---------------------------------------------------------------------------------------------
// Zoom and pan

QCPRange clampedRange(const QCPRange& wanted, double lo, double hi, double minSpan) {
  QCPRange range = wanted;
  const double shortest = std::min(minSpan, hi - lo);
  if (minSpan > 0 && range.size() < shortest) {
    const double c = range.center();
    range = QCPRange(c - shortest / 2, c + shortest / 2);
  }
  if (range.size() >= hi - lo) {
    range = QCPRange(lo, hi);
  } else if (range.lower < lo) {
    range = QCPRange(lo, lo + range.size());
  } else if (range.upper > hi) {
    range = QCPRange(hi - range.size(), hi);
  }
  return range;
}

void clampAxisRange(QCPAxis* axis, double lo, double hi, double minSpan) {
  const QCPRange range = clampedRange(axis->range(), lo, hi, minSpan);
  if (range != axis->range()) {
    const QSignalBlocker blocker(axis);
    axis->setRange(range);
  }
}

void showPlotToolTip(QCustomPlot& plot, QPointF pos, const QString& text) {
  if (text.isEmpty()) {
    QToolTip::hideText();
  } else {
    QToolTip::showText(plot.mapToGlobal(pos.toPoint()), text, &plot);
  }
}

}  // namespace attnscope::app
