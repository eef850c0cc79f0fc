// GUI tests (label "app", Qt offscreen): the main window loads the real default model on its
// worker thread, runs the default prompt, shows T x T attention maps that match core's
// RecordedCapture, switches heads, exports PNG/SVG/PDF atomically, reports bad input through
// one error signal while keeping the previous model and results, and cancels runs.
#include <gtest/gtest.h>
#include <qcustomplot.h>

#include <QApplication>
#include <QByteArray>
#include <QFile>
#include <QImage>
#include <QPlainTextEdit>
#include <QSignalSpy>
#include <QSpinBox>
#include <QStandardPaths>
#include <QSvgRenderer>
#include <QTest>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "attnscope/error.h"
#include "attnscope/model.h"
#include "error_presenter.h"
#include "heatmap_data.h"
#include "heatmap_view.h"
#include "main_window.h"
#include "model_summary_panel.h"
#include "session_controller.h"
#include "test_support.h"
#include "token_labels.h"

namespace attnscope::app {
namespace {

// Generous waits: the shared 2-core test machine may be busy; a healthy run takes ~1 s.
constexpr int kLoadTimeoutMs = 180000;
constexpr int kRunTimeoutMs = 180000;
// Softmax rows sum to 1; float accumulation over <= 100 terms stays well inside this.
constexpr double kRowSumTolerance = 1e-4;

// QApplication for the whole binary, offscreen unless the caller chose a platform.
class QtEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) qputenv("QT_QPA_PLATFORM", "offscreen");
    QStandardPaths::setTestModeEnabled(true);  // QSettings never touch the user's config
    static int argc = 1;
    static char name[] = "attnscope_app_tests";
    static char* argv[] = {name, nullptr};
    m_app = new QApplication(argc, argv);
    QApplication::setOrganizationName(QStringLiteral("attnscope-tests"));
    QApplication::setApplicationName(QStringLiteral("attnscope-tests"));
  }
  void TearDown() override {
    delete m_app;
    m_app = nullptr;
  }

 private:
  QApplication* m_app = nullptr;
};
const ::testing::Environment* const kQtEnvironment =
    ::testing::AddGlobalTestEnvironment(new QtEnvironment);

template <typename Pred>
bool waitFor(Pred pred, int timeoutMs) {
  return QTest::qWaitFor(pred, timeoutMs);
}

QString defaultModelPath() {
  return QString::fromStdString(attnscope::test::default_model().string());
}

// The default model loaded once through core, for tests that are not about loading.
LoadedModelPtr sharedModel() {
  static LoadedModelPtr model = [] {
    auto loaded = std::make_shared<LoadedModel>();
    loaded->model = attnscope::load_model(attnscope::test::default_model());
    loaded->path = defaultModelPath();
    return LoadedModelPtr(loaded);
  }();
  return model;
}

// A window whose errors go to the signal only (no dialogs), sized like a laptop screen.
struct Window {
  MainWindow window{QStringLiteral("cpu"), /*restoreSettings=*/false};
  QSignalSpy errors{window.controller(), &SessionController::errorOccurred};
  Window() {
    window.errorPresenter()->setEnabled(false);
    window.resize(1400, 880);
    window.show();
  }
  SessionController& controller() { return *window.controller(); }
  QString lastError() const {
    return errors.isEmpty() ? QString() : errors.last().at(1).toString();
  }
};

// Runs `prompt` and waits for its map (layer/head as currently selected).
::testing::AssertionResult runAndWait(Window& w, const QString& prompt) {
  QSignalSpy maps(w.window.controller(), &SessionController::heatmapChanged);
  const qsizetype errorsBefore = w.errors.count();
  w.controller().runPrompt(prompt);
  const bool done = waitFor(
      [&] {
        return w.errors.count() > errorsBefore ||
               (!maps.isEmpty() && w.controller().heatmap() != nullptr &&
                !w.controller().isRunning());
      },
      kRunTimeoutMs);
  if (!done) return ::testing::AssertionFailure() << "run did not finish in time";
  if (w.errors.count() > errorsBefore) {
    return ::testing::AssertionFailure() << "run failed: " << w.lastError().toStdString();
  }
  return ::testing::AssertionSuccess();
}

