// Metrics view, the figure half: KL(baseline || variant) per position and the needle accuracy
// heatmap in one QCustomPlot (what Export figure writes), with hover, click and zoom. The
// tables and the layout are in metrics_view.cpp.
#include <qcustomplot.h>

#include <QCheckBox>
#include <QComboBox>
#include <QEvent>
#include <QHBoxLayout>
#include <QLabel>
#include <QMouseEvent>
#include <QSplitter>
#include <QToolTip>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>

#include "metrics_tables.h"
#include "metrics_view.h"
#include "plot_axes.h"
#include "plot_style.h"
#include "selection_model.h"
#include "session_controller.h"

namespace attnscope::app {

namespace {

// Log y: KL values of exactly 0 (positions a variant does not change) are drawn at this
// fraction of the largest value, the bottom of the axis; tooltips give the exact values.
constexpr double kKlLogFloorRatio = 1e-6;
// Until the user chooses, the KL axis is logarithmic when the variants' mean KL differ by more
// than this factor: one broken variant (a simulation far off the baseline) would otherwise
// flatten every other line onto zero.
constexpr double kAutoLogKlRatio = 100;
// The KL legend: at most this many rows; an entry's width beyond its text (icon, padding).
constexpr int kLegendMaxRows = 2;
constexpr int kLegendEntryExtra = 48;
// A boundary label is drawn only where its side of the KL plot spans this fraction of the range.
constexpr double kBoundaryLabelRoom = 0.16;

// 50%, 12.5%, 0%: decimals only where the value has them.
QString percent(double fraction) {
  const double p = fraction * 100.0;
  const bool whole = std::abs(p - std::round(p)) < 1e-9;
  return QString::number(p, 'f', whole ? 0 : 1) + QLatin1Char('%');
}

bool darkColour(const QColor& c) {
  return 0.299 * c.redF() + 0.587 * c.greenF() + 0.114 * c.blueF() < 0.55;
}

}  // namespace

void MetricsView::buildPlot() {
  auto* bottom = qobject_cast<QSplitter*>(m_splitter->widget(1));
  auto* figurePanel = new QWidget(bottom);
  auto* figureLayout = new QVBoxLayout(figurePanel);
  figureLayout->setContentsMargins(0, 0, 0, 0);
  figureLayout->setSpacing(2);
  auto* controls = new QHBoxLayout;
  m_logY = new QCheckBox(tr("Log KL axis"), figurePanel);
  m_logY->setToolTip(
      tr("Logarithmic KL axis; positions where a variant matches the baseline "
         "exactly (KL 0) are drawn at the bottom. Until you choose, it is on when the "
         "variants' mean KL differ by more than %1×.")
          .arg(kAutoLogKlRatio));
  controls->addWidget(m_logY);
  controls->addStretch(1);
  auto* needleLabel = new QLabel(tr("Needle result:"), figurePanel);
  controls->addWidget(needleLabel);
  m_needleCombo = new QComboBox(figurePanel);
  m_needleCombo->setObjectName(QStringLiteral("needleResult"));
  m_needleCombo->setSizeAdjustPolicy(QComboBox::AdjustToContents);
  m_needleCombo->setMinimumContentsLength(18);
  controls->addWidget(m_needleCombo);
  figureLayout->addLayout(controls);

  m_plot = new QCustomPlot(figurePanel);
  m_plot->setObjectName(QStringLiteral("metricsPlot"));
  m_plot->setMinimumSize(360, 320);
  m_plot->setMouseTracking(true);
  m_plot->installEventFilter(this);
  figureLayout->addWidget(m_plot, 1);
  bottom->addWidget(figurePanel);
  bottom->setStretchFactor(0, 0);
  bottom->setStretchFactor(1, 1);
  bottom->setSizes({kHeadPanelWidth, 2 * kHeadPanelWidth});

  const QFont titleFont(font().family(), font().pointSize(), QFont::DemiBold);
  // Rows: KL title, KL legend (a strip, so it never covers the lines), KL plot, needle title,
  // needle heatmap + colour scale.
  QCPLayoutGrid* layout = m_plot->plotLayout();
  m_klRect = m_plot->axisRect();
  m_plot->setAutoAddPlottableToLegend(false);
  m_klRect->insetLayout()->take(m_plot->legend);
  layout->insertRow(0);
  layout->insertRow(0);
  m_klTitle = new QCPTextElement(m_plot, QString(), titleFont);
  layout->addElement(0, 0, m_klTitle);
  layout->addElement(1, 0, m_plot->legend);
  m_needleTitle = new QCPTextElement(m_plot, QString(), titleFont);
  layout->addElement(3, 0, m_needleTitle);
  auto* needleGrid = new QCPLayoutGrid;
  layout->addElement(4, 0, needleGrid);
  layout->setRowStretchFactors({0.001, 0.001, 1.0, 0.001, 0.9});
  m_needleRect = new QCPAxisRect(m_plot);
  needleGrid->addElement(0, 0, m_needleRect);
  m_needleScale = new QCPColorScale(m_plot);
  needleGrid->addElement(0, 1, m_needleScale);
  needleGrid->setColumnSpacing(8);
  layout->setRowSpacing(2);

  // KL plot axes.
  m_klRect->axis(QCPAxis::atBottom)->setLabel(tr("position (token index)"));
  m_klRect->axis(QCPAxis::atLeft)->setLabel(tr("KL (nats)"));
  m_klRect->axis(QCPAxis::atBottom)->grid()->setVisible(true);
  m_klRect->axis(QCPAxis::atLeft)->grid()->setVisible(true);
  auto intTicker = QSharedPointer<QCPAxisTickerFixed>::create();
  intTicker->setTickStep(1);
  intTicker->setScaleStrategy(QCPAxisTickerFixed::ssNone);
  m_klRect->axis(QCPAxis::atBottom)->setTicker(intTicker);
  m_plot->legend->setVisible(false);
  m_plot->legend->setFont(QFont(font().family(), std::max(7, font().pointSize() - 1)));
  m_plot->legend->setIconSize(18, 8);
  m_plot->legend->setFillOrder(QCPLegend::foColumnsFirst, false);

  // Needle heatmap axes: categories, depth 0 (start of the haystack) at the top.
  auto* nx = m_needleRect->axis(QCPAxis::atBottom);
  auto* ny = m_needleRect->axis(QCPAxis::atLeft);
  nx->setLabel(tr("prompt length (tokens)"));
  ny->setLabel(tr("needle depth"));
  nx->setTicker(QSharedPointer<QCPAxisTickerText>::create());
  ny->setTicker(QSharedPointer<QCPAxisTickerText>::create());
  nx->setSubTicks(false);
  ny->setSubTicks(false);
  ny->setRangeReversed(true);
  m_needleScale->setGradient(attentionGradient());
  m_needleScale->setDataRange(QCPRange(0, 1));
  setColorScaleLog(m_needleScale, false);
  m_needleScale->axis()->setLabel(tr("accuracy"));
  m_needleScale->setBarWidth(12);
  // The colour bar as tall as the heatmap; the two plots' left edges aligned.
  auto* margins = new QCPMarginGroup(m_plot);
  m_needleRect->setMarginGroup(QCP::msTop | QCP::msBottom, margins);
  m_needleScale->setMarginGroup(QCP::msTop | QCP::msBottom, margins);
  auto* left = new QCPMarginGroup(m_plot);
  m_klRect->setMarginGroup(QCP::msLeft, left);
  m_needleRect->setMarginGroup(QCP::msLeft, left);
  // Long prompts: the KL plot zooms and pans along positions (wheel, drag; double-click resets).
  m_plot->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
  m_klRect->setRangeDrag(Qt::Horizontal);
  m_klRect->setRangeZoom(Qt::Horizontal);
  m_needleRect->setRangeDrag(Qt::Orientations());
  m_needleRect->setRangeZoom(Qt::Orientations());

  m_klMessage = addMessage(m_klRect);
  m_needleMessage = addMessage(m_needleRect);
  const auto vline = [this](Qt::PenStyle style) {
    auto* line = new QCPItemStraightLine(m_plot);
    attachToAxisRect(line, m_klRect);
    line->setPen(QPen(Qt::gray, 1, style));
    line->setVisible(false);
    line->setSelectable(false);
    return line;
  };
  // Decoded positions sit on a faint band right of the dashed boundary.
  m_decodeBand = new QCPItemRect(m_plot);
  attachToAxisRect(m_decodeBand, m_klRect);
  m_decodeBand->topLeft->setTypeY(QCPItemPosition::ptAxisRectRatio);
  m_decodeBand->bottomRight->setTypeY(QCPItemPosition::ptAxisRectRatio);
  m_decodeBand->setPen(Qt::NoPen);
  m_decodeBand->setVisible(false);
  m_decodeBand->setSelectable(false);
  m_decodeBand->setLayer(QStringLiteral("background"));
  m_boundary = vline(Qt::DashLine);
  m_queryLine = vline(Qt::SolidLine);
  m_hoverLine = vline(Qt::DotLine);
  const auto boundaryLabel = [this](Qt::Alignment alignment) {
    auto* text = new QCPItemText(m_plot);
    attachToAxisRect(text, m_klRect);
    text->position->setTypeX(QCPItemPosition::ptPlotCoords);
    text->position->setTypeY(QCPItemPosition::ptAxisRectRatio);
    text->setPositionAlignment(alignment);
    text->setPadding(QMargins(4, 2, 4, 2));
    text->setVisible(false);
    text->setSelectable(false);
    return text;
  };
  m_promptLabel = boundaryLabel(Qt::AlignRight | Qt::AlignTop);
  m_decodeLabel = boundaryLabel(Qt::AlignLeft | Qt::AlignTop);
  m_promptLabel->setText(tr("prompt \u2190"));
  m_decodeLabel->setText(tr("\u2192 decode"));

  connect(m_plot, &QCustomPlot::mouseMove, this, &MetricsView::onPlotMouseMove);
  connect(m_plot, &QCustomPlot::mousePress, this,
          [this](QMouseEvent* event) { m_pressPos = event->position(); });
  connect(m_plot, &QCustomPlot::mouseRelease, this, &MetricsView::onPlotMouseRelease);
  connect(m_plot, &QCustomPlot::mouseDoubleClick, this, [this](QMouseEvent*) {
    resetKlRange();
    m_plot->replot();
  });
  connect(m_klRect->axis(QCPAxis::atBottom), qOverload<const QCPRange&>(&QCPAxis::rangeChanged),
          this, &MetricsView::clampKlRange);
  connect(m_logY, &QCheckBox::toggled, this, [this] {
    m_logChosen = true;
    drawKl();
    m_plot->replot();
  });
  connect(m_needleCombo, qOverload<int>(&QComboBox::currentIndexChanged), this, [this] {
    drawNeedle();
    m_plot->replot();
    emit figureChanged();
  });
}

QCPItemText* MetricsView::addMessage(QCPAxisRect* rect) {
  auto* text = addAxisRectNote(m_plot, rect, 0.5, 0.5);
  text->setVisible(false);
  return text;
}

void MetricsView::setMessage(QCPItemText* item, const QString& text) {
  item->setText(text);
  item->setColor(palette().color(QPalette::WindowText));
  item->setVisible(!text.isEmpty());
}

// ---------------------------------------------------------------------------------------------
// Figure

void MetricsView::rebuildNeedleCombo() {
  const QSignalBlocker blocker(m_needleCombo);
  const int previous = shownNeedle();
  m_needleCombo->clear();
  const int n = m_session ? static_cast<int>(m_session->needle.size()) : 0;
  for (int i = 0; i < n; ++i) {
    const NeedleResult& r = m_session->needle[static_cast<size_t>(i)];
    QString text =
        QStringLiteral("%1 \u2014 %2").arg(needleVariantName(r.variant), percent(r.accuracy()));
    if (needleVariantNeedsTraining(r.variant)) text += tr(" \u2014 simulation (needs training)");
    m_needleCombo->addItem(text, i);
    m_needleCombo->setItemData(i, QString::fromStdString(r.variant), Qt::ToolTipRole);
  }
  if (n == 0) m_needleCombo->addItem(tr("none yet"), -1);
  // A new result is shown as it arrives; otherwise the user's choice stays.
  const bool grew = n > m_needleCount;
  m_needleCount = n;
  m_needleCombo->setCurrentIndex(n == 0                                    ? 0
                                 : (grew || previous < 0 || previous >= n) ? n - 1
                                                                           : previous);
  m_needleCombo->setEnabled(n > 0);
}

int MetricsView::shownNeedle() const {
  if (!m_session || m_session->needle.empty()) return -1;
  const int i = m_needleCombo->currentData().toInt();
  return i >= 0 && i < static_cast<int>(m_session->needle.size()) ? i : -1;
}

void MetricsView::rebuildFigure() {
  stylePlot(*m_plot, palette());
  const QColor text = palette().color(QPalette::WindowText);
  for (QCPItemText* item : {m_promptLabel, m_decodeLabel}) item->setColor(text);
  QColor mid = palette().color(QPalette::WindowText);
  mid.setAlpha(140);
  m_boundary->setPen(QPen(mid, 1, Qt::DashLine));
  QColor band = palette().color(QPalette::WindowText);
  band.setAlpha(18);
  m_decodeBand->setBrush(band);
  m_hoverLine->setPen(QPen(mid, 1, Qt::DotLine));
  m_queryLine->setPen(QPen(palette().color(QPalette::Highlight), 1.5));
  drawKl();
  drawNeedle();
  updateMarkers();
  m_plot->replot();
}

int MetricsView::klLegendColumns() const {
  // As many columns as the widest entries allow across the plot (at most four), and at least
  // enough for two rows (names are shortened then) so the legend never crowds out the plot.
  const int n = static_cast<int>(m_klGraphs.size());
  const QFontMetrics metrics(m_plot->legend->font());
  int widest = 0;
  for (const auto& entry : m_klGraphs) {
    widest =
        std::max(widest, metrics.horizontalAdvance(entry.second->property("fullName").toString()));
  }
  const int fit = std::max(1, m_plot->width() - 40) / std::max(1, widest + kLegendEntryExtra);
  return std::clamp(std::max(fit, (n + kLegendMaxRows - 1) / kLegendMaxRows), 1,
                    std::max(1, std::min(n, 4)));
}

void MetricsView::layoutKlLegend() {
  // A strip of up to four entries per row, kept together on the left by a spacer column.
  QCPLegend* legend = m_plot->legend;
  legend->clear();
  const int columns = klLegendColumns();
  m_klLegendColumns = columns;
  legend->setWrap(columns);
  const int nameWidth = std::max(60, (m_plot->width() - 40) / columns - kLegendEntryExtra);
  const QFontMetrics metrics(legend->font());
  for (const auto& entry : m_klGraphs) {
    const QString full = entry.second->property("fullName").toString();
    entry.second->setName(metrics.elidedText(full, Qt::ElideMiddle, nameWidth));
    entry.second->addToLegend(legend);
  }
  packLegendLeft(legend, columns);
  legend->setColumnSpacing(14);
  legend->setRowSpacing(0);
  legend->setBorderPen(Qt::NoPen);
  legend->setBrush(Qt::NoBrush);
  legend->setTextColor(palette().color(QPalette::WindowText));
  legend->setVisible(!m_klGraphs.empty());
  // Exactly as tall as its rows: the plot below gets every spare pixel.
  legend->setSizeConstraintRect(QCPLayoutElement::scrOuterRect);
  legend->setMaximumSize(QWIDGETSIZE_MAX,
                         m_klGraphs.empty() ? 0 : legend->minimumOuterSizeHint().height());
}

QCPGraph* MetricsView::klGraph(int traceIndex) const {
  for (const auto& [index, graph] : m_klGraphs) {
    if (index == traceIndex) return graph;
  }
  return nullptr;
}

void MetricsView::chooseKlAxis() {
  if (m_logChosen || !m_session || !m_session->hasRun()) return;
  // Each variant's scale is its mean KL; variants that match the baseline exactly (mean 0) do
  // not count, they lie on the floor either way.
  double smallest = 0, largest = 0;
  for (int i = 1; i < m_session->traceCount(); ++i) {
    double sum = 0;
    int n = 0;
    for (float v : m_session->traces[static_cast<size_t>(i)]->kl_per_position) {
      if (!std::isfinite(v)) continue;
      sum += v;
      ++n;
    }
    const double mean = n > 0 ? sum / n : 0.0;
    if (!(mean > 0)) continue;
    smallest = smallest == 0 ? mean : std::min(smallest, mean);
    largest = std::max(largest, mean);
  }
  const QSignalBlocker blocker(m_logY);
  m_logY->setChecked(smallest > 0 && largest / smallest > kAutoLogKlRatio);
}

void MetricsView::drawKl() {
  for (const auto& entry : m_klGraphs) m_plot->removeGraph(entry.second);
  m_klGraphs.clear();
  QCPAxis* x = m_klRect->axis(QCPAxis::atBottom);
  QCPAxis* y = m_klRect->axis(QCPAxis::atLeft);
  const bool haveRun = m_session && m_session->hasRun();
  const int T = haveRun ? m_session->nTokens() : 0;
  const int nPrompt = haveRun ? m_session->baseline().n_prompt : 0;
  const bool log = m_logY->isChecked();

  // Largest and smallest positive KL over every variant, for the range and the log floor.
  double top = 0, minPositive = 0;
  for (int i = 1; haveRun && i < m_session->traceCount(); ++i) {
    for (float v : m_session->traces[static_cast<size_t>(i)]->kl_per_position) {
      if (!std::isfinite(v)) continue;
      top = std::max(top, static_cast<double>(v));
      if (v > 0 && (minPositive == 0 || v < minPositive)) minPositive = v;
    }
  }
  const double floor = std::max(minPositive > 0 ? minPositive : 1e-12, top * kKlLogFloorRatio);
  const bool useLog = log && top > 0;
  y->setScaleType(useLog ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
  if (useLog) {
    auto ticker = QSharedPointer<QCPAxisTickerLog>::create();
    ticker->setSubTickCount(0);
    y->setTicker(ticker);
    y->setNumberFormat(QStringLiteral("eb"));
    y->setNumberPrecision(0);
  } else {
    y->setTicker(QSharedPointer<QCPAxisTicker>::create());
    y->setNumberFormat(QStringLiteral("g"));
    y->setNumberPrecision(3);
  }
  y->setLabel(useLog ? tr("KL (nats, log; 0 drawn at the bottom)") : tr("KL (nats)"));

  const int selected = selection()->trace();
  for (int i = 1; haveRun && i < m_session->traceCount(); ++i) {
    const Trace& t = *m_session->traces[static_cast<size_t>(i)];
    if (t.kl_per_position.empty()) continue;
    QCPGraph* graph = m_plot->addGraph(x, y);
    QVector<double> keys, values;
    keys.reserve(static_cast<int>(t.kl_per_position.size()));
    values.reserve(keys.capacity());
    for (size_t p = 0; p < t.kl_per_position.size(); ++p) {
      double v = t.kl_per_position[p];
      if (useLog && std::isfinite(v)) v = std::max(v, floor);
      keys.push_back(static_cast<double>(p));
      values.push_back(std::isfinite(v) ? v : std::nan(""));
    }
    graph->setData(keys, values, true);
    QPen pen(seriesColor(i), i == selected ? 2.4 : 1.4);
    graph->setPen(pen);
    if (T <= 64) {
      graph->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, seriesColor(i), 3.5));
    }
    QString name = m_session->traceName(i);
    if (t.variant.needs_training()) name += tr(" \u2014 simulation (needs training)");
    graph->setName(name);
    graph->setProperty("fullName", name);  // the legend may show it shortened
    m_klGraphs.emplace_back(i, graph);
  }
  layoutKlLegend();

