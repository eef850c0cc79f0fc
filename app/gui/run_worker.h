// Runs the prefill of a prompt off the GUI thread and records per-layer Q/K/V for the views.
// Lives on its own QThread; progress is reported per finished layer; cancellation is an atomic
// flag the GUI thread sets and the forward pass polls between layers.
#pragma once

#include <QObject>
#include <QString>
#include <atomic>
#include <memory>
#include <string>

#include "app_types.h"

namespace attnscope {
class Backend;
}

namespace attnscope::app {

struct RunRequest {
  LoadedModelPtr model;
  std::string prompt;  // UTF-8 bytes as typed; validated by the tokenizer
  std::shared_ptr<std::atomic<bool>> cancel;
  quint64 id = 0;
};

class RunWorker : public QObject {
  Q_OBJECT
 public:
  // backendKind: "cpu" or "cuda".
  explicit RunWorker(QString backendKind, QObject* parent = nullptr);
  ~RunWorker() override;

  // Runs on the worker thread. Emits progress while running, then exactly one of
  // finished / failed / cancelled.
  void run(const attnscope::app::RunRequest& request);

 signals:
  void progress(int layersDone, int layerCount, quint64 id);
  void finished(attnscope::app::RunResultPtr result, quint64 id);
  void failed(const QString& message, quint64 id);
  void cancelled(quint64 id);

 private:
  Backend& backendFor(const LoadedModelPtr& model);

  QString m_backendKind;
  // The backend is kept per model: a device backend may cache weights keyed by their address,
  // so holding the model alive with it keeps those addresses from being reused.
  std::shared_ptr<Backend> m_backend;
  LoadedModelPtr m_backendModel;
};

}  // namespace attnscope::app
