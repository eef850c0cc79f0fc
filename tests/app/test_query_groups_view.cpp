// QueryGroupsView: allocation matrix, key-norm and group-size bars, the overview over layers and
// DGQA's allocation over decode steps against the trace's groups / group_steps; SQA's inactive
// heads greyed and the simulation label; clicks select head and layer; exports; empty states.
#include <gtest/gtest.h>
#include <qcustomplot.h>

#include <QApplication>
#include <QFile>
#include <QTest>
#include <nlohmann/json.hpp>

#include "app_test_support.h"
#include "attnscope/npy.h"
#include "main_window.h"
#include "query_groups_view.h"
#include "selection_model.h"
#include "session_controller.h"

namespace attnscope::app {
namespace {

// Groupings valid for the tiny model (4 query heads, 2 KV heads): key-driven (with norms),
// dynamic over decode steps, and SQA keeping 2 of the 4 heads.
const std::vector<std::string> kVariants = {"grouping=kdgqa", "grouping=dgqa",
                                            "grouping=sqa:heads=2", "kv=snapkv:budget=16,window=4"};
constexpr int kKdgqa = 1, kDgqa = 2, kSqa = 3, kSnap = 4;
constexpr int kDecode = 5;

class QueryGroupsViewTest : public ::testing::Test {
 protected:
  void SetUp() override {
    window = test::makeWindow();
    session = test::tinySession(kVariants, kDecode);
    window->controller()->adoptSession(session);
    view = window->queryGroupsView();
    window->showView(view);
    ASSERT_TRUE(test::waitSettled(*window));
  }
  void select(int trace, int layer, int head = 0) {
    window->selection()->setTrace(trace);
    window->selection()->setLayerHead(layer, head);
    ASSERT_TRUE(test::waitFor([&] {
      QApplication::processEvents();
      return view->hasFigure() && view->layer() == layer &&
             view->titleText().startsWith(session->traceName(trace));
    }));
  }
  static QPoint pixelIn(QCPAxisRect* rect, double x, double y) {
    return QPoint(int(std::lround(rect->axis(QCPAxis::atBottom)->coordToPixel(x))),
                  int(std::lround(rect->axis(QCPAxis::atLeft)->coordToPixel(y))));
  }

