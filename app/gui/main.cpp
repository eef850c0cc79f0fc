// attnscope GUI entry point: parses the command line, shows the main window at once and starts
// loading the model in the background.
#include <QApplication>
#include <QCommandLineParser>
#include <QElapsedTimer>
#include <QFile>
#include <QPalette>
#include <QStyleFactory>
#include <QTimer>
#include <cstdio>

#include "attnscope/file_util.h"
#include "attnscope/paths.h"
#include "attnscope/variant_spec.h"
#include "main_window.h"
#include "prompt_panel.h"
#include "scripted_run.h"

namespace {

// A dark Fusion palette, to check (and screenshot) the dark look on systems without a dark theme.
void useDarkPalette() {
  QApplication::setStyle(QStyleFactory::create(QStringLiteral("Fusion")));
  QPalette p;
  const QColor window(0x2b, 0x2b, 0x2b), base(0x1e, 0x1e, 0x1e), text(0xe6, 0xe6, 0xe6);
  p.setColor(QPalette::Window, window);
  p.setColor(QPalette::WindowText, text);
  p.setColor(QPalette::Base, base);
  p.setColor(QPalette::AlternateBase, window);
  p.setColor(QPalette::Text, text);
  p.setColor(QPalette::Button, window);
  p.setColor(QPalette::ButtonText, text);
  p.setColor(QPalette::ToolTipBase, base);
  p.setColor(QPalette::ToolTipText, text);
  p.setColor(QPalette::Highlight, QColor(0x3d, 0x7a, 0xd6));
  p.setColor(QPalette::HighlightedText, Qt::white);
  p.setColor(QPalette::Mid, QColor(0x55, 0x55, 0x55));
  p.setColor(QPalette::Disabled, QPalette::Text, QColor(0x80, 0x80, 0x80));
  p.setColor(QPalette::Disabled, QPalette::ButtonText, QColor(0x80, 0x80, 0x80));
  p.setColor(QPalette::Disabled, QPalette::WindowText, QColor(0x80, 0x80, 0x80));
  QApplication::setPalette(p);
}

}  // namespace

