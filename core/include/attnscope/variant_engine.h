// The variant engine: an AttentionHook that runs one VariantSpec's four parts (grouping,
// pattern, positions, KV policy) layer by layer inside an InferenceSession, computes the
// attention through variant_attention_row, and records every decision into a Trace
// (groups, masks, KV keep/evict per decode step with the lost attention mass).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "attnscope/attention_hook.h"
#include "attnscope/model.h"
#include "attnscope/trace.h"
#include "attnscope/variant_parts.h"
#include "attnscope/variant_spec.h"

namespace attnscope {

// STRING's shift S and local window W as a position part defines them through its distance map
// (r -> r for r < S, r - S + W for r >= S). {0, 0} = positions as trained. Throws Error(Usage)
// when the part's map is neither the identity nor of that form for r in [0, max_distance].
struct StringParams {
  int shift = 0;
  int window = 0;
  bool active() const { return shift > 0; }
};
StringParams string_params_of(const PositionPart& part, int max_distance);

// True when `a` and `b` name the same part with the same parameters.
bool same_part(const PartConfig& a, const PartConfig& b);

struct VariantEngineOptions {
  // Compute prefill attention in the hook even where the backend would give the same result
  // (tests use it to prove the hook path reproduces the backend); default lets the backend do
  // prefill when only the KV part differs from the baseline (policies never change prefill).
  bool force_hook = false;
  bool record_k = true;    // append the attended K ([T, n_kv, d] per layer) to trace.k
  int reserve_tokens = 0;  // final length when known: trace.k is reserved once, not regrown
  const std::atomic<bool>* cancel = nullptr;
  int n_threads = 0;  // <= 0: hardware concurrency
};

class VariantAttention final : public AttentionHook {
 public:
  // trace: where decisions are recorded (groups, group_steps, masks, mask_density,
  // pattern_notes, pattern_scores, string_shift/window, kv_steps, k, k_heads); it must outlive
  // the hook. The trace's per-layer vectors are sized here.
  VariantAttention(const VariantSpec& spec, std::shared_ptr<const Model> model, Trace* trace,
                   const VariantEngineOptions& options = {});
  ~VariantAttention() override;

  bool attend(int layer, const AttentionShape& shape, const float* q, const float* k,
              const float* v, float* out) override;

  // Whether the hook records K itself (grouping builds new KV heads or differs from native);
  // otherwise the caller records the native K.
  bool records_k() const { return m_records_k; }
  // Simulated KV cache size after the last call: kept entries x 2 (K and V) x d x 4 bytes,
  // summed over layers and attended KV heads.
  double kv_cache_bytes() const;
  GroupReduce group_reduce() const { return m_reduce; }

 private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
  bool m_records_k = false;
  GroupReduce m_reduce = GroupReduce::Mean;
};

namespace detail {

// variant_attention_row on keys packed once per KV head (simd_kernels.h layout, covering at
// least pos + 1 keys). q_shifted: [d] the query re-rotated by (W - S) positions, used for keys
// at distance >= string_shift; null when STRING is off. keep: [pos + 1] or null. probs: [pos + 1].
void variant_attention_row_packed(const float* q_row, const float* q_shifted, int pos,
                                  const float* packed, int head_dim, const HeadMask* mask,
                                  int string_shift, const uint8_t* keep, float* probs);

// out: [d] = q rotated by `delta` positions with half-split RoPE (rotations compose
// additively, so a post-RoPE query at p becomes the query at p + delta).
void rotate_by(const float* q, int head_dim, int delta, float theta, float* out);

}  // namespace detail

}  // namespace attnscope
