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

namespace {

typedef uint32_t UVec16 __attribute__((vector_size(64)));
typedef int32_t IVec16 __attribute__((vector_size(64)));

// Helpers take vectors by reference: by value, a 64-byte vector argument's ABI would depend on
// the clone's ISA level (-Wpsabi).

// lowbias32 (Wellons): a 32-bit integer mixer with low bias, one multiply per half.
inline void mix32(UVec16& x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
}

// Natural log of x > 0 (finite, normal): x = m * 2^e with m in [sqrt(1/2), sqrt(2)), then
// log(m) by the Cephes single-precision polynomial in f = m - 1, e * ln 2 added in two parts.
// In place.
inline void log_positive(Vec16& x) {
  IVec16 bits = (IVec16)x;
  IVec16 e = ((bits >> 23) & 0xff) - 126;   // x = m' * 2^e, m' in [0.5, 1)
  bits = (bits & 0x007fffff) | 0x3f000000;  // m' as a float
  Vec16 m = (Vec16)bits;
  const IVec16 small = m < 0.70710678118654752f;  // lanes: -1 where m' < sqrt(1/2)
  e += small;                                     // e - 1 there
  m = m + ((Vec16)(small & (IVec16)m)) - 1.0f;    // 2m' - 1 or m' - 1
  const Vec16 z = m * m;
  Vec16 y = 7.0376836292e-2f * m - 1.1514610310e-1f;
  y = y * m + 1.1676998740e-1f;
  y = y * m - 1.2420140846e-1f;
  y = y * m + 1.4249322787e-1f;
  y = y * m - 1.6668057665e-1f;
  y = y * m + 2.0000714765e-1f;
  y = y * m - 2.4999993993e-1f;
  y = y * m + 3.3333331174e-1f;
  y = y * m * z;
  const Vec16 ef = __builtin_convertvector(e, Vec16);
  y += -2.12194440e-4f * ef;
  y += -0.5f * z;
  x = m + y + 0.693359375f * ef;
}

}  // namespace

ATTNSCOPE_CLONES
void gumbel_row_f32(uint64_t row_key, int j0, int n, float* out) {
  const uint32_t seed_lo = static_cast<uint32_t>(row_key);
  const uint32_t seed_hi = static_cast<uint32_t>(row_key >> 32);
  UVec16 lane;
  for (int t = 0; t < 16; ++t) lane[t] = static_cast<uint32_t>(t);
  for (int b = 0; b < n; b += 16) {
    const UVec16 j = lane + static_cast<uint32_t>(j0 + b);
    // Two rounds keyed by both halves of the row key: neighbouring keys and rows decorrelate.
    UVec16 h = j * 0x9E3779B1u ^ seed_lo;
    mix32(h);
    h ^= seed_hi;
    mix32(h);
    // 23 bits, so that bits + 0.5 (24 significant bits) and U are exact in float.
    const IVec16 top23 = (IVec16)(h >> 9);
    Vec16 g = (__builtin_convertvector(top23, Vec16) + 0.5f) * (1.0f / 8388608.0f);  // U
    log_positive(g);
    g = -g;  // -log U > 0
    log_positive(g);
    g = -g;  // -log(-log U)
    const int nb = n - b < 16 ? n - b : 16;
    if (nb == 16) {
      std::memcpy(out + b, &g, sizeof(g));
    } else {
      for (int t = 0; t < nb; ++t) out[b + t] = g[t];
    }
  }
}

}  // namespace attnscope::detail
