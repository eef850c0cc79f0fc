// Masks view (Qt offscreen, tiny real model): the drawn head mask is the trace's HeadMask rule
// (window, block top-k with decode-step masks), full-causal heads say so, the density heatmap
// holds trace.mask_density with the selected head marked and clickable, the notes name the
// pattern, its parameters and the layer note, the decode-step selector shows that step's mask row,
// exports are valid and hold the density and the mask, and empty states show one message.
#include <gtest/gtest.h>
#include <qcustomplot.h>

#include <QDir>
#include <QFile>
#include <QSpinBox>
#include <QTest>
#include <cmath>

#include "app_test_support.h"
#include "attnscope/npy.h"
#include "main_window.h"
#include "masks_view.h"
#include "selection_model.h"
#include "session_controller.h"

namespace attnscope::app {
namespace {

using Window = std::unique_ptr<MainWindow>;

Window windowWith(const SessionDataPtr& session) {
  return test::windowShowing(session, [](MainWindow& m) -> FigureView* { return m.masksView(); });
}

// Block top-k with small blocks, so a ~60-token prompt has several blocks and decode steps
// choose their own blocks (mask_steps).
const char* const kBlockTopk = "pattern=blocktopk:block=4,k=3,init=1,local=1";

TEST(MasksView, DrawsTheSelectedHeadsWindowMask) {
  const SessionDataPtr session = test::tinySession();
  auto w = windowWith(session);
  MasksView* view = w->masksView();
  w->selection()->setTrace(2);  // kdgqa + window w=8
  w->selection()->setLayerHead(1, 2);
  const Trace& t = *session->traces[2];
  const int T = t.n_tokens();
  ASSERT_LE(T, MasksView::kMaskCells);
  ASSERT_TRUE(view->hasFigure());
  const std::vector<float>& v = view->maskValues();
  ASSERT_EQ(v.size(), static_cast<size_t>(T) * T);
  const HeadMask& mask = t.masks[1][2];
  for (int i = 0; i < T; ++i) {
    for (int j = 0; j < T; ++j) {
      const float got = v[static_cast<size_t>(i) * T + j];
      if (j > i) {
        EXPECT_TRUE(std::isnan(got)) << i << "," << j;
      } else {
        // Decode rows read their step's mask: the same window rule here.
        EXPECT_EQ(got, mask.visible(i, j) ? 1.f : 0.f) << i << "," << j;
      }
      const double cell = view->maskMap()->data()->cell(j, i);
      EXPECT_TRUE(std::isnan(got) ? std::isnan(cell) : cell == got);
    }
  }
  EXPECT_EQ(v[static_cast<size_t>(20) * T + 20 - 8], 0.f) << "8 back is outside the window";
  EXPECT_EQ(v[static_cast<size_t>(20) * T + 20 - 7], 1.f);
  EXPECT_TRUE(view->notesText().contains(QStringLiteral("window(w=8)")))
      << view->notesText().toStdString();
  EXPECT_TRUE(view->notesText().contains(QStringLiteral("a window of the last 8 keys")));
  EXPECT_TRUE(view->titleText().contains(QStringLiteral("layer 1, head 2")));
  EXPECT_TRUE(view->maskDescription(20, 5).contains(QStringLiteral("masked")));
  EXPECT_TRUE(view->maskDescription(20, 19).contains(QStringLiteral("computed")));
  EXPECT_TRUE(view->maskDescription(3, 9).contains(QStringLiteral("after the query")));
  // The engine asks the pattern afresh at each decode step: the last step's row is shown.
  ASSERT_FALSE(t.mask_steps.empty());
  EXPECT_EQ(view->shownStep(), static_cast<int>(t.mask_steps.size()) - 1);
  EXPECT_TRUE(view->stepSpin()->isVisibleTo(view));
  const QImage shot = test::grabImage(view);
  EXPECT_GE(test::distinctColors(shot), 8);
}

TEST(MasksView, FullCausalHeadsSaySo) {
  const SessionDataPtr session = test::tinySession();
  auto w = windowWith(session);
  MasksView* view = w->masksView();
  w->selection()->setTrace(0);
  ASSERT_TRUE(view->hasFigure());
  EXPECT_TRUE(view->notesText().contains(QStringLiteral("full causal: every block visible")))
      << view->notesText().toStdString();
  const int T = session->nTokens();
  for (int i = 0; i < T; ++i) {
    for (int j = 0; j <= i; ++j) ASSERT_EQ(view->maskValues()[static_cast<size_t>(i) * T + j], 1.f);
  }
  // The density heatmap of the baseline is 1 everywhere.
  for (int l = 0; l < session->nLayers(); ++l) {
    for (int h = 0; h < session->nHeads(); ++h)
      EXPECT_DOUBLE_EQ(view->densityMap()->data()->cell(h, l), 1.0);
  }
}

TEST(MasksView, DensityHeatmapHoldsTheTraceAndSelectsHeads) {
  const SessionDataPtr session =
      test::tinySession({kBlockTopk}, 6, std::string(200, 'a') + test::tinyPrompt());
  auto w = windowWith(session);
  MasksView* view = w->masksView();
  w->selection()->setTrace(1);
  const Trace& t = *session->traces[1];
  QCPColorMapData* d = view->densityMap()->data();
  ASSERT_EQ(d->keySize(), t.model.n_head);
  ASSERT_EQ(d->valueSize(), t.model.n_layer);
  bool anyPartial = false;
  for (int l = 0; l < t.model.n_layer; ++l) {
    for (int h = 0; h < t.model.n_head; ++h) {
      EXPECT_DOUBLE_EQ(d->cell(h, l), t.mask_density[l][h]) << l << "," << h;
      anyPartial = anyPartial || t.mask_density[l][h] < 0.99f;
    }
  }
  EXPECT_TRUE(anyPartial) << "block top-k hides some blocks";
  EXPECT_TRUE(
      view->densityDescription(2, 1).contains(QString::number(t.mask_density[2][1], 'f', 3)));
  // A click on a density cell selects that head; the mark follows.
  view->plot()->replot();
  QCPAxisRect* rect = view->densityRect();
  const QPoint at(static_cast<int>(rect->axis(QCPAxis::atBottom)->coordToPixel(3)),
                  static_cast<int>(rect->axis(QCPAxis::atLeft)->coordToPixel(2)));
  QTest::mouseClick(view->plot(), Qt::LeftButton, Qt::NoModifier, at);
  EXPECT_EQ(w->selection()->layer(), 2);
  EXPECT_EQ(w->selection()->head(), 3);
  EXPECT_TRUE(view->titleText().contains(QStringLiteral("layer 2, head 3")));
}

TEST(MasksView, BlockMasksAndTheDecodeStepRow) {
  const SessionDataPtr session =
      test::tinySession({kBlockTopk}, 6, std::string(200, 'a') + test::tinyPrompt());
  auto w = windowWith(session);
  MasksView* view = w->masksView();
  w->selection()->setTrace(1);
  w->selection()->setLayerHead(1, 1);
  const Trace& t = *session->traces[1];
  ASSERT_FALSE(t.mask_steps.empty());
  const int T = t.n_tokens();
  ASSERT_LE(T, MasksView::kMaskCells);
  EXPECT_TRUE(view->stepSpin()->isVisibleTo(view));
  EXPECT_EQ(view->stepSpin()->maximum(), static_cast<int>(t.mask_steps.size()) - 1);
  // Prefill rows follow the stored blocks.
  const HeadMask& mask = t.masks[1][1];
  ASSERT_FALSE(mask.all_blocks);
  for (int i = 0; i < t.n_prompt; ++i) {
    for (int j = 0; j <= i; ++j) {
      ASSERT_EQ(view->maskValues()[static_cast<size_t>(i) * T + j], mask.visible(i, j) ? 1.f : 0.f)
          << i << "," << j;
    }
  }
  EXPECT_TRUE(view->notesText().contains(QStringLiteral("causal blocks of 4 tokens computed")))
      << view->notesText().toStdString();
  // The selected decode step's row: step_mask_for_row of that step, position n_prompt + step.
  for (const int step : {0, 3, -1}) {
    w->selection()->setDecodeStep(step);
    const int s = step < 0 ? static_cast<int>(t.mask_steps.size()) - 1 : step;
    EXPECT_EQ(view->shownStep(), s);
    const int pos = t.n_prompt + s;
    const HeadMask row = step_mask_for_row(t.mask_steps[static_cast<size_t>(s)][1][1], pos);
    ASSERT_EQ(view->stepValues().size(), static_cast<size_t>(T));
    for (int j = 0; j < T; ++j) {
      const float v = view->stepValues()[static_cast<size_t>(j)];
      if (j > pos) {
        EXPECT_TRUE(std::isnan(v));
      } else {
        EXPECT_EQ(v, row.visible(pos, j) ? 1.f : 0.f) << "step " << s << " key " << j;
      }
      // The head mask's decode row reads the same step mask.
      if (j <= pos) {
        EXPECT_EQ(view->maskValues()[static_cast<size_t>(pos) * T + j], v);
      }
    }
  }
  view->stepSpin()->setValue(2);
  EXPECT_EQ(w->selection()->decodeStep(), 2);
  EXPECT_EQ(view->shownStep(), 2);
}

TEST(MasksView, ExportsFiguresDensityAndMask) {
  const SessionDataPtr session = test::tinySession();
  auto w = windowWith(session);
  MasksView* view = w->masksView();
  w->selection()->setTrace(2);
  w->selection()->setLayerHead(0, 3);
  const QString dir = test::tempDir(QStringLiteral("attnscope_masks_export"));
  for (const QString& ext : {QStringLiteral("png"), QStringLiteral("svg"), QStringLiteral("pdf")}) {
    const QString path = QDir(dir).filePath(QStringLiteral("masks.") + ext);
    ASSERT_EQ(view->exportFigure(path, PlotExportOptions{}), QString());
    QString why;
    const bool ok = ext == QLatin1String("png")   ? test::isValidPng(path, &why)
                    : ext == QLatin1String("svg") ? test::isValidSvg(path, &why)
                                                  : test::isValidPdf(path, &why);
    EXPECT_TRUE(ok) << why.toStdString();
  }
  const Trace& t = *session->traces[2];
  const QString npy = QDir(dir).filePath(QStringLiteral("masks.npy"));
  ASSERT_EQ(view->exportData(npy), QString());
  const NpyArray<float> density = read_npy_f32(std::filesystem::path(npy.toStdString()));
  ASSERT_EQ(density.shape, (std::vector<int64_t>{t.model.n_layer, t.model.n_head}));
  for (int l = 0; l < t.model.n_layer; ++l) {
    for (int h = 0; h < t.model.n_head; ++h)
      EXPECT_EQ(density.data[static_cast<size_t>(l * t.model.n_head + h)], t.mask_density[l][h]);
  }
  const NpyArray<float> mask = read_npy_f32(std::filesystem::path(
      QDir(dir).filePath(QStringLiteral("masks_mask_L0_H3.npy")).toStdString()));
  const int T = t.n_tokens();
  ASSERT_EQ(mask.shape, (std::vector<int64_t>{T, T}));
  EXPECT_EQ(mask.data[static_cast<size_t>(30) * T + 30], 1.f);
  EXPECT_EQ(mask.data[static_cast<size_t>(30) * T + 2], t.masks[0][3].visible(30, 2) ? 1.f : 0.f);
  const QString csv = QDir(dir).filePath(QStringLiteral("masks.csv"));
  ASSERT_EQ(view->exportData(csv), QString());
  QFile file(csv);
  ASSERT_TRUE(file.open(QIODevice::ReadOnly));
  const QStringList lines =
      QString::fromUtf8(file.readAll()).split(QLatin1Char('\n'), Qt::SkipEmptyParts);
  ASSERT_EQ(lines.size(), t.model.n_layer + 1);
  EXPECT_TRUE(lines[0].endsWith(QStringLiteral("H%1").arg(t.model.n_head - 1)));
  EXPECT_TRUE(lines[1].startsWith(QStringLiteral("L0,")));
}

TEST(MasksView, EmptyStateShowsOneMessage) {
  Window w = test::makeWindow(/*adoptTinyModel=*/false);
  MasksView* view = w->masksView();
  w->showView(view);
  EXPECT_FALSE(view->hasFigure());
  EXPECT_TRUE(view->messageText().contains(QStringLiteral("Run a prompt")));
  EXPECT_FALSE(
      view->exportData(
              QDir(test::tempDir(QStringLiteral("masks_empty"))).filePath(QStringLiteral("x.csv")))
          .isEmpty());
  EXPECT_GT(test::inkFraction(test::grabImage(view)), 0.001);
  // A one-token prompt without decode steps still draws.
  w->controller()->adoptSession(test::tinySession({"pattern=window:w=8"}, 0, "a"));
  ASSERT_TRUE(test::waitSettled(*w));
  w->selection()->setTrace(1);
  EXPECT_TRUE(view->hasFigure());
  EXPECT_EQ(view->maskValues().size(), static_cast<size_t>(w->controller()->session()->nTokens() *
                                                           w->controller()->session()->nTokens()));
}

}  // namespace
}  // namespace attnscope::app