// Cell values of the plotted colour map: [rows = query cells][cols = key cells].
std::vector<double> plottedCells(HeatmapView& view, int* cellsOut) {
  QCPColorMapData* data = view.colorMap()->data();
  const int keys = data->keySize();
  const int values = data->valueSize();
  *cellsOut = keys == values ? keys : -1;
  std::vector<double> cells(static_cast<size_t>(keys) * values);
  for (int row = 0; row < values; ++row) {
    for (int col = 0; col < keys; ++col) cells[size_t(row) * keys + col] = data->cell(col, row);
  }
  return cells;
}

TEST(MainWindow, LoadsRunsShowsAndExportsHeatmaps) {
  Window w;
  QSignalSpy models(w.window.controller(), &SessionController::modelChanged);
  w.window.openModel(defaultModelPath());
  ASSERT_TRUE(waitFor([&] { return !models.isEmpty() || !w.errors.isEmpty(); }, kLoadTimeoutMs))
      << "model load timed out";
  ASSERT_TRUE(w.errors.isEmpty()) << w.lastError().toStdString();

  // Hyper-parameters of SmolLM2-135M as published on its model card.
  ModelSummaryPanel& summary = *w.window.summaryPanel();
  EXPECT_EQ(summary.fieldText(QStringLiteral("Layers")), QStringLiteral("30"));
  EXPECT_EQ(summary.fieldText(QStringLiteral("Heads")), QStringLiteral("9"));
  EXPECT_EQ(summary.fieldText(QStringLiteral("KV heads")), QStringLiteral("3 (group of 3)"));
  EXPECT_EQ(summary.fieldText(QStringLiteral("Head dim")), QStringLiteral("64"));
  EXPECT_EQ(summary.fieldText(QStringLiteral("Path")), defaultModelPath());
  EXPECT_EQ(w.window.layerSpin()->maximum(), 29);
  EXPECT_EQ(w.window.headSpin()->maximum(), 8);
  EXPECT_EQ(w.window.promptEditor()->toPlainText(), defaultPrompt());
  EXPECT_FALSE(defaultPrompt().isEmpty());

  // Linear colours so the plotted cells are the probabilities themselves.
  HeatmapView& view = *w.window.heatmapView();
  view.setLogScale(false);
  w.window.selectLayerHead(3, 0);
  ASSERT_TRUE(w.window.runAction()->isEnabled());
  QSignalSpy maps(w.window.controller(), &SessionController::heatmapChanged);
  w.window.runAction()->trigger();
  ASSERT_TRUE(
      waitFor([&] { return w.controller().heatmap() || !w.errors.isEmpty(); }, kRunTimeoutMs));
  ASSERT_TRUE(w.errors.isEmpty()) << w.lastError().toStdString();

  const RunResultPtr run = w.controller().result();
  ASSERT_TRUE(run);
  const int T = run->nTokens();
  const std::vector<int32_t> expectedIds =
      sharedModel()->model->tokenizer->encode(defaultPrompt().toStdString(), true);
  ASSERT_EQ(T, static_cast<int>(expectedIds.size()));
  ASSERT_GT(T, 20);
  ASSERT_LE(T, kMaxHeatmapCells);  // one cell per token

  int cells = 0;
  const std::vector<double> plotted = plottedCells(view, &cells);
  ASSERT_EQ(cells, T) << "expected a T x T colour map, T = " << T;
  // The adaptor must neither transpose nor alter core's matrix: compare every cell.
  const std::vector<float> probs = run->capture->attention_probs(3, 0);
  double worst = 0, total = 0;
  int worstRow = -1;
  for (int q = 0; q < T; ++q) {
    double rowSum = 0;
    for (int k = 0; k < T; ++k) {
      const double cell = plotted[size_t(q) * T + k];
      if (k > q) {
        EXPECT_TRUE(std::isnan(cell)) << "future key not masked at q=" << q << " k=" << k;
        continue;
      }
      EXPECT_EQ(cell, double(probs[size_t(q) * T + k])) << "q=" << q << " k=" << k;
      rowSum += cell;
    }
    total += rowSum;
    if (std::abs(rowSum - 1.0) > worst) worst = std::abs(rowSum - 1.0), worstRow = q;
  }
  EXPECT_LT(worst, kRowSumTolerance) << "row " << worstRow << " of layer 3 head 0, T=" << T;
  EXPECT_GT(total, 0.0);
  EXPECT_TRUE(view.cellDescription(5, 2).contains(QStringLiteral("query 5")));
  EXPECT_TRUE(view.cellDescription(5, 2).contains(run->tokenLabels.at(2)));
  EXPECT_TRUE(view.cellDescription(2, 5).contains(QStringLiteral("masked")));
  EXPECT_TRUE(view.cellDescription(T, 0).isEmpty());

  // Another head through the spin box: a different map of the same size.
  maps.clear();
  w.window.headSpin()->setValue(1);
  ASSERT_TRUE(
      waitFor([&] { return w.controller().heatmap() && w.controller().heatmap()->head == 1; },
              kRunTimeoutMs));
  int cells1 = 0;
  const std::vector<double> plotted1 = plottedCells(view, &cells1);
  ASSERT_EQ(cells1, T);
  double maxDiff = 0;
  for (int q = 0; q < T; ++q) {
    for (int k = 0; k <= q; ++k) {
      maxDiff =
          std::max(maxDiff, std::abs(plotted1[size_t(q) * T + k] - plotted[size_t(q) * T + k]));
    }
  }
  EXPECT_GT(maxDiff, 1e-3) << "head 1 shows the same map as head 0";

  // Exports: each a valid file of its format.
  const auto dir = attnscope::test::make_temp_dir("attnscope-gui-export");
  const QString png = QString::fromStdString((dir / "map.png").string());
  const QString svg = QString::fromStdString((dir / "map.svg").string());
  const QString pdf = QString::fromStdString((dir / "map.pdf").string());
  PlotExportOptions pngOptions;
  pngOptions.width = 600;
  pngOptions.height = 500;
  pngOptions.scale = 2.0;
  ASSERT_EQ(view.exportTo(png, pngOptions), QString());
  const QImage image(png);
  ASSERT_FALSE(image.isNull());
  EXPECT_EQ(image.width(), 1200);
  EXPECT_EQ(image.height(), 1000);
  ASSERT_EQ(view.exportTo(svg), QString());
  QSvgRenderer renderer(svg);
  EXPECT_TRUE(renderer.isValid());
  ASSERT_EQ(view.exportTo(pdf), QString());
  QFile pdfFile(pdf);
  ASSERT_TRUE(pdfFile.open(QIODevice::ReadOnly));
  const QByteArray pdfBytes = pdfFile.readAll();
  EXPECT_TRUE(pdfBytes.startsWith("%PDF-"));
  EXPECT_TRUE(pdfBytes.trimmed().endsWith("%%EOF"));
  // Nothing but the three files: temporary files were renamed, not left behind.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir),
                          std::filesystem::directory_iterator()),
            3);
}

