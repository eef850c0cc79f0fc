// Attention map worker: see map_worker.h.
#include "map_worker.h"

#include <exception>
#include <new>

#include "heatmap_data.h"

namespace attnscope::app {

void MapWorker::compute(RunResultPtr run, int layer, int head, quint64 id) {
  if (id != m_latest.load()) return;  // superseded while queued
  try {
    if (!run || !run->capture) {
      emit failed(QStringLiteral("attention map: no run to show"), id);
      return;
    }
    // [T, T] probabilities from core; the app only reshapes them for display.
    const std::vector<float> probs = run->capture->attention_probs(layer, head);
    if (id != m_latest.load()) return;
    HeatmapDataPtr map = makeHeatmap(run, layer, head, probs, run->nTokens());
    emit ready(std::move(map), id);
  } catch (const std::bad_alloc&) {
    emit failed(QStringLiteral("attention map: not enough memory"), id);
  } catch (const std::exception& e) {
    emit failed(QString::fromUtf8(e.what()), id);
  }
}

}  // namespace attnscope::app
