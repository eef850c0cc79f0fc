// GUI test fixtures: see app_test_support.h.
#include "app_test_support.h"

#include <gtest/gtest.h>

#include <QApplication>
#include <QFile>
#include <QHash>
#include <QStandardPaths>
#include <QSvgRenderer>
#include <QTest>
#include <QWidget>
#include <algorithm>
#include <cstdlib>

#include "attnscope/model.h"
#include "attnscope/run.h"
#include "error_presenter.h"
#include "main_window.h"
#include "map_service.h"
#include "session_controller.h"
#include "test_support.h"
#include "tiny_hf_model.h"
#include "token_labels.h"

namespace attnscope::app::test {

namespace {

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

constexpr int kQuietTurns = 4;

}  // namespace

bool waitFor(const std::function<bool()>& pred, int timeoutMs) {
  return QTest::qWaitFor(pred, timeoutMs);
}

QString tinyModelDir() {
  static const QString dir = [] {
    const std::filesystem::path path =
        attnscope::test::make_temp_dir("attnscope_app_tiny") / "tiny-llama";
    attnscope::test::TinyHfSpec spec;
    spec.n_layer = 3;
    spec.n_head = 4;
    spec.n_head_kv = 2;
    attnscope::test::write_tiny_hf_model(path, spec);
    return QString::fromStdString(path.string());
  }();
  return dir;
}

LoadedModelPtr tinyModel() {
  static LoadedModelPtr model = [] {
    auto loaded = std::make_shared<LoadedModel>();
    loaded->model = load_model(std::filesystem::path(tinyModelDir().toStdString()));
    loaded->path = tinyModelDir();
    return LoadedModelPtr(loaded);
  }();
  return model;
}

std::string tinyPrompt() {
  return "hello hello world. the cat sat on the mat; hello again, cat.";
}

SessionDataPtr tinySession(const std::vector<std::string>& variants, int decodeSteps,
                           const std::string& prompt) {
  const LoadedModelPtr model = tinyModel();
  std::vector<VariantSpec> specs;
  for (const std::string& v : variants) specs.push_back(VariantSpec::parse(v));
  RunOptions options;
  options.decode_steps = decodeSteps;
  const std::vector<int32_t> tokens = model->model->tokenizer->encode(prompt, true);
  std::vector<Trace> traces = run_variants(model->model, tokens, specs, options);
  auto session = std::make_shared<SessionData>();
  session->prompt = prompt;
  session->decodeSteps = decodeSteps;
  for (Trace& t : traces) session->traces.push_back(std::make_shared<Trace>(std::move(t)));
  for (const std::string& text : session->baseline().token_texts) {
    session->tokenLabels.push_back(tokenDisplayText(text));
  }
  session->modified = true;
  return session;
}

std::unique_ptr<MainWindow> makeWindow(bool adoptTinyModel) {
  auto window = std::make_unique<MainWindow>(QStringLiteral("cpu"), /*restoreSettings=*/false);
  window->errorPresenter()->setEnabled(false);
  window->setConfirmDiscard(false);
  window->resize(1400, 880);
  window->show();
  if (adoptTinyModel) window->controller()->adoptModel(tinyModel());
  return window;
}

std::unique_ptr<MainWindow> windowShowing(const SessionDataPtr& session,
                                          FigureView* (*view)(MainWindow&)) {
  auto w = makeWindow(/*adoptTinyModel=*/false);
  w->controller()->adoptSession(session);
  if (view) w->showView(view(*w));
  EXPECT_TRUE(waitSettled(*w));
  return w;
}

int colorDistance(QRgb a, QRgb b) {
  return std::max({std::abs(qRed(a) - qRed(b)), std::abs(qGreen(a) - qGreen(b)),
                   std::abs(qBlue(a) - qBlue(b))});
}

bool waitSettled(MainWindow& window, int timeoutMs) {
  int quiet = 0;
  return waitFor(
      [&] {
        SessionController* c = window.controller();
        const bool idle = !c->isBusy() && !c->isAnalysing() && c->maps()->pendingCount() == 0;
        quiet = idle ? quiet + 1 : 0;
        return quiet >= kQuietTurns;
      },
      timeoutMs);
}

bool isValidPng(const QString& path, QString* why) {
  QImage image;
  if (!image.load(path, "PNG")) {
    if (why) *why = path + QStringLiteral(": does not decode as PNG");
    return false;
  }
  if (image.width() < 50 || image.height() < 50 || distinctColors(image) < 3) {
    if (why)
      *why = path + QStringLiteral(": image is blank or tiny (%1x%2, %3 colours)")
                        .arg(image.width())
                        .arg(image.height())
                        .arg(distinctColors(image));
    return false;
  }
  return true;
}

bool isValidSvg(const QString& path, QString* why) {
  QSvgRenderer renderer(path);
  if (!renderer.isValid() || renderer.defaultSize().isEmpty()) {
    if (why) *why = path + QStringLiteral(": does not parse as SVG");
    return false;
  }
  QFile file(path);
  file.open(QIODevice::ReadOnly);
  if (file.size() < 1000) {
    if (why) *why = path + QStringLiteral(": SVG suspiciously small (%1 bytes)").arg(file.size());
    return false;
  }
  return true;
}

bool isValidPdf(const QString& path, QString* why) {
  QFile file(path);
  if (!file.open(QIODevice::ReadOnly)) {
    if (why) *why = path + QStringLiteral(": cannot be read");
    return false;
  }
  const QByteArray bytes = file.readAll();
  if (!bytes.startsWith("%PDF-") || !bytes.trimmed().endsWith("%%EOF") || bytes.size() < 1000) {
    if (why) *why = path + QStringLiteral(": not a complete PDF (%1 bytes)").arg(bytes.size());
    return false;
  }
  return true;
}

int distinctColors(const QImage& image, int cap) {
  QHash<QRgb, int> seen;
  const QImage img = image.convertToFormat(QImage::Format_RGB32);
  for (int y = 0; y < img.height(); y += 2) {
    const auto* row = reinterpret_cast<const QRgb*>(img.constScanLine(y));
    for (int x = 0; x < img.width(); x += 2) {
      seen.insert(row[x], 1);
      if (seen.size() >= cap) return cap;
    }
  }
  return static_cast<int>(seen.size());
}

double inkFraction(const QImage& image) {
  QHash<QRgb, int> counts;
  const QImage img = image.convertToFormat(QImage::Format_RGB32);
  int total = 0;
  for (int y = 0; y < img.height(); ++y) {
    const auto* row = reinterpret_cast<const QRgb*>(img.constScanLine(y));
    for (int x = 0; x < img.width(); ++x) {
      ++counts[row[x]];
      ++total;
    }
  }
  int most = 0;
  for (int c : counts) most = std::max(most, c);
  return total > 0 ? 1.0 - static_cast<double>(most) / total : 0.0;
}

QImage grabImage(QWidget* widget) {
  return widget->grab().toImage();
}

QString tempDir(const QString& prefix) {
  return QString::fromStdString(attnscope::test::make_temp_dir(prefix.toStdString()).string());
}

}  // namespace attnscope::app::test
