// Head grid view (Qt offscreen, tiny real model): every (layer, head) thumbnail is the core
// thumbnail coloured on one shared scale and painted where the grid says; log/linear toggles the
// scale; click, arrows and Enter select and open heads; tooltips carry the head metrics; the
// figure export holds every row and the data export matches the analysis; empty and pending
// states say what is going on. Also prints how long the grid takes to draw 270 heads of a
// 512-token prompt (a measurement, never asserted).
#include <gtest/gtest.h>

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QImage>
#include <QSignalSpy>
#include <QTabWidget>
#include <QTest>
#include <cmath>
#include <cstdio>

#include "app_test_support.h"
#include "attention_map_view.h"
#include "attnscope/map_request.h"
#include "attnscope/model.h"
#include "attnscope/npy.h"
#include "attnscope/run.h"
#include "head_grid_canvas.h"
#include "head_grid_view.h"
#include "main_window.h"
#include "selection_model.h"
#include "session_controller.h"
#include "test_support.h"
#include "tiny_hf_model.h"
#include "token_labels.h"

namespace attnscope::app {
namespace {

using test::waitFor;

using Window = std::unique_ptr<MainWindow>;
Window makeWindow() {
  return test::makeWindow(/*adoptTinyModel=*/false);
}

Window windowWith(const SessionDataPtr& session) {
  return test::windowShowing(session, [](MainWindow& m) -> FigureView* { return m.headGrid(); });
}

using test::colorDistance;

TEST(HeadGrid, EveryThumbnailIsTheCoreMapOnOneSharedScale) {
  const SessionDataPtr session = test::tinySession();
  auto w = windowWith(session);
  HeadGridView* grid = w->headGrid();
  const TraceAnalysisPtr a = grid->analysis();
  ASSERT_TRUE(a && a->hasThumbnails());
  const Trace& trace = *session->traces[0];
  EXPECT_EQ(a->trace, session->traces[0]);
  ASSERT_EQ(a->nLayers, trace.n_layer());
  ASSERT_EQ(a->nHeads, trace.model.n_head);
  EXPECT_TRUE(grid->hasFigure());
  EXPECT_TRUE(grid->logScale());
  EXPECT_DOUBLE_EQ(grid->scaleHigh(), a->thumbnailMax);
  EXPECT_GT(grid->scaleLow(), 0.0);
  for (int l = 0; l < a->nLayers; ++l) {
    for (int h = 0; h < a->nHeads; ++h) {
      SCOPED_TRACE(testing::Message() << "L" << l << "H" << h);
      const PooledMap& m = a->thumbnail(l, h);
      // The analysis holds what core computes for this head...
      MapRequest r;
      r.layer = l;
      r.head = h;
      r.out_rows = r.out_cols = m.rows;
      const PooledMap want = compute_map(trace, r);
      ASSERT_EQ(m.values, want.values);
      // ...and the cached image colours each cell by its value on the shared scale.
      const QImage image = grid->thumbnailImage(l, h);
      ASSERT_EQ(image.width(), m.cols);
      ASSERT_EQ(image.height(), m.rows);
      for (int row = 0; row < m.rows; ++row) {
        for (int col = 0; col < m.cols; ++col) {
          const QRgb px = image.pixel(col, row);
          if (m.col_edges[col] > m.row_edges[row + 1] - 1) {
            EXPECT_EQ(qAlpha(px), 0) << "causally hidden bins are left transparent";
          } else {
            EXPECT_EQ(px | 0xff000000u, grid->colorFor(m.values[row * m.cols + col]).rgb())
                << row << "," << col;
          }
        }
      }
    }
  }
  // Heads with different maps get different images: the scale is shared, not per head.
  EXPECT_NE(grid->thumbnailImage(0, 0), grid->thumbnailImage(a->nLayers - 1, a->nHeads - 1));
}

TEST(HeadGrid, PaintsEachThumbnailInItsCell) {
  auto w = windowWith(test::tinySession());
  HeadGridView* grid = w->headGrid();
  HeadGridCanvas* canvas = grid->canvas();
  const QImage shot = canvas->viewport()->grab().toImage().convertToFormat(QImage::Format_RGB32);
  const TraceAnalysisPtr a = grid->analysis();
  ASSERT_TRUE(a);
  EXPECT_GE(canvas->geometry().cell, HeadGridGeometry::kMinCell);
  int checked = 0;
  for (int l = 0; l < a->nLayers; ++l) {
    for (int h = 0; h < a->nHeads; ++h) {
      const QRect r = canvas->cellRectInViewport(l, h);
      // Only cells wholly inside the grid's part of the viewport (below the fixed header band).
      const int gridTop = canvas->geometry().gridTop;
      if (!QRect(0, gridTop, shot.width(), shot.height() - gridTop).contains(r)) continue;
      const QImage image = grid->thumbnailImage(l, h);
      const PooledMap& m = a->thumbnail(l, h);
      // Bottom-left cell (last query row, first key) is always attended: compare its centre.
      const int row = m.rows - 1, col = 0;
      const int dpr = static_cast<int>(shot.devicePixelRatio());
      const int x = static_cast<int>((r.left() + (col + 0.5) * r.width() / m.cols) * dpr);
      const int y = static_cast<int>((r.top() + (row + 0.5) * r.height() / m.rows) * dpr);
      EXPECT_LE(colorDistance(shot.pixel(x, y), image.pixel(col, row)), 2) << "L" << l << "H" << h;
      ++checked;
    }
  }
  EXPECT_GT(checked, 0) << "no cell was visible";
  EXPECT_GE(test::distinctColors(test::grabImage(grid)), 20);
}

TEST(HeadGrid, LinearToggleRecolours) {
  auto w = windowWith(test::tinySession());
  HeadGridView* grid = w->headGrid();
  const QImage logImage = grid->thumbnailImage(1, 1);
  const double logLow = grid->scaleLow();
  grid->setLogScale(false);
  EXPECT_FALSE(grid->logScale());
  EXPECT_EQ(grid->scaleLow(), 0.0);
  EXPECT_GT(logLow, 0.0);
  const QImage linearImage = grid->thumbnailImage(1, 1);
  EXPECT_NE(logImage, linearImage);
  const PooledMap& m = grid->analysis()->thumbnail(1, 1);
  const int row = m.rows - 1;
  EXPECT_EQ(linearImage.pixel(0, row) | 0xff000000u, grid->colorFor(m.values[row * m.cols]).rgb());
  grid->setLogScale(true);
  EXPECT_EQ(grid->thumbnailImage(1, 1), logImage);
}

TEST(HeadGrid, ClickArrowsAndEnterSelectAndOpenHeads) {
  auto w = windowWith(test::tinySession());
  HeadGridView* grid = w->headGrid();
  HeadGridCanvas* canvas = grid->canvas();
  QSignalSpy activated(grid, &FigureView::headActivated);
  w->showView(grid);
  const QRect cell = canvas->cellRectInViewport(1, 2);
  ASSERT_FALSE(cell.isEmpty());
  QTest::mouseClick(canvas->viewport(), Qt::LeftButton, Qt::NoModifier, cell.center());
  EXPECT_EQ(w->selection()->layer(), 1);
  EXPECT_EQ(w->selection()->head(), 2);
  ASSERT_EQ(activated.size(), 1);
  EXPECT_EQ(activated.first().at(0).toInt(), 1);
  EXPECT_EQ(activated.first().at(1).toInt(), 2);
  // The main window opens the map for an activated head.
  EXPECT_EQ(w->tabs()->currentWidget(), static_cast<QWidget*>(w->attentionMap()));

  w->showView(grid);
  canvas->setFocus();
  QTest::keyClick(canvas, Qt::Key_Right);
  EXPECT_EQ(w->selection()->head(), 3);
  QTest::keyClick(canvas, Qt::Key_Right);  // stays at the last head
  EXPECT_EQ(w->selection()->head(), 3);
  QTest::keyClick(canvas, Qt::Key_Down);
  EXPECT_EQ(w->selection()->layer(), 2);
  QTest::keyClick(canvas, Qt::Key_Up);
  QTest::keyClick(canvas, Qt::Key_Left);
  EXPECT_EQ(w->selection()->layer(), 1);
  EXPECT_EQ(w->selection()->head(), 2);
  QTest::keyClick(canvas, Qt::Key_Return);
  ASSERT_EQ(activated.size(), 2);
  EXPECT_EQ(activated.last().at(0).toInt(), 1);
  EXPECT_EQ(activated.last().at(1).toInt(), 2);
  // Clicking the gap between cells selects nothing.
  const int before = w->selection()->head();
  const QRect a = canvas->cellRectInViewport(0, 0);
  int l = -1, h = -1;
  EXPECT_FALSE(canvas->headAt(QPoint(a.right() + 2, a.center().y()), &l, &h));
  EXPECT_EQ(w->selection()->head(), before);
}

TEST(HeadGrid, TooltipCarriesMetricsAndBadges) {
  auto w = windowWith(test::tinySession());
  HeadGridView* grid = w->headGrid();
  const TraceAnalysisPtr a = grid->analysis();
  ASSERT_TRUE(a && a->hasMetrics());
  ASSERT_EQ(a->badges.size(), static_cast<size_t>(a->nLayers * a->nHeads));
  for (int l = 0; l < a->nLayers; ++l) {
    for (int h = 0; h < a->nHeads; ++h) {
      const HeadMetrics& m = a->metrics(l, h);
      ASSERT_EQ(m.layer, l);
      ASSERT_EQ(m.head, h);
      const uint8_t badges = a->badges[static_cast<size_t>(l * a->nHeads + h)];
      EXPECT_EQ(badges, head_badges(m));
      const QString tip = grid->headTooltip(l, h);
      EXPECT_TRUE(tip.contains(QStringLiteral("Layer %1, head %2").arg(l).arg(h)))
          << tip.toStdString();
      EXPECT_TRUE(tip.contains(QString::number(m.entropy, 'f', 3))) << tip.toStdString();
      EXPECT_TRUE(tip.contains(QString::number(m.sink_mass, 'f', 3)));
      EXPECT_TRUE(tip.contains(QString::number(m.locality, 'f', 3)));
      EXPECT_TRUE(tip.contains(QString::number(m.retrieval_score, 'f', 3)));
      const int kv = a->trace->groups[static_cast<size_t>(l)].kv_of_query[static_cast<size_t>(h)];
      EXPECT_TRUE(tip.contains(QStringLiteral("KV head %1").arg(kv)));
      QStringList names;
      if (badges & kBadgeSink) names << QStringLiteral("sink");
      if (badges & kBadgeLocal) names << QStringLiteral("local");
      if (badges & kBadgeRetrieval) names << QStringLiteral("retrieval");
      const int at = tip.indexOf(QStringLiteral("badges: "));
      ASSERT_GE(at, 0);
      EXPECT_EQ(tip.mid(at + 8),
                names.isEmpty() ? QStringLiteral("none") : names.join(QStringLiteral(", ")));
    }
  }
  EXPECT_TRUE(grid->noteText().contains(QStringLiteral("3 layers")));
}

TEST(HeadGrid, ExportsTheWholeGridAndItsData) {
  auto w = windowWith(test::tinySession());
  HeadGridView* grid = w->headGrid();
  // A short window makes the grid scroll; the export still holds every row.
  w->resize(900, 420);
  QTest::qWait(50);
  const QString dir = test::tempDir(QStringLiteral("attnscope_head_grid"));
  for (const QString& ext : {QStringLiteral("png"), QStringLiteral("svg"), QStringLiteral("pdf")}) {
    const QString path = QDir(dir).filePath(QStringLiteral("grid.") + ext);
    PlotExportOptions o;
    o.width = 700;
    o.scale = 1.0;
    ASSERT_EQ(grid->exportFigure(path, o), QString());
    QString why;
    const bool ok = ext == QLatin1String("png")   ? test::isValidPng(path, &why)
                    : ext == QLatin1String("svg") ? test::isValidSvg(path, &why)
                                                  : test::isValidPdf(path, &why);
    EXPECT_TRUE(ok) << why.toStdString();
  }
  const TraceAnalysisPtr a = grid->analysis();
  const HeadGridGeometry g = HeadGridGeometry::compute(700, a->nLayers, a->nHeads, grid->font());
  QImage png(QDir(dir).filePath(QStringLiteral("grid.png")));
  EXPECT_EQ(png.width(), g.contentWidth);
  EXPECT_EQ(png.height(), g.contentHeight) << "every row, not just the visible ones";
  EXPECT_GT(g.contentHeight, grid->canvas()->viewport()->height());

  // Data: the head table and the thumbnails matrix.
  const QString csv = QDir(dir).filePath(QStringLiteral("heads.csv"));
  ASSERT_EQ(grid->exportData(csv), QString());
  QFile file(csv);
  ASSERT_TRUE(file.open(QIODevice::ReadOnly));
  const QStringList lines =
      QString::fromUtf8(file.readAll()).split(QLatin1Char('\n'), Qt::SkipEmptyParts);
  ASSERT_EQ(lines.size(), 1 + a->nLayers * a->nHeads);
  EXPECT_TRUE(lines[0].startsWith(
      QStringLiteral("layer,head,kv_head,entropy,sink_mass,locality,retrieval_score")));
  const QStringList row5 = lines[1 + 5].split(QLatin1Char(','));
  const HeadMetrics& m5 = a->headMetrics[5];
  EXPECT_EQ(row5[0].toInt(), m5.layer);
  EXPECT_EQ(row5[1].toInt(), m5.head);
  EXPECT_NEAR(row5[3].toDouble(), m5.entropy, 1e-6);
  EXPECT_NEAR(row5[4].toDouble(), m5.sink_mass, 1e-6);
  EXPECT_TRUE(QFileInfo::exists(QDir(dir).filePath(QStringLiteral("heads_thumbnails.csv"))));

  const QString npy = QDir(dir).filePath(QStringLiteral("heads.npy"));
  ASSERT_EQ(grid->exportData(npy), QString());
  const NpyArray<float> thumbs = read_npy_f32(std::filesystem::path(
      QDir(dir).filePath(QStringLiteral("heads_thumbnails.npy")).toStdString()));
  const PooledMap& first = a->thumbnails.front();
  ASSERT_EQ(thumbs.shape, (std::vector<int64_t>{a->nLayers * a->nHeads, first.rows * first.cols}));
  const int idx = 1 * a->nHeads + 2;  // L1 H2
  const PooledMap& m = a->thumbnail(1, 2);
  for (size_t i = 0; i < m.values.size(); ++i) {
    ASSERT_EQ(thumbs.data[static_cast<size_t>(idx) * m.values.size() + i], m.values[i]) << i;
  }
  const NpyArray<double> table = read_npy_f64(std::filesystem::path(npy.toStdString()));
  EXPECT_EQ(table.shape[0], a->nLayers * a->nHeads);
}

TEST(HeadGrid, EmptyAndPendingStatesSayWhatIsGoingOn) {
  auto w = makeWindow();
  HeadGridView* grid = w->headGrid();
  w->showView(grid);
  EXPECT_FALSE(grid->hasFigure());
  EXPECT_TRUE(grid->noteText().contains(QStringLiteral("Run a prompt")));
  EXPECT_FALSE(
      grid->exportFigure(
              QDir(test::tempDir(QStringLiteral("hg_empty"))).filePath(QStringLiteral("x.png")), {})
          .isEmpty());
  EXPECT_GT(test::inkFraction(test::grabImage(grid)), 0.001) << "the empty state shows a message";
  // Right after a session arrives the thumbnails are still being computed.
  w->controller()->adoptSession(test::tinySession());
  EXPECT_FALSE(grid->hasFigure());
  EXPECT_TRUE(grid->noteText().contains(QStringLiteral("Computing head thumbnails")))
      << grid->noteText().toStdString();
  test::grabImage(grid);  // paints the pending state
  ASSERT_TRUE(test::waitSettled(*w));
  EXPECT_TRUE(grid->hasFigure());
  // A one-token prompt still gives a (1x1-cell) grid.
  w->controller()->adoptSession(test::tinySession({}, 0, "a"));
  ASSERT_TRUE(test::waitSettled(*w));
  ASSERT_TRUE(grid->hasFigure());
  EXPECT_EQ(grid->analysis()->thumbnails.front().rows, w->controller()->session()->nTokens());
  EXPECT_FALSE(grid->thumbnailImage(0, 0).isNull());
}

TEST(HeadGrid, FollowsTheSelectedTrace) {
  const SessionDataPtr session = test::tinySession();
  auto w = windowWith(session);
  HeadGridView* grid = w->headGrid();
  EXPECT_EQ(grid->analysis()->trace, session->traces[0]);
  w->selection()->setTrace(2);
  EXPECT_EQ(grid->analysis()->trace, session->traces[2]);
  EXPECT_TRUE(grid->figureName().contains(QStringLiteral("kdgqa")));
}

// Measurement (printed, never asserted): 30 layers x 9 heads (the default model's shape) of a
// 512-token prompt, from the thumbnails' arrival to the end of the first paint of the grid.
TEST(HeadGrid, MeasuresDrawTimeFor270HeadsOf512Tokens) {
  const std::filesystem::path dir =
      attnscope::test::make_temp_dir("attnscope_grid_timing") / "tiny-30x9";
  attnscope::test::TinyHfSpec spec;
  spec.n_layer = 30;
  spec.n_head = 9;
  spec.n_head_kv = 3;
  spec.head_dim = 8;
  spec.n_embd = 72;
  attnscope::test::write_tiny_hf_model(dir, spec);
  const auto model = load_model(dir);
  std::string text;
  while (text.size() < 2000) text += "the lighthouse keeper counted ships until the fog lifted; ";
  std::vector<int32_t> tokens = model->tokenizer->encode(text, true);
  ASSERT_GE(tokens.size(), 512u);
  tokens.resize(512);
  RunOptions options;
  std::vector<Trace> traces = run_variants(model, tokens, {}, options);
  auto session = std::make_shared<SessionData>();
  for (Trace& t : traces) session->traces.push_back(std::make_shared<Trace>(std::move(t)));
  for (const std::string& t : session->baseline().token_texts)
    session->tokenLabels << tokenDisplayText(t);

  auto w = makeWindow();
  w->resize(1500, 940);
  w->showView(w->headGrid());
  w->controller()->adoptSession(session);
  ASSERT_TRUE(waitFor([&] { return w->headGrid()->hasFigure(); }));
  ASSERT_TRUE(waitFor([&] { return w->headGrid()->lastDrawMilliseconds() >= 0; }));
  const double ms = w->headGrid()->lastDrawMilliseconds();
  // One more full repaint, timed here, for the steady-state cost.
  QElapsedTimer clock;
  clock.start();
  w->headGrid()->canvas()->viewport()->repaint();
  const double repaintMs = clock.nsecsElapsed() / 1e6;
  // A scale change rebuilds every image (log -> linear -> log).
  clock.restart();
  w->headGrid()->setLogScale(false);
  w->headGrid()->setLogScale(true);
  std::printf("[ measure  ] head grid: two full image rebuilds (linear, log) in %.1f ms\n",
              clock.nsecsElapsed() / 1e6);
  std::printf(
      "[ measure  ] head grid, 30x9 heads, 512 tokens, %dx%d cells: %.1f ms from thumbnails to "
      "first paint (%.1f ms building images), %.1f ms per full repaint\n",
      w->headGrid()->analysis()->thumbnails.front().rows,
      w->headGrid()->analysis()->thumbnails.front().cols, ms,
      w->headGrid()->imageBuildMilliseconds(), repaintMs);
  EXPECT_EQ(w->headGrid()->analysis()->nLayers, 30);
  EXPECT_EQ(w->headGrid()->analysis()->nHeads, 9);
  ASSERT_TRUE(test::waitSettled(*w));
}

}  // namespace
}  // namespace attnscope::app
