// Synthetic traces shared by the core tests: a random-Q/K trace of any shape (maps, metrics)
// and a fully populated small trace with every optional field (trace I/O, exports).
#pragma once

#include <cstdint>

#include "attnscope/trace.h"

namespace attnscope::test {

// One layer of T baseline tokens (all id 1, all prefilled) with H query heads over n_kv KV
// heads of head_dim d; q: [T, H, d] and k: [T, n_kv, d] drawn from N(0, 1) with `seed`.
Trace make_qk_trace(int T, int H, int n_kv, int d, uint32_t seed);

// Shape of make_full_trace.
namespace full_trace {
constexpr int kLayers = 2, kHeads = 4, kKvHeads = 2, kDim = 8, kVocab = 100;
constexpr int kPrompt = 9, kDecode = 3, kTokens = kPrompt + kDecode;
}  // namespace full_trace

// Every field populated, with the awkward cases: invalid UTF-8 token text, NaN/inf metrics,
// a next-token row shorter than the others, denormal and negative-zero floats. Per layer: groups
// {0, 0, 1, 1} with key norms {1.5, 2.25}; masks: head 1 a 3x3 block pattern of block 4, head 2
// a window of 5 with 2 sinks; pattern note "query-aware D=0.03" on layer 0. STRING shift 3,
// window 2. Decode steps: group_steps and kv_steps (budgets {6, 6}, lost mass {0.125, 0},
// random reasons 0..4). Variant "pattern=window;positions=string".
Trace make_full_trace(uint32_t seed);

}  // namespace attnscope::test
