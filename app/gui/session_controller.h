// The GUI's single owner of state and background work: the current model, the current session
// (traces of one run plus needle and throughput results) and the head analysis of each trace.
// Every long task (load a model, run variants, open/save a session, needle test, throughput
// sweep) runs as one job off the GUI thread with progress and cancel; its result replaces the
// current state only when it succeeds, so a failed or cancelled job leaves everything as it was.
#pragma once

#include <QObject>
#include <QString>
#include <QVector>
#include <memory>
#include <string>
#include <vector>

#include "app_types.h"
#include "attnscope/needle.h"
#include "attnscope/throughput.h"
#include "attnscope/variant_spec.h"

namespace attnscope {
class Backend;
}

namespace attnscope::app {

class JobRunner;
class MapService;

// What a run is asked to do.
struct RunSettings {
  std::string prompt;                 // UTF-8 text (validated by the tokenizer)
  std::vector<VariantSpec> variants;  // the baseline is always run first, in addition
  int decodeSteps = 0;                // greedy continuation fed to every variant
};

// Which thumbnails/metrics the analysis computes (defaults suit the head grid).
struct AnalysisSettings {
  int thumbnailCells = 48;     // per axis (fewer when the prompt is shorter)
  int sampleRowsAbove = 1024;  // prompts longer than this sample rows per thumbnail bin...
  int sampledRowsPerBin = 8;   // ...this many
  HeadMetricOptions metrics;   // sink tokens, locality window, rows
};

class SessionController : public QObject {
  Q_OBJECT
 public:
  // backendKind: "cpu" (default) or "cuda", the backend runs and needle tests use.
  explicit SessionController(const QString& backendKind = QStringLiteral("cpu"),
                             QObject* parent = nullptr);
  ~SessionController() override;  // cancels every job and waits for them to stop

  LoadedModelPtr model() const { return m_model; }
  SessionDataPtr session() const { return m_session; }
  // Analysis of trace `index` of the current session (null until computed).
  TraceAnalysisPtr analysis(int index) const;
  QString backendKind() const { return m_backendKind; }
  // Device name of the backend runs use ("CPU (OpenBLAS, 2 threads)"); empty before first use.
  QString deviceName() const { return m_deviceName; }
  MapService* maps() const { return m_maps; }
  JobRunner* jobs() const { return m_jobs; }

  bool isBusy() const { return m_job != 0; }  // a load/run/open/save/needle/sweep job
  QString busyLabel() const { return m_jobLabel; }
  bool isAnalysing() const { return m_analysisJob != 0; }
  AnalysisSettings analysisSettings() const { return m_analysisSettings; }
  void setAnalysisSettings(const AnalysisSettings& settings);  // re-analyses the session

 public slots:
  // Loads in the background; on success the new model becomes current (the session stays:
  // traces do not need the model); on failure errorOccurred fires and nothing changes.
  void openModel(const QString& path);
  // Installs a model that is already loaded (tests).
  void adoptModel(attnscope::app::LoadedModelPtr model);
  // Runs the baseline and the variants on the prompt; the result replaces the traces of the
  // current session (needle and throughput results of the same model are kept).
  void run(const attnscope::app::RunSettings& settings);
  void openSession(const QString& dir);
  void saveSession(const QString& dir);
  // Installs a session directly (tests, scripted runs).
  void adoptSession(attnscope::app::SessionDataPtr session);
  void runNeedle(const attnscope::VariantSpec& variant, const attnscope::NeedleOptions& options);
  // backendKind: "cpu" or "cuda" for this sweep (several sweeps sit side by side).
  void runSweep(const std::vector<attnscope::VariantSpec>& variants,
                const attnscope::ThroughputOptions& options, const QString& backendKind);
  // Cancels the current job (run, sweep, ...), or the head analysis when no job runs;
  // effective within a layer.
  void cancel();
  // Computes every trace's thumbnails and head metrics again (after a cancelled analysis).
  void reanalyse();

 signals:
  void modelChanged(attnscope::app::LoadedModelPtr model);
  void sessionChanged(attnscope::app::SessionDataPtr session);
  void analysisChanged(int traceIndex, attnscope::app::TraceAnalysisPtr analysis);
  void jobStarted(const QString& label);
  void jobProgress(double fraction, const QString& stage);
  // A job ended: succeeded (message says what happened), failed or was cancelled.
  void jobFinished(const QString& label, bool succeeded, const QString& message);
  void busyChanged();
  void analysisProgress(double fraction, const QString& stage);
  // Every failure ends here, once, with a message naming what was wrong.
  void errorOccurred(const QString& title, const QString& message);

 private:
  // Starts a job unless one is running (then reports an error and returns false).
  template <class Result>
  bool startJob(const QString& label, const QString& failureTitle,
                std::function<Result(const class JobContext&)> work,
                std::function<void(Result)> onSuccess);
  void endJob(const QString& label, bool succeeded, const QString& message);
  void setSession(SessionDataPtr session);
  void startAnalysis();
  void analyseNext();
  std::shared_ptr<Backend> backendFor(const QString& kind, const LoadedModelPtr& model);

  QString m_backendKind;
  QString m_deviceName;
  JobRunner* m_jobs = nullptr;  // heavy jobs + analysis (2 threads)
  MapService* m_maps = nullptr;

  LoadedModelPtr m_model;
  SessionDataPtr m_session;
  QVector<TraceAnalysisPtr> m_analysis;  // [traces]
  AnalysisSettings m_analysisSettings;

  quint64 m_job = 0;  // the heavy job running, 0 = none
  QString m_jobLabel;
  quint64 m_analysisJob = 0;
  quint64 m_analysisGeneration = 0;  // bumped per session: stale analyses are dropped
  struct AnalysisTask {
    int trace = 0;
    bool metrics = false;  // false: thumbnails; true: head metrics
  };
  QVector<AnalysisTask> m_analysisQueue;

  // Backends are kept per (kind, model): a device backend may cache weights keyed by their
  // address, so holding the model alive with it keeps those addresses from being reused.
  struct BackendEntry {
    QString kind;
    LoadedModelPtr model;
    std::shared_ptr<Backend> backend;
  };
  std::vector<BackendEntry> m_backends;
};

}  // namespace attnscope::app

Q_DECLARE_METATYPE(attnscope::app::RunSettings)
