// Background pooled maps: see map_service.h.
#include "map_service.h"

#include <QMetaObject>
#include <exception>
#include <new>

#include "attnscope/error.h"

namespace attnscope::app {

MapService::MapService(QObject* parent) : QObject(parent) {
  // One map at a time: compute_map already spreads the rows of one map over every core.
  m_pool.setMaxThreadCount(1);
  m_pool.setExpiryTimeout(-1);
}

MapService::~MapService() {
  for (auto& generation : m_generations) generation->fetch_add(1);  // pending ones skip
  for (auto& stop : m_stops) stop->store(true);                     // the running one stops
  m_pool.clear();
  m_pool.waitForDone();
}

bool MapService::sameKey(const Key& a, const Key& b) {
  const MapRequest& x = a.request;
  const MapRequest& y = b.request;
  const TracePtr ta = a.trace.lock();
  return ta && ta == b.trace.lock() && x.layer == y.layer && x.head == y.head &&
         x.q_begin == y.q_begin && x.q_end == y.q_end && x.k_begin == y.k_begin &&
         x.k_end == y.k_end && x.out_rows == y.out_rows && x.out_cols == y.out_cols &&
         x.reduce == y.reduce && x.apply_kv == y.apply_kv && x.sample_rows == y.sample_rows;
}

PooledMapPtr MapService::cached(const Key& key) {
  for (auto it = m_cache.begin(); it != m_cache.end(); ++it) {
    if (sameKey(it->first, key)) {
      m_cache.splice(m_cache.begin(), m_cache, it);  // most recently used first
      return m_cache.front().second;
    }
  }
  return nullptr;
}

void MapService::remember(const Key& key, const PooledMapPtr& map) {
  if (cached(key)) return;
  m_cache.remove_if([](const auto& entry) { return entry.first.trace.expired(); });
  m_cache.emplace_front(key, map);
  while (m_cache.size() > static_cast<size_t>(kCacheEntries)) m_cache.pop_back();
}

std::shared_ptr<std::atomic<quint64>> MapService::generation(const QString& channel) {
  auto it = m_generations.find(channel);
  if (it == m_generations.end()) {
    it = m_generations.insert(channel, std::make_shared<std::atomic<quint64>>(0));
  }
  return it.value();
}

void MapService::request(const QString& channel, const TracePtr& trace, const MapRequest& request,
                         QObject* receiver, Callback onReady, FailureCallback onFailure) {
  auto gen = generation(channel);
  const quint64 mine = gen->fetch_add(1) + 1;  // supersedes whatever the channel asked before
  stopRunning(channel);
  if (!trace) return;
  const Key key{trace, request};
  if (PooledMapPtr map = cached(key)) {
    if (onReady) onReady(map);
    return;
  }
  QPointer<QObject> target(receiver);
  const bool hasReceiver = receiver != nullptr;
  if (m_pending.fetch_add(1) == 0) emit busyChanged(true);
  // The running computation stops (within one row bin) when a newer request supersedes it.
  auto stop = std::make_shared<std::atomic<bool>>(false);
  m_stops.insert(channel, stop);
  m_pool.start([this, gen, mine, trace, key, target, hasReceiver, channel, stop,
                onReady = std::move(onReady), onFailure = std::move(onFailure)]() {
    PooledMapPtr map;
    QString message;
    if (gen->load() == mine) {  // skipped when superseded while waiting
      try {
        map = std::make_shared<PooledMap>(compute_map(*trace, key.request, stop.get()));
      } catch (const Error& e) {
        if (!stop->load()) message = QString::fromUtf8(e.what());  // else superseded: silent
      } catch (const std::bad_alloc&) {
        message = QStringLiteral("map: not enough memory for this map");
      } catch (const std::exception& e) {
        message = QString::fromUtf8(e.what());
      }
    }
    QMetaObject::invokeMethod(
        this,
        [this, gen, mine, key, map, message, target, hasReceiver, channel, onReady, onFailure] {
          if (map) remember(key, map);  // useful even when superseded (zooming back)
          if (m_pending.fetch_sub(1) == 1) emit busyChanged(false);
          if (gen->load() != mine || (hasReceiver && !target)) return;
          if (map) {
            if (onReady) onReady(map);
          } else if (!message.isEmpty()) {
            if (onFailure) onFailure(message);
            emit failed(channel, message);
          }
        },
        Qt::QueuedConnection);
  });
}

void MapService::cancel(const QString& channel) {
  generation(channel)->fetch_add(1);
  stopRunning(channel);
}

void MapService::stopRunning(const QString& channel) {
  const auto it = m_stops.find(channel);
  if (it == m_stops.end()) return;
  it.value()->store(true);
  m_stops.erase(it);
}

void MapService::clearCache() {
  m_cache.clear();
}

int MapService::pendingCount() const {
  return m_pending.load();
}

void MapService::waitForDone() {
  m_pool.waitForDone();
}

}  // namespace attnscope::app
