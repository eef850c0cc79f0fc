// The painted surface of the token strip: a fixed header line (what the colours mean, with a
// colour bar) over token chips wrapped into lines that scroll vertically. The chip layout is
// computed once per width / session (never per paint), and painting only walks the visible
// lines, so 8000 tokens scroll smoothly. The same painting draws the exported figure.
#pragma once

#include <QRect>
#include <vector>

#include "painted_canvas.h"

class QPainter;

namespace attnscope::app {

class TokenStrip;

struct TokenStripLayout {
  static constexpr int kPad = 6;
  static constexpr int kChipPadX = 4;
  static constexpr int kChipGap = 3;
  static constexpr int kLineGap = 4;
  static constexpr int kMaxChipWidth = 220;

  int width = 0;
  int headerHeight = 0;  // fixed band above the chips
  int chipHeight = 0;
  int contentHeight = 0;       // header + every line
  std::vector<QRect> chips;    // [T] in content coordinates
  std::vector<int> lineTops;   // y of each line
  std::vector<int> lineFirst;  // first token index of each line
  QRect boundary;              // the prompt/decode marker (empty when nothing was decoded)

  static TokenStripLayout compute(const TokenStrip& strip, int width, const QFont& font);
  // Token under a content point, or -1.
  int tokenAt(const QPoint& contentPos) const;
  // First and last line index intersecting [top, bottom) in content y.
  std::pair<int, int> linesIn(int top, int bottom) const;
};

class TokenStripCanvas : public PaintedCanvas {
  Q_OBJECT
 public:
  explicit TokenStripCanvas(TokenStrip* strip);

  void relayout() override;
  const TokenStripLayout& layoutData() const { return m_layout; }
  // Chip rect of `index` in viewport coordinates.
  QRect chipRectInViewport(int index) const;
  int tokenAtViewport(const QPoint& pos) const;
  void ensureTokenVisible(int index);

  static void paintStrip(QPainter& painter, const TokenStrip& strip, const TokenStripLayout& layout,
                         int scrollY, const QSize& size, const QPalette& palette);

 protected:
  void paintEvent(QPaintEvent* event) override;
  void resizeEvent(QResizeEvent* event) override;
  void mouseMoveEvent(QMouseEvent* event) override;
  void mousePressEvent(QMouseEvent* event) override;
  void leaveEvent(QEvent* event) override;
  QString toolTipAt(const QPoint& viewportPos, QRect* rect) const override;

 private:
  TokenStrip* m_strip;
  TokenStripLayout m_layout;
};

}  // namespace attnscope::app
