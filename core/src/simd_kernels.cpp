// Float kernels of the CPU attention. target_clones builds AVX-512/AVX2 variants next to the
// baseline and the loader picks one per process, so within a run the forward pass and the
// capture recomputation get identical bits. The order of additions is fixed in the code; the
// AVX2/AVX-512 clones fuse multiply-adds (FMA), so across machines of different ISA level
// results may differ in the last bits (well inside every named tolerance).
#include "simd_kernels.h"

#include <cstring>

namespace attnscope::detail {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define ATTNSCOPE_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define ATTNSCOPE_CLONES
#endif

void pack_keys(const float* keys, int n_key, int row_stride, int d, float* packed) {
  const int n_block = (n_key + kKeyBlock - 1) / kKeyBlock;
  for (int b = 0; b < n_block; ++b) {
    float* dst = packed + static_cast<size_t>(b) * d * kKeyBlock;
    for (int t = 0; t < kKeyBlock; ++t) {
      const int j = b * kKeyBlock + t;
      if (j < n_key) {
        const float* src = keys + static_cast<size_t>(j) * row_stride;
        for (int e = 0; e < d; ++e) dst[e * kKeyBlock + t] = src[e];
      } else {
        for (int e = 0; e < d; ++e) dst[e * kKeyBlock + t] = 0.0f;
      }
    }
  }
}

// GCC/Clang vector extension: 16 floats, lowered to one AVX-512, two AVX2 or four SSE registers
// depending on the clone. Plain loops here were vectorised across the wrong axis by GCC 12.
typedef float Vec16 __attribute__((vector_size(64)));
static_assert(kKeyBlock == 16, "Vec16 holds one key block");

ATTNSCOPE_CLONES
void scores_packed_f32(const float* q, const float* packed, int n_key, int d, float* out) {
  const int n_block = (n_key + kKeyBlock - 1) / kKeyBlock;
  const size_t block_size = static_cast<size_t>(d) * kKeyBlock;
  int b = 0;
  // Four blocks at a time: four independent add chains hide the add latency. Each key's sum
  // still runs over e in ascending order, exactly as in the one-block loop below.
  for (; b + 4 <= n_block; b += 4) {
    const float* blk = packed + b * block_size;
    Vec16 a0 = {}, a1 = {}, a2 = {}, a3 = {};
    for (int e = 0; e < d; ++e) {
      Vec16 k0, k1, k2, k3;
      std::memcpy(&k0, blk + e * kKeyBlock, sizeof(k0));  // unaligned loads
      std::memcpy(&k1, blk + block_size + e * kKeyBlock, sizeof(k1));
      std::memcpy(&k2, blk + 2 * block_size + e * kKeyBlock, sizeof(k2));
      std::memcpy(&k3, blk + 3 * block_size + e * kKeyBlock, sizeof(k3));
      const float qe = q[e];
      a0 += qe * k0;
      a1 += qe * k1;
      a2 += qe * k2;
      a3 += qe * k3;
    }
    // Blocks b..b+2 are full (b + 3 < n_block); the last may be partial.
    std::memcpy(out + b * kKeyBlock, &a0, sizeof(a0));
    std::memcpy(out + (b + 1) * kKeyBlock, &a1, sizeof(a1));
    std::memcpy(out + (b + 2) * kKeyBlock, &a2, sizeof(a2));
    const int nb =
        n_key - (b + 3) * kKeyBlock < kKeyBlock ? n_key - (b + 3) * kKeyBlock : kKeyBlock;
    for (int t = 0; t < nb; ++t) out[(b + 3) * kKeyBlock + t] = a3[t];
  }
  for (; b < n_block; ++b) {
    const float* blk = packed + b * block_size;
    Vec16 acc = {};
    for (int e = 0; e < d; ++e) {
      Vec16 k;
      std::memcpy(&k, blk + e * kKeyBlock, sizeof(k));
      acc += q[e] * k;
    }
    const int nb = n_key - b * kKeyBlock < kKeyBlock ? n_key - b * kKeyBlock : kKeyBlock;
    for (int t = 0; t < nb; ++t) out[b * kKeyBlock + t] = acc[t];
  }
}

ATTNSCOPE_CLONES
void weighted_sum_f32(const float* w, const float* rows, int row_stride, int n, int d, float* out) {
  int e0 = 0;
  // 16 dims per pass with even and odd rows in separate accumulators (two add chains), then
  // even + odd: a fixed order, independent of the vector width.
  for (; e0 + 16 <= d; e0 += 16) {
    Vec16 even = {}, odd = {};
    int j = 0;
    for (; j + 2 <= n; j += 2) {
      Vec16 x0, x1;
      std::memcpy(&x0, rows + static_cast<size_t>(j) * row_stride + e0, sizeof(x0));
      std::memcpy(&x1, rows + static_cast<size_t>(j + 1) * row_stride + e0, sizeof(x1));
      even += w[j] * x0;
      odd += w[j + 1] * x1;
    }
    if (j < n) {
      Vec16 x0;
      std::memcpy(&x0, rows + static_cast<size_t>(j) * row_stride + e0, sizeof(x0));
      even += w[j] * x0;
    }
    const Vec16 sum = even + odd;
    std::memcpy(out + e0, &sum, sizeof(sum));
  }
  for (; e0 < d; ++e0) {
    float even = 0.0f, odd = 0.0f;
    int j = 0;
    for (; j + 2 <= n; j += 2) {
      even += w[j] * rows[static_cast<size_t>(j) * row_stride + e0];
      odd += w[j + 1] * rows[static_cast<size_t>(j + 1) * row_stride + e0];
    }
    if (j < n) even += w[j] * rows[static_cast<size_t>(j) * row_stride + e0];
    out[e0] = even + odd;
  }
}

}  // namespace attnscope::detail
