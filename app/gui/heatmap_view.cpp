// Attention heatmap widget: see heatmap_view.h.
#include "heatmap_view.h"

#include <qcustomplot.h>

#include <QEvent>
#include <QFontMetrics>
#include <QMouseEvent>
#include <QToolTip>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>

#include "token_labels.h"

namespace attnscope::app {

namespace {

// In log mode colours span at most this ratio below the maximum: four decades show the
// structure of a head; smaller probabilities are drawn in the lowest colour.
constexpr double kLogFloorRatio = 1e-4;
// Vertical room per tick label as a multiple of the font height, so neighbours never touch.
constexpr double kLabelSpacing = 1.15;

// Viridis (matplotlib's perceptually uniform map), sampled at nine stops: readable on light and
// dark backgrounds and in greyscale print.
QCPColorGradient viridisGradient() {
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
  // Cells above the causal diagonal are NaN and let the plot background show through.
  gradient.setNanHandling(QCPColorGradient::nhTransparent);
  return gradient;
}

// 1, 2, 5, 10, 20, 50, ... : the smallest such step >= raw.
int niceStride(int raw) {
  int base = 1;
  while (true) {
    for (const int m : {1, 2, 5}) {
      if (base * m >= raw) return base * m;
    }
    base *= 10;
  }
}

void styleAxis(QCPAxis* axis, const QColor& text, const QColor& line) {
  axis->setBasePen(QPen(line, 1));
  axis->setTickPen(QPen(line, 1));
  axis->setSubTickPen(Qt::NoPen);
  axis->setTickLabelColor(text);
  axis->setLabelColor(text);
  axis->grid()->setVisible(false);
}

}  // namespace

HeatmapView::HeatmapView(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  m_plot = new QCustomPlot(this);
  m_plot->setMinimumSize(320, 280);
  layout->addWidget(m_plot);

  m_plot->plotLayout()->insertRow(0);
  m_title = new QCPTextElement(m_plot, QString(),
                               QFont(font().family(), font().pointSize() + 1, QFont::DemiBold));
  m_plot->plotLayout()->addElement(0, 0, m_title);

  QCPAxisRect* rect = m_plot->axisRect();
  m_colorMap = new QCPColorMap(m_plot->xAxis, m_plot->yAxis);
  m_colorMap->setInterpolate(false);
  m_colorMap->setTightBoundary(false);
  m_colorScale = new QCPColorScale(m_plot);
  m_plot->plotLayout()->addElement(1, 1, m_colorScale);
  m_colorScale->setType(QCPAxis::atRight);
  m_colorScale->setBarWidth(14);
  m_colorScale->axis()->setLabel(tr("attention probability"));
  m_colorMap->setColorScale(m_colorScale);
  m_colorMap->setGradient(viridisGradient());
  // Keep the colour bar as tall as the map.
  auto* group = new QCPMarginGroup(m_plot);
  rect->setMarginGroup(QCP::msBottom | QCP::msTop, group);
  m_colorScale->setMarginGroup(QCP::msBottom | QCP::msTop, group);

  m_xTicker.reset(new QCPAxisTickerText);
  m_yTicker.reset(new QCPAxisTickerText);
  m_plot->xAxis->setTicker(m_xTicker);
  m_plot->yAxis->setTicker(m_yTicker);
  m_plot->xAxis->setTickLabelRotation(90);
  m_plot->xAxis->setLabel(tr("key token"));
  m_plot->yAxis->setLabel(tr("query token"));
  m_plot->yAxis->setRangeReversed(true);  // query 0 at the top, like the matrix it shows
  m_plot->xAxis->setSubTicks(false);
  m_plot->yAxis->setSubTicks(false);

  m_plot->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
  m_plot->setMouseTracking(true);
  connect(m_plot, &QCustomPlot::mouseMove, this, &HeatmapView::onMouseMove);
  connect(m_plot, &QCustomPlot::mouseDoubleClick, this, [this](QMouseEvent*) { resetZoom(); });
  connect(m_plot->xAxis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), this,
          [this](const QCPRange&) { clampRange(true); });
  connect(m_plot->yAxis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), this,
          [this](const QCPRange&) { clampRange(false); });
  connect(m_plot, &QCustomPlot::beforeReplot, this, &HeatmapView::updateTicks);

  applyPalette();
  setHeatmap(nullptr);
}

HeatmapView::~HeatmapView() = default;

