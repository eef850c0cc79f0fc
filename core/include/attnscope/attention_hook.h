// The seam through which a variant replaces a layer's attention inside InferenceSession: the
// session computes Q/K/V and keeps the full KV cache (the "shadow" cache eviction policies are
// measured against); a hook, when set, computes the attention output instead of the backend.
#pragma once

#include "attnscope/backend.h"

namespace attnscope {

class AttentionHook {
 public:
  virtual ~AttentionHook() = default;
  // q: [n_query, H, d] post-RoPE; k, v: [n_key, Hkv, d] the full cache; out: [n_query, H, d].
  // Return false to let the backend compute plain causal attention (out untouched then).
  virtual bool attend(int layer, const AttentionShape& shape, const float* q, const float* k,
                      const float* v, float* out) = 0;
};

}  // namespace attnscope