TEST(MainWindow, CorruptModelKeepsPreviousModelAndResults) {
  Window w;
  w.controller().adoptModel(sharedModel());
  ASSERT_TRUE(runAndWait(w, QStringLiteral("Hello there, general Kenobi.")));
  const RunResultPtr result = w.controller().result();
  const HeatmapDataPtr map = w.controller().heatmap();

  const auto dir = attnscope::test::make_temp_dir("attnscope-gui-corrupt");
  const auto bad = dir / "broken.gguf";
  {
    std::ofstream out(bad, std::ios::binary);
    out << "GGUF";  // right magic, then a truncated header
    out.put(3).put(0).put(0).put(0);
    out << "garbage";
  }
  w.window.openModel(QString::fromStdString(bad.string()));
  ASSERT_TRUE(waitFor([&] { return !w.errors.isEmpty(); }, kLoadTimeoutMs));
  EXPECT_EQ(w.errors.count(), 1);
  EXPECT_TRUE(w.lastError().contains(QStringLiteral("broken.gguf"))) << w.lastError().toStdString();
  EXPECT_FALSE(w.controller().isLoading());
  EXPECT_EQ(w.controller().model(), sharedModel());
  EXPECT_EQ(w.controller().result(), result);
  EXPECT_EQ(w.controller().heatmap(), map);
  EXPECT_EQ(w.window.heatmapView()->heatmap(), map);
  EXPECT_EQ(w.window.summaryPanel()->fieldText(QStringLiteral("Path")), defaultModelPath());

  // A path that does not exist at all fails the same way.
  w.window.openModel(QString::fromStdString((dir / "missing.gguf").string()));
  ASSERT_TRUE(waitFor([&] { return w.errors.count() == 2; }, kLoadTimeoutMs));
  EXPECT_EQ(w.controller().model(), sharedModel());
}