void HeatmapView::applyPalette() {
  const QPalette pal = palette();
  const QColor text = pal.color(QPalette::WindowText);
  const QColor mid = pal.color(QPalette::Mid);
  m_plot->setBackground(pal.color(QPalette::Window));
  m_plot->axisRect()->setBackground(pal.color(QPalette::Base));
  styleAxis(m_plot->xAxis, text, text);
  styleAxis(m_plot->yAxis, text, text);
  styleAxis(m_plot->xAxis2, text, mid);
  styleAxis(m_plot->yAxis2, text, mid);
  styleAxis(m_colorScale->axis(), text, text);
  m_title->setTextColor(text);
}

void HeatmapView::changeEvent(QEvent* event) {
  QWidget::changeEvent(event);
  if (event->type() == QEvent::PaletteChange || event->type() == QEvent::StyleChange) {
    applyPalette();
    m_plot->replot();
  }
}

QString HeatmapView::titleText() const {
  if (!m_map) return tr("Run a prompt (F5) to see its attention");
  QString model;
  if (m_map->run && m_map->run->model && m_map->run->model->model) {
    model = QString::fromStdString(m_map->run->model->model->config.name);
  }
  QString text = tr("Layer %1, head %2 \u2014 %3 tokens")
                     .arg(m_map->layer)
                     .arg(m_map->head)
                     .arg(m_map->nTokens);
  if (!model.isEmpty()) text = model + QStringLiteral(" \u00b7 ") + text;
  if (m_map->blockSize > 1) text += tr(" (blocks of %1, max)").arg(m_map->blockSize);
  return text;
}

void HeatmapView::setHeatmap(const HeatmapDataPtr& map) {
  const bool sameShape = map && m_map && map->cells == m_map->cells;
  m_map = map;
  m_title->setText(titleText());
  fillColorMap();
  if (!sameShape) resetZoom();
  m_plot->replot();
  if (m_map) emit heatmapShown(m_map->layer, m_map->head);
}

void HeatmapView::setLogScale(bool on) {
  if (on == m_logScale) return;
  m_logScale = on;
  fillColorMap();
  m_plot->replot();
}

