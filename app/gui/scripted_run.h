// Drives the main window without a person: run the prompt once the model is loaded, select a
// layer/head, optionally export the heatmap, and optionally save a screenshot of the window and
// quit. Used by --run and
// --screenshot (scripts/screenshots.sh); errors go to stderr and end the program with status 1.
#pragma once

#include <QObject>
#include <QString>

namespace attnscope::app {

class MainWindow;

class ScriptedRun : public QObject {
  Q_OBJECT
 public:
  struct Options {
    int layer = 0;
    int head = 0;
    QString screenshotPath;  // empty: run and stay open
    QString exportPath;      // heatmap export (.png/.svg/.pdf) written before the screenshot
    int timeoutSeconds = 600;
  };
  ScriptedRun(MainWindow* window, Options options);

 private:
  void onHeatmapShown(int layer, int head);
  void saveScreenshotAndQuit();
  void fail(const QString& message);

  MainWindow* m_window;
  Options m_options;
  bool m_ran = false;
  bool m_done = false;
};

}  // namespace attnscope::app