  std::unique_ptr<MainWindow> window;
  SessionDataPtr session;
  QueryGroupsView* view = nullptr;
};

TEST_F(QueryGroupsViewTest, MatrixAndOverviewShowTheAllocation) {
  for (int trace : {0, kKdgqa, kDgqa, kSqa}) {
    const Trace& t = *session->traces[static_cast<size_t>(trace)];
    for (int layer = 0; layer < t.model.n_layer; ++layer) {
      select(trace, layer);
      const GroupStep& g = t.groups[static_cast<size_t>(layer)];
      ASSERT_EQ(view->kvHeadCount(), g.n_kv);
      for (int h = 0; h < t.model.n_head; ++h) {
        for (int kv = 0; kv < g.n_kv; ++kv) {
          const QueryGroupsView::Cell cell = view->matrixCell(h, kv);
          const bool assigned = g.kv_of_query[static_cast<size_t>(h)] == kv;
          ASSERT_EQ(cell.kvHead, assigned ? kv : -1)
              << trace << " L" << layer << " h" << h << " kv" << kv;
        }
      }
      // The overview holds every layer's allocation, whichever layer is selected.
      for (int l = 0; l < t.model.n_layer; ++l) {
        for (int h = 0; h < t.model.n_head; ++h) {
          ASSERT_EQ(view->overviewCell(l, h).kvHead,
                    t.groups[static_cast<size_t>(l)].kv_of_query[static_cast<size_t>(h)]);
        }
      }
    }
  }
  const QImage image = test::grabImage(view);
  EXPECT_GE(test::distinctColors(image), 6);
  EXPECT_GT(test::inkFraction(image), 0.15);
}

TEST_F(QueryGroupsViewTest, KeyNormsAndGroupSizes) {
  select(kKdgqa, 1);
  const GroupStep& g = session->traces[kKdgqa]->groups[1];
  ASSERT_FALSE(g.key_norms.empty()) << "KDGQA records key norms";
  const std::vector<double> norms = view->keyNormBars();
  ASSERT_EQ(norms.size(), g.key_norms.size());
  for (size_t i = 0; i < norms.size(); ++i) EXPECT_DOUBLE_EQ(norms[i], g.key_norms[i]);
  const std::vector<double> sizes = view->groupSizeBars();
  ASSERT_EQ(static_cast<int>(sizes.size()), g.n_kv);
  for (int kv = 0; kv < g.n_kv; ++kv) {
    EXPECT_EQ(sizes[static_cast<size_t>(kv)],
              double(std::count(g.kv_of_query.begin(), g.kv_of_query.end(), kv)));
  }
  EXPECT_TRUE(view->matrixText(0, -1).contains(QStringLiteral("key norm")))
      << view->matrixText(0, -1).toStdString();
  // The grouping part and its parameters are named.
  EXPECT_TRUE(view->titleText().contains(QStringLiteral("KDGQA")))
      << view->titleText().toStdString();
  // Native grouping: no key norms.
  select(0, 1);
  EXPECT_TRUE(view->keyNormBars().empty());
}

TEST_F(QueryGroupsViewTest, SqaInactiveHeadsAreGreyedAndLabelledAsSimulation) {
  select(kSqa, 0);
  const Trace& t = *session->traces[kSqa];
  const GroupStep& g = t.groups[0];
  ASSERT_EQ(g.active_query_heads.size(), 2u);
  int inactive = 0;
  for (int h = 0; h < t.model.n_head; ++h) {
    const bool active = std::find(g.active_query_heads.begin(), g.active_query_heads.end(), h) !=
                        g.active_query_heads.end();
    const QueryGroupsView::Cell cell = view->matrixCell(h, g.kv_of_query[static_cast<size_t>(h)]);
    EXPECT_EQ(cell.inactive, !active) << h;
    EXPECT_EQ(cell.kvHead, g.kv_of_query[static_cast<size_t>(h)]) << h;
    EXPECT_EQ(view->overviewCell(0, h).inactive, !active) << h;
    if (!active) {
      ++inactive;
      EXPECT_TRUE(view->matrixText(h, -1).contains(QStringLiteral("inactive")));
    }
  }
  EXPECT_EQ(inactive, 2);
  EXPECT_TRUE(view->titleText().contains(QStringLiteral("simulation (needs training)")))
      << view->titleText().toStdString();
  EXPECT_TRUE(view->titleText().contains(QStringLiteral("heads=2")))
      << view->titleText().toStdString();
}

TEST_F(QueryGroupsViewTest, DgqaShowsTheAllocationOverDecodeSteps) {
  select(kDgqa, 2);
  const Trace& t = *session->traces[kDgqa];
  ASSERT_EQ(static_cast<int>(t.group_steps.size()), kDecode);
  ASSERT_TRUE(view->showsSteps());
  for (int s = 0; s < kDecode; ++s) {
    for (int h = 0; h < t.model.n_head; ++h) {
      ASSERT_EQ(view->stepCell(s, h).kvHead,
                t.group_steps[static_cast<size_t>(s)][2].kv_of_query[static_cast<size_t>(h)])
          << "step " << s << " head " << h;
    }
  }
  // A fixed grouping has nothing to show over steps.
  select(kSnap, 2);
  EXPECT_FALSE(view->showsSteps());
  EXPECT_EQ(view->stepCell(0, 0).kvHead, -1);
  select(kDgqa, 0);
  EXPECT_TRUE(view->showsSteps());
  // Clicking a step selects it.
  QApplication::processEvents();
  QTest::mouseClick(view->plot(), Qt::LeftButton, Qt::NoModifier, pixelIn(view->stepsRect(), 3, 1));
  EXPECT_EQ(window->selection()->decodeStep(), 3);
  EXPECT_EQ(window->selection()->head(), 1);
}

TEST_F(QueryGroupsViewTest, ClicksSelectHeadAndLayer) {
  select(kKdgqa, 1, 0);
  QApplication::processEvents();
  QTest::mouseClick(view->plot(), Qt::LeftButton, Qt::NoModifier,
                    pixelIn(view->matrixRect(), 0, 3));
  EXPECT_EQ(window->selection()->head(), 3);
  EXPECT_EQ(window->selection()->layer(), 1);
  QTest::mouseClick(view->plot(), Qt::LeftButton, Qt::NoModifier,
                    pixelIn(view->overviewRect(), 2, 1));
  EXPECT_EQ(window->selection()->layer(), 2);
  EXPECT_EQ(window->selection()->head(), 1);
  ASSERT_TRUE(test::waitFor([&] {
    QApplication::processEvents();
    return view->layer() == 2;
  }));
}

TEST_F(QueryGroupsViewTest, ExportsFigureAndData) {
  select(kDgqa, 1);
  const QString dir = test::tempDir(QStringLiteral("groups_export"));
  QString why;
  ASSERT_EQ(view->exportFigure(dir + QStringLiteral("/g.png"), {}), QString());
  EXPECT_TRUE(test::isValidPng(dir + QStringLiteral("/g.png"), &why)) << why.toStdString();
  ASSERT_EQ(view->exportFigure(dir + QStringLiteral("/g.svg"), {}), QString());
  EXPECT_TRUE(test::isValidSvg(dir + QStringLiteral("/g.svg"), &why)) << why.toStdString();
  ASSERT_EQ(view->exportFigure(dir + QStringLiteral("/g.pdf"), {}), QString());
  EXPECT_TRUE(test::isValidPdf(dir + QStringLiteral("/g.pdf"), &why)) << why.toStdString();
  EXPECT_TRUE(view->figureName().startsWith(QStringLiteral("groups_L1_dgqa")))
      << view->figureName().toStdString();

  const Trace& t = *session->traces[kDgqa];
  const GroupStep& g = t.groups[1];
  ASSERT_EQ(view->exportData(dir + QStringLiteral("/g.csv")), QString());
  QFile csv(dir + QStringLiteral("/g.csv"));
  ASSERT_TRUE(csv.open(QIODevice::ReadOnly));
  const QStringList lines =
      QString::fromUtf8(csv.readAll()).split(QLatin1Char('\n'), Qt::SkipEmptyParts);
  ASSERT_EQ(lines.size(), t.model.n_head + 1);
  EXPECT_TRUE(lines[3].startsWith(QStringLiteral("1,2,%1,%2,").arg(g.kv_of_query[2]).arg(g.n_kv)))
      << lines[3].toStdString();

  ASSERT_EQ(view->exportData(dir + QStringLiteral("/g.json")), QString());
  QFile json(dir + QStringLiteral("/g.json"));
  ASSERT_TRUE(json.open(QIODevice::ReadOnly));
  const auto doc = nlohmann::json::parse(json.readAll().toStdString());
  EXPECT_EQ(doc["layer"].get<int>(), 1);
  EXPECT_EQ(doc["layers"][0]["kv_of_query"].get<std::vector<int>>(), g.kv_of_query);
  EXPECT_EQ(doc["decode_steps"].size(), static_cast<size_t>(kDecode));

  ASSERT_EQ(view->exportData(dir + QStringLiteral("/g.npy")), QString());
  const NpyArray<int32_t> array = read_npy_i32((dir + QStringLiteral("/g.npy")).toStdString());
  ASSERT_EQ(array.shape, (std::vector<int64_t>{1, t.model.n_head}));
  EXPECT_EQ(std::vector<int>(array.data.begin(), array.data.end()), g.kv_of_query);
  EXPECT_FALSE(view->exportData(dir + QStringLiteral("/g.txt")).isEmpty());
}

TEST_F(QueryGroupsViewTest, EmptyStatesDoNotCrash) {
  window->controller()->adoptSession(std::make_shared<SessionData>());
  ASSERT_TRUE(test::waitFor([&] {
    QApplication::processEvents();
    return !view->hasFigure();
  }));
  EXPECT_TRUE(view->emptyMessage().contains(QStringLiteral("F5")));
  EXPECT_FALSE(
      view->exportData(test::tempDir(QStringLiteral("groups_empty")) + QStringLiteral("/x.csv"))
          .isEmpty());
  // One layer, no decode steps: still a figure.
  window->controller()->adoptSession(test::tinySession({"grouping=kdgqa"}, 0, "ab"));
  ASSERT_TRUE(test::waitFor([&] {
    QApplication::processEvents();
    return view->hasFigure();
  }));
  EXPECT_FALSE(view->showsSteps());
  EXPECT_GT(test::distinctColors(test::grabImage(view)), 3);
}

}  // namespace
}  // namespace attnscope::app
