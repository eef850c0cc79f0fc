// The pieces the views share (plot_axes, plot_style, painted_canvas, view_parts): colour-map cell
// placement over index, token and bin ranges, bin lookup, zoom clamping, tick thinning and token
// tick labels, categorical gradients with exact colours, colour mixing and the masked grey, the
// painted colour bar and the export error texts. Then the figure polish built on them: the
// Compare maps share one set of query labels and have the same size, every Query groups panel has
// a title, every run name under the Throughput bars fits the figure, and the Metrics KL axis
// turns logarithmic by itself when the variants' KL scales are far apart (until the user chooses).
#include <gtest/gtest.h>
#include <qcustomplot.h>

#include <QApplication>
#include <QCheckBox>
#include <QImage>
#include <QMouseEvent>
#include <QPainter>
#include <cmath>
#include <numbers>
#include <set>

#include "app_test_support.h"
#include "compare_view.h"
#include "main_window.h"
#include "metrics_view.h"
#include "painted_canvas.h"
#include "plot_axes.h"
#include "plot_style.h"
#include "query_groups_view.h"
#include "selection_model.h"
#include "session_controller.h"
#include "throughput_view.h"
#include "view_parts.h"

namespace attnscope::app {
namespace {

// ---------------------------------------------------------------------------------------------
// Helpers

TEST(PlotParts, CellCentresSpreadCellsEvenlyOverTheirRange) {
  // Index axes: cell i covers [i - 0.5, i + 0.5], so the centres are the indices.
  EXPECT_EQ(indexCellCentres(5), QCPRange(0, 4));
  EXPECT_EQ(indexCellCentres(2), QCPRange(0, 1));
  // One cell: QCPColorMap draws it over the whole range it is given.
  EXPECT_EQ(indexCellCentres(1), QCPRange(-0.5, 0.5));
  EXPECT_EQ(cellCentres(10, 20, 1), QCPRange(10, 20));
  // Token bins [begin, end): 4 cells of 2.5 tokens over [10, 20).
  EXPECT_EQ(cellCentres(10, 20, 4), QCPRange(11.25, 18.75));
  // The same bins on a centred token axis (token j covers [j - 0.5, j + 0.5]).
  EXPECT_EQ(cellCentres(9.5, 19.5, 4), QCPRange(10.75, 18.25));
}

TEST(PlotParts, BinIndexFindsTheBinHoldingAPosition) {
  const std::vector<int> edges = {0, 3, 7, 10};
  EXPECT_EQ(binIndex(edges, 0), 0);
  EXPECT_EQ(binIndex(edges, 2), 0);
  EXPECT_EQ(binIndex(edges, 3), 1);
  EXPECT_EQ(binIndex(edges, 6), 1);
  EXPECT_EQ(binIndex(edges, 9), 2);
  EXPECT_EQ(binIndex(edges, 10), -1);
  EXPECT_EQ(binIndex(edges, -1), -1);
  EXPECT_EQ(binIndex({}, 0), -1);
  EXPECT_EQ(binIndex({4}, 4), -1);
}

TEST(PlotParts, ClampedRangeStopsZoomAndPanAtTheData) {
  // Zooming out stops at the whole range.
  EXPECT_EQ(clampedRange(QCPRange(-5, 50), 0, 10), QCPRange(0, 10));
  // Panning stops at either edge, keeping the span.
  EXPECT_EQ(clampedRange(QCPRange(-2, 3), 0, 10), QCPRange(0, 5));
  EXPECT_EQ(clampedRange(QCPRange(8, 12), 0, 10), QCPRange(6, 10));
  // Inside: unchanged.
  EXPECT_EQ(clampedRange(QCPRange(2, 4), 0, 10), QCPRange(2, 4));
  // A smallest span: zooming in stops there, around the same centre.
  EXPECT_EQ(clampedRange(QCPRange(4.5, 5.5), 0, 10, 4), QCPRange(3, 7));
  // ...but never beyond the whole range.
  EXPECT_EQ(clampedRange(QCPRange(0.5, 1.5), 0, 2, 8), QCPRange(0, 2));

  QCustomPlot plot;
  int changes = 0;
  QObject::connect(plot.xAxis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged),
                   [&changes] { ++changes; });
  plot.xAxis->setRange(-3, 2);
  changes = 0;
  clampAxisRange(plot.xAxis, 0, 10);
  EXPECT_EQ(plot.xAxis->range(), QCPRange(0, 5));
  EXPECT_EQ(changes, 0) << "clamping must not emit rangeChanged again";
}

TEST(PlotParts, TokenTickLabelsCarryThePositionWhenThinned) {
  EXPECT_EQ(tokenTickLabel(7, QStringLiteral("\u00b7the"), 1), QStringLiteral("\u00b7the"));
  EXPECT_EQ(tokenTickLabel(20, QStringLiteral("\u00b7the"), 5), QStringLiteral("20 \u00b7the"));
  EXPECT_EQ(tokenTickLabel(3, QString(), 1), QStringLiteral("3"));
}

TEST(PlotParts, ThinnedTicksFitTheAxisAndFollowItsRange) {
  QCustomPlot plot;
  plot.resize(400, 300);
  QCPAxis* axis = plot.yAxis;
  const int height = QFontMetrics(axis->tickLabelFont()).height();
  // Room for every label: every index, stride 1.
  axis->setRange(-0.5, 9.5);
  int stride = 0;
  QVector<int> ticks = thinnedTicks(axis, 10, 100 * height, &stride);
  EXPECT_EQ(ticks, QVector<int>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(stride, 1);
  // Room for about 10 of 1000: multiples of a 1-2-5 stride, no more labels than fit.
  axis->setRange(-0.5, 999.5);
  const int pixels = int(10 * height * kTickLabelSpacing);
  ticks = thinnedTicks(axis, 1000, pixels, &stride);
  EXPECT_EQ(stride, 100);
  EXPECT_LE(ticks.size(), 10);
  for (int t : ticks) EXPECT_EQ(t % stride, 0) << t;
  // Only what is visible: a zoomed axis shows its own range.
  axis->setRange(99.5, 109.5);
  ticks = thinnedTicks(axis, 1000, 100 * height, &stride);
  EXPECT_EQ(ticks.front(), 100);
  EXPECT_EQ(ticks.back(), 109);
  // Token t covering [t, t + 1) has its tick at t + 0.5.
  axis->setRange(0, 10);
  ticks = thinnedTicks(axis, 10, 100 * height, &stride, 0.5);
  EXPECT_EQ(ticks.front(), 0);
  EXPECT_EQ(ticks.back(), 9);
  EXPECT_TRUE(thinnedTicks(axis, 0, 500).isEmpty());
}

TEST(PlotParts, CategoricalGradientGivesEachCategoryItsExactColour) {
  const std::vector<QColor> colors = {seriesColor(0), seriesColor(1), seriesColor(2),
                                      kvReasonColor(0), kvReasonColor(4)};
  QCPColorGradient gradient = categoricalGradient(colors);
  const QCPRange range(0, static_cast<double>(colors.size()) - 1);
  for (size_t i = 0; i < colors.size(); ++i) {
    const QRgb shown = gradient.color(categoryCellValue(static_cast<int>(i)), range);
    EXPECT_EQ(shown | 0xff000000u, colors[i].rgb()) << "category " << i;
  }
  // NaN cells (nothing there) are transparent.
  EXPECT_EQ(qAlpha(gradient.color(std::nan(""), range)), 0);
  // A single category still has its colour.
  QCPColorGradient one = categoricalGradient({seriesColor(3)});
  EXPECT_EQ(one.color(categoryCellValue(0), QCPRange(0, 1)) | 0xff000000u, seriesColor(3).rgb());
}

TEST(PlotParts, MixedColoursAndTheMaskedGreyFollowThePalette) {
  EXPECT_EQ(mixColors(Qt::black, Qt::white, 0.0), QColor(Qt::black));
  EXPECT_EQ(mixColors(Qt::black, Qt::white, 1.0), QColor(Qt::white));
  EXPECT_EQ(mixColors(Qt::black, Qt::white, 2.0), QColor(Qt::white)) << "t is clamped";
  EXPECT_NEAR(mixColors(Qt::black, Qt::white, 0.5).redF(), 0.5, 1e-3);
  QPalette light, dark;
  light.setColor(QPalette::Base, Qt::white);
  light.setColor(QPalette::WindowText, Qt::black);
  dark.setColor(QPalette::Base, QColor(0x20, 0x20, 0x20));
  dark.setColor(QPalette::WindowText, Qt::white);
  // A grey just off the background: light on light palettes, dark on dark ones.
  EXPECT_GT(maskedGrey(light).lightnessF(), 0.7);
  EXPECT_LT(maskedGrey(light).lightnessF(), 0.95);
  EXPECT_LT(maskedGrey(dark).lightnessF(), 0.4);
  EXPECT_GT(maskedGrey(dark).lightnessF(), QColor(0x20, 0x20, 0x20).lightnessF());
}

TEST(PlotParts, PaintedColorBarUsesTheColourFunctionLeftToRight) {
  QImage image(120, 20, QImage::Format_RGB32);
  image.fill(Qt::white);
  QPainter p(&image);
  const QRect bar(10, 5, 100, 10);
  paintColorBar(
      p, bar, [](double t) { return QColor::fromRgbF(float(t), 0, float(1 - t)); }, Qt::black);
  p.end();
  // Inside: blue on the left, red on the right, the colour at each column's centre.
  const QColor left = image.pixelColor(bar.left() + 2, bar.center().y());
  const QColor right = image.pixelColor(bar.right() - 2, bar.center().y());
  EXPECT_LT(left.red(), 20);
  EXPECT_GT(left.blue(), 230);
  EXPECT_GT(right.red(), 230);
  EXPECT_LT(right.blue(), 20);
  // Framed.
  EXPECT_EQ(image.pixelColor(bar.left() - 1, bar.center().y()), QColor(Qt::black));
}

TEST(PlotParts, ExportErrorsNameTheFileOnce) {
  EXPECT_EQ(exportError(QStringLiteral("/tmp/x.csv"), QString()), QString());
  EXPECT_EQ(exportError(QStringLiteral("/tmp/x.csv"), QStringLiteral("disk full")),
            QStringLiteral("/tmp/x.csv: disk full"));
  EXPECT_EQ(exportError(QStringLiteral("/tmp/x.csv"), QStringLiteral("/tmp/x.csv: disk full")),
            QStringLiteral("/tmp/x.csv: disk full"));
}

// ---------------------------------------------------------------------------------------------
// Figure polish

// Every text element in `plot`'s layout, however deep.
std::vector<QCPTextElement*> textElements(QCustomPlot* plot) {
  std::vector<QCPTextElement*> out;
  QList<QCPLayoutElement*> stack = {plot->plotLayout()};
  while (!stack.isEmpty()) {
    QCPLayoutElement* element = stack.takeLast();
    if (auto* text = qobject_cast<QCPTextElement*>(element)) out.push_back(text);
    for (QCPLayoutElement* child : element->elements(false)) {
      if (child) stack.push_back(child);
    }
  }
  return out;
}

TEST(FigurePolish, CompareMapsShareTheQueryLabelsOfAAndHaveTheSameSize) {
  auto window = test::makeWindow();
  const SessionDataPtr session =
      test::tinySession({"kv=snapkv:budget=16,window=4", "pattern=window:w=8"});
  window->controller()->adoptSession(session);
  CompareView* view = window->compareView();
  window->showView(view);
  ASSERT_TRUE(test::waitSettled(*window));
  ASSERT_TRUE(view->hasFigure());
  // The rows are the same tokens in all three panels: only A labels them.
  EXPECT_TRUE(view->axisRect(0)->axis(QCPAxis::atLeft)->tickLabels());
  EXPECT_FALSE(view->axisRect(0)->axis(QCPAxis::atLeft)->label().isEmpty());
  for (int panel : {1, 2}) {
    EXPECT_FALSE(view->axisRect(panel)->axis(QCPAxis::atLeft)->tickLabels()) << panel;
    EXPECT_TRUE(view->axisRect(panel)->axis(QCPAxis::atBottom)->tickLabels()) << panel;
  }
  // The room A's labels take is made up for: the three maps come out the same size.
  ASSERT_TRUE(test::waitFor([&] {
    const int w0 = view->axisRect(0)->width();
    return std::abs(view->axisRect(1)->width() - w0) <= 2 &&
           std::abs(view->axisRect(2)->width() - w0) <= 2;
  })) << view->axisRect(0)->width()
      << " " << view->axisRect(1)->width() << " " << view->axisRect(2)->width();
  EXPECT_EQ(view->axisRect(0)->height(), view->axisRect(1)->height());
  // Hover still works on a panel without labels: the crosshair cell is reported.
  const int T = session->nTokens();
  QCPAxisRect* b = view->axisRect(1);
  const QPoint pos(int(std::lround(b->axis(QCPAxis::atBottom)->coordToPixel(1))),
                   int(std::lround(b->axis(QCPAxis::atLeft)->coordToPixel(T - 1))));
  QMouseEvent move(QEvent::MouseMove, pos, view->plot()->mapToGlobal(pos), Qt::NoButton,
                   Qt::NoButton, Qt::NoModifier);
  QApplication::sendEvent(view->plot(), &move);
  EXPECT_EQ(window->selection()->hoverToken(), T - 1);
}

TEST(FigurePolish, EveryQueryGroupsPanelHasATitle) {
  auto window = test::makeWindow();
  const SessionDataPtr session = test::tinySession({"grouping=kdgqa"});
  window->controller()->adoptSession(session);
  QueryGroupsView* view = window->queryGroupsView();
  window->showView(view);
  const auto shownTitles = [&] {
    std::set<QString> titles;
    for (QCPTextElement* text : textElements(view->plot())) {
      if (text->visible() && text->layout()) titles.insert(text->text());
    }
    return titles;
  };
  const std::set<QString> always = {QStringLiteral("allocation: query head \u2192 KV head"),
                                    QStringLiteral("key norm per KV head"),
                                    QStringLiteral("query heads per KV head"),
                                    QStringLiteral("allocation in every layer")};
  const QString steps = QStringLiteral("allocation over decode steps");
  // KDGQA reallocates per decode step: five panels, five titles.
  window->selection()->setTrace(1);
  ASSERT_TRUE(test::waitSettled(*window));
  ASSERT_TRUE(view->showsSteps());
  std::set<QString> titles = shownTitles();
  for (const QString& t : always) EXPECT_TRUE(titles.count(t)) << t.toStdString();
  EXPECT_TRUE(titles.count(steps));
  // The baseline has no decode-step panel, and no title left over for it.
  window->selection()->setTrace(0);
  ASSERT_TRUE(test::waitSettled(*window));
  ASSERT_FALSE(view->showsSteps());
  titles = shownTitles();
  for (const QString& t : always) EXPECT_TRUE(titles.count(t)) << t.toStdString();
  EXPECT_FALSE(titles.count(steps));
}

TEST(FigurePolish, EveryRunNameUnderTheThroughputBarsFitsTheFigure) {
  auto window = test::makeWindow();
  // Five runs with long names, as in the README screenshot.
  const SessionDataPtr session =
      test::tinySession({"kv=pyramidkv:budget=16,window=4", "grouping=kdgqa", "pattern=window:w=8",
                         "kv=streamingllm:budget=16,sinks=2"});
  window->controller()->adoptSession(session);
  ThroughputView* view = window->throughputView();
  window->showView(view);
  ASSERT_TRUE(test::waitSettled(*window));
  QCustomPlot* plot = view->plot();
  plot->replot();
  const int width = plot->width();
  for (int metric = 0; metric < ThroughputView::BarMetricCount; ++metric) {
    QCPAxisRect* rect = view->barRect(metric);
    ASSERT_NE(rect, nullptr);
    QCPAxis* x = rect->axis(QCPAxis::atBottom);
    auto ticker = x->ticker().dynamicCast<QCPAxisTickerText>();
    ASSERT_TRUE(ticker);
    ASSERT_EQ(ticker->ticks().size(), session->traceCount());
    const QFontMetrics metrics(x->tickLabelFont());
    const double radians = x->tickLabelRotation() * std::numbers::pi / 180;
    for (auto it = ticker->ticks().constBegin(); it != ticker->ticks().constEnd(); ++it) {
      const double tick = x->coordToPixel(it.key());
      const double w = metrics.horizontalAdvance(it.value()), h = metrics.height();
      // Where QCustomPlot places a bottom-axis label: centred under the tick when level; turned
      // clockwise it starts at the tick, counter-clockwise it ends there.
      double left = tick - w / 2, right = tick + w / 2;
      if (radians > 0) {
        left = tick;
        right = tick + w * std::cos(radians) + h * std::sin(radians) / 2;
      } else if (radians < 0) {
        left = tick - w * std::cos(-radians) - h * std::sin(-radians) / 2;
        right = tick + h * std::sin(-radians) / 2;
      }
      EXPECT_GE(left, 0) << "chart " << metric << " " << it.value().toStdString();
      EXPECT_LE(right, width) << "chart " << metric << " " << it.value().toStdString();
    }
  }
}

// `base` with each variant's KL per position replaced by a constant from `levels`.
SessionDataPtr withKl(const SessionDataPtr& base, const std::vector<float>& levels) {
  auto s = std::make_shared<SessionData>(*base);
  for (size_t i = 1; i < s->traces.size() && i - 1 < levels.size(); ++i) {
    auto t = std::make_shared<Trace>(*s->traces[i]);
    std::fill(t->kl_per_position.begin(), t->kl_per_position.end(), levels[i - 1]);
    if (!t->kl_per_position.empty()) t->kl_per_position.front() = 0;  // one exact match
    s->traces[i] = t;
  }
  return s;
}

TEST(FigurePolish, KlAxisTurnsLogWhenTheVariantsKlScalesAreFarApart) {
  auto window = test::makeWindow();
  MetricsView* view = window->metricsView();
  window->showView(view);
  const SessionDataPtr base = test::tinySession();
  ASSERT_GE(base->traceCount(), 3);
  QCPAxis* y = nullptr;
  const auto open = [&](const SessionDataPtr& s) {
    window->controller()->adoptSession(s);
    ASSERT_TRUE(test::waitSettled(*window));
    y = view->klGraph(1)->valueAxis();
  };
  // One broken variant (KL 20) beside a good one (KL 0.01): 2000x apart, log.
  open(withKl(base, {20.f, 0.01f}));
  EXPECT_TRUE(view->logYBox()->isChecked());
  EXPECT_EQ(y->scaleType(), QCPAxis::stLogarithmic);
  // 10x apart: linear, and the values are drawn as they are.
  open(withKl(base, {0.2f, 0.02f}));
  EXPECT_FALSE(view->logYBox()->isChecked());
  EXPECT_EQ(y->scaleType(), QCPAxis::stLinear);
  EXPECT_EQ(view->klGraph(1)->data()->at(0)->value, 0.0);
  // Variants that match the baseline exactly do not count (their scale is 0).
  open(withKl(base, {0.f, 0.3f}));
  EXPECT_FALSE(view->logYBox()->isChecked());
  // Once the user chose, a new session keeps the choice.
  view->logYBox()->setChecked(true);
  open(withKl(base, {0.2f, 0.02f}));
  EXPECT_TRUE(view->logYBox()->isChecked());
  view->logYBox()->setChecked(false);
  open(withKl(base, {20.f, 0.01f}));
  EXPECT_FALSE(view->logYBox()->isChecked());
  EXPECT_EQ(y->scaleType(), QCPAxis::stLinear);
}

}  // namespace
}  // namespace attnscope::app