void HeatmapView::fillColorMap() {
  QCPColorMapData* cellData = m_colorMap->data();
  if (!m_map || m_map->cells == 0) {
    cellData->clear();
    m_colorMap->setVisible(false);
    m_colorScale->setVisible(false);
    return;
  }
  m_colorMap->setVisible(true);
  m_colorScale->setVisible(true);
  const int cells = m_map->cells;
  const double top = m_map->maxValue > 0 ? m_map->maxValue : 1.0;
  const bool useLog = m_logScale && m_map->maxValue > 0;
  const double floor =
      useLog ? std::max<double>(m_map->minPositiveValue, top * kLogFloorRatio) : 0.0;
  cellData->setSize(cells, cells);
  cellData->setRange(QCPRange(0, cells - 1), QCPRange(0, cells - 1));
  for (int row = 0; row < cells; ++row) {
    for (int col = 0; col < cells; ++col) {
      double v = m_map->at(row, col);
      // log(0) has no colour: clamp into the displayed decades.
      if (useLog && std::isfinite(v)) v = std::max(v, floor);
      cellData->setCell(col, row, v);  // key index = x = key cell, value index = y = query cell
    }
  }
  m_colorScale->setDataScaleType(useLog ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
  if (useLog) {
    m_colorScale->axis()->setTicker(QSharedPointer<QCPAxisTickerLog>::create());
    m_colorScale->axis()->setNumberFormat(QStringLiteral("eb"));
    m_colorScale->axis()->setNumberPrecision(0);
  } else {
    m_colorScale->axis()->setTicker(QSharedPointer<QCPAxisTicker>::create());
    m_colorScale->axis()->setNumberFormat(QStringLiteral("g"));
    m_colorScale->axis()->setNumberPrecision(3);
  }
  m_colorScale->setDataRange(QCPRange(useLog ? floor : 0.0, top));
}

void HeatmapView::resetZoom() {
  const int cells = m_map ? m_map->cells : 1;
  m_plot->xAxis->setRange(-0.5, cells - 0.5);
  m_plot->yAxis->setRange(-0.5, cells - 0.5);
  m_plot->replot();
}

void HeatmapView::clampRange(bool horizontal) {
  QCPAxis* axis = horizontal ? m_plot->xAxis : m_plot->yAxis;
  const double lo = -0.5;
  const double hi = (m_map ? m_map->cells : 1) - 0.5;
  QCPRange range = axis->range();
  // Zooming out stops at the whole map; panning stops at its edges.
  if (range.size() >= hi - lo) {
    range = QCPRange(lo, hi);
  } else if (range.lower < lo) {
    range = QCPRange(lo, lo + range.size());
  } else if (range.upper > hi) {
    range = QCPRange(hi - range.size(), hi);
  }
  if (range != axis->range()) {
    const QSignalBlocker blocker(axis);
    axis->setRange(range);
  }
}

void HeatmapView::updateTicks() {
  m_xTicker->clear();
  m_yTicker->clear();
  if (!m_map || !m_map->run) return;
  const QStringList& labels = m_map->run->tokenLabels;
  const int cells = m_map->cells;
  const int block = m_map->blockSize;
  const auto fill = [&](QCPAxis* axis, QCPAxisTickerText& ticker, int pixels) {
    const QFontMetrics metrics(axis->tickLabelFont());
    const int maxLabels = std::max(1, int(pixels / (metrics.height() * kLabelSpacing)));
    const QCPRange range = axis->range();
    const int first = std::clamp(int(std::ceil(range.lower)), 0, cells - 1);
    const int last = std::clamp(int(std::floor(range.upper)), 0, cells - 1);
    const int visible = last - first + 1;
    const int stride = niceStride((visible + maxLabels - 1) / maxLabels);
    for (int cell = (first + stride - 1) / stride * stride; cell <= last; cell += stride) {
      const int token = cell * block;
      QString label = token < labels.size() ? elideLabel(labels.at(token)) : QString();
      // When labels are thinned or pooled, the position tells where in the prompt this is.
      if (stride > 1 || block > 1) label = QStringLiteral("%1 %2").arg(token).arg(label);
      ticker.addTick(cell, label);
    }
  };
  fill(m_plot->xAxis, *m_xTicker, m_plot->axisRect()->width());
  fill(m_plot->yAxis, *m_yTicker, m_plot->axisRect()->height());
}

QString HeatmapView::cellDescription(int row, int col) const {
  if (!m_map || row < 0 || col < 0 || row >= m_map->cells || col >= m_map->cells) return {};
  const QStringList& labels = m_map->run ? m_map->run->tokenLabels : QStringList();
  const auto tokenText = [&](int token) {
    return token < labels.size() ? labels.at(token) : QString();
  };
  const int b = m_map->blockSize;
  const float p = m_map->at(row, col);
  if (b == 1) {
    QString text = tr("query %1: \u201c%2\u201d\nkey %3: \u201c%4\u201d\n")
                       .arg(row)
                       .arg(tokenText(row))
                       .arg(col)
                       .arg(tokenText(col));
    return text + (std::isnan(p) ? tr("masked (key after query)")
                                 : tr("p = %1").arg(double(p), 0, 'g', 4));
  }
  const int n = m_map->nTokens;
  QString text =
      tr("queries %1\u2013%2 (from \u201c%3\u201d)\nkeys %4\u2013%5 (from \u201c%6\u201d)\n")
          .arg(row * b)
          .arg(std::min(n, (row + 1) * b) - 1)
          .arg(tokenText(row * b))
          .arg(col * b)
          .arg(std::min(n, (col + 1) * b) - 1)
          .arg(tokenText(col * b));
  return text + (std::isnan(p) ? tr("masked (keys after queries)")
                               : tr("max p = %1").arg(double(p), 0, 'g', 4));
}

void HeatmapView::onMouseMove(QMouseEvent* event) {
  if (!m_map || event->buttons() != Qt::NoButton) return;
  const QPointF pos = event->position();
  if (!m_plot->axisRect()->rect().contains(pos.toPoint())) {
    QToolTip::hideText();
    return;
  }
  const int col = int(std::lround(m_plot->xAxis->pixelToCoord(pos.x())));
  const int row = int(std::lround(m_plot->yAxis->pixelToCoord(pos.y())));
  const QString text = cellDescription(row, col);
  if (text.isEmpty()) {
    QToolTip::hideText();
  } else {
    QToolTip::showText(m_plot->mapToGlobal(pos.toPoint()), text, m_plot);
  }
}

QString HeatmapView::exportTo(const QString& path, PlotExportOptions options) {
  if (!m_map) return tr("%1: there is no attention map to export yet").arg(path);
  if (options.title.isEmpty()) options.title = titleText();
  return exportPlot(*m_plot, path, options);
}

}  // namespace attnscope::app
