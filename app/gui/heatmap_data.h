// Turns one head's attention matrix from core into the display-ready HeatmapData: masked cells
// marked NaN, and blocks max-pooled when the prompt is longer than the plot can show.
#pragma once

#include <vector>

#include "app_types.h"

namespace attnscope::app {

// Largest number of cells per axis drawn one per token. Longer prompts are pooled so the map
// stays a few MB and every cell is at least a pixel on a large screen.
inline constexpr int kMaxHeatmapCells = 1024;

// probs: [T, T] row-major attention probabilities (row = query, zero above the diagonal).
// Cells are blocks of ceil(T / maxCells) tokens holding the block maximum; cells whose keys lie
// wholly after their queries are NaN. Throws Error(Usage) when probs.size() != T*T.
HeatmapDataPtr makeHeatmap(RunResultPtr run, int layer, int head, const std::vector<float>& probs,
                           int nTokens, int maxCells = kMaxHeatmapCells);

}  // namespace attnscope::app
