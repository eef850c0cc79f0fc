// Shared fixtures of the GUI tests (label "app", Qt offscreen): the QApplication, a tiny real
// model (an HF directory written once per process, see tests/support/tiny_hf_model.h), sessions
// computed directly through core (so view tests do not depend on the GUI's run path), a main
// window with dialogs off, waits, and checks that exported files are valid and that a widget
// drew something.
#pragma once

#include <QImage>
#include <QString>
#include <QStringList>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "app_types.h"
#include "attnscope/variant_spec.h"

namespace attnscope::app {

class FigureView;
class MainWindow;

namespace test {

// Generous waits: the shared 2-core test machine may be busy; the tiny model takes milliseconds.
inline constexpr int kTimeoutMs = 120000;

bool waitFor(const std::function<bool()>& pred, int timeoutMs = kTimeoutMs);

// The tiny model's directory (written on first use) and the model loaded from it.
QString tinyModelDir();
LoadedModelPtr tinyModel();
// The default prompt of the tests (about 40 tokens with the tiny byte-level tokenizer).
std::string tinyPrompt();

// A session from core's run_variants on the tiny model: the baseline plus `variants`.
SessionDataPtr tinySession(
    const std::vector<std::string>& variants = {"kv=streamingllm:budget=16,sinks=2",
                                                "grouping=kdgqa;pattern=window:w=8"},
    int decodeSteps = 6, const std::string& prompt = tinyPrompt());

// A main window that reports errors only through signals (no dialogs, no discard prompts),
// sized like a laptop screen, shown, with the tiny model adopted.
std::unique_ptr<MainWindow> makeWindow(bool adoptTinyModel = true);
// A window (no model) showing `session` in `view` (null = the current tab), settled.
std::unique_ptr<MainWindow> windowShowing(const SessionDataPtr& session,
                                          FigureView* (*view)(MainWindow&) = nullptr);
// Largest channel difference of two colours.
int colorDistance(QRgb a, QRgb b);
// Waits until the window has no job, no analysis and no pending map for a few event-loop
// turns (views have drawn what they asked for).
bool waitSettled(MainWindow& window, int timeoutMs = kTimeoutMs);

// File checks: PNG decodes to a non-trivial image; SVG parses (QSvgRenderer) with a size;
// PDF has the header and the end-of-file marker. On failure `why` says what was wrong.
bool isValidPng(const QString& path, QString* why = nullptr);
bool isValidSvg(const QString& path, QString* why = nullptr);
bool isValidPdf(const QString& path, QString* why = nullptr);

// Distinct colours in an image (capped at `cap`): a blank or single-colour widget has 1-2.
int distinctColors(const QImage& image, int cap = 64);
// Fraction of pixels that differ from the most common colour (the background).
double inkFraction(const QImage& image);
// The widget rendered into an image (works offscreen).
QImage grabImage(QWidget* widget);

// A fresh temporary directory (removed at exit).
QString tempDir(const QString& prefix);

}  // namespace test
}  // namespace attnscope::app