  if (T != m_klTokens) {
    m_klTokens = T;
    resetKlRange();
  } else {
    clampKlRange(x->range());
  }
  if (useLog) {
    y->setRange(floor * 0.8, top * 1.5);
  } else {
    y->setRange(0, top > 0 ? top * 1.08 : 1.0);
  }

  m_klTitle->setText(
      haveRun && !m_klGraphs.empty()
          ? tr("KL(baseline \u2016 variant) of the next-token distribution per position")
          : tr("KL per position"));
  if (!haveRun) {
    setMessage(m_klMessage, tr("Run a prompt (F5) with variants to see where\neach one departs "
                               "from full attention."));
  } else if (m_klGraphs.empty()) {
    setMessage(m_klMessage, tr("Only the baseline ran: add a variant (Variants panel)\nand run "
                               "again to see its KL per position."));
  } else {
    setMessage(m_klMessage, QString());
  }
  // Without lines the axes carry no numbers, only the message.
  x->setTickLabels(haveRun);
  y->setTickLabels(!m_klGraphs.empty());
  const bool boundary = haveRun && nPrompt > 0 && nPrompt < T;
  m_boundary->setVisible(boundary);
  m_decodeBand->setVisible(boundary);
  if (boundary) {
    m_boundary->point1->setCoords(nPrompt - 0.5, 0);
    m_boundary->point2->setCoords(nPrompt - 0.5, 1);
    m_decodeBand->topLeft->setCoords(nPrompt - 0.5, 0);
    m_decodeBand->bottomRight->setCoords(T - 0.5, 1);
    m_promptLabel->position->setCoords(nPrompt - 0.5, 0.0);
    m_decodeLabel->position->setCoords(nPrompt - 0.5, 0.0);
  }
  updateBoundaryLabels();
}

