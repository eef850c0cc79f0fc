// CompareView: A, B and B - A of the selected head from identical MapRequests (checked against
// core's compute_map and difference_map), synchronized zoom that refines the visible range, hover
// and click, the metric table against the traces and analyses, exports and empty states.
#include <gtest/gtest.h>
#include <qcustomplot.h>

#include <QApplication>
#include <QCheckBox>
#include <QComboBox>
#include <QFile>
#include <QMouseEvent>
#include <QTableWidget>
#include <QTest>
#include <cmath>
#include <nlohmann/json.hpp>

#include "app_test_support.h"
#include "attnscope/map_request.h"
#include "attnscope/npy.h"
#include "attnscope/trace_export.h"
#include "compare_metrics_table.h"
#include "compare_view.h"
#include "kv_cache_view.h"
#include "main_window.h"
#include "map_service.h"
#include "selection_model.h"
#include "session_controller.h"

namespace attnscope::app {
namespace {

using test::kTimeoutMs;

// Variants whose maps differ from the baseline's in a tiny model (4 query heads, 2 KV heads):
// a KV policy (decode rows), a key-driven grouping and a local pattern.
const std::vector<std::string> kVariants = {"kv=snapkv:budget=16,window=4", "grouping=kdgqa",
                                            "pattern=window:w=8"};

class CompareViewTest : public ::testing::Test {
 protected:
  void SetUp() override { window = test::makeWindow(); }

  CompareView* open(const SessionDataPtr& session) {
    window->controller()->adoptSession(session);
    CompareView* view = window->compareView();
    window->showView(view);
    EXPECT_TRUE(test::waitSettled(*window));
    return view;
  }
  // Waits until the view shows maps for (a, b, layer, head).
  bool waitShown(CompareView* view, int layer, int head) {
    return test::waitFor([&] {
      return view->hasFigure() && view->lastRequest().layer == layer &&
             view->lastRequest().head == head && window->controller()->maps()->pendingCount() == 0;
    });
  }
  static void expectSameMap(const PooledMap& shown, const PooledMap& expected, const char* what) {
    ASSERT_EQ(shown.rows, expected.rows) << what;
    ASSERT_EQ(shown.cols, expected.cols) << what;
    ASSERT_EQ(shown.row_edges, expected.row_edges) << what;
    ASSERT_EQ(shown.col_edges, expected.col_edges) << what;
    for (size_t i = 0; i < expected.values.size(); ++i) {
      ASSERT_EQ(shown.values[i], expected.values[i]) << what << " cell " << i;
    }
  }
  // QTest::mouseMove moves the cursor, which the offscreen platform does not turn into events.
  static void sendMouseMove(QWidget* widget, const QPoint& pos) {
    QMouseEvent move(QEvent::MouseMove, pos, widget->mapToGlobal(pos), Qt::NoButton, Qt::NoButton,
                     Qt::NoModifier);
    QApplication::sendEvent(widget, &move);
  }
  QPoint pixelOf(CompareView* view, int panel, int query, int key) {
    QCPAxisRect* rect = view->axisRect(panel);
    return QPoint(int(std::lround(rect->axis(QCPAxis::atBottom)->coordToPixel(key))),
                  int(std::lround(rect->axis(QCPAxis::atLeft)->coordToPixel(query))));
  }

