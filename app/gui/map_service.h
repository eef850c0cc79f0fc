// Pooled attention maps for the views, computed off the GUI thread by core's compute_map, with
// a small cache. Each view asks on its own channel ("map", "compare.a", "strip.row", ...); a
// newer request on a channel supersedes an older one that is still waiting or running, so
// zooming, panning and scrolling through heads never builds a backlog or shows a stale map; a
// superseded map still being computed stops within one row bin.
#pragma once

#include <QHash>
#include <QObject>
#include <QPointer>
#include <QString>
#include <QThreadPool>
#include <atomic>
#include <functional>
#include <list>
#include <memory>
#include <mutex>

#include "app_types.h"

namespace attnscope::app {

class MapService : public QObject {
  Q_OBJECT
 public:
  using Callback = std::function<void(const PooledMapPtr&)>;
  using FailureCallback = std::function<void(const QString&)>;

  explicit MapService(QObject* parent = nullptr);
  ~MapService() override;  // drops pending requests and waits for the running one

  // Asks for `request` of `trace`. `onReady` runs on the GUI thread with the map, unless a newer
  // request on `channel` superseded this one or `receiver` (may be null) was destroyed. A cached
  // map answers before this call returns. `onFailure` (optional) gets one message (e.g. a layer
  // outside the trace); failures are also emitted as failed().
  void request(const QString& channel, const TracePtr& trace, const MapRequest& request,
               QObject* receiver, Callback onReady, FailureCallback onFailure = {});
  // Forgets the channel's pending request (its callback will not run).
  void cancel(const QString& channel);
  // Drops every cached map (a new session).
  void clearCache();
  // Requests waiting or running.
  int pendingCount() const;
  // Blocks until every queued request has been computed (tests).
  void waitForDone();

  // Maps kept for instant re-display (zoom back, head switches).
  static constexpr int kCacheEntries = 48;

 signals:
  void failed(const QString& channel, const QString& message);
  // Pending count changed (status bar activity indicator).
  void busyChanged(bool busy);

 private:
  // The trace is held weakly: a cache entry never keeps a closed session's trace alive, and an
  // expired entry never matches a new trace that happens to reuse the address.
  struct Key {
    std::weak_ptr<const Trace> trace;
    MapRequest request;
  };
  static bool sameKey(const Key& a, const Key& b);
  PooledMapPtr cached(const Key& key);
  void remember(const Key& key, const PooledMapPtr& map);
  std::shared_ptr<std::atomic<quint64>> generation(const QString& channel);
  void stopRunning(const QString& channel);  // sets the stop flag of the channel's last request

  QThreadPool m_pool;
  QHash<QString, std::shared_ptr<std::atomic<quint64>>> m_generations;
  // Stop flag of each channel's latest request (compute_map polls it): GUI thread only.
  QHash<QString, std::shared_ptr<std::atomic<bool>>> m_stops;
  std::list<std::pair<Key, PooledMapPtr>> m_cache;  // most recent first; GUI thread only
  std::atomic<int> m_pending{0};
};

}  // namespace attnscope::app