void MetricsView::drawNeedle() {
  for (QCPAbstractItem* item : m_needleItems) m_plot->removeItem(item);
  m_needleItems.clear();
  m_drawnCells.clear();
  m_needleLengths.clear();
  m_needleDepths.clear();
  QCPAxis* x = m_needleRect->axis(QCPAxis::atBottom);
  QCPAxis* y = m_needleRect->axis(QCPAxis::atLeft);
  auto* xTicks = static_cast<QCPAxisTickerText*>(x->ticker().data());
  auto* yTicks = static_cast<QCPAxisTickerText*>(y->ticker().data());
  xTicks->clear();
  yTicks->clear();
  const int shown = shownNeedle();
  if (shown < 0) {
    m_needleTitle->setText(tr("Needle accuracy"));
    setMessage(
        m_needleMessage,
        tr("No needle test yet.\nRun > Needle test\u2026 hides a pass key at\nseveral depths "
           "of prompts of several lengths\nand shows how often a variant retrieves it."));
    x->setTickLabels(false);
    y->setTickLabels(false);
    x->setRange(-0.5, 0.5);
    y->setRange(-0.5, 0.5);
    m_needleScale->setVisible(false);
    return;
  }
  const NeedleResult& result = m_session->needle[static_cast<size_t>(shown)];
  for (const NeedleCell& c : result.cells) {
    if (std::find(m_needleLengths.begin(), m_needleLengths.end(), c.length) ==
        m_needleLengths.end())
      m_needleLengths.push_back(c.length);
    if (std::find(m_needleDepths.begin(), m_needleDepths.end(), c.depth) == m_needleDepths.end())
      m_needleDepths.push_back(c.depth);
  }
  std::sort(m_needleLengths.begin(), m_needleLengths.end());
  std::sort(m_needleDepths.begin(), m_needleDepths.end());
  QString title = tr("Needle accuracy of %1 \u2014 %2 overall")
                      .arg(needleVariantName(result.variant), percent(result.accuracy()));
  if (needleVariantNeedsTraining(result.variant))
    title += tr(" \u2014 simulation (needs training)");
  m_needleTitle->setText(title);
  if (result.cells.empty()) {
    setMessage(m_needleMessage, tr("This needle result holds no cells."));
    m_needleScale->setVisible(false);
    return;
  }
  setMessage(m_needleMessage, QString());
  m_needleScale->setVisible(true);
  x->setTickLabels(true);
  y->setTickLabels(true);
  const int nx = static_cast<int>(m_needleLengths.size());
  const int ny = static_cast<int>(m_needleDepths.size());
  // Thin the tick labels when many categories would crowd them.
  const int xStride = niceStride(std::max(1, nx / 16));
  const int yStride = niceStride(std::max(1, ny / 12));
  for (int i = 0; i < nx; i += xStride)
    xTicks->addTick(i, QString::number(m_needleLengths[static_cast<size_t>(i)]));
  for (int j = 0; j < ny; j += yStride)
    yTicks->addTick(j, percent(m_needleDepths[static_cast<size_t>(j)]));
  x->setRange(-0.5, nx - 0.5);
  y->setRange(-0.5, ny - 0.5);

  QCPColorGradient gradient = attentionGradient();  // color() updates its cache
  const QColor gap = palette().color(QPalette::Base);
  QFont cellFont = font();
  cellFont.setPointSizeF(std::max(7.0, font().pointSizeF() - (nx * ny > 60 ? 2 : 0)));
  for (const NeedleCell& c : result.cells) {
    const auto xi = std::find(m_needleLengths.begin(), m_needleLengths.end(), c.length) -
                    m_needleLengths.begin();
    const auto yi =
        std::find(m_needleDepths.begin(), m_needleDepths.end(), c.depth) - m_needleDepths.begin();
    const QColor fill = gradient.color(c.accuracy(), QCPRange(0, 1));
    auto* rect = new QCPItemRect(m_plot);
    attachToAxisRect(rect, m_needleRect);
    rect->topLeft->setCoords(xi - 0.5, yi - 0.5);
    rect->bottomRight->setCoords(xi + 0.5, yi + 0.5);
    rect->setBrush(fill);
    rect->setPen(QPen(gap, 1.5));
    rect->setSelectable(false);
    m_needleItems.push_back(rect);
    const QString label = QStringLiteral("%1/%2").arg(c.successes).arg(c.trials);
    auto* text = new QCPItemText(m_plot);
    attachToAxisRect(text, m_needleRect);
    text->position->setCoords(static_cast<double>(xi), static_cast<double>(yi));
    text->setPositionAlignment(Qt::AlignCenter);
    text->setText(label);
    text->setFont(cellFont);
    text->setColor(darkColour(fill) ? Qt::white : Qt::black);
    text->setSelectable(false);
    m_needleItems.push_back(text);
    m_drawnCells.push_back({c.length, c.depth, label, c.accuracy()});
  }
}

