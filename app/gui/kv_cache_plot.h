// The KV cache view's figure, built once: the reason map (x = cache position, y = decode step)
// with the kept-entries/budget strip beside it sharing the step axis, a categorical legend, the
// lost attention mass over steps and the per-layer budgets below, and the overlay marks (hovered
// token column, selected step). The view fills it; this file only lays it out and styles it.
#pragma once

#include <QFont>
#include <QPalette>
#include <QSharedPointer>
#include <QString>
#include <vector>

class QCustomPlot;
class QCPAxisRect;
class QCPAxisTickerText;
class QCPBars;
class QCPColorMap;
class QCPGraph;
class QCPItemRect;
class QCPItemStraightLine;
class QCPLegend;
class QCPTextElement;

namespace attnscope::app {

// KeepReason values 0..4 (evicted, sink, recent, scored, window); reason cells hold
// categoryCellValue(reason) (plot_style.h).
inline constexpr int kKvReasonCount = 5;

// "evicted", "kept: sink", "kept: recent", "kept: score", "kept: window".
QString kvReasonLabel(int reason);

struct KvCachePlot {
  QCPTextElement* title = nullptr;
  QCPAxisRect* mapRect = nullptr;     // reasons: x = cache position, y = decode step
  QCPAxisRect* keptRect = nullptr;    // kept entries and budget: y = decode step (shared)
  QCPAxisRect* lostRect = nullptr;    // lost attention mass: x = decode step
  QCPAxisRect* budgetRect = nullptr;  // budget per layer: x = layer
  QCPLegend* legend = nullptr;
  QCPColorMap* reasonMap = nullptr;
  QCPGraph* keptGraph = nullptr;  // key = step on the vertical axis
  QCPGraph* budgetGraph = nullptr;
  QCPGraph* lostGraph = nullptr;      // the KV head shown
  QCPGraph* lostMeanGraph = nullptr;  // mean over the layer's KV heads
  QCPBars* layerBars = nullptr;
  QCPBars* layerBarSelected = nullptr;   // the selected layer's bar, highlighted
  std::vector<QCPBars*> reasonSwatches;  // legend entries only (no data); last = not cached yet
  QCPItemRect* hoverColumn = nullptr;    // hovered token
  QCPItemRect* stepRow = nullptr;        // selected step
  QCPItemStraightLine* keptStepLine = nullptr;
  QCPItemStraightLine* lostStepLine = nullptr;
  QSharedPointer<QCPAxisTickerText> xTicks, yTicks;  // positions / steps with token texts

  // Replaces `plot`'s layout with the figure.
  static KvCachePlot build(QCustomPlot* plot, const QFont& font);
  // Palette-dependent pens and brushes (call after stylePlot).
  void applyPalette(const QPalette& palette);
};

}  // namespace attnscope::app
