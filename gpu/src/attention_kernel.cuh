// Causal grouped-query attention on the GPU: one fused kernel with an online (flash-style)
// fp32 softmax, so no [n_query, n_key] score matrix is ever materialised. Private to gpu/src.
#pragma once

#include <cuda_runtime_api.h>

#include "attnscope/backend.h"

namespace attnscope::gpu {

// Largest head_dim the kernel supports (each lane keeps head_dim / 32 output accumulators).
constexpr int kMaxAttentionHeadDim = 256;

// Same definition as Backend::attention: for each query row r (absolute position pos0 + r) and
// head h, out[r, h] = softmax_j(q[r, h]·k[j, h / (H / Hkv)] / sqrt(d)) · v[j, ...] over keys
// j = 0 .. pos0 + r.
// q: [n_query, H, d]; k, v: [pos0 + n_query, Hkv, d]; out: [n_query, H, d]; row-major device
// pointers. The shape must already be validated (H % Hkv == 0, 1 <= d <= 256, n_query >= 1,
// pos0 >= 0). Asynchronous on `stream`; launch errors throw Error(Runtime).
void attention_causal_gqa(cudaStream_t stream, const AttentionShape& shape, const float* q,
                          const float* k, const float* v, float* out);

// cudaSuccess when the kernel has an image the current device can run (checked by the
// availability probe, so an unsupported GPU is reported up front instead of at first use).
cudaError_t attention_kernel_loadable();

}  // namespace attnscope::gpu
