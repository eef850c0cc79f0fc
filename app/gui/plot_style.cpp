// Plot styling: see plot_style.h.
#include "plot_style.h"

#include <qcustomplot.h>

#include <QEvent>
#include <algorithm>
#include <cmath>
#include <iterator>

namespace attnscope::app {

void styleAxis(QCPAxis* axis, const QPalette& palette, bool grid) {
  const QColor text = palette.color(QPalette::WindowText);
  QColor gridColor = palette.color(QPalette::Mid);
  gridColor.setAlpha(110);
  axis->setBasePen(QPen(text, 1));
  axis->setTickPen(QPen(text, 1));
  axis->setSubTickPen(QPen(text, 1));
  axis->setTickLabelColor(text);
  axis->setLabelColor(text);
  axis->grid()->setVisible(grid);
  axis->grid()->setPen(QPen(gridColor, 1, Qt::DotLine));
  axis->grid()->setZeroLinePen(Qt::NoPen);
}

void stylePlot(QCustomPlot& plot, const QPalette& palette) {
  const QColor text = palette.color(QPalette::WindowText);
  plot.setBackground(palette.color(QPalette::Window));
  for (QCPAxisRect* rect : plot.axisRects()) {
    rect->setBackground(palette.color(QPalette::Base));
    for (QCPAxis* axis : rect->axes()) {
      styleAxis(axis, palette, axis->grid()->visible());
    }
  }
  for (int i = 0; i < plot.plotLayout()->elementCount(); ++i) {
    if (auto* title = qobject_cast<QCPTextElement*>(plot.plotLayout()->elementAt(i))) {
      title->setTextColor(text);
    }
  }
  // Colour scales and legends may sit anywhere in nested layouts.
  QList<QCPLayoutElement*> stack = {plot.plotLayout()};
  while (!stack.isEmpty()) {
    QCPLayoutElement* element = stack.takeLast();
    if (auto* scale = qobject_cast<QCPColorScale*>(element)) styleAxis(scale->axis(), palette);
    if (auto* text2 = qobject_cast<QCPTextElement*>(element)) text2->setTextColor(text);
    if (auto* legend = qobject_cast<QCPLegend*>(element)) {
      legend->setBrush(palette.color(QPalette::Base));
      legend->setBorderPen(QPen(palette.color(QPalette::Mid)));
      legend->setTextColor(text);
    }
    for (QCPLayoutElement* child : element->elements(false)) {
      if (child) stack.push_back(child);
    }
  }
}

QCPColorGradient attentionGradient() {
  QCPColorGradient gradient;
  gradient.clearColorStops();
  const QColor stops[] = {
      QColor(0x44, 0x01, 0x54), QColor(0x47, 0x2d, 0x7b), QColor(0x3b, 0x52, 0x8b),
      QColor(0x2c, 0x72, 0x8e), QColor(0x21, 0x91, 0x8c), QColor(0x28, 0xae, 0x80),
      QColor(0x5e, 0xc9, 0x62), QColor(0xad, 0xdc, 0x30), QColor(0xfd, 0xe7, 0x25)};
  const int n = static_cast<int>(std::size(stops));
  for (int i = 0; i < n; ++i) gradient.setColorStopAt(double(i) / (n - 1), stops[i]);
  gradient.setColorInterpolation(QCPColorGradient::ciRGB);
  gradient.setLevelCount(350);
  gradient.setNanHandling(QCPColorGradient::nhTransparent);
  return gradient;
}

QCPColorGradient differenceGradient() {
  QCPColorGradient gradient;
  gradient.clearColorStops();
  // ColorBrewer RdBu (reversed: negative blue, positive red), white at 0.5.
  gradient.setColorStopAt(0.0, QColor(0x05, 0x30, 0x61));
  gradient.setColorStopAt(0.15, QColor(0x21, 0x66, 0xac));
  gradient.setColorStopAt(0.3, QColor(0x67, 0xa9, 0xcf));
  gradient.setColorStopAt(0.45, QColor(0xd1, 0xe5, 0xf0));
  gradient.setColorStopAt(0.5, QColor(0xf7, 0xf7, 0xf7));
  gradient.setColorStopAt(0.55, QColor(0xfd, 0xdb, 0xc7));
  gradient.setColorStopAt(0.7, QColor(0xef, 0x8a, 0x62));
  gradient.setColorStopAt(0.85, QColor(0xb2, 0x18, 0x2b));
  gradient.setColorStopAt(1.0, QColor(0x67, 0x00, 0x1f));
  gradient.setColorInterpolation(QCPColorGradient::ciRGB);
  gradient.setLevelCount(350);
  gradient.setNanHandling(QCPColorGradient::nhTransparent);
  return gradient;
}

QCPColorGradient categoricalGradient(const std::vector<QColor>& colors) {
  QCPColorGradient gradient;
  gradient.clearColorStops();
  const int n = static_cast<int>(colors.size());
  for (int i = 0; i < n; ++i) {
    gradient.setColorStopAt(n > 1 ? double(i) / (n - 1) : 0.0, colors[static_cast<size_t>(i)]);
  }
  if (n == 1) gradient.setColorStopAt(1.0, colors.front());
  gradient.setColorInterpolation(QCPColorGradient::ciRGB);
  gradient.setLevelCount(std::max(2, n));
  gradient.setNanHandling(QCPColorGradient::nhTransparent);
  return gradient;
}

void setColorScaleLog(QCPColorScale* scale, bool log) {
  scale->setDataScaleType(log ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
  if (log) {
    scale->axis()->setTicker(QSharedPointer<QCPAxisTickerLog>::create());
    scale->axis()->setNumberFormat(QStringLiteral("eb"));
    scale->axis()->setNumberPrecision(0);
  } else {
    scale->axis()->setTicker(QSharedPointer<QCPAxisTicker>::create());
    scale->axis()->setNumberFormat(QStringLiteral("g"));
    scale->axis()->setNumberPrecision(3);
  }
}

QString logColoursToolTip() {
  return QObject::tr(
             "Log colour scale over the %1 decades below the largest value; off: linear "
             "from 0")
      .arg(-std::log10(kLogFloorRatio), 0, 'f', 0);
}

QColor seriesColor(int index) {
  static const QColor colors[] = {QColor(0x4e, 0x79, 0xa7), QColor(0xf2, 0x8e, 0x2b),
                                  QColor(0xe1, 0x57, 0x59), QColor(0x76, 0xb7, 0xb2),
                                  QColor(0x59, 0xa1, 0x4f), QColor(0xed, 0xc9, 0x48),
                                  QColor(0xb0, 0x7a, 0xa1), QColor(0xff, 0x9d, 0xa7),
                                  QColor(0x9c, 0x75, 0x5f), QColor(0xba, 0xb0, 0xac)};
  const int n = static_cast<int>(std::size(colors));
  return colors[((index % n) + n) % n];
}

QColor kvReasonColor(uint8_t reason) {
  switch (reason) {
    case 0:
      return QColor(0xd9, 0xd9, 0xd9);  // evicted: light grey, recedes
    case 1:
      return QColor(0xe1, 0x57, 0x59);  // sink: red
    case 2:
      return QColor(0x4e, 0x79, 0xa7);  // recent: blue
    case 3:
      return QColor(0x59, 0xa1, 0x4f);  // scored (kept for its score): green
    case 4:
      return QColor(0xf2, 0x8e, 0x2b);  // observation window: orange
    default:
      return QColor(0x00, 0x00, 0x00);
  }
}

QString kvReasonName(uint8_t reason) {
  switch (reason) {
    case 0:
      return QStringLiteral("evicted");
    case 1:
      return QStringLiteral("sink");
    case 2:
      return QStringLiteral("recent");
    case 3:
      return QStringLiteral("kept (score)");
    case 4:
      return QStringLiteral("window");
    default:
      return QStringLiteral("unknown");
  }
}

QColor mixColors(const QColor& a, const QColor& b, double t) {
  t = std::clamp(t, 0.0, 1.0);
  return QColor::fromRgbF(float(a.redF() + (b.redF() - a.redF()) * t),
                          float(a.greenF() + (b.greenF() - a.greenF()) * t),
                          float(a.blueF() + (b.blueF() - a.blueF()) * t));
}

QColor maskedGrey(const QPalette& palette) {
  return mixColors(palette.color(QPalette::Base), palette.color(QPalette::WindowText), 0.2);
}

QFont figureTitleFont(const QFont& base) {
  QFont font = base;
  // Fonts set in pixels have no point size.
  font.setPointSizeF(base.pointSizeF() > 0 ? base.pointSizeF() + 1.5 : 11);
  font.setWeight(QFont::DemiBold);
  return font;
}

bool isThemeChange(const QEvent* event) {
  return event->type() == QEvent::PaletteChange || event->type() == QEvent::StyleChange;
}

int niceStride(int raw) {
  int base = 1;
  while (true) {
    for (const int m : {1, 2, 5}) {
      if (base * m >= raw) return base * m;
    }
    base *= 10;
  }
}

}  // namespace attnscope::app
