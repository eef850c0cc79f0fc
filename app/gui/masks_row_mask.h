// Which pattern mask governs one query row of a trace, as core's compute_map reads it: decode rows
// (query >= n_prompt) use the mask the pattern returned at their step (mask_steps, expanded with
// step_mask_for_row), every other row the prefill mask. Shared by the masks view and the
// attention map's mask overlay so both shade exactly what the maps leave out.
#pragma once

#include "attnscope/trace.h"

namespace attnscope::app {

// The mask of (layer, head) for `query`, or null when the trace records none. `scratch` holds an
// expanded decode-step mask; the result may point into it.
inline const HeadMask* maskForQueryRow(const Trace& t, int layer, int head, int query,
                                       HeadMask* scratch) {
  if (layer < 0 || head < 0 || query < 0) return nullptr;
  const auto L = static_cast<size_t>(layer), h = static_cast<size_t>(head);
  const size_t step = static_cast<size_t>(query - t.n_prompt);
  if (query >= t.n_prompt && step < t.mask_steps.size() && L < t.mask_steps[step].size() &&
      h < t.mask_steps[step][L].size()) {
    *scratch = step_mask_for_row(t.mask_steps[step][L][h], query);
    return scratch;
  }
  if (L < t.masks.size() && h < t.masks[L].size()) return &t.masks[L][h];
  return nullptr;
}

// True when `mask` hides nothing (full causal).
inline bool maskIsFullCausal(const HeadMask& mask) {
  return mask.all_blocks;
}

}  // namespace attnscope::app
