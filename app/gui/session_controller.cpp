// Session state and worker threads: see session_controller.h.
#include "session_controller.h"

#include <algorithm>

#include "map_worker.h"
#include "model_loader_worker.h"
#include "run_worker.h"

namespace attnscope::app {

SessionController::SessionController(const QString& backendKind, QObject* parent)
    : QObject(parent), m_backendKind(backendKind) {
  qRegisterMetaType<LoadedModelPtr>();
  qRegisterMetaType<RunResultPtr>();
  qRegisterMetaType<HeatmapDataPtr>();

  m_loadThread.setObjectName(QStringLiteral("attnscope-load"));
  m_runThread.setObjectName(QStringLiteral("attnscope-run"));
  m_mapThread.setObjectName(QStringLiteral("attnscope-map"));

  m_loader = new ModelLoaderWorker;
  m_loader->moveToThread(&m_loadThread);
  connect(&m_loadThread, &QThread::finished, m_loader, &QObject::deleteLater);
  connect(m_loader, &ModelLoaderWorker::loaded, this, &SessionController::onLoaded);
  connect(m_loader, &ModelLoaderWorker::failed, this, &SessionController::onLoadFailed);

  m_runner = new RunWorker(backendKind);
  m_runner->moveToThread(&m_runThread);
  connect(&m_runThread, &QThread::finished, m_runner, &QObject::deleteLater);
  connect(m_runner, &RunWorker::progress, this, [this](int done, int total, quint64 id) {
    if (id == m_pendingRun) emit runProgress(done, total);
  });
  connect(m_runner, &RunWorker::finished, this, &SessionController::onRunFinished);
  connect(m_runner, &RunWorker::failed, this, &SessionController::onRunFailed);
  connect(m_runner, &RunWorker::cancelled, this, &SessionController::onRunCancelled);

  m_mapper = new MapWorker;
  m_mapper->moveToThread(&m_mapThread);
  connect(&m_mapThread, &QThread::finished, m_mapper, &QObject::deleteLater);
  connect(m_mapper, &MapWorker::ready, this, &SessionController::onMapReady);
  connect(m_mapper, &MapWorker::failed, this, &SessionController::onMapFailed);

  m_loadThread.start();
  m_runThread.start();
  m_mapThread.start();
}

SessionController::~SessionController() {
  if (m_cancel) m_cancel->store(true);
  m_mapper->setLatestRequest(0);  // queued map requests become stale and are skipped
  m_loadThread.quit();
  m_runThread.quit();
  m_mapThread.quit();
  // A model load cannot be interrupted; waiting is bounded by the load itself.
  m_loadThread.wait();
  m_runThread.wait();
  m_mapThread.wait();
}

void SessionController::openModel(const QString& path) {
  const quint64 id = m_nextId++;
  m_pendingLoad = id;
  m_pendingLoadPath = path;
  emit loadStarted(path);
  emit busyChanged();
  ModelLoaderWorker* loader = m_loader;
  QMetaObject::invokeMethod(
      loader, [loader, path, id] { loader->load(path, id); }, Qt::QueuedConnection);
}

void SessionController::adoptModel(LoadedModelPtr model) {
  if (!model || !model->model) return;
  onLoaded(model, m_pendingLoad = m_nextId++);
}

void SessionController::onLoaded(const LoadedModelPtr& model, quint64 id) {
  if (id != m_pendingLoad) return;  // a newer open superseded this one
  m_pendingLoad = 0;
  // The old run belongs to the old model: stop it and drop its results.
  if (m_cancel) m_cancel->store(true);
  m_pendingRun = 0;
  m_pendingMap = 0;
  m_mapper->setLatestRequest(0);
  m_model = model;
  m_result.reset();
  m_heatmap.reset();
  m_layer = 0;
  m_head = 0;
  emit modelChanged(m_model);
  emit resultChanged(nullptr);
  emit heatmapChanged(nullptr);
  emit busyChanged();
}

void SessionController::onLoadFailed(const QString& message, quint64 id) {
  if (id != m_pendingLoad) return;
  m_pendingLoad = 0;
  emit busyChanged();
  emit errorOccurred(tr("Cannot open model"), message);
}

void SessionController::runPrompt(const QString& prompt) {
  runPromptUtf8(prompt.toUtf8().toStdString());
}

void SessionController::runPromptUtf8(const std::string& prompt) {
  if (!m_model) {
    emit errorOccurred(tr("Cannot run"), tr("run: no model is loaded yet"));
    return;
  }
  if (m_cancel) m_cancel->store(true);  // at most one run at a time: the newest wins
  m_cancel = std::make_shared<std::atomic<bool>>(false);
  RunRequest request;
  request.model = m_model;
  request.prompt = prompt;
  request.cancel = m_cancel;
  request.id = m_nextId++;
  m_pendingRun = request.id;
  emit runStarted(m_model->model->config.n_layer);
  emit busyChanged();
  RunWorker* runner = m_runner;
  QMetaObject::invokeMethod(
      runner, [runner, request] { runner->run(request); }, Qt::QueuedConnection);
}

void SessionController::cancelRun() {
  if (m_cancel) m_cancel->store(true);
}

void SessionController::onRunFinished(const RunResultPtr& result, quint64 id) {
  if (id != m_pendingRun) return;
  m_pendingRun = 0;
  m_result = result;
  const ModelConfig& config = result->model->model->config;
  m_layer = std::clamp(m_layer, 0, std::max(0, config.n_layer - 1));
  m_head = std::clamp(m_head, 0, std::max(0, config.n_head - 1));
  emit busyChanged();
  emit resultChanged(m_result);
  requestHeatmap();
}

void SessionController::onRunFailed(const QString& message, quint64 id) {
  if (id != m_pendingRun) return;
  m_pendingRun = 0;
  emit busyChanged();
  emit errorOccurred(tr("Run failed"), message);
}

void SessionController::onRunCancelled(quint64 id) {
  if (id != m_pendingRun) return;
  m_pendingRun = 0;
  emit busyChanged();
  emit runCancelled();
}

void SessionController::selectHead(int layer, int head) {
  if (layer == m_layer && head == m_head && (m_heatmap || m_pendingMap != 0)) return;
  if (m_model) {
    const ModelConfig& config = m_model->model->config;
    if (layer < 0 || layer >= config.n_layer || head < 0 || head >= config.n_head) {
      emit errorOccurred(tr("Invalid selection"),
                         tr("layer %1, head %2: expected layer 0..%3 and head 0..%4")
                             .arg(layer)
                             .arg(head)
                             .arg(config.n_layer - 1)
                             .arg(config.n_head - 1));
      return;
    }
  }
  m_layer = layer;
  m_head = head;
  requestHeatmap();
}

void SessionController::requestHeatmap() {
  if (!m_result) return;
  const quint64 id = m_nextId++;
  m_pendingMap = id;
  m_mapper->setLatestRequest(id);
  MapWorker* mapper = m_mapper;
  RunResultPtr run = m_result;
  const int layer = m_layer;
  const int head = m_head;
  QMetaObject::invokeMethod(
      mapper, [mapper, run, layer, head, id] { mapper->compute(run, layer, head, id); },
      Qt::QueuedConnection);
}

void SessionController::onMapReady(const HeatmapDataPtr& map, quint64 id) {
  if (id != m_pendingMap) return;
  m_pendingMap = 0;
  m_heatmap = map;
  emit heatmapChanged(m_heatmap);
}

void SessionController::onMapFailed(const QString& message, quint64 id) {
  if (id != m_pendingMap) return;
  m_pendingMap = 0;
  emit errorOccurred(tr("Cannot show attention map"), message);
}

}  // namespace attnscope::app