std::vector<MetricsView::DrawnCell> MetricsView::drawnNeedleCells() const {
  return m_drawnCells;
}

void MetricsView::updateMarkers() {
  const bool haveRun = m_session && m_session->hasRun();
  const int T = haveRun ? m_session->nTokens() : 0;
  const auto place = [&](QCPItemStraightLine* line, int token) {
    const bool show = haveRun && token >= 0 && token < T;
    line->setVisible(show);
    if (show) {
      line->point1->setCoords(token, 0);
      line->point2->setCoords(token, 1);
    }
  };
  place(m_hoverLine, selection()->hoverToken());
  place(m_queryLine, selection()->queryToken());
  m_plot->replot(QCustomPlot::rpQueuedReplot);
}

void MetricsView::updateBoundaryLabels() {
  // Each label needs room beside the boundary within the visible range; a side too narrow
  // (e.g. 16 decoded tokens after 400 prompt tokens) keeps only the band and the line.
  const bool boundary = m_boundary->visible();
  const QCPRange range = m_klRect->axis(QCPAxis::atBottom)->range();
  const double at = m_boundary->point1->coords().x();
  const double room = range.size() * kBoundaryLabelRoom;
  m_promptLabel->setVisible(boundary && at - range.lower > room);
  m_decodeLabel->setVisible(boundary && range.upper - at > room);
}

