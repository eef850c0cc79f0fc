// Attention map view (Qt offscreen, tiny real model): it shows core's map of the selected
// (trace, layer, head) cell for cell, follows the selection, asks for the visible range at
// screen resolution when zoomed, shows long prompts sampled first and exact after, places every
// map in token coordinates, tooltips say p / masked / after the query, the mask overlay shades
// exactly the pairs the head's pattern hides, hover and query marks follow the selection, a click
// selects the query, exports are valid and hold the shown map, and empty / failed states show one
// message.
#include <gtest/gtest.h>
#include <qcustomplot.h>

#include <QApplication>
#include <QDir>
#include <QFile>
#include <QSignalSpy>
#include <QTest>
#include <cmath>

#include "app_test_support.h"
#include "attention_map_view.h"
#include "attnscope/map_request.h"
#include "attnscope/npy.h"
#include "attnscope/run.h"
#include "main_window.h"
#include "map_service.h"
#include "selection_model.h"
#include "session_controller.h"
#include "token_labels.h"

namespace attnscope::app {
namespace {

using test::waitFor;

using Window = std::unique_ptr<MainWindow>;

bool settled(MainWindow& w) {
  return test::waitSettled(w) && waitFor([&] { return w.attentionMap()->isSettled(); }) &&
         test::waitSettled(w);
}

Window windowWith(const SessionDataPtr& session) {
  Window w =
      test::windowShowing(session, [](MainWindow& m) -> FigureView* { return m.attentionMap(); });
  EXPECT_TRUE(settled(*w));  // and the map view's own refinement
  return w;
}

// The request the view should have made for what it shows (same ranges and resolution).
MapRequest requestFor(const PooledMap& m, int layer, int head) {
  MapRequest r;
  r.layer = layer;
  r.head = head;
  r.q_begin = m.q_begin;
  r.q_end = m.q_end;
  r.k_begin = m.k_begin;
  r.k_end = m.k_end;
  r.out_rows = m.rows;
  r.out_cols = m.cols;
  return r;
}

std::string longPrompt(int chars) {
  std::string text;
  while (static_cast<int>(text.size()) < chars)
    text += "the cat sat on the mat and the dog sat on the log. ";
  return text;
}

TEST(AttentionMap, ShowsTheCoreMapOfTheSelectedHeadCellForCell) {
  const SessionDataPtr session = test::tinySession();
  auto w = windowWith(session);
  AttentionMapView* view = w->attentionMap();
  w->selection()->setTrace(1);
  w->selection()->setLayerHead(2, 1);
  ASSERT_TRUE(settled(*w));
  const PooledMapPtr m = view->shownMap();
  ASSERT_TRUE(m);
  EXPECT_EQ(view->shownTrace(), 1);
  EXPECT_EQ(view->shownLayer(), 2);
  EXPECT_EQ(view->shownHead(), 1);
  const Trace& t = *session->traces[1];
  const int T = t.n_tokens();
  EXPECT_EQ(m->q_begin, 0);
  EXPECT_EQ(m->q_end, T);
  EXPECT_EQ(m->k_begin, 0);
  EXPECT_EQ(m->k_end, T);
  EXPECT_EQ(m->row_stride, 1) << "a short prompt is shown exactly";
  EXPECT_EQ(view->resolutionText(), QStringLiteral("exact: one cell per token"));
  const PooledMap want = compute_map(t, requestFor(*m, 2, 1));
  ASSERT_EQ(m->values, want.values);
  // The colour map holds those values (floored in log mode), NaN above the diagonal, and is
  // placed so that token i spans [i, i + 1) on both axes.
  QCPColorMapData* data = view->colorMap()->data();
  ASSERT_EQ(data->keySize(), T);
  ASSERT_EQ(data->valueSize(), T);
  EXPECT_DOUBLE_EQ(data->keyRange().lower, 0.5);
  EXPECT_DOUBLE_EQ(data->keyRange().upper, T - 0.5);
  const double lo = view->colorMap()->dataRange().lower;
  EXPECT_GT(lo, 0.0);
  for (int i = 0; i < T; ++i) {
    for (int j = 0; j < T; ++j) {
      const double cell = data->cell(j, i);
      if (j > i) {
        EXPECT_TRUE(std::isnan(cell)) << i << "," << j;
      } else {
        EXPECT_DOUBLE_EQ(cell, std::max<double>(want.values[static_cast<size_t>(i) * T + j], lo))
            << i << "," << j;
      }
    }
  }
  const QString title = view->titleText();
  EXPECT_TRUE(title.contains(session->traceName(1))) << title.toStdString();
  EXPECT_TRUE(title.contains(QStringLiteral("layer 2, head 1")));
  EXPECT_TRUE(title.contains(QStringLiteral("%1 tokens").arg(T)));
  const QImage shot = test::grabImage(view);
  EXPECT_GE(test::distinctColors(shot), 20);
  // Linear colours: same map, the range starts at 0.
  view->setLogScale(false);
  EXPECT_EQ(view->colorMap()->dataRange().lower, 0.0);
  EXPECT_DOUBLE_EQ(data->cell(0, T - 1), want.values[static_cast<size_t>(T - 1) * T]);
}

TEST(AttentionMap, FollowsLayerHeadTraceAndPooling) {
  const SessionDataPtr session = test::tinySession();
  auto w = windowWith(session);
  AttentionMapView* view = w->attentionMap();
  for (const auto& [trace, layer, head] :
       {std::tuple{0, 0, 0}, std::tuple{2, 1, 3}, std::tuple{1, 2, 2}}) {
    w->selection()->setTrace(trace);
    w->selection()->setLayerHead(layer, head);
    ASSERT_TRUE(settled(*w));
    ASSERT_TRUE(view->shownMap());
    EXPECT_EQ(view->shownLayer(), layer);
    EXPECT_EQ(view->shownHead(), head);
    EXPECT_EQ(view->shownTrace(), trace);
    EXPECT_EQ(view->shownMap()->values, compute_map(*session->traces[static_cast<size_t>(trace)],
                                                    requestFor(*view->shownMap(), layer, head))
                                            .values);
  }
  // Zoomed out of a pooled map, mean pooling asks for the mean.
  view->setMeanPooling(true);
  ASSERT_TRUE(settled(*w));
  MapRequest r = requestFor(*view->shownMap(), 2, 2);
  r.reduce = MapRequest::Mean;
  EXPECT_EQ(view->shownMap()->values, compute_map(*session->traces[1], r).values);
}

TEST(AttentionMap, ZoomAsksForTheVisibleRangeAndPlacesItInTokenCoordinates) {
  const SessionDataPtr session = test::tinySession({}, 0, longPrompt(1500));
  auto w = windowWith(session);
  AttentionMapView* view = w->attentionMap();
  const int T = session->nTokens();
  ASSERT_GT(T, 1000);
  PooledMapPtr whole = view->shownMap();
  ASSERT_TRUE(whole);
  EXPECT_GT(whole->row_stride, 1) << "more tokens than pixels: pooled";
  EXPECT_LE(whole->rows, view->plot()->axisRect()->height() + 1);
  EXPECT_TRUE(view->resolutionText().startsWith(QStringLiteral("max over")))
      << view->resolutionText().toStdString();
  // Zoom into queries 600..650 and keys 100..180.
  view->zoomTo(600, 650, 100, 180);
  ASSERT_TRUE(settled(*w));
  const PooledMapPtr zoomed = view->shownMap();
  ASSERT_TRUE(zoomed);
  EXPECT_NE(zoomed, whole);
  EXPECT_EQ(zoomed->q_begin, 600);
  EXPECT_EQ(zoomed->q_end, 650);
  EXPECT_EQ(zoomed->k_begin, 100);
  EXPECT_EQ(zoomed->k_end, 180);
  EXPECT_EQ(zoomed->row_stride, 1) << "zoomed in far enough: exact";
  EXPECT_EQ(zoomed->values, compute_map(*session->traces[0], requestFor(*zoomed, 0, 0)).values);
  const QCPColorMapData* data = view->colorMap()->data();
  EXPECT_DOUBLE_EQ(data->keyRange().lower, 100.5);
  EXPECT_DOUBLE_EQ(data->keyRange().upper, 179.5);
  EXPECT_DOUBLE_EQ(data->valueRange().lower, 600.5);
  // Reset shows the whole prompt again (from the cache).
  view->resetZoom();
  ASSERT_TRUE(settled(*w));
  EXPECT_EQ(view->shownMap()->q_begin, 0);
  EXPECT_EQ(view->shownMap()->q_end, T);
  EXPECT_DOUBLE_EQ(view->plot()->xAxis->range().upper, T);
}

TEST(AttentionMap, LongPromptsShowSampledRowsFirstThenTheExactMap) {
  const SessionDataPtr session = test::tinySession({}, 0, longPrompt(3000));
  const int T = session->nTokens();
  ASSERT_GT(T, AttentionMapView::kSampleFirstAbove);
  Window w = test::makeWindow(/*adoptTinyModel=*/false);
  w->showView(w->attentionMap());
  AttentionMapView* view = w->attentionMap();
  std::vector<bool> sampled;
  QObject::connect(view, &AttentionMapView::mapShown, view,
                   [&] { sampled.push_back(view->shownMap()->sampled); });
  w->controller()->adoptSession(session);
  ASSERT_TRUE(settled(*w));
  ASSERT_GE(sampled.size(), 2u);
  EXPECT_TRUE(sampled.front()) << "the fast map comes first";
  EXPECT_FALSE(sampled.back()) << "then the exact one";
  EXPECT_FALSE(view->shownMap()->sampled);
  EXPECT_FALSE(view->resolutionText().contains(QStringLiteral("sampled")));
  EXPECT_EQ(view->shownMap()->values,
            compute_map(*session->traces[0], requestFor(*view->shownMap(), 0, 0)).values);
}

TEST(AttentionMap, TooltipsSayProbabilityMaskedAndAfterTheQuery) {
  const SessionDataPtr session = test::tinySession();
  auto w = windowWith(session);
  AttentionMapView* view = w->attentionMap();
  w->selection()->setTrace(2);  // kdgqa + window w=8
  w->selection()->setLayerHead(1, 0);
  ASSERT_TRUE(settled(*w));
  const PooledMap& m = *view->shownMap();
  const int T = m.rows;
  const QString p = view->cellDescription(20, 15);
  EXPECT_TRUE(p.contains(QStringLiteral("query 20"))) << p.toStdString();
  EXPECT_TRUE(p.contains(QStringLiteral("key 15")));
  EXPECT_TRUE(p.contains(QStringLiteral("p = %1").arg(double(m.values[20 * T + 15]), 0, 'g', 4)))
      << p.toStdString();
  EXPECT_TRUE(p.contains(session->tokenLabels.at(20)));
  EXPECT_TRUE(view->cellDescription(5, 9).contains(QStringLiteral("after the query")));
  const QString masked = view->cellDescription(30, 2);  // 28 tokens back, outside the window
  EXPECT_TRUE(masked.contains(QStringLiteral("masked"))) << masked.toStdString();
  EXPECT_EQ(m.values[30 * T + 2], 0.f);
  EXPECT_TRUE(view->cellDescription(-1, 3).isEmpty());
}

TEST(AttentionMap, MaskOverlayShadesExactlyWhatThePatternHides) {
  const SessionDataPtr session = test::tinySession();
  auto w = windowWith(session);
  AttentionMapView* view = w->attentionMap();
  w->selection()->setTrace(2);
  w->selection()->setLayerHead(0, 1);
  ASSERT_TRUE(settled(*w));
  view->setMaskOverlayShown(true);
  EXPECT_TRUE(view->maskOverlay()->visible());
  const Trace& t = *session->traces[2];
  const HeadMask& mask = t.masks[0][1];
  ASSERT_FALSE(mask.all_blocks);
  QCPColorMapData* overlay = view->maskOverlay()->data();
  const int T = t.n_tokens();
  ASSERT_EQ(overlay->keySize(), T);
  int shaded = 0;
  for (int i = 0; i < t.n_prompt; ++i) {
    for (int j = 0; j <= i; ++j) {
      const bool hidden = !mask.visible(i, j);
      EXPECT_EQ(overlay->alpha(j, i) > 0, hidden) << i << "," << j;
      shaded += hidden;
    }
  }
  EXPECT_GT(shaded, 0);
  // The baseline hides nothing: no cell shaded, and the toolbar says so.
  w->selection()->setTrace(0);
  ASSERT_TRUE(settled(*w));
  for (int i = 0; i < T; ++i) {
    for (int j = 0; j <= i; ++j)
      ASSERT_EQ(view->maskOverlay()->data()->alpha(j, i), 0) << i << "," << j;
  }
  EXPECT_TRUE(view->resolutionText().contains(QStringLiteral("full causal")));
  view->setMaskOverlayShown(false);
  EXPECT_FALSE(view->maskOverlay()->visible());
}

TEST(AttentionMap, HoverCrosshairQueryRowAndClicks) {
  const SessionDataPtr session = test::tinySession();
  auto w = windowWith(session);
  AttentionMapView* view = w->attentionMap();
  w->selection()->setHoverToken(7);
  EXPECT_TRUE(view->hoverKeyLine()->visible());
  EXPECT_DOUBLE_EQ(view->hoverKeyLine()->point1->coords().x(), 7.5);
  EXPECT_DOUBLE_EQ(view->hoverQueryLine()->point1->coords().y(), 7.5);
  w->selection()->setHoverToken(-1);
  EXPECT_FALSE(view->hoverKeyLine()->visible());
  w->selection()->setQueryToken(12);
  EXPECT_TRUE(view->queryRowMark()->visible());
  EXPECT_DOUBLE_EQ(view->queryRowMark()->topLeft->coords().y(), 12.0);
  EXPECT_DOUBLE_EQ(view->queryRowMark()->bottomRight->coords().y(), 13.0);
  // A click on the map selects the query row under it.
  QCustomPlot* plot = view->plot();
  const QPoint at(static_cast<int>(plot->xAxis->coordToPixel(3.5)),
                  static_cast<int>(plot->yAxis->coordToPixel(20.5)));
  QTest::mouseClick(plot, Qt::LeftButton, Qt::NoModifier, at);
  EXPECT_EQ(w->selection()->queryToken(), 20);
  // Hovering a cell makes its query row's token the shared hover token (every view marks it);
  // leaving the map clears it.
  QTest::mouseMove(plot, QPoint(static_cast<int>(plot->xAxis->coordToPixel(2.5)),
                                static_cast<int>(plot->yAxis->coordToPixel(17.5))));
  ASSERT_TRUE(test::waitFor([&] { return w->selection()->hoverToken() == 17; }));
  QEvent leave(QEvent::Leave);
  QApplication::sendEvent(plot, &leave);
  EXPECT_EQ(w->selection()->hoverToken(), -1);
  // Double-click resets the zoom.
  view->zoomTo(5, 15, 0, 10);
  EXPECT_LT(plot->xAxis->range().size(), 11);
  QTest::mouseDClick(plot, Qt::LeftButton, Qt::NoModifier, at);
  EXPECT_DOUBLE_EQ(plot->xAxis->range().upper, session->nTokens());
}

TEST(AttentionMap, ExportsTheShownMapAsFiguresAndData) {
  const SessionDataPtr session = test::tinySession();
  auto w = windowWith(session);
  AttentionMapView* view = w->attentionMap();
  w->selection()->setLayerHead(1, 2);
  ASSERT_TRUE(settled(*w));
  const QString dir = test::tempDir(QStringLiteral("attnscope_map_export"));
  for (const QString& ext : {QStringLiteral("png"), QStringLiteral("svg"), QStringLiteral("pdf")}) {
    const QString path = QDir(dir).filePath(QStringLiteral("map.") + ext);
    ASSERT_EQ(view->exportFigure(path, PlotExportOptions{}), QString());
    QString why;
    const bool ok = ext == QLatin1String("png")   ? test::isValidPng(path, &why)
                    : ext == QLatin1String("svg") ? test::isValidSvg(path, &why)
                                                  : test::isValidPdf(path, &why);
    EXPECT_TRUE(ok) << why.toStdString();
  }
  EXPECT_EQ(view->figureName(), QStringLiteral("attention_L1_H2_baseline"));
  const PooledMap& m = *view->shownMap();
  const QString csv = QDir(dir).filePath(QStringLiteral("map.csv"));
  ASSERT_EQ(view->exportData(csv), QString());
  QFile file(csv);
  ASSERT_TRUE(file.open(QIODevice::ReadOnly));
  const QString text = QString::fromUtf8(file.readAll());
  const QStringList lines = text.split(QLatin1Char('\n'), Qt::SkipEmptyParts);
  ASSERT_EQ(lines.size(), m.rows + 1);
  EXPECT_TRUE(lines[0].contains(QStringLiteral("0:%1").arg(session->tokenLabels.at(0))))
      << lines[0].toStdString();
  const QString npy = QDir(dir).filePath(QStringLiteral("map.npy"));
  ASSERT_EQ(view->exportData(npy), QString());
  const NpyArray<float> a = read_npy_f32(std::filesystem::path(npy.toStdString()));
  EXPECT_EQ(a.shape, (std::vector<int64_t>{m.rows, m.cols}));
  EXPECT_EQ(a.data, m.values);
  // Zoomed out of a long prompt the labels are the bins' token ranges.
  w->controller()->adoptSession(test::tinySession({}, 0, longPrompt(1500)));
  ASSERT_TRUE(settled(*w));
  ASSERT_GT(view->shownMap()->row_stride, 1);
  const QString binned = QDir(dir).filePath(QStringLiteral("binned.json"));
  ASSERT_EQ(view->exportData(binned), QString());
  QFile json(binned);
  ASSERT_TRUE(json.open(QIODevice::ReadOnly));
  const QByteArray body = json.readAll();
  const PooledMap& b = *view->shownMap();
  EXPECT_TRUE(body.contains(QStringLiteral("\"0-%1\"").arg(b.row_edges[1] - 1).toUtf8()))
      << body.left(300).toStdString();
}

TEST(AttentionMap, EmptyFailedAndSimulatedRunsSayWhatTheyAre) {
  Window w = test::makeWindow(/*adoptTinyModel=*/false);
  AttentionMapView* view = w->attentionMap();
  w->showView(view);
  EXPECT_FALSE(view->hasFigure());
  EXPECT_TRUE(view->messageText().contains(QStringLiteral("Run a prompt")));
  EXPECT_GT(test::inkFraction(test::grabImage(view)), 0.001);
  // A trace without Q/K: one clear message, no figure.
  const LoadedModelPtr model = test::tinyModel();
  RunOptions options;
  options.store_qk = false;
  std::vector<Trace> traces =
      run_variants(model->model, model->model->tokenizer->encode("hello world", true), {}, options);
  auto session = std::make_shared<SessionData>();
  for (Trace& t : traces) session->traces.push_back(std::make_shared<Trace>(std::move(t)));
  w->controller()->adoptSession(session);
  ASSERT_TRUE(settled(*w));
  EXPECT_FALSE(view->hasFigure());
  EXPECT_TRUE(view->messageText().contains(QStringLiteral("Q")))
      << view->messageText().toStdString();
  // A simulated variant is labelled as such; a one-token prompt still draws.
  w->controller()->adoptSession(test::tinySession({"grouping=mqa"}, 0, "a"));
  w->selection()->setTrace(1);
  ASSERT_TRUE(settled(*w));
  ASSERT_TRUE(view->hasFigure());
  EXPECT_TRUE(view->titleText().contains(QStringLiteral("simulation")))
      << view->titleText().toStdString();
  EXPECT_EQ(view->shownMap()->rows, w->controller()->session()->nTokens());
}

}  // namespace
}  // namespace attnscope::app
