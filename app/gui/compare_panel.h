// One map panel of the Compare figure (A, B or B - A): an axis rect in the plot's layout with an
// overview colour map (the whole range) under a zoomed-in detail map, the hover and selection
// marks, and token tick labels thinned to the panel's size. Axes are in token units: token j
// covers [j - 0.5, j + 0.5]; x = key, y = query (query 0 at the top).
#pragma once

#include <QPalette>
#include <QSharedPointer>
#include <QStringList>

#include "attnscope/map_request.h"

class QCustomPlot;
class QCPAxisRect;
class QCPAxisTickerText;
class QCPColorMap;
class QCPColorScale;
class QCPItemRect;
class QCPItemStraightLine;
class QCPLayoutGrid;
class QCPMarginGroup;
class QCPTextElement;

namespace attnscope::app {

struct ComparePanel {
  QCPAxisRect* rect = nullptr;
  QCPTextElement* title = nullptr;
  QCPColorMap* overview = nullptr;        // whole range, under
  QCPColorMap* detail = nullptr;          // the zoomed-in range, over it (hidden when not zoomed)
  QCPItemStraightLine* crossH = nullptr;  // crosshair at the cell under the mouse
  QCPItemStraightLine* crossV = nullptr;
  QCPItemRect* hoverRow = nullptr;  // a token hovered in another view, as query row...
  QCPItemRect* hoverCol = nullptr;  // ...and as key column
  QCPItemRect* queryRow = nullptr;  // the selected query token
  QSharedPointer<QCPAxisTickerText> xTicks, yTicks;

  // Creates the panel in `grid`: its title in row 0 and its axis rect in row 1 of `column`. Both
  // colour maps use `scale`. rows: the margin group keeping the panels' inner rects level.
  // queryAxis: whether this panel labels the query axis (title and token ticks); the panels share
  // their rows, so only the leftmost does and the others give the room to their maps.
  static ComparePanel create(QCustomPlot* plot, QCPLayoutGrid* grid, int column,
                             QCPColorScale* scale, QCPMarginGroup* rows, bool queryAxis);

  // Fills `map` from `values` (null clears it). Cells whose every key follows every query of
  // their bin are causally hidden and left transparent; logFloor > 0 clamps values up to it (log
  // colour scales have no colour for 0).
  static void fill(QCPColorMap* map, const PooledMap* values, double logFloor);

  // What the marks show; -1 hides a mark.
  struct Marks {
    int tokens = 0;
    int hoverToken = -1;
    int queryToken = -1;
    int crossQuery = -1, crossKey = -1;
  };
  void placeMarks(const Marks& marks, const QPalette& palette);

  // Token tick labels for the visible range (keys; queries on the panel that labels them),
  // thinned so neighbours never touch; thinned labels carry the position too.
  void updateTicks(int tokens, const QStringList& labels);
};

}  // namespace attnscope::app