  std::unique_ptr<MainWindow> window;
};

TEST_F(CompareViewTest, ShowsBothRunsAndTheirDifferenceFromIdenticalRequests) {
  const SessionDataPtr session = test::tinySession(kVariants);
  CompareView* view = open(session);
  window->selection()->setLayerHead(1, 2);
  ASSERT_TRUE(waitShown(view, 1, 2));
  EXPECT_EQ(window->selection()->compareA(), 0);
  EXPECT_EQ(window->selection()->compareB(), 1);

  const MapRequest& request = view->lastRequest();
  const int T = session->nTokens();
  EXPECT_EQ(request.q_begin, 0);
  EXPECT_EQ(request.q_end, T);
  EXPECT_EQ(request.k_end, T);
  // The resolution is the axis rect's pixel size, capped, and never more than the tokens.
  EXPECT_LE(request.out_cols, CompareView::kMaxMapCells);
  EXPECT_EQ(request.out_cols, std::min(T, view->axisRect(0)->width()));
  EXPECT_EQ(request.out_rows, std::min(T, view->axisRect(0)->height()));

  const PooledMap expectedA = compute_map(*session->traces[0], request);
  const PooledMap expectedB = compute_map(*session->traces[1], request);
  expectSameMap(*view->mapA(), expectedA, "A");
  expectSameMap(*view->mapB(), expectedB, "B");
  const PooledMap expectedDiff = difference_map(expectedA, expectedB);
  expectSameMap(*view->difference(), expectedDiff, "B - A");
  // The variant changes decode rows at least somewhere: the difference is not all zero.
  double largest = 0;
  for (float v : expectedDiff.values) largest = std::max(largest, std::abs(double(v)));
  EXPECT_GT(largest, 0.0);
  // The difference scale is symmetric around zero.
  EXPECT_DOUBLE_EQ(view->differenceScale()->dataRange().lower,
                   -view->differenceScale()->dataRange().upper);

  const QImage image = test::grabImage(view);
  EXPECT_GE(test::distinctColors(image), 20);
  EXPECT_GT(test::inkFraction(image), 0.2);
}

TEST_F(CompareViewTest, FollowsCompareLayerAndHeadSelection) {
  const SessionDataPtr session = test::tinySession(kVariants);
  CompareView* view = open(session);
  ASSERT_EQ(view->comboA()->count(), 4);
  EXPECT_EQ(view->comboA()->itemText(0), QStringLiteral("baseline"));
  EXPECT_TRUE(view->comboB()->itemText(2).contains(QStringLiteral("simulation (needs training)")))
      << view->comboB()->itemText(2).toStdString();  // kdgqa is a labelled simulation

  window->selection()->setCompare(1, 3);
  window->selection()->setLayerHead(2, 3);
  ASSERT_TRUE(waitShown(view, 2, 3));
  EXPECT_EQ(view->comboA()->currentIndex(), 1);
  EXPECT_EQ(view->comboB()->currentIndex(), 3);
  expectSameMap(*view->mapA(), compute_map(*session->traces[1], view->lastRequest()), "A = 1");
  expectSameMap(*view->mapB(), compute_map(*session->traces[3], view->lastRequest()), "B = 3");

  // Choosing in the combo sets the shared selection.
  view->comboB()->setCurrentIndex(2);
  emit view->comboB()->activated(2);
  EXPECT_EQ(window->selection()->compareB(), 2);
  ASSERT_TRUE(test::waitFor([&] {
    return view->mapB() && window->controller()->maps()->pendingCount() == 0 &&
           view->comboB()->currentIndex() == 2;
  }));
  ASSERT_TRUE(test::waitSettled(*window));
  expectSameMap(*view->mapB(), compute_map(*session->traces[2], view->lastRequest()), "B = 2");
}

TEST_F(CompareViewTest, ZoomIsSynchronizedAndRefinesTheVisibleRange) {
  // Longer than the plot is wide, so the overview pools several tokens per cell.
  std::string prompt;
  for (int i = 0; i < 14; ++i) prompt += "the cat sat on the mat and looked at the moon. ";
  const SessionDataPtr session = test::tinySession({"kv=snapkv:budget=16,window=4"}, 4, prompt);
  window->resize(1000, 700);
  CompareView* view = open(session);
  ASSERT_TRUE(waitShown(view, window->selection()->layer(), window->selection()->head()));
  const int T = session->nTokens();
  ASSERT_GT(T, view->axisRect(0)->width()) << "prompt too short to pool";
  ASSERT_GT(view->overviewA()->col_stride, 1);
  EXPECT_FALSE(view->hasDetail());

  view->axisRect(0)->axis(QCPAxis::atBottom)->setRange(100, 140);
  view->axisRect(0)->axis(QCPAxis::atLeft)->setRange(180, 220);
  for (int panel = 1; panel < 3; ++panel) {
    EXPECT_EQ(view->axisRect(panel)->axis(QCPAxis::atBottom)->range(), QCPRange(100, 140));
    EXPECT_EQ(view->axisRect(panel)->axis(QCPAxis::atLeft)->range(), QCPRange(180, 220));
  }
  ASSERT_TRUE(test::waitFor(
      [&] { return view->hasDetail() && window->controller()->maps()->pendingCount() == 0; }));
  const MapRequest& request = view->lastRequest();
  EXPECT_EQ(request.k_begin, 100);
  EXPECT_EQ(request.k_end, 141);
  EXPECT_EQ(request.q_begin, 180);
  EXPECT_EQ(request.q_end, 221);
  // Zoomed in far enough, every token is a cell: the exact probabilities.
  EXPECT_EQ(view->mapA()->col_stride, 1);
  expectSameMap(*view->mapA(), compute_map(*session->traces[0], request), "detail A");
  expectSameMap(*view->mapB(), compute_map(*session->traces[1], request), "detail B");
  expectSameMap(*view->difference(), difference_map(*view->mapA(), *view->mapB()), "detail diff");

  // Panning past the edge stops at the map; double-click-style reset shows the whole range.
  view->axisRect(2)->axis(QCPAxis::atBottom)->setRange(-50, -10);
  EXPECT_DOUBLE_EQ(view->axisRect(0)->axis(QCPAxis::atBottom)->range().lower, -0.5);
  QTest::mouseDClick(view->plot(), Qt::LeftButton, Qt::NoModifier,
                     view->axisRect(1)->rect().center());
  EXPECT_EQ(view->axisRect(0)->axis(QCPAxis::atBottom)->range(), QCPRange(-0.5, T - 0.5));
  EXPECT_FALSE(view->hasDetail());
}

TEST_F(CompareViewTest, HoverShowsTheCellAndClickSelectsTheQueryToken) {
  const SessionDataPtr session = test::tinySession(kVariants);
  CompareView* view = open(session);
  ASSERT_TRUE(waitShown(view, window->selection()->layer(), window->selection()->head()));
  const int T = session->nTokens();
  ASSERT_EQ(view->mapA()->rows, T) << "the tiny prompt should show one token per cell";
  const int q = T - 2, k = 3;
  const QString text = view->cellText(q, k);
  const size_t cell = static_cast<size_t>(q) * view->mapA()->cols + k;
  EXPECT_TRUE(text.contains(QStringLiteral("query %1").arg(q))) << text.toStdString();
  EXPECT_TRUE(
      text.contains(QStringLiteral("A: %1").arg(double(view->mapA()->values[cell]), 0, 'g', 4)))
      << text.toStdString();
  EXPECT_TRUE(
      text.contains(QStringLiteral("B: %1").arg(double(view->mapB()->values[cell]), 0, 'g', 4)))
      << text.toStdString();
  EXPECT_TRUE(view->cellText(2, 5).contains(QStringLiteral("causally hidden")));
  EXPECT_TRUE(view->cellText(T + 3, 0).isEmpty());

  // Hovering any panel names the query row as the hovered token; leaving clears it.
  sendMouseMove(view->plot(), pixelOf(view, 2, q, k));
  EXPECT_EQ(window->selection()->hoverToken(), q);
  QTest::mouseClick(view->plot(), Qt::LeftButton, Qt::NoModifier, pixelOf(view, 1, q, k));
  EXPECT_EQ(window->selection()->queryToken(), q);
  QEvent leave(QEvent::Leave);
  QApplication::sendEvent(view->plot(), &leave);
  EXPECT_EQ(window->selection()->hoverToken(), -1);

  // A token hovered elsewhere is highlighted (row and column bands): the picture changes.
  const QImage before = view->plot()->toPixmap().toImage();
  window->selection()->setHoverToken(4);
  QApplication::processEvents();
  const QImage after = view->plot()->toPixmap().toImage();
  EXPECT_NE(before, after);
}

TEST_F(CompareViewTest, MetricTableShowsTheTracesFiguresAndHeadMetrics) {
  const SessionDataPtr session = test::tinySession(kVariants);
  CompareView* view = open(session);
  window->selection()->setLayerHead(2, 1);
  ASSERT_TRUE(waitShown(view, 2, 1));
  ASSERT_TRUE(test::waitSettled(*window));  // analyses (head metrics) done
  const Trace& a = *session->traces[0];
  const Trace& b = *session->traces[1];
  const DataTable table = view->metricTable();
  ASSERT_EQ(table.columns.size(), 5u);
  const auto row = [&](const std::string& key) {
    const auto& keys = table.columns[0].texts;
    const auto it = std::find(keys.begin(), keys.end(), key);
    EXPECT_NE(it, keys.end()) << key;
    return static_cast<size_t>(it - keys.begin());
  };
  const auto valueA = [&](const std::string& key) { return table.columns[2].numbers[row(key)]; };
  const auto valueB = [&](const std::string& key) { return table.columns[3].numbers[row(key)]; };
  EXPECT_DOUBLE_EQ(valueB("kl_mean"), b.metrics.at("kl_mean"));
  EXPECT_TRUE(std::isnan(valueA("kl_mean")));  // the baseline stores no KL against itself
  EXPECT_DOUBLE_EQ(valueB("top1_agreement"), b.metrics.at("top1_agreement"));
  EXPECT_DOUBLE_EQ(valueA("perplexity"), a.metrics.at("perplexity"));
  EXPECT_DOUBLE_EQ(valueB("perplexity"), b.metrics.at("perplexity"));
  EXPECT_DOUBLE_EQ(table.columns[4].numbers[row("perplexity")],
                   b.metrics.at("perplexity") - a.metrics.at("perplexity"));
  EXPECT_DOUBLE_EQ(valueB("delta_perplexity"), b.metrics.at("delta_perplexity"));
  EXPECT_DOUBLE_EQ(valueB("layer_rel_error_L2"), b.layer_rel_error.at(2));
  EXPECT_DOUBLE_EQ(valueB("lost_mass_mean"), trace_summary(b).at("lost_mass_mean"));
  EXPECT_DOUBLE_EQ(valueB("kv_cache_bytes"), b.timings.at("kv_cache_bytes"));
  EXPECT_DOUBLE_EQ(valueB("decode_tokens_per_second"), b.timings.at("decode_tokens_per_second"));
  const TraceAnalysisPtr analysisB = window->controller()->analysis(1);
  ASSERT_TRUE(analysisB && analysisB->hasMetrics());
  EXPECT_DOUBLE_EQ(valueB("head_L2H1_entropy"), analysisB->metrics(2, 1).entropy);
  EXPECT_DOUBLE_EQ(valueA("head_L2H1_sink_mass"),
                   window->controller()->analysis(0)->metrics(2, 1).sink_mass);

  // The widget shows the same numbers.
  QTableWidget* widget = view->metricWidget();
  const int r = static_cast<int>(row("perplexity"));
  EXPECT_EQ(widget->item(r, 2)->text(), QString::number(b.metrics.at("perplexity"), 'g', 4));
  const int kl = static_cast<int>(row("kl_mean"));
  EXPECT_EQ(widget->item(kl, 1)->text(), QStringLiteral("\u2014"));
}

TEST_F(CompareViewTest, LogToggleSwitchesTheProbabilityScaleOnly) {
  CompareView* view = open(test::tinySession(kVariants));
  ASSERT_TRUE(waitShown(view, window->selection()->layer(), window->selection()->head()));
  EXPECT_EQ(view->probabilityScale()->dataScaleType(), QCPAxis::stLogarithmic);
  view->logToggle()->setChecked(false);
  EXPECT_EQ(view->probabilityScale()->dataScaleType(), QCPAxis::stLinear);
  EXPECT_DOUBLE_EQ(view->probabilityScale()->dataRange().lower, 0.0);
  EXPECT_EQ(view->differenceScale()->dataScaleType(), QCPAxis::stLinear);
}

TEST_F(CompareViewTest, ExportsFigureAndData) {
  CompareView* view = open(test::tinySession(kVariants));
  ASSERT_TRUE(waitShown(view, window->selection()->layer(), window->selection()->head()));
  const QString dir = test::tempDir(QStringLiteral("compare_export"));
  QString why;
  for (const QString& ext : {QStringLiteral("png"), QStringLiteral("svg"), QStringLiteral("pdf")}) {
    const QString path = dir + QStringLiteral("/fig.") + ext;
    ASSERT_EQ(view->exportFigure(path, {}), QString()) << ext.toStdString();
    const bool ok = ext == QLatin1String("png")   ? test::isValidPng(path, &why)
                    : ext == QLatin1String("svg") ? test::isValidSvg(path, &why)
                                                  : test::isValidPdf(path, &why);
    EXPECT_TRUE(ok) << why.toStdString();
  }
  EXPECT_TRUE(view->figureName().startsWith(QStringLiteral("compare_L0_H0_baseline_vs_")))
      << view->figureName().toStdString();

  const PooledMap diff = *view->difference();
  // NPY: the difference matrix.
  const QString npy = dir + QStringLiteral("/diff.npy");
  ASSERT_EQ(view->exportData(npy), QString());
  const NpyArray<float> array = read_npy_f32(npy.toStdString());
  ASSERT_EQ(array.shape, (std::vector<int64_t>{diff.rows, diff.cols}));
  EXPECT_EQ(array.data, diff.values);

  // CSV: the labelled matrix plus the metric table beside it.
  const QString csv = dir + QStringLiteral("/diff.csv");
  ASSERT_EQ(view->exportData(csv), QString());
  QFile csvFile(csv);
  ASSERT_TRUE(csvFile.open(QIODevice::ReadOnly));
  const QStringList lines =
      QString::fromUtf8(csvFile.readAll()).split(QLatin1Char('\n'), Qt::SkipEmptyParts);
  EXPECT_EQ(lines.size(), diff.rows + 1);  // header row of key labels
  QFile metrics(dir + QStringLiteral("/diff_metrics.csv"));
  ASSERT_TRUE(metrics.open(QIODevice::ReadOnly));
  EXPECT_TRUE(metrics.readLine().startsWith("metric,label,a,b,b_minus_a"));

  // JSON: a, b and diff per cell, and the metric table.
  const QString json = dir + QStringLiteral("/cells.json");
  ASSERT_EQ(view->exportData(json), QString());
  QFile jsonFile(json);
  ASSERT_TRUE(jsonFile.open(QIODevice::ReadOnly));
  const auto doc = nlohmann::json::parse(jsonFile.readAll().toStdString());
  ASSERT_EQ(doc["rows"].size(), static_cast<size_t>(diff.rows) * diff.cols);
  const auto& cell = doc["rows"][static_cast<size_t>(diff.cols) + 1];
  EXPECT_NEAR(cell["b_minus_a"].get<double>(), cell["b"].get<double>() - cell["a"].get<double>(),
              1e-7);
  EXPECT_EQ(cell["query_begin"].get<int>(), diff.row_edges[1]);
  EXPECT_TRUE(QFile::exists(dir + QStringLiteral("/cells_metrics.json")));

  EXPECT_FALSE(view->exportData(dir + QStringLiteral("/x.txt")).isEmpty());
}

TEST_F(CompareViewTest, HiddenTabKeepsAFigureReadyForShortPrompts) {
  const SessionDataPtr session = test::tinySession(kVariants);
  CompareView* view = open(session);
  window->showView(window->kvCacheView());  // the compare tab is hidden now
  ASSERT_FALSE(view->isVisible());
  window->selection()->setLayerHead(2, 1);
  // Short prompts are computed while hidden, so "export all" finds a figure.
  ASSERT_TRUE(waitShown(view, 2, 1));
  expectSameMap(*view->mapB(), compute_map(*session->traces[1], view->lastRequest()), "hidden B");
}

TEST_F(CompareViewTest, EmptyStatesDoNotCrash) {
  CompareView* view = window->compareView();
  window->showView(view);
  EXPECT_FALSE(view->hasFigure());
  EXPECT_TRUE(view->emptyMessage().contains(QStringLiteral("F5")));
  EXPECT_FALSE(
      view->exportFigure(test::tempDir(QStringLiteral("cmp_empty")) + QStringLiteral("/x.png"), {})
          .isEmpty());

  // Baseline only: A = B = baseline, the difference is zero everywhere.
  open(test::tinySession({}, 0));
  ASSERT_TRUE(waitShown(view, 0, 0));
  for (float v : view->difference()->values) ASSERT_EQ(v, 0.0f);

  // A one-token prompt still draws.
  open(test::tinySession({"kv=snapkv:budget=16,window=4"}, 0, "a"));
  ASSERT_TRUE(waitShown(view, 0, 0));
  EXPECT_GE(view->mapA()->rows, 1);
  EXPECT_GT(test::distinctColors(test::grabImage(view)), 3);
}

}  // namespace
}  // namespace attnscope::app
