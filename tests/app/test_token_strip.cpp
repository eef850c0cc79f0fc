// Token strip (Qt offscreen, tiny real model): every token is a chip in wrapped lines with the
// prompt/decode boundary marked, hover and click drive the shared selection, a selected query
// colours the chips by core's exact map row of the selected (trace, layer, head), the query and
// hovered chips are outlined, tooltips carry index/text/id/attention, the figure export holds every
// line and the data export matches the row; an 8000-token strip lays out and paints (timings
// printed, never asserted); the empty state shows a message.
#include <gtest/gtest.h>

#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QScrollBar>
#include <QTest>
#include <cmath>
#include <cstdio>

#include "app_test_support.h"
#include "attnscope/map_request.h"
#include "attnscope/npy.h"
#include "main_window.h"
#include "selection_model.h"
#include "session_controller.h"
#include "token_labels.h"
#include "token_strip.h"
#include "token_strip_canvas.h"

namespace attnscope::app {
namespace {

using test::waitFor;

using Window = std::unique_ptr<MainWindow>;

Window windowWith(const SessionDataPtr& session) {
  return test::windowShowing(session);
}

using test::colorDistance;

MapRequest rowRequest(int query, int layer, int head, int T) {
  MapRequest r;
  r.layer = layer;
  r.head = head;
  r.q_begin = query;
  r.q_end = query + 1;
  r.k_begin = 0;
  r.k_end = T;
  r.out_rows = 1;
  r.out_cols = T;
  return r;
}

TEST(TokenStrip, EveryTokenIsAChipInWrappedLinesWithTheDecodeBoundary) {
  const SessionDataPtr session = test::tinySession();
  auto w = windowWith(session);
  TokenStrip* strip = w->tokenStrip();
  const Trace& t = *session->traces[0];
  const TokenStripLayout& g = strip->canvas()->layoutData();
  ASSERT_EQ(static_cast<int>(g.chips.size()), t.n_tokens());
  const QFontMetrics fm(strip->canvas()->font());
  for (int i = 0; i < t.n_tokens(); ++i) {
    const QRect r = g.chips[static_cast<size_t>(i)];
    EXPECT_EQ(strip->tokenText(i), session->tokenLabels.at(i));
    EXPECT_GE(r.left(), 0);
    EXPECT_LE(r.right(), g.width);
    if (i < t.n_prompt) {
      EXPECT_GE(r.width(), std::min(fm.horizontalAdvance(strip->tokenText(i)),
                                    TokenStripLayout::kMaxChipWidth))
          << i;
    }
    if (i > 0) {
      const QRect p = g.chips[static_cast<size_t>(i) - 1];
      EXPECT_TRUE(r.top() > p.top() || (r.top() == p.top() && r.left() > p.right()))
          << "reading order at " << i;
      EXPECT_FALSE(r.intersects(p));
    }
  }
  ASSERT_LT(t.n_prompt, t.n_tokens());
  EXPECT_FALSE(g.boundary.isEmpty());
  const QRect first = g.chips[static_cast<size_t>(t.n_prompt)];
  EXPECT_TRUE(g.boundary.right() < first.left() || g.boundary.top() < first.top())
      << "the marker precedes the first generated token";
  EXPECT_TRUE(strip->headerText().contains(
      QStringLiteral("%1 prompt + %2 generated").arg(t.n_prompt).arg(t.n_tokens() - t.n_prompt)));
  EXPECT_GE(test::distinctColors(test::grabImage(strip)), 8);
  // Narrower: more lines.
  const int lines = static_cast<int>(g.lineTops.size());
  const TokenStripLayout narrow = TokenStripLayout::compute(*strip, 300, strip->canvas()->font());
  EXPECT_GT(static_cast<int>(narrow.lineTops.size()), lines);
}

TEST(TokenStrip, HoverAndClickDriveTheSharedSelection) {
  auto w = windowWith(test::tinySession());
  TokenStrip* strip = w->tokenStrip();
  QWidget* vp = strip->canvas()->viewport();
  const QRect r5 = strip->canvas()->chipRectInViewport(5);
  QTest::mouseMove(vp, r5.center());
  EXPECT_EQ(w->selection()->hoverToken(), 5);
  EXPECT_EQ(strip->canvas()->tokenAtViewport(r5.center()), 5);
  QEvent leave(QEvent::Leave);
  QCoreApplication::sendEvent(strip->canvas(), &leave);
  EXPECT_EQ(w->selection()->hoverToken(), -1);
  const QRect r7 = strip->canvas()->chipRectInViewport(7);
  QTest::mouseClick(vp, Qt::LeftButton, Qt::NoModifier, r7.center());
  EXPECT_EQ(w->selection()->queryToken(), 7);
  // Between chips there is no token.
  EXPECT_EQ(strip->canvas()->tokenAtViewport(QPoint(r7.right() + 2, r7.center().y())), -1);
}

TEST(TokenStrip, AQueryColoursTheChipsByCoresMapRow) {
  const SessionDataPtr session = test::tinySession();
  auto w = windowWith(session);
  TokenStrip* strip = w->tokenStrip();
  const int T = session->nTokens();
  for (const auto& [trace, layer, head, query] :
       {std::tuple{0, 1, 2, 30}, std::tuple{2, 2, 0, T - 1}}) {
    w->selection()->setTrace(trace);
    w->selection()->setLayerHead(layer, head);
    w->selection()->setQueryToken(query);
    ASSERT_TRUE(test::waitSettled(*w));
    ASSERT_EQ(strip->rowQuery(), query);
    EXPECT_EQ(strip->rowLayer(), layer);
    EXPECT_EQ(strip->rowHead(), head);
    const PooledMap want = compute_map(*session->traces[static_cast<size_t>(trace)],
                                       rowRequest(query, layer, head, T));
    ASSERT_EQ(strip->rowValues(), want.values);
    EXPECT_FLOAT_EQ(strip->rowMax(), *std::max_element(want.values.begin(), want.values.end()));
    // Chip backgrounds: the strongest key is the darkest; chips after the query stay plain.
    const QImage shot =
        strip->canvas()->viewport()->grab().toImage().convertToFormat(QImage::Format_RGB32);
    const int dpr = static_cast<int>(shot.devicePixelRatio());
    for (int j = 0; j < T; ++j) {
      const QRect r = strip->canvas()->chipRectInViewport(j);
      if (r.top() < strip->canvas()->layoutData().headerHeight || r.bottom() >= shot.height() / dpr)
        continue;
      const QRgb px = shot.pixel((r.left() + 2) * dpr, (r.top() + r.height() / 2) * dpr);
      if (j <= query) {
        EXPECT_LE(colorDistance(px, strip->chipColor(want.values[static_cast<size_t>(j)]).rgb()), 3)
            << "chip " << j;
      }
    }
    const QString tip = strip->tooltipFor(3);
    EXPECT_TRUE(tip.contains(QString::number(double(want.values[3]), 'g', 4))) << tip.toStdString();
  }
  // Clearing the query drops the colours.
  w->selection()->setQueryToken(-1);
  EXPECT_TRUE(strip->rowValues().empty());
  EXPECT_EQ(strip->rowQuery(), -1);
}

TEST(TokenStrip, QueryAndHoveredChipsAreOutlined) {
  auto w = windowWith(test::tinySession());
  TokenStrip* strip = w->tokenStrip();
  w->selection()->setQueryToken(4);
  w->selection()->setHoverToken(9);
  ASSERT_TRUE(test::waitSettled(*w));
  const QImage shot =
      strip->canvas()->viewport()->grab().toImage().convertToFormat(QImage::Format_RGB32);
  const int dpr = static_cast<int>(shot.devicePixelRatio());
  const QColor highlight = strip->palette().color(QPalette::Highlight);
  const QRect q = strip->canvas()->chipRectInViewport(4);
  EXPECT_LE(colorDistance(shot.pixel((q.left() - 2) * dpr, q.center().y() * dpr), highlight.rgb()),
            40);
  const QRect h = strip->canvas()->chipRectInViewport(9);
  const QRgb hoverPx = shot.pixel((h.left() - 1) * dpr, h.center().y() * dpr);
  const QRgb plainPx =
      shot.pixel((strip->canvas()->chipRectInViewport(10).left() - 1) * dpr, h.center().y() * dpr);
  EXPECT_NE(hoverPx, plainPx) << "the hovered chip has a heavier outline";
}

TEST(TokenStrip, TooltipsSayIndexTextIdAndWhetherGenerated) {
  const SessionDataPtr session = test::tinySession();
  auto w = windowWith(session);
  TokenStrip* strip = w->tokenStrip();
  const Trace& t = *session->traces[0];
  const QString tip = strip->tooltipFor(2);
  EXPECT_TRUE(tip.contains(QStringLiteral("#2"))) << tip.toStdString();
  EXPECT_TRUE(tip.contains(session->tokenLabels.at(2)));
  EXPECT_TRUE(tip.contains(QStringLiteral("id %1").arg(t.tokens[2])));
  EXPECT_TRUE(strip->tooltipFor(t.n_prompt + 1).contains(QStringLiteral("decode step 1")));
  w->selection()->setQueryToken(10);
  ASSERT_TRUE(test::waitSettled(*w));
  EXPECT_TRUE(strip->tooltipFor(20).contains(QStringLiteral("after query 10")));
  EXPECT_TRUE(strip->tooltipFor(-1).isEmpty());
}

TEST(TokenStrip, ExportsEveryLineAndTheRowData) {
  std::string text;
  while (text.size() < 1500) text += "the lighthouse keeper counted the ships. ";
  const SessionDataPtr session = test::tinySession({}, 4, text);
  auto w = windowWith(session);
  TokenStrip* strip = w->tokenStrip();
  w->selection()->setLayerHead(1, 1);
  w->selection()->setQueryToken(700);
  ASSERT_TRUE(test::waitSettled(*w));
  ASSERT_GT(strip->canvas()->verticalScrollBar()->maximum(), 0) << "the strip scrolls";
  const QString dir = test::tempDir(QStringLiteral("attnscope_strip_export"));
  for (const QString& ext : {QStringLiteral("png"), QStringLiteral("svg"), QStringLiteral("pdf")}) {
    const QString path = QDir(dir).filePath(QStringLiteral("strip.") + ext);
    PlotExportOptions o;
    o.width = 900;
    o.scale = 1;
    ASSERT_EQ(strip->exportFigure(path, o), QString());
    QString why;
    const bool ok = ext == QLatin1String("png")   ? test::isValidPng(path, &why)
                    : ext == QLatin1String("svg") ? test::isValidSvg(path, &why)
                                                  : test::isValidPdf(path, &why);
    EXPECT_TRUE(ok) << why.toStdString();
  }
  const TokenStripLayout g = TokenStripLayout::compute(*strip, 900, strip->font());
  EXPECT_EQ(QImage(QDir(dir).filePath(QStringLiteral("strip.png"))).height(), g.contentHeight)
      << "every line";
  EXPECT_TRUE(strip->figureName().contains(QStringLiteral("q700_L1_H1")))
      << strip->figureName().toStdString();

  const int T = session->nTokens();
  const PooledMap want = compute_map(*session->traces[0], rowRequest(700, 1, 1, T));
  const QString csv = QDir(dir).filePath(QStringLiteral("strip.csv"));
  ASSERT_EQ(strip->exportData(csv), QString());
  QFile file(csv);
  ASSERT_TRUE(file.open(QIODevice::ReadOnly));
  const QStringList lines =
      QString::fromUtf8(file.readAll()).split(QLatin1Char('\n'), Qt::SkipEmptyParts);
  ASSERT_GE(lines.size(), T + 1);  // a token's text may hold a newline inside quotes
  EXPECT_EQ(lines[0], QStringLiteral("position,token,display,id,is_decode,attention"));
  const QString npy = QDir(dir).filePath(QStringLiteral("strip.npy"));
  ASSERT_EQ(strip->exportData(npy), QString());
  const NpyArray<double> table = read_npy_f64(std::filesystem::path(npy.toStdString()));
  ASSERT_EQ(table.shape, (std::vector<int64_t>{T, 4}));  // position, id, is_decode, attention
  const Trace& t = *session->traces[0];
  for (int i = 0; i < T; ++i) {
    ASSERT_EQ(table.data[static_cast<size_t>(i) * 4 + 0], i);
    ASSERT_EQ(table.data[static_cast<size_t>(i) * 4 + 1], t.tokens[static_cast<size_t>(i)]);
    ASSERT_EQ(table.data[static_cast<size_t>(i) * 4 + 2], i >= t.n_prompt ? 1.0 : 0.0);
    ASSERT_FLOAT_EQ(static_cast<float>(table.data[static_cast<size_t>(i) * 4 + 3]),
                    want.values[static_cast<size_t>(i)])
        << i;
  }
}

// 8000 tokens (a hand-made trace: the strip reads tokens and texts only): layout and a full
// paint, timed and printed, never asserted.
TEST(TokenStrip, LaysOutAndPaints8000Tokens) {
  auto trace = std::make_shared<Trace>();
  const char* words[] = {"the", " light", "house", " keeper", " counted", " ships", ".", "\n"};
  for (int i = 0; i < 8000; ++i) {
    trace->tokens.push_back(i % 97);
    trace->token_texts.push_back(words[i % 8]);
  }
  trace->n_prompt = 7990;
  trace->model.n_layer = 1;
  trace->model.n_head = 1;
  auto session = std::make_shared<SessionData>();
  session->traces.push_back(trace);
  Window w = test::makeWindow(/*adoptTinyModel=*/false);
  TokenStrip* strip = w->tokenStrip();
  QElapsedTimer clock;
  clock.start();
  w->controller()->adoptSession(session);  // the analysis fails (no Q/K): the strip still shows
  const double adoptMs = clock.nsecsElapsed() / 1e6;
  ASSERT_EQ(strip->tokenCount(), 8000);
  clock.restart();
  strip->canvas()->relayout();
  const double layoutMs = clock.nsecsElapsed() / 1e6;
  clock.restart();
  const QImage top = strip->canvas()->viewport()->grab().toImage();  // grab() runs paintEvent
  const double paintMs = clock.nsecsElapsed() / 1e6;
  strip->canvas()->verticalScrollBar()->setValue(strip->canvas()->verticalScrollBar()->maximum());
  clock.restart();
  const QImage end = strip->canvas()->viewport()->grab().toImage();
  const double paintEndMs = clock.nsecsElapsed() / 1e6;
  EXPECT_NE(top, end);
  std::printf(
      "[ measure  ] token strip, 8000 tokens: session %.1f ms, layout %.1f ms, paint %.1f ms "
      "(top), %.1f ms (end)\n",
      adoptMs, layoutMs, paintMs, paintEndMs);
  EXPECT_EQ(static_cast<int>(strip->canvas()->layoutData().chips.size()), 8000);
  EXPECT_GT(strip->canvas()->layoutData().lineTops.size(), 8000u / 8 - 1)
      << "a line per newline token";
  EXPECT_GE(test::waitSettled(*w), true);
}

TEST(TokenStrip, EmptyStateShowsAMessage) {
  Window w = test::makeWindow(/*adoptTinyModel=*/false);
  TokenStrip* strip = w->tokenStrip();
  EXPECT_FALSE(strip->hasFigure());
  EXPECT_TRUE(strip->headerText().contains(QStringLiteral("Run a prompt")));
  EXPECT_GT(test::inkFraction(test::grabImage(strip)), 0.001);
  EXPECT_FALSE(
      strip
          ->exportData(
              QDir(test::tempDir(QStringLiteral("strip_empty"))).filePath(QStringLiteral("x.csv")))
          .isEmpty());
  // One token, no decode: one chip, no boundary.
  w->controller()->adoptSession(test::tinySession({}, 0, "a"));
  ASSERT_TRUE(test::waitSettled(*w));
  EXPECT_EQ(strip->tokenCount(), w->controller()->session()->nTokens());
  EXPECT_TRUE(strip->canvas()->layoutData().boundary.isEmpty());
}

}  // namespace
}  // namespace attnscope::app