TEST(MainWindow, BadPromptsReportOneErrorAndKeepResults) {
  Window w;
  w.controller().adoptModel(sharedModel());
  ASSERT_TRUE(runAndWait(w, QStringLiteral("A short prompt.")));
  const RunResultPtr result = w.controller().result();

  // Invalid UTF-8 (a lone continuation byte and an overlong encoding).
  w.controller().runPromptUtf8(std::string("ok \x80 \xC0\xAF", 8));
  ASSERT_TRUE(waitFor([&] { return w.errors.count() == 1; }, kRunTimeoutMs));
  EXPECT_TRUE(w.lastError().contains(QStringLiteral("UTF-8"))) << w.lastError().toStdString();
  EXPECT_FALSE(w.controller().isRunning());
  EXPECT_EQ(w.controller().result(), result);

  // Longer than the model's 8192-token context: every " the" is one token.
  QString longPrompt;
  for (int i = 0; i < 9000; ++i) longPrompt += QStringLiteral(" the");
  w.controller().runPrompt(longPrompt);
  ASSERT_TRUE(waitFor([&] { return w.errors.count() == 2; }, kRunTimeoutMs));
  EXPECT_TRUE(w.lastError().contains(QStringLiteral("context"))) << w.lastError().toStdString();
  EXPECT_EQ(w.controller().result(), result);

  // Out-of-range head selection.
  w.controller().selectHead(0, 9);
  EXPECT_EQ(w.errors.count(), 3);
  EXPECT_EQ(w.controller().head(), 0);
}

TEST(MainWindow, CancelStopsRunBetweenLayers) {
  Window w;
  w.controller().adoptModel(sharedModel());
  QSignalSpy progress(w.window.controller(), &SessionController::runProgress);
  QSignalSpy cancelled(w.window.controller(), &SessionController::runCancelled);
  QSignalSpy results(w.window.controller(), &SessionController::resultChanged);
  QString prompt;
  for (int i = 0; i < 8; ++i) prompt += defaultPrompt() + QLatin1Char(' ');
  w.window.promptEditor()->setPlainText(prompt);
  w.window.runCurrentPrompt();
  ASSERT_TRUE(w.controller().isRunning());
  EXPECT_FALSE(w.window.runAction()->isEnabled());
  EXPECT_TRUE(w.window.cancelAction()->isEnabled());
  // Cancel once the first layer is done, so the forward pass itself has to stop.
  ASSERT_TRUE(waitFor(
      [&] {
        for (const auto& args : progress) {
          if (args.at(0).toInt() >= 1) return true;
        }
        return !w.errors.isEmpty();
      },
      kRunTimeoutMs));
  ASSERT_TRUE(w.errors.isEmpty()) << w.lastError().toStdString();
  w.window.cancelAction()->trigger();
  ASSERT_TRUE(waitFor([&] { return !cancelled.isEmpty() || !results.isEmpty(); }, kRunTimeoutMs));
  EXPECT_EQ(cancelled.count(), 1);
  EXPECT_TRUE(results.isEmpty()) << "a cancelled run must not deliver a result";
  EXPECT_FALSE(w.controller().isRunning());
  EXPECT_EQ(w.controller().result(), nullptr);
  EXPECT_TRUE(w.window.runAction()->isEnabled());
  EXPECT_TRUE(w.errors.isEmpty());
}

