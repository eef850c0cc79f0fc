// Display preparation of attention maps: see heatmap_data.h.
#include "heatmap_data.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "attnscope/error.h"

namespace attnscope::app {

HeatmapDataPtr makeHeatmap(RunResultPtr run, int layer, int head, const std::vector<float>& probs,
                           int nTokens, int maxCells) {
  if (nTokens <= 0 || maxCells <= 0 ||
      probs.size() != static_cast<size_t>(nTokens) * static_cast<size_t>(nTokens)) {
    throw_usage("heatmap: expected " + std::to_string(nTokens) + "x" + std::to_string(nTokens) +
                " probabilities, got " + std::to_string(probs.size()));
  }
  auto map = std::make_shared<HeatmapData>();
  map->run = std::move(run);
  map->layer = layer;
  map->head = head;
  map->nTokens = nTokens;
  map->blockSize = (nTokens + maxCells - 1) / maxCells;
  const int b = map->blockSize;
  const int cells = (nTokens + b - 1) / b;
  map->cells = cells;
  map->values.assign(static_cast<size_t>(cells) * cells, std::numeric_limits<float>::quiet_NaN());

  float maxValue = 0;
  float minPositive = std::numeric_limits<float>::infinity();
  for (int q = 0; q < nTokens; ++q) {
    const float* row = probs.data() + static_cast<size_t>(q) * nTokens;
    float* out = map->values.data() + static_cast<size_t>(q / b) * cells;
    // Keys after the query are masked by causality; they stay out of the block maximum.
    for (int k = 0; k <= q; ++k) {
      const float p = row[k];
      float& cell = out[k / b];
      if (std::isnan(cell) || p > cell) cell = p;
      maxValue = std::max(maxValue, p);
      if (p > 0) minPositive = std::min(minPositive, p);
    }
  }
  map->maxValue = maxValue;
  map->minPositiveValue = std::isfinite(minPositive) ? minPositive : 0.0f;
  return map;
}

}  // namespace attnscope::app
