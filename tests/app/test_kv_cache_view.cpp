// KvCacheView: the reason matrix, kept/budget and lost-mass series and per-layer budgets against
// the trace's kv_steps, the KV-head default and override, hover and click, one image build per
// selection, a long synthetic cache (8000 positions x 64 steps), exports and empty states.
#include <gtest/gtest.h>
#include <qcustomplot.h>

#include <QApplication>
#include <QComboBox>
#include <QFile>
#include <QMouseEvent>
#include <QTest>
#include <cmath>
#include <nlohmann/json.hpp>

#include "app_test_support.h"
#include "attnscope/npy.h"
#include "kv_cache_view.h"
#include "main_window.h"
#include "map_service.h"
#include "selection_model.h"
#include "session_controller.h"

namespace attnscope::app {
namespace {

// KV policies with every keep reason between them (sinks and recent: StreamingLLM; scored and
// window: SnapKV/PyramidKV, whose budgets differ per layer), plus a grouping without a policy.
const std::vector<std::string> kVariants = {"kv=streamingllm:budget=16,sinks=2",
                                            "kv=snapkv:budget=16,window=4",
                                            "kv=pyramidkv:budget=16,window=4", "grouping=kdgqa"};
constexpr int kStreaming = 1, kSnap = 2, kPyramid = 3, kGrouping = 4;
constexpr int kDecode = 6;

class KvCacheViewTest : public ::testing::Test {
 protected:
  void SetUp() override {
    window = test::makeWindow();
    session = test::tinySession(kVariants, kDecode);
    window->controller()->adoptSession(session);
    view = window->kvCacheView();
    window->showView(view);
    ASSERT_TRUE(test::waitSettled(*window));
  }
  void select(int trace, int layer, int head) {
    window->selection()->setTrace(trace);
    window->selection()->setLayerHead(layer, head);
    ASSERT_TRUE(test::waitFor([&] {
      QApplication::processEvents();
      return view->layer() == layer && (view->hasFigure() || !view->emptyMessage().isEmpty());
    }));
    QApplication::processEvents();
  }
  QPoint pixelOf(int step, int position) {
    QCPAxisRect* rect = view->mapRect();
    return QPoint(int(std::lround(rect->axis(QCPAxis::atBottom)->coordToPixel(position))),
                  int(std::lround(rect->axis(QCPAxis::atLeft)->coordToPixel(step))));
  }