TEST(MainWindow, FailedExportLeavesExistingFileIntact) {
  Window w;
  w.controller().adoptModel(sharedModel());
  HeatmapView& view = *w.window.heatmapView();
  const auto dir = attnscope::test::make_temp_dir("attnscope-gui-atomic");
  const auto keep = dir / "keep.png";
  { std::ofstream(keep, std::ios::binary) << "previous contents"; }
  const QString keepPath = QString::fromStdString(keep.string());
  // No map yet: refused, file untouched.
  EXPECT_FALSE(view.exportTo(keepPath).isEmpty());
  ASSERT_TRUE(runAndWait(w, QStringLiteral("One two three four.")));
  // Unknown format and a missing directory are refused with a message naming the path.
  const QString txt = QString::fromStdString((dir / "map.txt").string());
  EXPECT_TRUE(view.exportTo(txt).contains(txt));
  EXPECT_FALSE(std::filesystem::exists(dir / "map.txt"));
  const QString missing = QString::fromStdString((dir / "no" / "map.png").string());
  EXPECT_TRUE(view.exportTo(missing).contains(missing));
  std::ifstream in(keep, std::ios::binary);
  const std::string contents((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  EXPECT_EQ(contents, "previous contents");
  // A successful export replaces it.
  ASSERT_EQ(view.exportTo(keepPath), QString());
  EXPECT_FALSE(QImage(keepPath).isNull());
}

TEST(HeatmapData, PoolsBlocksByMaximumAndMasksFutureKeys) {
  // T = 5 with at most 2 cells per axis -> blocks of 3 tokens: cells {0,1,2} and {3,4}.
  const int T = 5;
  std::vector<float> probs(T * T, 0.0f);
  const float rows[5][5] = {{1.0f, 0, 0, 0, 0},
                            {0.3f, 0.7f, 0, 0, 0},
                            {0.2f, 0.5f, 0.3f, 0, 0},
                            {0.1f, 0.1f, 0.1f, 0.7f, 0},
                            {0.05f, 0.6f, 0.05f, 0.2f, 0.1f}};
  for (int q = 0; q < T; ++q) {
    for (int k = 0; k < T; ++k) probs[q * T + k] = rows[q][k];
  }
  const HeatmapDataPtr map = makeHeatmap(nullptr, 2, 4, probs, T, 2);
  ASSERT_EQ(map->blockSize, 3);
  ASSERT_EQ(map->cells, 2);
  EXPECT_FLOAT_EQ(map->at(0, 0), 1.0f);    // max over rows 0..2, keys 0..2 (causal part)
  EXPECT_TRUE(std::isnan(map->at(0, 1)));  // keys 3..4 are after every query 0..2
  EXPECT_FLOAT_EQ(map->at(1, 0), 0.6f);    // rows 3..4, keys 0..2
  EXPECT_FLOAT_EQ(map->at(1, 1), 0.7f);    // rows 3..4, keys 3..4
  EXPECT_FLOAT_EQ(map->maxValue, 1.0f);
  EXPECT_FLOAT_EQ(map->minPositiveValue, 0.05f);

  // Unpooled: every cell is the probability, and only k > q is NaN.
  const HeatmapDataPtr full = makeHeatmap(nullptr, 0, 0, probs, T, 8);
  ASSERT_EQ(full->cells, T);
  for (int q = 0; q < T; ++q) {
    for (int k = 0; k < T; ++k) {
      if (k > q) {
        EXPECT_TRUE(std::isnan(full->at(q, k)));
      } else {
        EXPECT_EQ(full->at(q, k), rows[q][k]);
      }
    }
  }
  EXPECT_THROW(makeHeatmap(nullptr, 0, 0, probs, 4), attnscope::Error);
}

TEST(TokenLabels, MakeWhitespaceAndBytesVisible) {
  EXPECT_EQ(tokenDisplayText(" the"), QStringLiteral("\u00b7the"));
  EXPECT_EQ(tokenDisplayText("\n\n"), QStringLiteral("\u21b5\u21b5"));
  EXPECT_EQ(tokenDisplayText("\t"), QStringLiteral("\u2192"));
  EXPECT_EQ(tokenDisplayText(""), QStringLiteral("\u2205"));
  EXPECT_EQ(tokenDisplayText("\xE2\x82"), QStringLiteral("\\xe2\\x82"));  // half of "€"
  EXPECT_EQ(tokenDisplayText("\xE2\x82\xAC"), QStringLiteral("\u20ac"));
  EXPECT_EQ(tokenDisplayText(std::string("a\x01", 2)), QStringLiteral("a\\x01"));
  EXPECT_EQ(elideLabel(QStringLiteral("short")), QStringLiteral("short"));
  const QString elided = elideLabel(QString(40, QLatin1Char('x')));
  EXPECT_EQ(elided.size(), kMaxAxisLabelChars);
  EXPECT_TRUE(elided.endsWith(QChar(0x2026)));
}

TEST(ModelSummary, FormatsSizesAndTensorTypes) {
  EXPECT_EQ(formatTensorTypes({{"F32", 61}, {"Q4_1", 210}, {"Q8_0", 1}}),
            QStringLiteral("Q4_1 \u00d7210, F32 \u00d761, Q8_0 \u00d71"));
  EXPECT_EQ(formatByteSize(98400000), QStringLiteral("98.4 MB"));
}

}  // namespace
}  // namespace attnscope::app
