// Loads a model file or HF directory off the GUI thread. Lives on its own QThread; each request
// carries an id so the controller can drop answers to requests it no longer wants.
#pragma once

#include <QObject>
#include <QString>

#include "app_types.h"

namespace attnscope::app {

class ModelLoaderWorker : public QObject {
  Q_OBJECT
 public:
  using QObject::QObject;

  // Runs on the worker thread (call through a queued invocation). Emits exactly one of
  // loaded / failed.
  void load(const QString& path, quint64 requestId);

 signals:
  void loaded(attnscope::app::LoadedModelPtr model, quint64 requestId);
  void failed(const QString& message, quint64 requestId);
};

}  // namespace attnscope::app