int main(int argc, char** argv) {
  QElapsedTimer startup;
  startup.start();
  QApplication app(argc, argv);
  QApplication::setOrganizationName(QStringLiteral("attnscope"));
  QApplication::setOrganizationDomain(QStringLiteral("attnscope.dev"));
  QApplication::setApplicationName(QStringLiteral("attnscope"));
  QApplication::setApplicationVersion(QStringLiteral(ATTNSCOPE_VERSION));

  QCommandLineParser parser;
  parser.setApplicationDescription(
      QStringLiteral("Looks inside the attention of small language models."));
  parser.addHelpOption();
  parser.addVersionOption();
  parser.addPositionalArgument(
      QStringLiteral("model"),
      QStringLiteral("GGUF file or Hugging Face directory (default: %1)")
          .arg(QString::fromStdString(attnscope::default_model_path().string())),
      QStringLiteral("[model]"));
  const QCommandLineOption backendOption(QStringLiteral("backend"),
                                         QStringLiteral("Compute backend: cpu or cuda."),
                                         QStringLiteral("name"), QStringLiteral("cpu"));
  const QCommandLineOption promptOption(QStringLiteral("prompt-file"),
                                        QStringLiteral("Start with the prompt in this UTF-8 file."),
                                        QStringLiteral("file"));
  // Not "--session": QApplication takes that one for X11 session management before we see it.
  const QCommandLineOption sessionOption(QStringLiteral("session-dir"),
                                         QStringLiteral("Open this session folder at start."),
                                         QStringLiteral("dir"));
  const QCommandLineOption runOption(QStringLiteral("run"),
                                     QStringLiteral("Run the prompt as soon as the model loads."));
  const QCommandLineOption variantOption(
      QStringLiteral("variant"),
      QStringLiteral(
          "Variant spec to run beside the baseline (repeatable; replaces the saved list)."),
      QStringLiteral("spec"));
  const QCommandLineOption decodeOption(QStringLiteral("decode"),
                                        QStringLiteral("Decode steps after the prompt."),
                                        QStringLiteral("N"));
  const QCommandLineOption layerOption(QStringLiteral("layer"),
                                       QStringLiteral("Layer to show (0-based)."),
                                       QStringLiteral("L"), QStringLiteral("0"));
  const QCommandLineOption headOption(QStringLiteral("head"),
                                      QStringLiteral("Head to show (0-based)."),
                                      QStringLiteral("H"), QStringLiteral("0"));
  const QCommandLineOption queryOption(
      QStringLiteral("query"),
      QStringLiteral("Query token to select (default: the last prompt token)."),
      QStringLiteral("T"), QStringLiteral("-1"));
  const QCommandLineOption traceOption(
      QStringLiteral("trace"), QStringLiteral("Run shown by single-run views (0 = baseline)."),
      QStringLiteral("I"), QStringLiteral("1"));
  const QCommandLineOption compareOption(
      QStringLiteral("compare"),
      QStringLiteral("Runs shown side by side in Compare, e.g. 0,3 (0 = baseline)."),
      QStringLiteral("A,B"), QStringLiteral("0,1"));
  const QCommandLineOption screenshotsOption(
      QStringLiteral("screenshots"),
      QStringLiteral("Run, then save a PNG of the window for each of --views into DIR and quit."),
      QStringLiteral("DIR"));
  const QCommandLineOption viewsOption(
      QStringLiteral("views"),
      QStringLiteral(
          "Views for --screenshots: heads,map,compare,kv,groups,masks,metrics,throughput."),
      QStringLiteral("list"),
      QStringLiteral("heads,map,compare,kv,groups,masks,metrics,throughput"));
  const QCommandLineOption exportAllOption(
      QStringLiteral("export-all"),
      QStringLiteral("Run, then export every figure (PNG, SVG, PDF) into DIR and quit."),
      QStringLiteral("DIR"));
  const QCommandLineOption needleOption(
      QStringLiteral("needle"), QStringLiteral("Scripted runs: also run a small needle test."));
  const QCommandLineOption sweepOption(
      QStringLiteral("sweep"), QStringLiteral("Scripted runs: also run a small throughput sweep."));
  const QCommandLineOption darkOption(QStringLiteral("dark"),
                                      QStringLiteral("Use a dark palette (Fusion style)."));
  const QCommandLineOption startupOption(
      QStringLiteral("startup-time"),
      QStringLiteral("Print the time from start to the window on screen, then quit."));
  parser.addOptions({backendOption, promptOption, sessionOption, runOption, variantOption,
                     decodeOption, layerOption, headOption, queryOption, traceOption, compareOption,
                     screenshotsOption, viewsOption, exportAllOption, needleOption, sweepOption,
                     darkOption, startupOption});
  parser.process(app);

  if (parser.isSet(darkOption)) useDarkPalette();
  const QString backend = parser.value(backendOption);
  if (backend != QLatin1String("cpu") && backend != QLatin1String("cuda")) {
    std::fprintf(stderr, "attnscope: --backend: expected cpu or cuda, got '%s'\n",
                 qPrintable(backend));
    return 2;
  }
  const auto intOption = [&](const QCommandLineOption& option, int minValue, int* out) {
    bool ok = false;
    *out = parser.value(option).toInt(&ok);
    if (!ok || *out < minValue) {
      std::fprintf(stderr, "attnscope: --%s: expected an integer >= %d, got '%s'\n",
                   qPrintable(option.names().first()), minValue, qPrintable(parser.value(option)));
      return false;
    }
    return true;
  };
  attnscope::app::ScriptedRun::Options script;
  if (!intOption(layerOption, 0, &script.layer) || !intOption(headOption, 0, &script.head) ||
      !intOption(queryOption, -1, &script.queryToken) ||
      !intOption(traceOption, 0, &script.trace)) {
    return 2;
  }
  if (parser.isSet(decodeOption) && !intOption(decodeOption, 0, &script.decodeSteps)) return 2;
  {
    const QStringList pair = parser.value(compareOption).split(QLatin1Char(','));
    bool okA = false, okB = false;
    script.compareA = pair.value(0).toInt(&okA);
    script.compareB = pair.value(1).toInt(&okB);
    if (pair.size() != 2 || !okA || !okB || script.compareA < 0 || script.compareB < 0) {
      std::fprintf(stderr, "attnscope: --compare: expected two run indices like 0,1, got '%s'\n",
                   qPrintable(parser.value(compareOption)));
      return 2;
    }
  }
  for (const QString& spec : parser.values(variantOption)) {
    try {
      (void)attnscope::VariantSpec::parse(spec.toStdString());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "attnscope: --variant: %s\n", e.what());
      return 2;
    }
  }
  const QStringList positional = parser.positionalArguments();
  if (positional.size() > 1) {
    std::fprintf(stderr, "attnscope: expected at most one model path\n");
    return 2;
  }
  const QString modelPath =
      positional.isEmpty()
          ? QFile::decodeName(QByteArray::fromStdString(attnscope::default_model_path().string()))
          : positional.first();
  const bool scripted =
      parser.isSet(screenshotsOption) || parser.isSet(exportAllOption) || parser.isSet(runOption);

  attnscope::app::MainWindow window(backend, /*restoreSettings=*/!scripted);
  if (parser.isSet(promptOption)) {
    QFile file(parser.value(promptOption));
    if (!file.open(QIODevice::ReadOnly)) {
      std::fprintf(stderr, "attnscope: %s: cannot read (%s)\n", qPrintable(file.fileName()),
                   qPrintable(file.errorString()));
      return 3;
    }
    const QByteArray bytes = file.readAll();
    size_t badOffset = 0;
    if (!attnscope::is_valid_utf8(std::string_view(bytes.constData(), bytes.size()), &badOffset)) {
      std::fprintf(stderr, "attnscope: %s: invalid UTF-8 at byte %zu\n",
                   qPrintable(file.fileName()), badOffset);
      return 3;
    }
    window.promptPanel()->setText(QString::fromUtf8(bytes));
  }
  if (scripted) {
    window.resize(1600, 1000);
    script.variants = parser.values(variantOption);
    script.sessionDir = parser.value(sessionOption);
    script.screenshotDir = parser.value(screenshotsOption);
    if (!script.screenshotDir.isEmpty()) {
      script.views = parser.value(viewsOption).split(QLatin1Char(','), Qt::SkipEmptyParts);
    }
    script.exportAllDir = parser.value(exportAllOption);
    script.runNeedle = parser.isSet(needleOption);
    script.runSweep = parser.isSet(sweepOption);
    script.quit = parser.isSet(screenshotsOption) || parser.isSet(exportAllOption);
    new attnscope::app::ScriptedRun(&window, script);  // owned by the window
  } else if (parser.isSet(sessionOption)) {
    window.openSession(parser.value(sessionOption));
  }
  window.show();
  if (parser.isSet(startupOption)) {
    // The first pass of the event loop paints the window: that is when it is on screen.
    QTimer::singleShot(0, &window, [&startup] {
      std::fprintf(stdout, "attnscope: window shown %lld ms after start\n",
                   static_cast<long long>(startup.elapsed()));
      QApplication::exit(0);
    });
    return QApplication::exec();
  }
  if (!script.sessionDir.isEmpty() && scripted) {
    // A scripted session opens without the model: loading it would only cost time.
  } else {
    window.openModel(modelPath);
  }
  return QApplication::exec();
}
