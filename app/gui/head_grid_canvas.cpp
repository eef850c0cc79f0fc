// Head grid painting, scrolling and input: see head_grid_canvas.h.
#include "head_grid_canvas.h"

#include <qcustomplot.h>

#include <QKeyEvent>
#include <QMouseEvent>
#include <QPainter>
#include <QPainterPath>
#include <QScrollBar>
#include <QToolTip>
#include <algorithm>
#include <cmath>

#include "head_grid_view.h"
#include "plot_axes.h"
#include "plot_style.h"
#include "selection_model.h"

namespace attnscope::app {

namespace {

constexpr int kColorBarWidth = 220;
constexpr int kColorBarHeight = 12;
constexpr int kLegendSpacing = 18;

struct BadgeStyle {
  uint8_t flag;
  const char* letter;
  QColor color;
};

// Sink red, local orange, retrieval blue: the badges sit in the empty (causally hidden) top-right
// corner of a thumbnail, so they never compete with the colour map.
const BadgeStyle kBadgeStyles[] = {{kBadgeSink, "S", QColor(0xe1, 0x57, 0x59)},
                                   {kBadgeLocal, "L", QColor(0xf2, 0x8e, 0x2b)},
                                   {kBadgeRetrieval, "R", QColor(0x4e, 0x79, 0xa7)}};

// The badge legend entries, e.g. "sink: >= 60% of the mass on the first 4 keys".
QStringList badgeLegendTexts(const HeadMetricOptions& options) {
  const HeadBadgeThresholds t;
  return {QObject::tr("sink: \u2265%1% of the mass on the first %2 keys")
              .arg(t.sink_mass * 100, 0, 'f', 0)
              .arg(options.sink_tokens),
          QObject::tr("local: \u2265%1% within %2 tokens")
              .arg(t.locality * 100, 0, 'f', 0)
              .arg(options.locality_window),
          QObject::tr("retrieval: induction score \u2265%1").arg(t.retrieval_score, 0, 'g', 2)};
}

QString colorBarLabel(bool log) {
  return log ? QObject::tr("max attention per cell (shared log scale)")
             : QObject::tr("max attention per cell (shared linear scale)");
}

int badgeLegendWidth(const QFontMetrics& fm, const HeadMetricOptions& options) {
  int w = 0;
  for (const QString& text : badgeLegendTexts(options))
    w += fm.height() + 4 + fm.horizontalAdvance(text) + kLegendSpacing;
  return w;
}

void drawBadge(QPainter& p, const QRect& box, const BadgeStyle& style, const QColor& outline) {
  p.setPen(QPen(outline, 1));
  p.setBrush(style.color);
  p.drawRoundedRect(QRectF(box).adjusted(0.5, 0.5, -0.5, -0.5), 2, 2);
  QFont f = p.font();
  f.setPixelSize(std::max(7, box.height() - 3));
  f.setWeight(QFont::Bold);
  p.setFont(f);
  p.setPen(Qt::white);
  p.drawText(box, Qt::AlignCenter, QString::fromLatin1(style.letter));
}

// "10⁻³" for d = -3 (superscript digits, as on the plots' log colour scales); "1" for 0.
QString decadeLabel(int d) {
  if (d == 0) return QStringLiteral("1");
  static const char16_t kDigits[] = {0x2070, 0x00B9, 0x00B2, 0x00B3, 0x2074,
                                     0x2075, 0x2076, 0x2077, 0x2078, 0x2079};
  QString exponent;
  for (const QChar c : QString::number(std::abs(d))) exponent += QChar(kDigits[c.unicode() - '0']);
  return QStringLiteral("10") + (d < 0 ? QString(QChar(0x207B)) : QString()) + exponent;
}

}  // namespace

HeadGridGeometry HeadGridGeometry::compute(int width, int nLayers, int nHeads, const QFont& font) {
  HeadGridGeometry g;
  g.nLayers = std::max(0, nLayers);
  g.nHeads = std::max(0, nHeads);
  const QFontMetrics fm(font);
  const QFontMetrics tfm(figureTitleFont(font));
  g.titleTop = kPad;
  g.titleHeight = tfm.height() + 4;
  g.legendTop = g.titleTop + g.titleHeight + 2;
  const int barBlock = kColorBarWidth + 8 + fm.horizontalAdvance(colorBarLabel(false));
  g.badgeLegendBelow =
      kPad + barBlock + kLegendSpacing + badgeLegendWidth(fm, HeadMetricOptions{}) > width;
  g.legendHeight = kColorBarHeight + 3 + fm.height() + 6;
  if (g.badgeLegendBelow) g.legendHeight += fm.height() + 6;
  g.headerTop = g.legendTop + g.legendHeight;
  g.headerHeight = fm.height() + 6;
  g.gridTop = g.headerTop + g.headerHeight;
  g.rowHeaderWidth =
      fm.horizontalAdvance(QStringLiteral("L%1").arg(std::max(0, g.nLayers - 1))) + 14;
  const int available = width - 2 * kPad - g.rowHeaderWidth;
  const int perHead = g.nHeads > 0 ? available / g.nHeads - kGap : kMinCell;
  g.cell = std::clamp(perHead, kMinCell, kMaxCell);
  g.pitch = g.cell + kGap;
  g.contentWidth = std::max(width, g.cellsLeft() + kInset + g.nHeads * g.pitch + kPad);
  g.contentHeight = g.gridTop + kInset + g.nLayers * g.pitch + kPad;
  return g;
}

QRect HeadGridGeometry::cellRect(int layer, int head) const {
  return QRect(cellsLeft() + kInset + head * pitch, gridTop + kInset + layer * pitch, cell, cell);
}

HeadGridCanvas::HeadGridCanvas(HeadGridView* view) : PaintedCanvas(view), m_view(view) {
  setFocusPolicy(Qt::StrongFocus);
  setHorizontalScrollBarPolicy(Qt::ScrollBarAsNeeded);
  setVerticalScrollBarPolicy(Qt::ScrollBarAsNeeded);
}

void HeadGridCanvas::relayout() {
  const TraceAnalysisPtr a = m_view->analysis();
  const int layers = a && a->hasThumbnails() ? a->nLayers : 0;
  const int heads = a && a->hasThumbnails() ? a->nHeads : 0;
  m_geometry = HeadGridGeometry::compute(viewport()->width(), layers, heads, font());
  const int scrollableHeight = viewport()->height() - m_geometry.gridTop;
  const int cellsHeight = m_geometry.contentHeight - m_geometry.gridTop;
  verticalScrollBar()->setPageStep(std::max(1, scrollableHeight));
  verticalScrollBar()->setSingleStep(std::max(1, m_geometry.pitch / 3));
  verticalScrollBar()->setRange(0, std::max(0, cellsHeight - scrollableHeight));
  const int scrollableWidth = viewport()->width() - m_geometry.cellsLeft();
  const int cellsWidth = m_geometry.contentWidth - m_geometry.cellsLeft();
  horizontalScrollBar()->setPageStep(std::max(1, scrollableWidth));
  horizontalScrollBar()->setSingleStep(std::max(1, m_geometry.pitch / 3));
  horizontalScrollBar()->setRange(0, std::max(0, cellsWidth - scrollableWidth));
  viewport()->update();
}

QRect HeadGridCanvas::cellRectInViewport(int layer, int head) const {
  if (layer < 0 || head < 0 || layer >= m_geometry.nLayers || head >= m_geometry.nHeads) return {};
  return m_geometry.cellRect(layer, head)
      .translated(-horizontalScrollBar()->value(), -verticalScrollBar()->value());
}

bool HeadGridCanvas::headAt(const QPoint& pos, int* layer, int* head) const {
  const HeadGridGeometry& g = m_geometry;
  if (g.nLayers == 0 || pos.y() < g.gridTop || pos.x() < g.cellsLeft()) return false;
  const int x = pos.x() + horizontalScrollBar()->value() - g.cellsLeft() - HeadGridGeometry::kInset;
  const int y = pos.y() + verticalScrollBar()->value() - g.gridTop - HeadGridGeometry::kInset;
  if (x < 0 || y < 0) return false;
  const int h = x / g.pitch, l = y / g.pitch;
  if (h < 0 || l < 0 || h >= g.nHeads || l >= g.nLayers) return false;
  if (x % g.pitch >= g.cell || y % g.pitch >= g.cell) return false;  // in the gap
  *layer = l;
  *head = h;
  return true;
}

void HeadGridCanvas::ensureCellVisible(int layer, int head) {
  const QRect r = cellRectInViewport(layer, head);
  if (r.isEmpty()) return;
  const int top = m_geometry.gridTop, left = m_geometry.cellsLeft();
  QScrollBar* v = verticalScrollBar();
  QScrollBar* h = horizontalScrollBar();
  if (r.top() < top) v->setValue(v->value() - (top - r.top()) - HeadGridGeometry::kGap);
  if (r.bottom() > viewport()->height())
    v->setValue(v->value() + r.bottom() - viewport()->height() + HeadGridGeometry::kGap);
  if (r.left() < left) h->setValue(h->value() - (left - r.left()) - HeadGridGeometry::kGap);
  if (r.right() > viewport()->width())
    h->setValue(h->value() + r.right() - viewport()->width() + HeadGridGeometry::kGap);
}

void HeadGridCanvas::paintGrid(QPainter& p, const HeadGridView& view, const HeadGridGeometry& g,
                               const QPoint& scroll, const QSize& size, const QPalette& pal,
                               int hoverLayer, int hoverHead) {
  const CanvasColors colors(pal);
  const QColor &window = colors.window, &base = colors.base, &text = colors.text;
  const QColor &mid = colors.mid, &highlight = colors.highlight;
  p.fillRect(QRect(QPoint(0, 0), size), window);
  const QFontMetrics fm(p.font());
  const TraceAnalysisPtr a = view.m_analysis;
  if (!a || !a->hasThumbnails() || g.nLayers == 0) {
    // Empty / pending state: one message and, while computing, a progress bar.
    p.setPen(text);
    const QRect box(0, 0, size.width(), size.height());
    QString message = view.noteText();
    p.drawText(box.adjusted(20, 0, -20, -30), Qt::AlignCenter | Qt::TextWordWrap, message);
    if (view.m_progress >= 0) {
      const QRect bar(size.width() / 2 - 120, size.height() / 2 + 10, 240, 8);
      p.setPen(QPen(mid, 1));
      p.setBrush(base);
      p.drawRect(bar);
      p.fillRect(QRect(bar.left() + 1, bar.top() + 1, int((bar.width() - 1) * view.m_progress),
                       bar.height() - 1),
                 highlight);
    }
    return;
  }
  const SelectionModel* sel = view.selection();
  const int selLayer = sel ? sel->layer() : -1, selHead = sel ? sel->head() : -1;
  const int hoverToken = sel ? sel->hoverToken() : -1;

  // Cells (scrolled both ways), clipped below the headers and right of the row headers.
  p.save();
  p.setClipRect(
      QRect(g.cellsLeft(), g.gridTop, size.width() - g.cellsLeft(), size.height() - g.gridTop));
  p.setRenderHint(QPainter::SmoothPixmapTransform, false);
  const int firstLayer = std::max(0, scroll.y() / g.pitch);
  const int lastLayer = std::min(g.nLayers - 1, (scroll.y() + size.height() - g.gridTop) / g.pitch);
  const int firstHead = std::max(0, scroll.x() / g.pitch);
  const int lastHead =
      std::min(g.nHeads - 1, (scroll.x() + size.width() - g.cellsLeft()) / g.pitch);
  const int badge = std::clamp(g.cell / 5, 10, 16);
  for (int l = firstLayer; l <= lastLayer; ++l) {
    for (int h = firstHead; h <= lastHead; ++h) {
      const QRect r = g.cellRect(l, h).translated(-scroll);
      p.fillRect(r, base);
      const size_t idx = static_cast<size_t>(l) * g.nHeads + h;
      if (idx < view.m_images.size()) p.drawImage(r, view.m_images[idx]);
      p.setPen(QPen(mid, 1));
      p.setBrush(Qt::NoBrush);
      p.drawRect(QRectF(r).adjusted(-0.5, -0.5, 0.5, 0.5));
      if (hoverToken >= 0) {
        // The hovered token's query row and key column in every head.
        const PooledMap& m = a->thumbnail(l, h);
        const int row = binIndex(m.row_edges, hoverToken), col = binIndex(m.col_edges, hoverToken);
        if (row >= 0 && col >= 0 && m.rows > 0 && m.cols > 0) {
          QColor c = highlight;
          c.setAlpha(190);
          p.setPen(QPen(c, 1));
          const double y = r.top() + (row + 0.5) * r.height() / m.rows;
          const double x = r.left() + (col + 0.5) * r.width() / m.cols;
          p.drawLine(QPointF(r.left(), y), QPointF(r.right() + 1, y));
          p.drawLine(QPointF(x, r.top()), QPointF(x, r.bottom() + 1));
        }
      }
      if (idx < a->badges.size() && a->badges[idx] != 0) {
        int x = r.right() - 2 - badge;
        for (const BadgeStyle& style : kBadgeStyles) {
          if (!(a->badges[idx] & style.flag)) continue;
          drawBadge(p, QRect(x, r.top() + 3, badge, badge), style, base);
          x -= badge + 2;
        }
        p.setFont(view.font());
      }
    }
  }
  if (hoverLayer >= 0 && hoverHead >= 0 && !(hoverLayer == selLayer && hoverHead == selHead)) {
    p.setPen(QPen(text, 1));
    p.setBrush(Qt::NoBrush);
    p.drawRect(QRectF(g.cellRect(hoverLayer, hoverHead).translated(-scroll))
                   .adjusted(-1.5, -1.5, 1.5, 1.5));
  }
  if (selLayer >= 0 && selHead >= 0 && selLayer < g.nLayers && selHead < g.nHeads) {
    p.setPen(QPen(highlight, 3));
    p.setBrush(Qt::NoBrush);
    p.drawRect(QRectF(g.cellRect(selLayer, selHead).translated(-scroll)).adjusted(-2, -2, 2, 2));
  }
  p.restore();

  // Row headers: scroll vertically only.
  p.save();
  p.setClipRect(QRect(0, g.gridTop, g.cellsLeft(), size.height() - g.gridTop));
  for (int l = firstLayer; l <= lastLayer; ++l) {
    const QRect r = g.cellRect(l, 0).translated(0, -scroll.y());
    QFont f = view.font();
    f.setWeight(l == selLayer ? QFont::Bold : QFont::Normal);
    p.setFont(f);
    p.setPen(l == selLayer ? highlight : text);
    p.drawText(QRect(HeadGridGeometry::kPad, r.top(), g.rowHeaderWidth - 8, r.height()),
               Qt::AlignRight | Qt::AlignVCenter, QStringLiteral("L%1").arg(l));
  }
  p.restore();

  // Fixed band: title, legends, column headers (these scroll horizontally only).
  p.fillRect(QRect(0, 0, size.width(), g.gridTop), window);
  p.setFont(figureTitleFont(view.font()));
  p.setPen(text);
  p.drawText(QRect(HeadGridGeometry::kPad, g.titleTop, size.width() - 2 * HeadGridGeometry::kPad,
                   g.titleHeight),
             Qt::AlignLeft | Qt::AlignVCenter,
             QFontMetrics(p.font()).elidedText(view.titleText(), Qt::ElideRight,
                                               size.width() - 2 * HeadGridGeometry::kPad));
  p.setFont(view.font());

  // Colour bar with ticks: decades in log mode, 0 / half / max in linear mode.
  const QRect bar(HeadGridGeometry::kPad, g.legendTop + 2, kColorBarWidth, kColorBarHeight);
  const double lo = view.scaleLow(), hi = view.scaleHigh();
  paintColorBar(
      p, bar,
      [&](double t) {
        return view.colorFor(view.logScale() ? lo * std::pow(hi / lo, t) : lo + t * (hi - lo));
      },
      mid);
  p.setPen(text);
  struct Tick {
    double t;
    QString label;
  };
  std::vector<Tick> ticks;
  if (view.logScale() && lo > 0 && hi > lo) {
    const int d0 = static_cast<int>(std::ceil(std::log10(lo) - 1e-9));
    const int d1 = static_cast<int>(std::floor(std::log10(hi) + 1e-9));
    for (int d = d0; d <= d1; ++d) {
      const double t = (d - std::log10(lo)) / (std::log10(hi) - std::log10(lo));
      ticks.push_back({t, decadeLabel(d)});
    }
    if (ticks.empty() || ticks.back().t < 0.8) ticks.push_back({1.0, QString::number(hi, 'g', 2)});
  } else {
    for (const double t : {0.0, 0.5, 1.0})
      ticks.push_back({t, QString::number(lo + t * (hi - lo), 'g', 2)});
  }
  int lastRight = -1000;
  for (const Tick& tick : ticks) {
    const int x = bar.left() + static_cast<int>(std::lround(tick.t * bar.width()));
    p.drawLine(x, bar.bottom() + 1, x, bar.bottom() + 3);
    const int w = fm.horizontalAdvance(tick.label);
    const int left = std::clamp(x - w / 2, bar.left() - 4, bar.right() + 4 - w);
    if (left <= lastRight + 4) continue;  // never overlap neighbouring labels
    p.drawText(QRect(left, bar.bottom() + 3, w + 2, fm.height()), Qt::AlignLeft | Qt::AlignTop,
               tick.label);
    lastRight = left + w;
  }
  int x = bar.right() + 8;
  p.drawText(QRect(x, bar.top() - 3, fm.horizontalAdvance(colorBarLabel(view.logScale())) + 4,
                   fm.height()),
             Qt::AlignLeft | Qt::AlignVCenter, colorBarLabel(view.logScale()));
  x += fm.horizontalAdvance(colorBarLabel(false)) + kLegendSpacing;
  int y = bar.top() - 3;
  if (g.badgeLegendBelow) {
    x = HeadGridGeometry::kPad;
    y = bar.bottom() + 3 + fm.height() + 5;
  }
  const QStringList badgeTexts = badgeLegendTexts(a->metricOptions);
  for (int i = 0; i < 3; ++i) {
    const int s = fm.height() - 2;
    drawBadge(p, QRect(x, y + 1, s, s), kBadgeStyles[i], base);
    p.setFont(view.font());
    p.setPen(text);
    x += s + 4;
    p.drawText(QRect(x, y, fm.horizontalAdvance(badgeTexts[i]) + 4, fm.height()),
               Qt::AlignLeft | Qt::AlignVCenter, badgeTexts[i]);
    x += fm.horizontalAdvance(badgeTexts[i]) + kLegendSpacing;
  }

  // Column headers.
  p.save();
  p.setClipRect(QRect(g.cellsLeft(), g.headerTop, size.width() - g.cellsLeft(), g.headerHeight));
  for (int h = firstHead; h <= lastHead; ++h) {
    const QRect r = g.cellRect(0, h).translated(-scroll.x(), 0);
    QFont f = view.font();
    f.setWeight(h == selHead ? QFont::Bold : QFont::Normal);
    p.setFont(f);
    p.setPen(h == selHead ? highlight : text);
    p.drawText(QRect(r.left(), g.headerTop, r.width(), g.headerHeight), Qt::AlignCenter,
               QStringLiteral("H%1").arg(h));
  }
  p.restore();
  p.setFont(view.font());
}

void HeadGridCanvas::paintEvent(QPaintEvent*) {
  QPainter p(viewport());
  p.setFont(font());
  p.setRenderHint(QPainter::TextAntialiasing);
  paintGrid(p, *m_view, m_geometry,
            QPoint(horizontalScrollBar()->value(), verticalScrollBar()->value()),
            viewport()->size(), palette(), m_hoverLayer, m_hoverHead);
  p.end();
  m_view->paintFinished();
}

void HeadGridCanvas::resizeEvent(QResizeEvent* event) {
  PaintedCanvas::resizeEvent(event);
  relayout();
}

void HeadGridCanvas::setHover(int layer, int head) {
  if (layer == m_hoverLayer && head == m_hoverHead) return;
  m_hoverLayer = layer;
  m_hoverHead = head;
  viewport()->update();
}

void HeadGridCanvas::mouseMoveEvent(QMouseEvent* event) {
  int l = -1, h = -1;
  if (!headAt(event->position().toPoint(), &l, &h)) l = h = -1;
  setHover(l, h);
  if (l < 0) QToolTip::hideText();
  PaintedCanvas::mouseMoveEvent(event);
}

void HeadGridCanvas::leaveEvent(QEvent* event) {
  setHover(-1, -1);
  PaintedCanvas::leaveEvent(event);
}

void HeadGridCanvas::mousePressEvent(QMouseEvent* event) {
  int l = -1, h = -1;
  if (event->button() == Qt::LeftButton && headAt(event->position().toPoint(), &l, &h)) {
    setFocus(Qt::MouseFocusReason);
    if (SelectionModel* sel = m_view->selection()) sel->setLayerHead(l, h);
    emit m_view->headActivated(l, h);
    event->accept();
    return;
  }
  PaintedCanvas::mousePressEvent(event);
}

void HeadGridCanvas::keyPressEvent(QKeyEvent* event) {
  SelectionModel* sel = m_view->selection();
  if (!sel || m_geometry.nLayers == 0) {
    PaintedCanvas::keyPressEvent(event);
    return;
  }
  int l = sel->layer(), h = sel->head();
  switch (event->key()) {
    case Qt::Key_Left:
      h = std::max(0, h - 1);
      break;
    case Qt::Key_Right:
      h = std::min(m_geometry.nHeads - 1, h + 1);
      break;
    case Qt::Key_Up:
      l = std::max(0, l - 1);
      break;
    case Qt::Key_Down:
      l = std::min(m_geometry.nLayers - 1, l + 1);
      break;
    case Qt::Key_Return:
    case Qt::Key_Enter:
      emit m_view->headActivated(l, h);
      event->accept();
      return;
    default:
      PaintedCanvas::keyPressEvent(event);
      return;
  }
  sel->setLayerHead(l, h);
  ensureCellVisible(l, h);
  event->accept();
}

QString HeadGridCanvas::toolTipAt(const QPoint& pos, QRect* rect) const {
  int l = -1, h = -1;
  if (!headAt(pos, &l, &h)) return QString();
  *rect = cellRectInViewport(l, h);
  return m_view->headTooltip(l, h);
}

}  // namespace attnscope::app
