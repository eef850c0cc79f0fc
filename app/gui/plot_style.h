// Shared look of every plot: palette-following axes and backgrounds (light and dark themes),
// the colour maps (viridis for probabilities, a diverging map for differences, categorical maps
// with one exact colour per category), categorical colours for series and for KV keep reasons,
// the palette-aware grey of masked cells, the figure title font and tick thinning. Views call
// these instead of styling QCustomPlot themselves, so figures look alike on screen and in exports.
#pragma once

#include <QColor>
#include <QFont>
#include <QPalette>
#include <QString>
#include <cstdint>
#include <vector>

class QCustomPlot;
class QEvent;
class QCPAxis;
class QCPColorGradient;
class QCPColorScale;
class QCPTextElement;
class QCPLegend;

namespace attnscope::app {

// Axes, grids, backgrounds, legend and every text element of `plot` (all axis rects) from the
// palette. Call again on QEvent::PaletteChange.
void stylePlot(QCustomPlot& plot, const QPalette& palette);
void styleAxis(QCPAxis* axis, const QPalette& palette, bool grid = false);

// Viridis, nine stops; NaN cells transparent (masked / above the causal diagonal).
QCPColorGradient attentionGradient();
// Blue - white - red for signed differences (B - A): symmetric, zero is white.
QCPColorGradient differenceGradient();

// One colour level per category, exactly colors[i] for category i (no blending), NaN cells
// transparent. Fill cells with categoryCellValue(i) and use the data range [0, colors.size() - 1].
QCPColorGradient categoricalGradient(const std::vector<QColor>& colors);
// QCPColorGradient truncates (value - lower) * (levels - 1) / range to a level, so an exact integer
// could fall into the level below by rounding: cells hold category + this offset.
inline constexpr double kCategoryLevelOffset = 0.25;
inline double categoryCellValue(int category) {
  return category + kCategoryLevelOffset;
}

// A colour scale axis in log (decades, "10^-3" labels) or linear style.
void setColorScaleLog(QCPColorScale* scale, bool log);

// In log mode colours span at most this ratio below the maximum: four decades show the
// structure of a head; smaller probabilities are drawn in the lowest colour.
inline constexpr double kLogFloorRatio = 1e-4;
// The tooltip of a view's "Log colours" switch (says how many decades kLogFloorRatio keeps).
QString logColoursToolTip();

// Qualitative colours (Tableau 10) for series i (variants, devices), readable on light and dark.
QColor seriesColor(int index);

// KV keep reasons (KeepReason values: 0 evicted, 1 sink, 2 recent, 3 scored, 4 window).
QColor kvReasonColor(uint8_t reason);
QString kvReasonName(uint8_t reason);

// a + (b - a) * t per channel, t clamped to [0, 1] (opaque).
QColor mixColors(const QColor& a, const QColor& b, double t);
// Cells the variant's pattern hides ("not computed"): a grey a little off the background (light
// grey on light palettes, dark grey on dark ones), so what is computed stands out in either theme.
QColor maskedGrey(const QPalette& palette);

// The bold, slightly larger font of a figure's title (plots and painted figures alike).
QFont figureTitleFont(const QFont& base);

// Palette or style changes: when a view must call stylePlot (and repaint its own colours) again.
bool isThemeChange(const QEvent* event);

// 1, 2, 5, 10, 20, 50, ...: the smallest such step >= raw.
int niceStride(int raw);

}  // namespace attnscope::app