void MetricsView::resetKlRange() {
  m_klRect->axis(QCPAxis::atBottom)->setRange(-0.5, std::max(1, m_klTokens) - 0.5);
}

void MetricsView::clampKlRange(const QCPRange& wanted) {
  QCPAxis* x = m_klRect->axis(QCPAxis::atBottom);
  // Zooming out stops at the whole prompt, panning at its ends, zooming in at 8 positions.
  const QCPRange range = clampedRange(wanted, -0.5, std::max(1, m_klTokens) - 0.5, 8.0);
  if (range != x->range()) {
    const QSignalBlocker blocker(x);
    x->setRange(range);
  }
  updateBoundaryLabels();
  // Integer positions only, about ten labels across.
  auto* ticker = static_cast<QCPAxisTickerFixed*>(x->ticker().data());
  ticker->setTickStep(niceStride(std::max(1, static_cast<int>(range.size() / 10))));
}

int MetricsView::klPositionAt(const QPointF& pos) const {
  if (!m_session || !m_session->hasRun()) return -1;
  const double key = m_klRect->axis(QCPAxis::atBottom)->pixelToCoord(pos.x());
  const int p = static_cast<int>(std::lround(key));
  return p >= 0 && p < m_session->nTokens() ? p : -1;
}

void MetricsView::onPlotMouseMove(QMouseEvent* event) {
  const QPointF pos = event->position();
  const bool inKl = m_klRect->rect().contains(pos.toPoint());
  const int p = inKl ? klPositionAt(pos) : -1;
  if (p >= 0) {
    m_hoverSetByUs = p;
    selection()->setHoverToken(p);
    const QString token =
        p < m_session->tokenLabels.size() ? m_session->tokenLabels.at(p) : QString();
    QString tip = tr("position %1 \u201c%2\u201d (%3)")
                      .arg(p)
                      .arg(token.toHtmlEscaped())
                      .arg(p < m_session->baseline().n_prompt ? tr("prompt") : tr("decoded"));
    for (const auto& [index, graph] : m_klGraphs) {
      const Trace& t = *m_session->traces[static_cast<size_t>(index)];
      const double kl = static_cast<size_t>(p) < t.kl_per_position.size()
                            ? t.kl_per_position[static_cast<size_t>(p)]
                            : std::nan("");
      const bool agree =
          static_cast<size_t>(p) < t.top1_agree.size() && t.top1_agree[static_cast<size_t>(p)];
      tip += QStringLiteral("<br><span style='color:%1'>\u25a0</span> %2: KL %3, top-1 %4")
                 .arg(seriesColor(index).name(),
                      graph->property("fullName").toString().toHtmlEscaped(),
                      QString::number(kl, 'g', 5), agree ? tr("agrees") : tr("differs"));
    }
    QToolTip::showText(event->globalPosition().toPoint(), tip, m_plot);
    return;
  }
  if (m_hoverSetByUs >= 0) {
    if (selection()->hoverToken() == m_hoverSetByUs) selection()->setHoverToken(-1);
    m_hoverSetByUs = -1;
  }
  const int shown = shownNeedle();
  if (shown >= 0 && m_needleRect->rect().contains(pos.toPoint()) && !m_needleLengths.empty()) {
    const int xi =
        static_cast<int>(std::lround(m_needleRect->axis(QCPAxis::atBottom)->pixelToCoord(pos.x())));
    const int yi =
        static_cast<int>(std::lround(m_needleRect->axis(QCPAxis::atLeft)->pixelToCoord(pos.y())));
    if (xi >= 0 && yi >= 0 && xi < static_cast<int>(m_needleLengths.size()) &&
        yi < static_cast<int>(m_needleDepths.size())) {
      const NeedleResult& r = m_session->needle[static_cast<size_t>(shown)];
      const int length = m_needleLengths[static_cast<size_t>(xi)];
      const double depth = m_needleDepths[static_cast<size_t>(yi)];
      const NeedleCell* cell = r.cell(length, depth);
      QString tip = tr("length %1, depth %2").arg(length).arg(percent(depth));
      if (cell) {
        tip += tr(": %1 of %2 trials retrieved the key (%3)")
                   .arg(cell->successes)
                   .arg(cell->trials)
                   .arg(percent(cell->accuracy()));
      }
      int listed = 0;
      for (const NeedleTrial& t : r.trials) {
        if (t.length != length || t.depth != depth) continue;
        if (++listed > 5) {
          tip += tr("<br>\u2026");
          break;
        }
        tip += tr("<br>trial %1: key %2 at %3 (%4): \u201c%5\u201d %6")
                   .arg(t.trial + 1)
                   .arg(QString::fromStdString(t.passkey))
                   .arg(t.needle_token)
                   .arg(percent(t.actual_depth))
                   .arg(QString::fromStdString(t.generated).toHtmlEscaped().left(60))
                   .arg(t.success ? QStringLiteral("\u2713") : QStringLiteral("\u2717"));
      }
      QToolTip::showText(event->globalPosition().toPoint(), tip, m_plot);
      return;
    }
  }
  QToolTip::hideText();
}

void MetricsView::onPlotMouseRelease(QMouseEvent* event) {
  if (event->button() != Qt::LeftButton) return;
  const QPointF pos = event->position();
  // A drag pans the plot; only a click (no movement) selects the token.
  if (!isClick(m_pressPos, pos)) return;
  if (!m_klRect->rect().contains(pos.toPoint())) return;
  const int p = klPositionAt(pos);
  if (p >= 0) selection()->setQueryToken(p);
}

}  // namespace attnscope::app
