// attnscope GUI entry point: parses the command line, shows the main window at once and starts
// loading the model in the background.
#include <QApplication>
#include <QCommandLineParser>
#include <QFile>
#include <QPalette>
#include <QPlainTextEdit>
#include <QStyleFactory>
#include <cstdio>

#include "attnscope/file_util.h"
#include "attnscope/paths.h"
#include "main_window.h"
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
  const QCommandLineOption runOption(QStringLiteral("run"),
                                     QStringLiteral("Run the prompt as soon as the model loads."));
  const QCommandLineOption layerOption(QStringLiteral("layer"),
                                       QStringLiteral("Layer to show (0-based)."),
                                       QStringLiteral("L"), QStringLiteral("0"));
  const QCommandLineOption headOption(QStringLiteral("head"),
                                      QStringLiteral("Head to show (0-based)."),
                                      QStringLiteral("H"), QStringLiteral("0"));
  const QCommandLineOption screenshotOption(
      QStringLiteral("screenshot"),
      QStringLiteral("Run, show --layer/--head, save a PNG of the window to FILE and quit."),
      QStringLiteral("FILE"));
  const QCommandLineOption exportOption(
      QStringLiteral("export"),
      QStringLiteral("Run, show --layer/--head and export the heatmap to FILE (.png/.svg/.pdf)."),
      QStringLiteral("FILE"));
  const QCommandLineOption darkOption(QStringLiteral("dark"),
                                      QStringLiteral("Use a dark palette (Fusion style)."));
  parser.addOptions({backendOption, promptOption, runOption, layerOption, headOption,
                     screenshotOption, exportOption, darkOption});
  parser.process(app);

  if (parser.isSet(darkOption)) useDarkPalette();
  const QString backend = parser.value(backendOption);
  if (backend != QLatin1String("cpu") && backend != QLatin1String("cuda")) {
    std::fprintf(stderr, "attnscope: --backend: expected cpu or cuda, got '%s'\n",
                 qPrintable(backend));
    return 2;
  }
  bool layerOk = false, headOk = false;
  const int layer = parser.value(layerOption).toInt(&layerOk);
  const int head = parser.value(headOption).toInt(&headOk);
  if (!layerOk || !headOk || layer < 0 || head < 0) {
    std::fprintf(stderr, "attnscope: --layer/--head: expected non-negative integers\n");
    return 2;
  }
  const QString screenshot = parser.value(screenshotOption);
  const QStringList positional = parser.positionalArguments();
  if (positional.size() > 1) {
    std::fprintf(stderr, "attnscope: expected at most one model path\n");
    return 2;
  }
  const QString modelPath =
      positional.isEmpty()
          ? QFile::decodeName(QByteArray::fromStdString(attnscope::default_model_path().string()))
          : positional.first();

  attnscope::app::MainWindow window(backend, /*restoreSettings=*/screenshot.isEmpty());
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
    window.promptEditor()->setPlainText(QString::fromUtf8(bytes));
  }
  if (!screenshot.isEmpty()) window.resize(1500, 920);
  if (!screenshot.isEmpty() || parser.isSet(runOption) || parser.isSet(exportOption)) {
    attnscope::app::ScriptedRun::Options options;
    options.layer = layer;
    options.head = head;
    options.screenshotPath = screenshot;
    options.exportPath = parser.value(exportOption);
    new attnscope::app::ScriptedRun(&window, options);  // owned by the window
  }
  window.show();
  window.openModel(modelPath);
  return QApplication::exec();
}
