// The reference attention of a variant for one (query position, query head): causal, through
// the head's mask, over the KV head its grouping chose, with STRING's distance remapping and
// an optional keep set (KV eviction). The engine's forward and the pooled maps both call it,
// so a map always shows exactly what the variant computed.
#pragma once

#include <cstdint>

#include "attnscope/variant_parts.h"

namespace attnscope {

struct VariantRowSpec {
  const HeadMask* mask = nullptr;  // null = full causal
  int string_shift = 0;            // STRING S; 0 = positions as trained
  int string_window = 0;           // STRING W
  float rope_theta = 10000.0f;     // to re-rotate the query for remapped distances
  const uint8_t* keep = nullptr;   // [pos + 1] 1 = key in the cache; null = all kept
};

// q_row: [d] post-RoPE query at absolute position `pos`; k: [n_key, n_kv, d] post-RoPE keys
// (n_key > pos); kv: the KV head to read; probs: [pos + 1] output, 0 where not visible/kept.
// Rows whose every key is hidden fall back to the query's own key (never NaN).
void variant_attention_row(const float* q_row, int pos, const float* k, int n_kv, int kv,
                           int head_dim, const VariantRowSpec& spec, float* probs);

// The same row on keys packed once for many rows (maps, head metrics): packed holds the KV
// head's keys laid out by detail::pack_keys (simd_kernels.h) for at least pos + 1 positions;
// shifted: [head_dim] scratch for STRING's re-rotated query. Bit-identical to
// variant_attention_row, which packs per call and then calls this.
void variant_attention_row_on_packed(const float* q_row, int pos, const float* packed, int head_dim,
                                     const VariantRowSpec& spec, float* shifted, float* probs);

}  // namespace attnscope
