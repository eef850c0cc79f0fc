// The main window as a user drives it (Qt offscreen, tiny real model): open a model in the
// background, run two variants, every view renders content for the selection, every figure
// exports as a valid PNG/SVG/PDF and every view's data exports, a session saves and reopens
// without the model, a run cancels, and bad input (corrupt model, corrupt session, over-long
// prompt, a folder that is not a session) shows one error and leaves the state as it was.
#include <gtest/gtest.h>

#include <QDir>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFile>
#include <QFileInfo>
#include <QMimeData>
#include <QSettings>
#include <QSignalSpy>
#include <QTabWidget>
#include <QTest>
#include <QUrl>
#include <chrono>

#include "app_test_support.h"
#include "attnscope/model.h"
#include "figure_exporter.h"
#include "figure_view.h"
#include "main_window.h"
#include "model_summary_panel.h"
#include "prompt_panel.h"
#include "selection_model.h"
#include "session_controller.h"
#include "test_support.h"
#include "variants_panel.h"

namespace attnscope::app {
namespace {

using test::waitFor;

const QStringList kTwoVariants = {QStringLiteral("kv=snapkv:budget=16,window=4"),
                                  QStringLiteral("grouping=kdgqa;pattern=window:w=8")};

struct Errors {
  explicit Errors(MainWindow& w) : spy(w.controller(), &SessionController::errorOccurred) {}
  QString last() const { return spy.isEmpty() ? QString() : spy.last().at(1).toString(); }
  QSignalSpy spy;
};

// Runs the window's prompt with `variants` and waits for the new session.
::testing::AssertionResult runAndWait(MainWindow& w, const QStringList& variants, int decode) {
  Errors errors(w);
  w.variantsPanel()->setSpecStrings(variants);
  w.variantsPanel()->setDecodeSteps(decode);
  const SessionDataPtr before = w.controller()->session();
  w.runCurrentPrompt();
  const bool done = waitFor([&] {
    return !errors.spy.isEmpty() ||
           (!w.controller()->isBusy() && w.controller()->session() != before &&
            w.controller()->session()->hasRun());
  });
  if (!errors.spy.isEmpty())
    return ::testing::AssertionFailure() << "run failed: " << errors.last().toStdString();
  if (!done) return ::testing::AssertionFailure() << "run did not finish";
  return ::testing::AssertionSuccess();
}

TEST(MainWindow, OpensAModelInTheBackgroundAndShowsItsSummary) {
  auto w = test::makeWindow(/*adoptTinyModel=*/false);
  QSignalSpy models(w->controller(), &SessionController::modelChanged);
  w->openModel(test::tinyModelDir());
  ASSERT_TRUE(waitFor([&] { return !models.isEmpty(); }));
  ASSERT_TRUE(w->controller()->model());
  EXPECT_EQ(w->summaryPanel()->fieldText(QStringLiteral("Layers")), QStringLiteral("3"));
  EXPECT_TRUE(w->runAction()->isEnabled());
}

TEST(MainWindow, RunsTwoVariantsAndEveryViewRendersTheSelection) {
  auto w = test::makeWindow();
  w->promptPanel()->setText(QString::fromStdString(test::tinyPrompt()));
  ASSERT_TRUE(runAndWait(*w, kTwoVariants, 6));
  const SessionDataPtr session = w->controller()->session();
  ASSERT_EQ(session->traceCount(), 3);
  EXPECT_EQ(session->traces[1]->variant, VariantSpec::parse(kTwoVariants[0].toStdString()));
  EXPECT_EQ(session->decodeSteps, 6);
  ASSERT_TRUE(test::waitSettled(*w));
  w->selection()->setTrace(1);
  w->selection()->setLayerHead(2, 1);
  w->selection()->setQueryToken(session->baseline().n_prompt - 1);
  for (FigureView* view : w->views()) {
    if (w->tabs()->indexOf(view) >= 0) w->showView(view);
    ASSERT_TRUE(test::waitSettled(*w));
    SCOPED_TRACE(view->objectName().toStdString());
    EXPECT_TRUE(view->hasFigure());
    const QImage image = test::grabImage(view);
    EXPECT_GE(test::distinctColors(image), 8) << "a blank view";
    EXPECT_GT(test::inkFraction(image), 0.03) << "nearly empty";
  }
}

TEST(MainWindow, ExportsEveryFigureAndItsDataAsValidFiles) {
  auto w = test::makeWindow();
  ASSERT_TRUE(runAndWait(*w, kTwoVariants, 6));
  w->selection()->setTrace(1);
  ASSERT_TRUE(test::waitSettled(*w));
  const QString dir = test::tempDir(QStringLiteral("attnscope_export_all"));
  const ExportAllResult result = exportAllFigures(
      w->views(), dir, {QStringLiteral("png"), QStringLiteral("svg"), QStringLiteral("pdf")},
      PlotExportOptions{});
  EXPECT_TRUE(result.errors.isEmpty()) << result.errors.join(QLatin1Char('\n')).toStdString();
  EXPECT_EQ(result.written.size(), 3 * w->views().size()) << "every view has a figure";
  EXPECT_TRUE(result.skipped.isEmpty()) << result.skipped.join(QLatin1Char(',')).toStdString();
  for (const QString& path : result.written) {
    QString why;
    const QString suffix = QFileInfo(path).suffix();
    const bool ok = suffix == QLatin1String("png")   ? test::isValidPng(path, &why)
                    : suffix == QLatin1String("svg") ? test::isValidSvg(path, &why)
                                                     : test::isValidPdf(path, &why);
    EXPECT_TRUE(ok) << why.toStdString();
  }
  for (FigureView* view : w->views()) {
    for (const QString& format : view->dataFormats()) {
      const QString path =
          QDir(dir).filePath(view->objectName() + QStringLiteral("_data.") + format);
      const QString error = view->exportData(path);
      EXPECT_TRUE(error.isEmpty())
          << view->objectName().toStdString() << ": " << error.toStdString();
      EXPECT_GT(QFileInfo(path).size(), 0) << path.toStdString();
    }
  }
}

TEST(MainWindow, SessionSavesAndReopensWithoutTheModel) {
  auto w = test::makeWindow();
  ASSERT_TRUE(runAndWait(*w, kTwoVariants, 4));
  const SessionDataPtr saved = w->controller()->session();
  const QString dir = test::tempDir(QStringLiteral("attnscope_session")) + QStringLiteral("/run");
  Errors saveErrors(*w);
  w->saveSessionTo(dir);
  ASSERT_TRUE(waitFor([&] { return !w->controller()->isBusy(); }));
  ASSERT_TRUE(QFileInfo::exists(dir + QStringLiteral("/index.json")))
      << saveErrors.last().toStdString();
  EXPECT_FALSE(w->controller()->session()->modified);
  EXPECT_EQ(w->controller()->session()->savedPath, dir);

  auto reopened = test::makeWindow(/*adoptTinyModel=*/false);
  Errors errors(*reopened);
  reopened->openSession(dir);
  ASSERT_TRUE(waitFor([&] {
    return !reopened->controller()->isBusy() && reopened->controller()->session()->hasRun();
  })) << errors.last().toStdString();
  const SessionDataPtr loaded = reopened->controller()->session();
  EXPECT_EQ(reopened->controller()->model(), nullptr) << "no model needed";
  ASSERT_EQ(loaded->traceCount(), saved->traceCount());
  EXPECT_EQ(loaded->prompt, saved->prompt);
  EXPECT_EQ(loaded->tokenLabels, saved->tokenLabels);
  for (int i = 0; i < loaded->traceCount(); ++i) {
    const Trace& a = *saved->traces[static_cast<size_t>(i)];
    const Trace& b = *loaded->traces[static_cast<size_t>(i)];
    EXPECT_EQ(a.tokens, b.tokens);
    EXPECT_EQ(a.variant, b.variant);
    EXPECT_EQ(a.q, b.q);
    EXPECT_EQ(a.kl_per_position, b.kl_per_position);
    EXPECT_EQ(a.kv_steps.size(), b.kv_steps.size());
  }
  reopened->showView(reopened->views().at(1));  // the attention map
  ASSERT_TRUE(test::waitSettled(*reopened));
  EXPECT_TRUE(reopened->views().at(1)->hasFigure()) << "the map draws from the reopened traces";
  EXPECT_TRUE(errors.spy.isEmpty()) << errors.last().toStdString();
}

TEST(MainWindow, SavingOverAFolderThatIsNotASessionFailsAndDeletesNothing) {
  auto w = test::makeWindow();
  ASSERT_TRUE(runAndWait(*w, {kTwoVariants[0]}, 2));
  const QString dir = test::tempDir(QStringLiteral("attnscope_not_session"));
  QFile keep(dir + QStringLiteral("/thesis.tex"));
  ASSERT_TRUE(keep.open(QIODevice::WriteOnly));
  keep.write("precious");
  keep.close();
  Errors errors(*w);
  w->saveSessionTo(dir);
  ASSERT_TRUE(waitFor([&] { return !errors.spy.isEmpty(); }));
  EXPECT_TRUE(errors.last().contains(dir)) << errors.last().toStdString();
  EXPECT_TRUE(QFileInfo::exists(dir + QStringLiteral("/thesis.tex")));
  EXPECT_TRUE(w->controller()->session()->modified) << "still unsaved";
}

TEST(MainWindow, CorruptModelShowsOneErrorAndKeepsModelAndSession) {
  auto w = test::makeWindow();
  ASSERT_TRUE(runAndWait(*w, {kTwoVariants[0]}, 2));
  const LoadedModelPtr model = w->controller()->model();
  const SessionDataPtr session = w->controller()->session();
  const QString bad =
      test::tempDir(QStringLiteral("attnscope_bad_model")) + QStringLiteral("/broken.gguf");
  QFile f(bad);
  ASSERT_TRUE(f.open(QIODevice::WriteOnly));
  f.write("GGUF\x03\x00\x00\x00 truncated");
  f.close();
  Errors errors(*w);
  w->openModel(bad);
  ASSERT_TRUE(waitFor([&] { return !errors.spy.isEmpty() && !w->controller()->isBusy(); }));
  QTest::qWait(50);
  EXPECT_EQ(errors.spy.count(), 1);
  EXPECT_TRUE(errors.last().contains(QLatin1String("broken.gguf"))) << errors.last().toStdString();
  EXPECT_EQ(w->controller()->model(), model);
  EXPECT_EQ(w->controller()->session(), session);
  EXPECT_EQ(w->summaryPanel()->fieldText(QStringLiteral("Layers")), QStringLiteral("3"));
}

TEST(MainWindow, CorruptSessionShowsOneErrorAndKeepsTheSession) {
  auto w = test::makeWindow();
  ASSERT_TRUE(runAndWait(*w, {kTwoVariants[0]}, 2));
  const QString dir = test::tempDir(QStringLiteral("attnscope_corrupt")) + QStringLiteral("/s");
  w->saveSessionTo(dir);
  ASSERT_TRUE(waitFor([&] { return !w->controller()->isBusy(); }));
  const SessionDataPtr session = w->controller()->session();
  // Truncate the baseline's trace.json: a hand-edited or half-copied session.
  QFile json(dir + QStringLiteral("/baseline/trace.json"));
  ASSERT_TRUE(json.open(QIODevice::ReadWrite));
  json.resize(json.size() / 2);
  json.close();
  Errors errors(*w);
  w->openSession(dir);
  ASSERT_TRUE(waitFor([&] { return !errors.spy.isEmpty() && !w->controller()->isBusy(); }));
  EXPECT_EQ(errors.spy.count(), 1);
  EXPECT_TRUE(errors.last().contains(QLatin1String("trace.json"))) << errors.last().toStdString();
  EXPECT_EQ(w->controller()->session(), session);
}

TEST(MainWindow, OverLongPromptIsRefusedAndTheSessionStays) {
  auto w = test::makeWindow();
  ASSERT_TRUE(runAndWait(*w, {kTwoVariants[0]}, 2));
  const SessionDataPtr session = w->controller()->session();
  // The tiny model's context is 4096 tokens; its byte-level tokenizer makes ~1 token per byte.
  w->promptPanel()->setText(QString(6000, QLatin1Char('x')));
  Errors errors(*w);
  w->runCurrentPrompt();
  ASSERT_TRUE(waitFor([&] { return !errors.spy.isEmpty(); }));
  EXPECT_TRUE(errors.last().contains(QLatin1String("context"))) << errors.last().toStdString();
  ASSERT_TRUE(waitFor([&] { return !w->controller()->isBusy(); }));
  EXPECT_EQ(w->controller()->session(), session);
}

TEST(MainWindow, HeadActivationSelectsTheHeadAndShowsTheMap) {
  auto w = test::makeWindow();
  ASSERT_TRUE(runAndWait(*w, {kTwoVariants[0]}, 2));
  w->showView(w->views().at(0));
  emit w->views().at(0)->headActivated(2, 3);
  EXPECT_EQ(w->selection()->layer(), 2);
  EXPECT_EQ(w->selection()->head(), 3);
  EXPECT_EQ(w->currentView(), w->views().at(1));
}

TEST(MainWindow, DroppingASessionFolderOpensIt) {
  auto w = test::makeWindow();
  ASSERT_TRUE(runAndWait(*w, {kTwoVariants[0]}, 2));
  const QString dir =
      test::tempDir(QStringLiteral("attnscope_drop_session")) + QStringLiteral("/s");
  w->saveSessionTo(dir);
  ASSERT_TRUE(waitFor([&] { return !w->controller()->isBusy(); }));
  auto target = test::makeWindow(false);
  QMimeData mime;
  mime.setUrls({QUrl::fromLocalFile(dir)});
  // Qt delivers a drop only to a widget that accepted the drag when it entered.
  QDragEnterEvent enter(QPoint(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
  QApplication::sendEvent(target.get(), &enter);
  ASSERT_TRUE(enter.isAccepted());
  QDropEvent drop(QPointF(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
  QApplication::sendEvent(target.get(), &drop);
  ASSERT_TRUE(waitFor([&] {
    return target->controller()->session()->hasRun() && !target->controller()->isBusy();
  }));
  EXPECT_EQ(target->controller()->session()->savedPath, dir);
}

// Cancel on the real default model: a long prompt whose baseline takes seconds on a CPU.
TEST(MainWindow, CancelStopsARunAndKeepsTheCurrentSession) {
  auto w = test::makeWindow(false);
  auto loaded = std::make_shared<LoadedModel>();
  loaded->model = load_model(attnscope::test::default_model());
  loaded->path = QString::fromStdString(attnscope::test::default_model().string());
  w->controller()->adoptModel(loaded);
  const SessionDataPtr before = w->controller()->session();
  QString prompt;
  while (prompt.size() < 9000)
    prompt +=
        QStringLiteral("The lighthouse keeper wrote the weather into his log every evening. ");
  w->promptPanel()->setText(prompt);
  w->variantsPanel()->setSpecStrings({kTwoVariants[0]});
  w->variantsPanel()->setDecodeSteps(4);
  QSignalSpy progress(w->controller(), &SessionController::jobProgress);
  QSignalSpy finished(w->controller(), &SessionController::jobFinished);
  w->runCurrentPrompt();
  ASSERT_TRUE(w->controller()->isBusy());
  ASSERT_TRUE(waitFor([&] { return progress.count() >= 2; }));
  const auto t0 = std::chrono::steady_clock::now();
  w->cancelAction()->trigger();
  ASSERT_TRUE(waitFor([&] { return !finished.isEmpty(); }));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("cancel took effect after %.3f s\n", seconds);
  EXPECT_FALSE(finished.last().at(1).toBool()) << "not a success";
  EXPECT_FALSE(w->controller()->isBusy());
  EXPECT_EQ(w->controller()->session(), before);
  // Generous bound for a loaded 2-core machine: without cancellation the run takes far longer.
  EXPECT_LT(seconds, 10.0);
}

TEST(MainWindow, RestoresVariantsDecodeStepsAndPromptFromSettings) {
  QSettings().clear();
  {
    MainWindow w(QStringLiteral("cpu"), /*restoreSettings=*/true);
    w.variantsPanel()->setSpecStrings({kTwoVariants[1]});
    w.variantsPanel()->setDecodeSteps(11);
    w.promptPanel()->setText(QStringLiteral("remember me"));
    w.close();
  }
  MainWindow again(QStringLiteral("cpu"), /*restoreSettings=*/true);
  ASSERT_EQ(again.variantsPanel()->specStrings().size(), 1);
  EXPECT_EQ(VariantSpec::parse(again.variantsPanel()->specStrings().first().toStdString()),
            VariantSpec::parse(kTwoVariants[1].toStdString()));
  EXPECT_EQ(again.variantsPanel()->decodeSteps(), 11);
  EXPECT_EQ(again.promptPanel()->text(), QStringLiteral("remember me"));
  QSettings().clear();
}

}  // namespace
}  // namespace attnscope::app
