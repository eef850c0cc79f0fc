// Drives the main window without a person, for README screenshots, figure exports and
// measurements: once the model is loaded (or a session opened) it runs the prompt with the
// given variants, waits until the run, the head analysis and every pending map are done,
// selects a layer/head/query and compare pair, then for each requested view shows its tab and
// saves a screenshot of the window, optionally exports every figure, and quits. Errors go to
// stderr and end the program with status 1. Used by --screenshots and scripts/screenshots.sh.
#pragma once

#include <QElapsedTimer>
#include <QObject>
#include <QString>
#include <QStringList>

class QTimer;

namespace attnscope::app {

class FigureView;
class MainWindow;

class ScriptedRun : public QObject {
  Q_OBJECT
 public:
  struct Options {
    QStringList variants;  // spec strings run beside the baseline (empty: the panel's list)
    int decodeSteps = -1;  // -1: the panel's value
    int layer = 0;
    int head = 0;
    int queryToken = -1;  // -1: the last prompt token
    int trace = 1;        // trace shown by single-trace views (clamped)
    int compareA = 0, compareB = 1;
    QString sessionDir;     // open this session instead of running (no model needed)
    QString screenshotDir;  // <dir>/<view>.png for each view in `views`
    // View object names (heads, map, compare, kv, groups, masks, metrics, throughput), each
    // optionally "@i" to show run i in it (else `trace`).
    QStringList views;
    QString exportAllDir;    // every figure as PNG + SVG + PDF
    bool runNeedle = false;  // also run a small needle test (metrics view)
    bool runSweep = false;   // also run a small throughput sweep (throughput view)
    bool quit = true;        // quit when done (else stay open)
    int timeoutSeconds = 1200;
  };
  ScriptedRun(MainWindow* window, Options options);

 private:
  enum class Stage { WaitModel, WaitRun, WaitNeedle, WaitSweep, Capture, Done };
  void start();
  void poll();
  bool settled();
  void afterRun();
  void captureNext();
  FigureView* showEntry(const QString& entry);
  void finish();
  void fail(const QString& message);

  MainWindow* m_window;
  Options m_options;
  Stage m_stage = Stage::WaitModel;
  QTimer* m_timer = nullptr;
  int m_quietPolls = 0;
  int m_viewIndex = 0;
  bool m_selected = false;
  QElapsedTimer m_clock;
};

}  // namespace attnscope::app
