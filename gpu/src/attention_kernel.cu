// Causal GQA attention kernel: one warp per (query row, head). Keys are visited in chunks of 32,
// one key per lane for the score, then the chunk's probabilities are broadcast lane by lane
// while each lane accumulates its own head_dim / 32 output dimensions. Online softmax in fp32:
// running max m, running denominator l, accumulator rescaled by exp(m_old - m_new) per chunk.
// Written for clarity and exactness first; it reads K and V straight from global memory.
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "attention_kernel.cuh"
#include "attnscope/error.h"
#include "cuda_check.h"

namespace attnscope::gpu {

namespace {

constexpr int kWarpSize = 32;
constexpr unsigned kFullMask = 0xffffffffu;
// Warps (= (row, head) tasks) per block. Each warp is independent: no __syncthreads.
constexpr int kWarpsPerBlock = 4;

// Butterfly reductions: every lane ends with the same bit-identical value (each step combines
// the same two operands on both partner lanes), which keeps m and l uniform across the warp.
__device__ __forceinline__ float warp_max(float value) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    value = fmaxf(value, __shfl_xor_sync(kFullMask, value, offset));
  }
  return value;
}

__device__ __forceinline__ float warp_sum(float value) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    value += __shfl_xor_sync(kFullMask, value, offset);
  }
  return value;
}

// kDimsPerLane = ceil(d / 32): lane `lane` owns output dims lane + 32 * i, i < kDimsPerLane.
// q, out: [n_query, n_head, d]; k, v: [pos0 + n_query, n_head_kv, d].
template <int kDimsPerLane>
__global__ void __launch_bounds__(kWarpsPerBlock* kWarpSize)
    attention_causal_gqa_kernel(const float* __restrict__ q, const float* __restrict__ k,
                                const float* __restrict__ v, float* __restrict__ out, int n_query,
                                int pos0, int n_head, int n_head_kv, int d, float scale) {
  __shared__ float q_shared[kWarpsPerBlock][kDimsPerLane * kWarpSize];

  const int warp = static_cast<int>(threadIdx.x) / kWarpSize;
  const int lane = static_cast<int>(threadIdx.x) % kWarpSize;
  const std::int64_t task = static_cast<std::int64_t>(blockIdx.x) * kWarpsPerBlock + warp;
  // Uniform per warp, and no block-wide barrier follows, so an idle warp may leave.
  if (task >= static_cast<std::int64_t>(n_query) * n_head) return;

  const int row = static_cast<int>(task / n_head);
  const int head = static_cast<int>(task % n_head);
  const int kv_head = head / (n_head / n_head_kv);
  const int n_valid = pos0 + row + 1;  // causal: keys 0 .. pos0 + row

  const std::size_t q_offset =
      (static_cast<std::size_t>(row) * n_head + static_cast<std::size_t>(head)) * d;
  float* q_row = q_shared[warp];
  for (int i = lane; i < d; i += kWarpSize) q_row[i] = q[q_offset + i];
  __syncwarp();

  const std::size_t kv_stride = static_cast<std::size_t>(n_head_kv) * d;  // one position
  const float* k_head = k + static_cast<std::size_t>(kv_head) * d;
  const float* v_head = v + static_cast<std::size_t>(kv_head) * d;

  float running_max = -INFINITY;
  float running_sum = 0.0f;
  float acc[kDimsPerLane];
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) acc[i] = 0.0f;

  for (int base = 0; base < n_valid; base += kWarpSize) {
    // 1) One key per lane: score s_j = (q · k_j) * scale; lanes past the causal limit get -inf.
    const int j = base + lane;
    float score = -INFINITY;
    if (j < n_valid) {
      const float* k_row = k_head + static_cast<std::size_t>(j) * kv_stride;
      float dot = 0.0f;
      for (int i = 0; i < d; ++i) dot = fmaf(q_row[i], __ldg(k_row + i), dot);
      score = dot * scale;
    }
    // 2) Online softmax update. Key `base` is always valid, so new_max is finite for finite
    //    inputs; exp(-inf - finite) = 0 makes the first chunk's correction vanish.
    const float new_max = fmaxf(running_max, warp_max(score));
    const float correction = expf(running_max - new_max);
    const float p = j < n_valid ? expf(score - new_max) : 0.0f;
    running_sum = running_sum * correction + warp_sum(p);
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i) acc[i] *= correction;
    // 3) acc += sum_t p_t * v_t over this chunk; p_t broadcast from lane t, V rows read
    //    coalesced across lanes.
    const int chunk = min(kWarpSize, n_valid - base);
    for (int t = 0; t < chunk; ++t) {
      const float p_t = __shfl_sync(kFullMask, p, t);
      const float* v_row = v_head + static_cast<std::size_t>(base + t) * kv_stride;
#pragma unroll
      for (int i = 0; i < kDimsPerLane; ++i) {
        const int c = lane + kWarpSize * i;
        if (c < d) acc[i] = fmaf(p_t, __ldg(v_row + c), acc[i]);
      }
    }
    running_max = new_max;
  }

  const float inv_sum = 1.0f / running_sum;  // >= 1 term equal to exp(0) = 1, never zero
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) {
    const int c = lane + kWarpSize * i;
    if (c < d) out[q_offset + c] = acc[i] * inv_sum;
  }
}

template <int kDimsPerLane>
void launch(cudaStream_t stream, const AttentionShape& s, const float* q, const float* k,
            const float* v, float* out) {
  const std::int64_t tasks = static_cast<std::int64_t>(s.n_query) * s.n_head;
  const std::int64_t blocks = (tasks + kWarpsPerBlock - 1) / kWarpsPerBlock;
  if (blocks > INT_MAX) {
    throw_usage("CUDA attention: n_query * H = " + std::to_string(tasks) +
                " is too large for one launch");
  }
  // Same expression as the CPU reference: 1 / sqrt(d) in float.
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  attention_causal_gqa_kernel<kDimsPerLane>
      <<<static_cast<unsigned>(blocks), kWarpsPerBlock * kWarpSize, 0, stream>>>(
          q, k, v, out, s.n_query, s.pos0, s.n_head, s.n_head_kv, s.head_dim, scale);
  ATTNSCOPE_CUDA_CHECK_LAUNCH();
}

}  // namespace

void attention_causal_gqa(cudaStream_t stream, const AttentionShape& shape, const float* q,
                          const float* k, const float* v, float* out) {
  if (shape.n_query <= 0) return;
  // Instantiate only the register budgets needed: d <= 32, 64, 128, 256.
  if (shape.head_dim <= 32) {
    launch<1>(stream, shape, q, k, v, out);
  } else if (shape.head_dim <= 64) {
    launch<2>(stream, shape, q, k, v, out);
  } else if (shape.head_dim <= 128) {
    launch<4>(stream, shape, q, k, v, out);
  } else {
    launch<8>(stream, shape, q, k, v, out);
  }
}

cudaError_t attention_kernel_loadable() {
  cudaFuncAttributes attributes{};
  return cudaFuncGetAttributes(&attributes, attention_causal_gqa_kernel<2>);
}

}  // namespace attnscope::gpu
