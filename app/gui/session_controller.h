// The GUI's single owner of state and background work: the current model, the last run and the
// shown attention map, plus the worker threads that produce them. Views call its slots and
// listen to its signals; a failed load or run leaves the current model and results untouched.
#pragma once

#include <QObject>
#include <QString>
#include <QThread>
#include <atomic>
#include <memory>
#include <string>

#include "app_types.h"

namespace attnscope::app {

class ModelLoaderWorker;
class RunWorker;
class MapWorker;

class SessionController : public QObject {
  Q_OBJECT
 public:
  // backendKind: "cpu" (default) or "cuda".
  explicit SessionController(const QString& backendKind = QStringLiteral("cpu"),
                             QObject* parent = nullptr);
  ~SessionController() override;  // cancels a run and waits for the workers to stop

  LoadedModelPtr model() const { return m_model; }
  RunResultPtr result() const { return m_result; }
  HeatmapDataPtr heatmap() const { return m_heatmap; }
  QString backendKind() const { return m_backendKind; }
  bool isLoading() const { return m_pendingLoad != 0; }
  bool isRunning() const { return m_pendingRun != 0; }
  int layer() const { return m_layer; }
  int head() const { return m_head; }

 public slots:
  // Loads in the background; on success the new model replaces the current one (and clears the
  // results of the old one); on failure errorOccurred fires and nothing changes.
  void openModel(const QString& path);
  // Installs a model that is already loaded (tests; later: models shared between windows).
  void adoptModel(attnscope::app::LoadedModelPtr model);
  void runPrompt(const QString& prompt);
  // Raw UTF-8 bytes; invalid UTF-8 is reported by the tokenizer as an error.
  void runPromptUtf8(const std::string& prompt);
  void cancelRun();
  // Shows (layer, head) of the current run; out-of-range values are reported as an error.
  void selectHead(int layer, int head);

 signals:
  void loadStarted(const QString& path);
  void modelChanged(attnscope::app::LoadedModelPtr model);
  void runStarted(int layerCount);
  void runProgress(int layersDone, int layerCount);
  // A finished run (or nullptr when a new model cleared the old results).
  void resultChanged(attnscope::app::RunResultPtr result);
  void runCancelled();
  void heatmapChanged(attnscope::app::HeatmapDataPtr map);
  void busyChanged();
  // Every failure ends here, once, with a message naming what was wrong.
  void errorOccurred(const QString& title, const QString& message);

 private:
  void requestHeatmap();
  void onLoaded(const LoadedModelPtr& model, quint64 id);
  void onLoadFailed(const QString& message, quint64 id);
  void onRunFinished(const RunResultPtr& result, quint64 id);
  void onRunFailed(const QString& message, quint64 id);
  void onRunCancelled(quint64 id);
  void onMapReady(const HeatmapDataPtr& map, quint64 id);
  void onMapFailed(const QString& message, quint64 id);

  QString m_backendKind;
  QThread m_loadThread, m_runThread, m_mapThread;
  ModelLoaderWorker* m_loader = nullptr;  // owned by m_loadThread (deleted on finish)
  RunWorker* m_runner = nullptr;
  MapWorker* m_mapper = nullptr;

  LoadedModelPtr m_model;
  RunResultPtr m_result;
  HeatmapDataPtr m_heatmap;
  int m_layer = 0;
  int m_head = 0;

  quint64 m_nextId = 1;
  quint64 m_pendingLoad = 0;  // id of the load whose answer is wanted, 0 = none
  quint64 m_pendingRun = 0;
  quint64 m_pendingMap = 0;
  QString m_pendingLoadPath;
  std::shared_ptr<std::atomic<bool>> m_cancel;
};

}  // namespace attnscope::app
