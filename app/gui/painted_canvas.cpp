// Painted-canvas base and helpers: see painted_canvas.h.
#include "painted_canvas.h"

#include <QEvent>
#include <QHelpEvent>
#include <QPainter>
#include <QToolTip>

namespace attnscope::app {

CanvasColors::CanvasColors(const QPalette& palette)
    : window(palette.color(QPalette::Window)),
      base(palette.color(QPalette::Base)),
      text(palette.color(QPalette::WindowText)),
      mid(palette.color(QPalette::Mid)),
      highlight(palette.color(QPalette::Highlight)) {}

void paintColorBar(QPainter& p, const QRect& bar, const std::function<QColor(double)>& colorAt,
                   const QColor& frame) {
  for (int x = 0; x < bar.width(); ++x) {
    p.fillRect(QRect(bar.left() + x, bar.top(), 1, bar.height()), colorAt((x + 0.5) / bar.width()));
  }
  p.setPen(QPen(frame, 1));
  p.setBrush(Qt::NoBrush);
  p.drawRect(QRectF(bar).adjusted(-0.5, -0.5, 0.5, 0.5));
}

QString exportCanvasFigure(
    const QWidget& view, QSize size, const QString& path, const PlotExportOptions& options,
    const QString& title,
    const std::function<void(QPainter&, const QSize&, const QPalette&)>& paint) {
  PlotExportOptions o = options;
  o.width = size.width();
  o.height = size.height();
  if (o.title.isEmpty()) o.title = title;
  const QPalette palette = view.palette();
  const QFont font = view.font();
  return exportPainted(
      [&](QPainter& p, const QSize& s) {
        p.setFont(font);
        paint(p, s, palette);
      },
      size, path, o);
}

PaintedCanvas::PaintedCanvas(QWidget* parent) : QAbstractScrollArea(parent) {
  setFrameShape(QFrame::NoFrame);
  viewport()->setMouseTracking(true);
}

bool PaintedCanvas::viewportEvent(QEvent* event) {
  if (event->type() == QEvent::ToolTip) {
    auto* help = static_cast<QHelpEvent*>(event);
    QRect rect;
    const QString text = toolTipAt(help->pos(), &rect);
    if (text.isEmpty()) {
      QToolTip::hideText();
    } else {
      QToolTip::showText(help->globalPos(), text, viewport(), rect);
    }
    return true;
  }
  return QAbstractScrollArea::viewportEvent(event);
}

void PaintedCanvas::scrollContentsBy(int, int) {
  viewport()->update();
}

void PaintedCanvas::changeEvent(QEvent* event) {
  QAbstractScrollArea::changeEvent(event);
  if (event->type() == QEvent::FontChange || event->type() == QEvent::StyleChange) relayout();
}

}  // namespace attnscope::app
