// What the custom-painted views (head grid, token strip) share: a scroll-area base that repaints
// on scrolling, lays out again when the font or style changes and shows a tooltip for the item
// under the mouse; the palette colours their painting uses; and a colour bar painted cell by
// cell from the view's own colour function (the same colours as its cells, on screen and in
// exports).
#pragma once

#include <QAbstractScrollArea>
#include <QColor>
#include <QPalette>
#include <QRect>
#include <QSize>
#include <QString>
#include <functional>

#include "plot_export.h"

class QPainter;

namespace attnscope::app {

// The palette roles a painted figure uses, read once per paint.
struct CanvasColors {
  explicit CanvasColors(const QPalette& palette);
  QColor window, base, text, mid, highlight;
};

// A horizontal colour bar filling `bar` one pixel column at a time with colorAt(t), t in (0, 1)
// from left to right, framed in `frame`. Labels are the caller's.
void paintColorBar(QPainter& painter, const QRect& bar,
                   const std::function<QColor(double)>& colorAt, const QColor& frame);

// Exports a painted figure of `size` (the whole content, nothing scrolled) in `view`'s font and
// palette: `paint` draws it into a painter of that logical size. `title` names SVG/PDF documents
// unless the options give one. Returns "" or "<path>: <error>", like exportPainted.
QString exportCanvasFigure(
    const QWidget& view, QSize size, const QString& path, const PlotExportOptions& options,
    const QString& title,
    const std::function<void(QPainter&, const QSize&, const QPalette&)>& paint);

class PaintedCanvas : public QAbstractScrollArea {
  Q_OBJECT
 public:
  explicit PaintedCanvas(QWidget* parent);

  // Recomputes the layout for the viewport's width (and the scroll ranges), then repaints.
  virtual void relayout() = 0;

 protected:
  // The tooltip at a viewport point and the viewport rect it belongs to (it hides when the mouse
  // leaves it); an empty text hides the tooltip.
  virtual QString toolTipAt(const QPoint& viewportPos, QRect* rect) const = 0;

  bool viewportEvent(QEvent* event) override;
  void scrollContentsBy(int dx, int dy) override;
  // A new font (set on polish, or by the user) changes every text width: lay out again.
  void changeEvent(QEvent* event) override;
};

}  // namespace attnscope::app