  std::unique_ptr<MainWindow> window;
  SessionDataPtr session;
  KvCacheView* view = nullptr;
};

TEST_F(KvCacheViewTest, ShowsTheReasonsOfTheSelectedLayerAndKvHead) {
  select(kSnap, 1, 3);
  ASSERT_TRUE(view->hasFigure()) << view->emptyMessage().toStdString();
  const Trace& t = *session->traces[kSnap];
  // Default KV head: the one query head 3 reads.
  EXPECT_EQ(view->kvHead(), t.groups[1].kv_of_query[3]);
  ASSERT_EQ(view->stepCount(), static_cast<int>(t.kv_steps.size()));
  ASSERT_EQ(view->stepCount(), kDecode);
  int evicted = 0, kept = 0;
  for (int s = 0; s < view->stepCount(); ++s) {
    const KvStep& k = t.kv_steps[static_cast<size_t>(s)][1];
    const auto& reasons = k.reasons[static_cast<size_t>(view->kvHead())];
    ASSERT_EQ(static_cast<int>(reasons.size()), k.position + 1);
    for (int p = 0; p < view->positionCount(); ++p) {
      const int expected =
          p < static_cast<int>(reasons.size()) ? reasons[static_cast<size_t>(p)] : -1;
      ASSERT_EQ(view->reasonAt(s, p), expected) << "step " << s << " position " << p;
      evicted += expected == 0;
      kept += expected > 0;
    }
  }
  EXPECT_GT(evicted, 0);  // the prompt is longer than the budget
  EXPECT_GT(kept, 0);
  const QImage image = test::grabImage(view);
  EXPECT_GE(test::distinctColors(image), 8);
  EXPECT_GT(test::inkFraction(image), 0.2);
}

TEST_F(KvCacheViewTest, KvHeadFollowsTheQueryHeadAndTheComboOverridesIt) {
  select(kSnap, 0, 0);
  const Trace& t = *session->traces[kSnap];
  EXPECT_EQ(view->kvHead(), t.groups[0].kv_of_query[0]);
  ASSERT_EQ(view->kvHeadCombo()->count(), 2);
  EXPECT_TRUE(view->kvHeadCombo()->itemText(0).contains(QStringLiteral("query heads 0, 1")))
      << view->kvHeadCombo()->itemText(0).toStdString();
  window->selection()->setHead(3);
  ASSERT_TRUE(test::waitFor([&] { return view->kvHead() == t.groups[0].kv_of_query[3]; }));
  // The user's choice replaces the default until the head changes.
  const int other = 1 - view->kvHead();
  view->kvHeadCombo()->setCurrentIndex(other);
  emit view->kvHeadCombo()->activated(other);
  EXPECT_EQ(view->kvHead(), other);
  const auto& reasons = t.kv_steps[0][0].reasons[static_cast<size_t>(other)];
  for (size_t p = 0; p < reasons.size(); ++p) ASSERT_EQ(view->reasonAt(0, int(p)), reasons[p]);
  window->selection()->setHead(0);
  ASSERT_TRUE(test::waitFor([&] { return view->kvHead() == t.groups[0].kv_of_query[0]; }));
}

TEST_F(KvCacheViewTest, SeriesShowKeptCountBudgetAndLostMass) {
  select(kStreaming, 2, 1);
  const Trace& t = *session->traces[kStreaming];
  const auto kvh = static_cast<size_t>(view->kvHead());
  ASSERT_EQ(view->keptGraph()->dataCount(), kDecode);
  for (int s = 0; s < kDecode; ++s) {
    const KvStep& k = t.kv_steps[static_cast<size_t>(s)][2];
    const auto kept = std::count_if(k.reasons[kvh].begin(), k.reasons[kvh].end(),
                                    [](uint8_t r) { return r != 0; });
    EXPECT_EQ((view->keptGraph()->data()->begin() + s)->value, double(kept)) << s;
    EXPECT_EQ((view->budgetGraph()->data()->begin() + s)->value, double(k.budgets[kvh])) << s;
    EXPECT_FLOAT_EQ(float((view->lostGraph()->data()->begin() + s)->value), k.lost_mass[kvh]) << s;
    double mean = 0;
    for (float m : k.lost_mass) mean += m;
    mean /= double(k.lost_mass.size());
    EXPECT_NEAR((view->lostMeanGraph()->data()->begin() + s)->value, mean, 1e-9) << s;
  }
  // StreamingLLM keeps its sinks: position 0 is "kept: sink" at every step.
  EXPECT_EQ(view->reasonAt(0, 0), 1);
  EXPECT_TRUE(view->cellText(0, 0).contains(QStringLiteral("kept: sink")))
      << view->cellText(0, 0).toStdString();
  EXPECT_TRUE(
      view->cellText(0, view->positionCount() - 1).contains(QStringLiteral("not cached yet")));
  EXPECT_TRUE(
      view->cellText(2, 0).contains(QStringLiteral("lost mass at this step: %1")
                                        .arg(double(t.kv_steps[2][2].lost_mass[kvh]), 0, 'g', 4)));
}

TEST_F(KvCacheViewTest, PerLayerBudgetsAtTheSelectedStep) {
  select(kPyramid, 1, 0);
  const Trace& t = *session->traces[kPyramid];
  window->selection()->setDecodeStep(2);
  ASSERT_EQ(view->shownStep(), 2);
  std::map<int, double> shown;
  for (auto* bars : view->plot()->findChildren<QCPBars*>()) {
    if (bars->keyAxis() != view->budgetRect()->axis(QCPAxis::atBottom)) continue;
    for (auto it = bars->data()->begin(); it != bars->data()->end(); ++it)
      shown[int(it->key)] = it->value;
  }
  ASSERT_EQ(shown.size(), t.kv_steps[2].size());
  std::set<int> distinct;
  for (size_t l = 0; l < t.kv_steps[2].size(); ++l) {
    const int budget = t.kv_steps[2][l].budgets[static_cast<size_t>(view->kvHead())];
    EXPECT_EQ(shown[int(l)], double(budget)) << "layer " << l;
    distinct.insert(budget);
  }
  EXPECT_GT(distinct.size(), 1u) << "PyramidKV budgets should differ by layer";
  // -1 (no step chosen) shows the last step.
  window->selection()->setDecodeStep(-1);
  EXPECT_EQ(view->shownStep(), kDecode - 1);
}

TEST_F(KvCacheViewTest, HoverNamesTheCellAndClickSelectsTheStep) {
  select(kStreaming, 0, 0);
  const Trace& t = *session->traces[kStreaming];
  const int step = 3, position = 1;
  QMouseEvent move(QEvent::MouseMove, pixelOf(step, position),
                   view->plot()->mapToGlobal(pixelOf(step, position)), Qt::NoButton, Qt::NoButton,
                   Qt::NoModifier);
  QApplication::sendEvent(view->plot(), &move);
  EXPECT_EQ(window->selection()->hoverToken(), position);
  const QString text = view->cellText(step, position);
  EXPECT_TRUE(text.contains(QStringLiteral("step 3"))) << text.toStdString();
  EXPECT_TRUE(text.contains(QStringLiteral("decoding position %1").arg(t.kv_steps[3][0].position)));
  QTest::mouseClick(view->plot(), Qt::LeftButton, Qt::NoModifier, pixelOf(4, 10));
  EXPECT_EQ(window->selection()->decodeStep(), 4);
  EXPECT_EQ(view->shownStep(), 4);

  QEvent leave(QEvent::Leave);
  QApplication::sendEvent(view->plot(), &leave);
  EXPECT_EQ(window->selection()->hoverToken(), -1);

  // A token hovered elsewhere is drawn as a column, without rebuilding the image.
  const int builds = view->imageBuilds();
  const QImage before = view->plot()->toPixmap().toImage();
  window->selection()->setHoverToken(20);
  QApplication::processEvents();
  EXPECT_NE(before, view->plot()->toPixmap().toImage());
  window->selection()->setDecodeStep(1);
  QApplication::processEvents();
  EXPECT_EQ(view->imageBuilds(), builds);
  window->selection()->setLayer(2);
  ASSERT_TRUE(test::waitFor([&] { return view->layer() == 2; }));
  EXPECT_EQ(view->imageBuilds(), builds + 1);
}

TEST_F(KvCacheViewTest, EmptyStatesSaySo) {
  select(0, 0, 0);  // the baseline keeps the full cache
  EXPECT_FALSE(view->hasFigure());
  EXPECT_TRUE(view->emptyMessage().contains(QStringLiteral("full KV cache")))
      << view->emptyMessage().toStdString();
  select(kGrouping, 0, 0);
  EXPECT_TRUE(view->emptyMessage().contains(QStringLiteral("full")))
      << view->emptyMessage().toStdString();
  EXPECT_FALSE(
      view->exportFigure(test::tempDir(QStringLiteral("kv_empty")) + QStringLiteral("/x.png"), {})
          .isEmpty());

  // A policy without decode steps has no decisions.
  window->controller()->adoptSession(test::tinySession({"kv=snapkv:budget=16,window=4"}, 0));
  ASSERT_TRUE(test::waitSettled(*window));
  select(1, 0, 0);
  EXPECT_FALSE(view->hasFigure());
  EXPECT_TRUE(view->emptyMessage().contains(QStringLiteral("decode steps")))
      << view->emptyMessage().toStdString();

  // No session at all.
  window->controller()->adoptSession(std::make_shared<SessionData>());
  ASSERT_TRUE(test::waitFor([&] {
    QApplication::processEvents();
    return view->emptyMessage().contains(QStringLiteral("F5"));
  }));
}

TEST_F(KvCacheViewTest, ExportsFigureAndData) {
  select(kSnap, 1, 2);
  const QString dir = test::tempDir(QStringLiteral("kv_export"));
  QString why;
  ASSERT_EQ(view->exportFigure(dir + QStringLiteral("/kv.png"), {}), QString());
  EXPECT_TRUE(test::isValidPng(dir + QStringLiteral("/kv.png"), &why)) << why.toStdString();
  ASSERT_EQ(view->exportFigure(dir + QStringLiteral("/kv.svg"), {}), QString());
  EXPECT_TRUE(test::isValidSvg(dir + QStringLiteral("/kv.svg"), &why)) << why.toStdString();
  ASSERT_EQ(view->exportFigure(dir + QStringLiteral("/kv.pdf"), {}), QString());
  EXPECT_TRUE(test::isValidPdf(dir + QStringLiteral("/kv.pdf"), &why)) << why.toStdString();
  EXPECT_TRUE(view->figureName().startsWith(QStringLiteral("kv_L1_KV")))
      << view->figureName().toStdString();

  const Trace& t = *session->traces[kSnap];
  const auto kvh = static_cast<size_t>(view->kvHead());
  // CSV: one row per step for this layer and KV head, the reasons as digits.
  ASSERT_EQ(view->exportData(dir + QStringLiteral("/kv.csv")), QString());
  QFile csv(dir + QStringLiteral("/kv.csv"));
  ASSERT_TRUE(csv.open(QIODevice::ReadOnly));
  const QStringList lines =
      QString::fromUtf8(csv.readAll()).split(QLatin1Char('\n'), Qt::SkipEmptyParts);
  ASSERT_EQ(lines.size(), kDecode + 1);
  std::string digits;
  for (uint8_t r : t.kv_steps[0][1].reasons[kvh]) digits += char('0' + r);
  EXPECT_TRUE(lines[1].endsWith(QString::fromStdString(digits))) << lines[1].toStdString();
  EXPECT_TRUE(
      lines[1].startsWith(QStringLiteral("0,%1,1,%2,").arg(t.kv_steps[0][1].position).arg(kvh)));

  // JSON: the same slice, named.
  ASSERT_EQ(view->exportData(dir + QStringLiteral("/kv.json")), QString());
  QFile json(dir + QStringLiteral("/kv.json"));
  ASSERT_TRUE(json.open(QIODevice::ReadOnly));
  const auto doc = nlohmann::json::parse(json.readAll().toStdString());
  EXPECT_EQ(doc["layer"].get<int>(), 1);
  EXPECT_EQ(doc["kv_head"].get<size_t>(), kvh);
  EXPECT_EQ(doc["steps"].size(), static_cast<size_t>(kDecode));

  // NPY: the reason matrix shown, -1 where a position did not exist yet.
  ASSERT_EQ(view->exportData(dir + QStringLiteral("/kv.npy")), QString());
  const NpyArray<float> array = read_npy_f32((dir + QStringLiteral("/kv.npy")).toStdString());
  ASSERT_EQ(array.shape, (std::vector<int64_t>{view->stepCount(), view->positionCount()}));
  for (int s = 0; s < view->stepCount(); ++s) {
    for (int p = 0; p < view->positionCount(); ++p) {
      ASSERT_EQ(array.data[static_cast<size_t>(s) * view->positionCount() + p],
                float(view->reasonAt(s, p)));
    }
  }
}

// A long cache the tiny model is not needed for: 8000 positions x 64 steps x 2 KV heads, built
// directly as a trace (a session opened from disk looks the same to the view).
TEST(KvCacheViewLongTest, EightThousandPositionsBySixtyFourSteps) {
  constexpr int kPrompt = 7936, kSteps = 64, kLayers = 2, kKv = 2, kHeads = 4;
  auto trace = std::make_shared<Trace>();
  trace->model.n_layer = kLayers;
  trace->model.n_head = kHeads;
  trace->model.n_head_kv = kKv;
  trace->model.name = "synthetic";
  trace->variant = VariantSpec::parse("kv=streamingllm:budget=512,sinks=4");
  trace->n_prompt = kPrompt;
  for (int i = 0; i < kPrompt + kSteps; ++i) {
    trace->tokens.push_back(i % 200);
    trace->token_texts.push_back("t" + std::to_string(i % 200));
  }
  GroupStep groups;
  groups.n_kv = kKv;
  groups.kv_of_query = {0, 0, 1, 1};
  trace->groups.assign(kLayers, groups);
  trace->kv_steps.resize(kSteps);
  for (int s = 0; s < kSteps; ++s) {
    for (int l = 0; l < kLayers; ++l) {
      KvStep k;
      k.position = kPrompt + s;
      k.budgets = {512, 512};
      k.lost_mass = {0.01f * float(s % 7), 0.02f};
      for (int h = 0; h < kKv; ++h) {
        std::vector<uint8_t> r(static_cast<size_t>(k.position) + 1, 0);
        for (int p = 0; p < 4; ++p) r[static_cast<size_t>(p)] = 1;
        for (int p = k.position - 507; p <= k.position; ++p) r[static_cast<size_t>(p)] = 2;
        k.reasons.push_back(std::move(r));
      }
      trace->kv_steps[static_cast<size_t>(s)].push_back(std::move(k));
    }
  }
  auto session = std::make_shared<SessionData>();
  session->traces = {trace};
  for (const std::string& text : trace->token_texts)
    session->tokenLabels << QString::fromStdString(text);
  session->decodeSteps = kSteps;

  auto window = test::makeWindow(false);
  window->controller()->adoptSession(session);
  KvCacheView* view = window->kvCacheView();
  window->showView(view);
  ASSERT_TRUE(test::waitFor([&] {
    QApplication::processEvents();
    return view->hasFigure();
  })) << view->emptyMessage().toStdString();
  EXPECT_EQ(view->positionCount(), kPrompt + kSteps);
  EXPECT_EQ(view->stepCount(), kSteps);
  EXPECT_EQ(view->reasonAt(0, 2), 1);
  EXPECT_EQ(view->reasonAt(63, 1000), 0);
  EXPECT_EQ(view->reasonAt(63, kPrompt + 63), 2);
  EXPECT_EQ(view->reasonAt(0, kPrompt + 1), -1);
  const int builds = view->imageBuilds();
  for (int t = 0; t < 50; ++t) window->selection()->setHoverToken(t * 150);
  window->selection()->setDecodeStep(10);
  QApplication::processEvents();
  EXPECT_EQ(view->imageBuilds(), builds);
  EXPECT_GE(test::distinctColors(test::grabImage(view)), 5);
  const QString png = test::tempDir(QStringLiteral("kv_long")) + QStringLiteral("/long.png");
  ASSERT_EQ(view->exportFigure(png, {}), QString());
  QString why;
  EXPECT_TRUE(test::isValidPng(png, &why)) << why.toStdString();
}

}  // namespace
}  // namespace attnscope::app
