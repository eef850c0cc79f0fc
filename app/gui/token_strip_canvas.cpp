// Token strip layout, painting and input: see token_strip_canvas.h.
#include "token_strip_canvas.h"

#include <QMouseEvent>
#include <QPainter>
#include <QScrollBar>
#include <QToolTip>
#include <algorithm>
#include <cmath>

#include "plot_style.h"
#include "selection_model.h"
#include "token_strip.h"

namespace attnscope::app {

namespace {

constexpr int kColorBarWidth = 120;
constexpr int kColorBarHeight = 10;

QString boundaryText() {
  return QObject::tr("generated \u25b8");
}

QFont decodeFont(const QFont& base) {
  QFont f = base;
  f.setItalic(true);
  return f;
}

// The prompt/decode boundary's colour: orange, distinct from the attention shading.
QColor boundaryColor() {
  return seriesColor(1);
}

}  // namespace

TokenStripLayout TokenStripLayout::compute(const TokenStrip& strip, int width, const QFont& font) {
  TokenStripLayout g;
  g.width = std::max(width, 120);
  const QFontMetrics fm(font);
  // Fractional advances (rounded up): integer ones can be a fraction short, and elision would
  // then shorten a chip's text that was meant to fit.
  const QFontMetricsF fmf(font);
  const QFontMetricsF dfmf(decodeFont(font));
  g.headerHeight = fm.height() + 10;
  g.chipHeight = fm.height() + 6;
  const int T = strip.tokenCount();
  const TracePtr trace = strip.trace();
  g.chips.resize(static_cast<size_t>(T));
  int x = kPad, y = g.headerHeight + kPad;
  const int right = g.width - kPad;
  bool breakNext = false;
  const auto newLine = [&](int firstToken) {
    y += g.chipHeight + kLineGap;
    x = kPad;
    g.lineTops.push_back(y);
    g.lineFirst.push_back(firstToken);
  };
  if (T > 0) {
    g.lineTops.push_back(y);
    g.lineFirst.push_back(0);
  }
  const int nPrompt = trace ? trace->n_prompt : T;
  for (int i = 0; i < T; ++i) {
    const bool decode = i >= nPrompt;
    if (breakNext && x > kPad) newLine(i);
    breakNext = false;
    if (i == nPrompt && i > 0) {
      const int bw = fm.horizontalAdvance(boundaryText()) + 12;
      if (x + bw > right && x > kPad) newLine(i);
      g.boundary = QRect(x, y, bw, g.chipHeight);
      x += bw + kChipGap;
    }
    const QString text = strip.tokenText(i);
    const int advance =
        static_cast<int>(std::ceil((decode ? dfmf : fmf).horizontalAdvance(text))) + 1;
    const int w = std::clamp(advance + 2 * kChipPadX, 12, std::min(kMaxChipWidth, right - kPad));
    if (x + w > right && x > kPad) newLine(i);
    g.chips[static_cast<size_t>(i)] = QRect(x, y, w, g.chipHeight);
    x += w + kChipGap;
    // A token that ends a line of the text ends a line of chips too.
    if (trace && static_cast<size_t>(i) < trace->token_texts.size() &&
        trace->token_texts[static_cast<size_t>(i)].find('\n') != std::string::npos) {
      breakNext = true;
    }
  }
  g.contentHeight = T > 0 ? y + g.chipHeight + kPad : g.headerHeight + 2 * g.chipHeight;
  return g;
}

int TokenStripLayout::tokenAt(const QPoint& p) const {
  if (lineTops.empty() || p.y() < headerHeight) return -1;
  const auto [first, last] = linesIn(p.y(), p.y() + 1);
  for (int line = first; line <= last && line >= 0; ++line) {
    const int begin = lineFirst[static_cast<size_t>(line)];
    const int end = line + 1 < static_cast<int>(lineFirst.size())
                        ? lineFirst[static_cast<size_t>(line) + 1]
                        : static_cast<int>(chips.size());
    for (int i = begin; i < end; ++i) {
      if (chips[static_cast<size_t>(i)].contains(p)) return i;
    }
  }
  return -1;
}

std::pair<int, int> TokenStripLayout::linesIn(int top, int bottom) const {
  if (lineTops.empty()) return {0, -1};
  // The line whose top is the last one <= top - chipHeight is the first that may intersect.
  const auto firstIt = std::upper_bound(lineTops.begin(), lineTops.end(), top - chipHeight);
  const int first = std::max(0, static_cast<int>(firstIt - lineTops.begin()));
  const auto lastIt = std::lower_bound(lineTops.begin(), lineTops.end(), bottom);
  const int last = static_cast<int>(lastIt - lineTops.begin()) - 1;
  return {first, std::min(last, static_cast<int>(lineTops.size()) - 1)};
}

TokenStripCanvas::TokenStripCanvas(TokenStrip* strip) : PaintedCanvas(strip), m_strip(strip) {
  setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  setVerticalScrollBarPolicy(Qt::ScrollBarAsNeeded);
  setMinimumHeight(60);
}

void TokenStripCanvas::relayout() {
  m_layout = TokenStripLayout::compute(*m_strip, viewport()->width(), font());
  const int visible = viewport()->height() - m_layout.headerHeight;
  const int chips = m_layout.contentHeight - m_layout.headerHeight;
  verticalScrollBar()->setPageStep(std::max(1, visible));
  verticalScrollBar()->setSingleStep(m_layout.chipHeight + TokenStripLayout::kLineGap);
  verticalScrollBar()->setRange(0, std::max(0, chips - visible));
  viewport()->update();
}

QRect TokenStripCanvas::chipRectInViewport(int index) const {
  if (index < 0 || static_cast<size_t>(index) >= m_layout.chips.size()) return {};
  return m_layout.chips[static_cast<size_t>(index)].translated(0, -verticalScrollBar()->value());
}

int TokenStripCanvas::tokenAtViewport(const QPoint& pos) const {
  if (pos.y() < m_layout.headerHeight) return -1;
  return m_layout.tokenAt(pos + QPoint(0, verticalScrollBar()->value()));
}

void TokenStripCanvas::ensureTokenVisible(int index) {
  const QRect r = chipRectInViewport(index);
  if (r.isEmpty()) return;
  QScrollBar* v = verticalScrollBar();
  const int top = m_layout.headerHeight;
  if (r.top() < top) v->setValue(v->value() - (top - r.top()) - TokenStripLayout::kLineGap);
  if (r.bottom() > viewport()->height())
    v->setValue(v->value() + r.bottom() - viewport()->height() + TokenStripLayout::kLineGap);
}

void TokenStripCanvas::paintStrip(QPainter& p, const TokenStrip& strip, const TokenStripLayout& g,
                                  int scrollY, const QSize& size, const QPalette& pal) {
  const CanvasColors colors(pal);
  const QColor &window = colors.window, &base = colors.base, &text = colors.text;
  const QColor &mid = colors.mid, &highlight = colors.highlight;
  p.fillRect(QRect(QPoint(0, 0), size), window);
  const QFont font = p.font();
  const QFontMetrics fm(font);
  const int T = strip.tokenCount();
  if (T == 0) {
    p.setPen(text);
    p.drawText(QRect(QPoint(0, 0), size), Qt::AlignCenter | Qt::TextWordWrap, strip.headerText());
    return;
  }
  const SelectionModel* sel = strip.selection();
  const int query = sel ? sel->queryToken() : -1;
  const int hover = sel ? sel->hoverToken() : -1;
  const std::vector<float>& row = strip.rowValues();
  const bool coloured = !row.empty() && strip.rowQuery() >= 0;
  const int rowQuery = strip.rowQuery();
  const int nPrompt = strip.trace() ? strip.trace()->n_prompt : T;
  const QFont italic = decodeFont(font);

  p.save();
  p.setClipRect(QRect(0, g.headerHeight, size.width(), size.height() - g.headerHeight));
  const auto [firstLine, lastLine] = g.linesIn(scrollY + g.headerHeight, scrollY + size.height());
  if (firstLine <= lastLine) {
    const int begin = g.lineFirst[static_cast<size_t>(firstLine)];
    const int end = lastLine + 1 < static_cast<int>(g.lineFirst.size())
                        ? g.lineFirst[static_cast<size_t>(lastLine) + 1]
                        : T;
    for (int i = begin; i < end; ++i) {
      const QRect r = g.chips[static_cast<size_t>(i)].translated(0, -scrollY);
      const bool decode = i >= nPrompt;
      const bool after = coloured && i > rowQuery;
      QColor fill = decode ? pal.color(QPalette::AlternateBase) : base;
      if (coloured && !after && static_cast<size_t>(i) < row.size())
        fill = strip.chipColor(row[static_cast<size_t>(i)]);
      p.setPen(QPen(mid, 1, decode ? Qt::DashLine : Qt::SolidLine));
      p.setBrush(fill);
      p.drawRoundedRect(QRectF(r).adjusted(0.5, 0.5, -0.5, -0.5), 3, 3);
      // Text colour by the background's lightness so shaded chips stay readable.
      QColor ink = fill.lightnessF() < 0.5 ? QColor(Qt::white) : QColor(Qt::black);
      if (!coloured || after) ink = text;
      if (after) ink.setAlphaF(0.45);
      p.setPen(ink);
      p.setFont(decode ? italic : font);
      const QString label = (decode ? QFontMetrics(italic) : fm)
                                .elidedText(strip.tokenText(i), Qt::ElideRight,
                                            r.width() - 2 * TokenStripLayout::kChipPadX);
      p.drawText(r.adjusted(TokenStripLayout::kChipPadX, 0, -TokenStripLayout::kChipPadX + 2, 0),
                 Qt::AlignLeft | Qt::AlignVCenter, label);
      if (i == hover && i != query) {
        p.setPen(QPen(text, 2));
        p.setBrush(Qt::NoBrush);
        p.drawRoundedRect(QRectF(r).adjusted(-1, -1, 1, 1), 3, 3);
      }
      if (i == query) {
        p.setPen(QPen(highlight, 2.5));
        p.setBrush(Qt::NoBrush);
        p.drawRoundedRect(QRectF(r).adjusted(-1.5, -1.5, 1.5, 1.5), 3, 3);
      }
    }
  }
  p.setFont(font);
  if (!g.boundary.isEmpty()) {
    const QRect b = g.boundary.translated(0, -scrollY);
    p.setPen(QPen(boundaryColor(), 2));
    p.drawLine(b.left() + 1, b.top() - 2, b.left() + 1, b.bottom() + 2);
    p.setPen(boundaryColor());
    p.drawText(b.adjusted(6, 0, 0, 0), Qt::AlignLeft | Qt::AlignVCenter, boundaryText());
  }
  p.restore();

  // Header: what the colours mean, with a colour bar when a row is shown.
  p.fillRect(QRect(0, 0, size.width(), g.headerHeight), window);
  int textRight = size.width() - TokenStripLayout::kPad;
  if (coloured) {
    const QString hi = QString::number(double(strip.rowMax()), 'g', 3);
    const int labelW = fm.horizontalAdvance(hi);
    const QRect bar(size.width() - TokenStripLayout::kPad - labelW - 6 - kColorBarWidth,
                    (g.headerHeight - kColorBarHeight) / 2, kColorBarWidth, kColorBarHeight);
    paintColorBar(
        p, bar, [&](double t) { return strip.chipColor(strip.rowMax() * float(t)); }, mid);
    p.setPen(text);
    p.drawText(QRect(bar.left() - fm.horizontalAdvance(QStringLiteral("0")) - 5, 0,
                     fm.horizontalAdvance(QStringLiteral("0")) + 2, g.headerHeight),
               Qt::AlignVCenter | Qt::AlignRight, QStringLiteral("0"));
    p.drawText(QRect(bar.right() + 5, 0, labelW + 2, g.headerHeight),
               Qt::AlignVCenter | Qt::AlignLeft, hi);
    textRight = bar.left() - fm.horizontalAdvance(QStringLiteral("0")) - 14;
  }
  p.setPen(text);
  const int textWidth = std::max(10, textRight - TokenStripLayout::kPad);
  p.drawText(QRect(TokenStripLayout::kPad, 0, textWidth, g.headerHeight),
             Qt::AlignLeft | Qt::AlignVCenter,
             fm.elidedText(strip.headerText(), Qt::ElideRight, textWidth));
  p.setPen(QPen(mid, 1));
  p.drawLine(0, g.headerHeight - 1, size.width(), g.headerHeight - 1);
}

void TokenStripCanvas::paintEvent(QPaintEvent*) {
  QPainter p(viewport());
  p.setFont(font());
  p.setRenderHint(QPainter::Antialiasing);
  paintStrip(p, *m_strip, m_layout, verticalScrollBar()->value(), viewport()->size(), palette());
}

void TokenStripCanvas::resizeEvent(QResizeEvent* event) {
  PaintedCanvas::resizeEvent(event);
  if (viewport()->width() != m_layout.width) {
    relayout();
  } else {
    // Same width: the chips stay, only the scroll range follows the height.
    const int visible = viewport()->height() - m_layout.headerHeight;
    verticalScrollBar()->setPageStep(std::max(1, visible));
    verticalScrollBar()->setRange(
        0, std::max(0, m_layout.contentHeight - m_layout.headerHeight - visible));
  }
}

void TokenStripCanvas::mouseMoveEvent(QMouseEvent* event) {
  const int token = tokenAtViewport(event->position().toPoint());
  if (SelectionModel* sel = m_strip->selection()) sel->setHoverToken(token);
  if (token < 0) QToolTip::hideText();
  PaintedCanvas::mouseMoveEvent(event);
}

void TokenStripCanvas::leaveEvent(QEvent* event) {
  if (SelectionModel* sel = m_strip->selection()) sel->setHoverToken(-1);
  PaintedCanvas::leaveEvent(event);
}

void TokenStripCanvas::mousePressEvent(QMouseEvent* event) {
  const int token = tokenAtViewport(event->position().toPoint());
  if (event->button() == Qt::LeftButton && token >= 0) {
    if (SelectionModel* sel = m_strip->selection()) sel->setQueryToken(token);
    event->accept();
    return;
  }
  PaintedCanvas::mousePressEvent(event);
}

QString TokenStripCanvas::toolTipAt(const QPoint& pos, QRect* rect) const {
  const int token = tokenAtViewport(pos);
  if (token < 0) return QString();
  *rect = chipRectInViewport(token);
  return m_strip->tooltipFor(token);
}

}  // namespace attnscope::app
