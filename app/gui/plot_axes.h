// Building blocks the QCustomPlot figures share beyond their look (plot_style.h): axis rects and
// colour maps set up the same way, overlay marks on the buffered overlay layer (hover repaints
// only them), colour-map cells placed over token or index ranges, token tick labels thinned to
// the axis's pixels (and re-thinned when the layout changes the axis rects), zoom and pan clamped
// to the data, and telling a click from a drag.
#pragma once

#include <QPointF>
#include <QString>
#include <QVector>
#include <functional>
#include <vector>

class QCustomPlot;
class QCPAbstractItem;
class QCPAxis;
class QCPAxisRect;
class QCPAxisTickerText;
class QCPColorMap;
class QCPItemRect;
class QCPItemStraightLine;
class QCPItemText;
class QCPLegend;
class QCPRange;
class QCPTextElement;
class QFont;

namespace attnscope::app {

// Room per tick label as a multiple of the font height, so neighbouring labels never touch.
inline constexpr double kTickLabelSpacing = 1.15;
// A press and release this close together (Manhattan pixels) is a click; farther, a drag.
inline constexpr int kClickSlopPixels = 4;
inline bool isClick(const QPointF& press, const QPointF& release) {
  return (release - press).manhattanLength() <= kClickSlopPixels;
}
// The hover tooltip of a plot: `text` at `pos` (plot coordinates), hidden when text is empty.
void showPlotToolTip(QCustomPlot& plot, QPointF pos, const QString& text);

// ---------------------------------------------------------------------------------------------
// Layout

// Clears `plot`'s layout, keeps plottables out of the default legend, and puts a figure title
// (figureTitleFont of `font`) in row 0 of the main layout.
QCPTextElement* resetLayoutWithTitle(QCustomPlot* plot, const QFont& font);
// A legend in row `row` of the main layout, centred between two empty elements so its entries
// stay together; filled column-first with small swatches, on the legend layer.
QCPLegend* addCentredLegendRow(QCustomPlot* plot, int row);
// A legend strip as wide as the figure, with its entries in `columns` columns: a spacer column
// after them takes the spare width, so the entries stay together on the left.
void packLegendLeft(QCPLegend* legend, int columns);
// An axis rect with only its bottom and left axes (not yet in any layout).
QCPAxisRect* newAxisRect(QCustomPlot* plot);
// A colour map on `rect`'s bottom and left axes drawing one flat rectangle per cell.
QCPColorMap* addCellMap(QCPAxisRect* rect);

// ---------------------------------------------------------------------------------------------
// Items

// Every position of `item` in `rect`'s bottom/left coordinates, clipped to `rect`.
void attachToAxisRect(QCPAbstractItem* item, QCPAxisRect* rect);
// Hidden, unselectable marks on the "overlay" layer, attached to `rect`.
QCPItemRect* addOverlayRect(QCustomPlot* plot, QCPAxisRect* rect);
QCPItemStraightLine* addOverlayLine(QCustomPlot* plot, QCPAxisRect* rect);
// A note inside `rect` (an empty state, "not measured"...): centred on the point at (x, y) in
// fractions of the rect, lines centred, clipped to the rect, unselectable.
QCPItemText* addAxisRectNote(QCustomPlot* plot, QCPAxisRect* rect, double x, double y);
// Repaints only the overlay layer (hover marks) -- or, for a plot never drawn (a hidden tab has
// no layer buffers yet), queues a full replot.
void replotOverlay(QCustomPlot& plot);

// ---------------------------------------------------------------------------------------------
// Colour-map cells

// The range QCPColorMapData::setRange wants for `cells` equal cells spread over [lo, hi]: the
// centres of the first and last cell, or the whole extent for one cell (QCPColorMap draws a
// single cell over its range).
QCPRange cellCentres(double lo, double hi, int cells);
// Index axes: cell i covers [i - 0.5, i + 0.5], i in [0, count).
QCPRange indexCellCentres(int count);
// The bin of `edges` ([bins + 1] ascending, as PooledMap's row/col edges) holding `position`, or
// -1 outside.
int binIndex(const std::vector<int>& edges, int position);

// ---------------------------------------------------------------------------------------------
// Ticks

// Indices 0 .. count-1 whose tick (at index + centre) lies in `axis`'s visible range, thinned to
// multiples of a niceStride so labels of the axis's font fit `pixels` without touching. `stride`
// receives the stride used (1 = every index).
QVector<int> thinnedTicks(const QCPAxis* axis, int count, int pixels, int* stride = nullptr,
                          double centre = 0.0);
// A token tick label: the token's text alone at stride 1; thinned labels (or an empty text) carry
// the position too, so the reader knows where in the prompt they are.
QString tokenTickLabel(int position, const QString& text, int stride);
// Fills `ticker` for a token axis: thinnedTicks, labelled tokenTickLabel(elided labelOf(i)).
void setTokenTicks(QCPAxisTickerText& ticker, const QCPAxis* axis, int count, int pixels,
                   const std::function<QString(int)>& labelOf, double centre = 0.0);
// Tick labels are thinned for the axis rects' sizes, which the layout only knows once a replot
// has begun: calls `updateTicks` before every replot of `plot` and, when the layout changed the
// axis rects (first show, resize), replots once more.
void rethinTicksOnLayout(QCustomPlot* plot, std::function<void()> updateTicks);

// ---------------------------------------------------------------------------------------------
// Zoom and pan

// `range` kept inside [lo, hi]: zooming out stops at the whole range, panning at its edges, and
// zooming in at `minSpan` (0: no limit).
QCPRange clampedRange(const QCPRange& range, double lo, double hi, double minSpan = 0.0);
// Applies clampedRange to `axis` without emitting rangeChanged again.
void clampAxisRange(QCPAxis* axis, double lo, double hi, double minSpan = 0.0);

}  // namespace attnscope::app
