// The painted surface of the head grid: title, colour-bar and badge legends, column headers
// (H0..) and row headers (L0..) that stay in place while the cells scroll, one cached thumbnail
// per (layer, head), badges, the selected and hovered head, and the hovered token's crosshair.
// The same painting draws the exported figure (every row, nothing scrolled).
#pragma once

#include <QFont>
#include <QPoint>
#include <QRect>
#include <QSize>

#include "painted_canvas.h"

class QPainter;

namespace attnscope::app {

class HeadGridView;

// Where everything goes for a given width; cell sizes adapt to the width within
// [kMinCell, kMaxCell].
struct HeadGridGeometry {
  static constexpr int kMinCell = 40;   // below this a head's structure is unreadable
  static constexpr int kMaxCell = 200;  // above this a few heads would fill a screen each
  static constexpr int kGap = 4;
  static constexpr int kPad = 10;
  static constexpr int kInset = 3;  // room for the selection outline around the first row/column

  int nLayers = 0, nHeads = 0;
  int titleTop = 0, titleHeight = 0;
  int legendTop = 0, legendHeight = 0;
  int headerTop = 0, headerHeight = 0;  // column headers
  int gridTop = 0;                      // first row of cells
  int rowHeaderWidth = 0;
  int cell = kMinCell, pitch = kMinCell + kGap;
  int contentWidth = 0, contentHeight = 0;
  bool badgeLegendBelow = false;  // the badge legend wraps under the colour bar

  static HeadGridGeometry compute(int width, int nLayers, int nHeads, const QFont& font);
  int cellsLeft() const { return kPad + rowHeaderWidth; }
  // Cell rect in content coordinates (nothing scrolled).
  QRect cellRect(int layer, int head) const;
};

class HeadGridCanvas : public PaintedCanvas {
  Q_OBJECT
 public:
  explicit HeadGridCanvas(HeadGridView* view);

  // Geometry for the current viewport width.
  const HeadGridGeometry& geometry() const { return m_geometry; }
  void relayout() override;
  // Cell rect in viewport coordinates (scrolled); empty when there is no grid.
  QRect cellRectInViewport(int layer, int head) const;
  // The (layer, head) under a viewport point, or false.
  bool headAt(const QPoint& viewportPos, int* layer, int* head) const;
  // Scrolls so the cell is fully visible.
  void ensureCellVisible(int layer, int head);
  int hoverLayer() const { return m_hoverLayer; }
  int hoverHead() const { return m_hoverHead; }

  // Paints the figure. `scroll` offsets the cells (screen), `viewport` is the visible size; with
  // scroll (0, 0) and the content size it draws the whole grid (export).
  static void paintGrid(QPainter& painter, const HeadGridView& view, const HeadGridGeometry& g,
                        const QPoint& scroll, const QSize& viewport, const QPalette& palette,
                        int hoverLayer, int hoverHead);

 protected:
  void paintEvent(QPaintEvent* event) override;
  void resizeEvent(QResizeEvent* event) override;
  void mouseMoveEvent(QMouseEvent* event) override;
  void mousePressEvent(QMouseEvent* event) override;
  void leaveEvent(QEvent* event) override;
  void keyPressEvent(QKeyEvent* event) override;
  QString toolTipAt(const QPoint& viewportPos, QRect* rect) const override;

 private:
  void setHover(int layer, int head);

  HeadGridView* m_view;
  HeadGridGeometry m_geometry;
  int m_hoverLayer = -1, m_hoverHead = -1;
};

}  // namespace attnscope::app
