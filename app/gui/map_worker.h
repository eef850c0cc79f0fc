// Recomputes one head's attention map from a stored run off the GUI thread. Requests that a
// newer one has superseded are skipped, so scrolling through heads never builds a backlog.
#pragma once

#include <QObject>
#include <QString>
#include <atomic>

#include "app_types.h"

namespace attnscope::app {

class MapWorker : public QObject {
  Q_OBJECT
 public:
  using QObject::QObject;

  // Called on the GUI thread before queueing compute() for `id`.
  void setLatestRequest(quint64 id) { m_latest.store(id); }

  // Runs on the worker thread. Emits ready or failed unless `id` is no longer the latest.
  void compute(attnscope::app::RunResultPtr run, int layer, int head, quint64 id);

 signals:
  void ready(attnscope::app::HeatmapDataPtr map, quint64 id);
  void failed(const QString& message, quint64 id);

 private:
  std::atomic<quint64> m_latest{0};
};

}  // namespace attnscope::app
