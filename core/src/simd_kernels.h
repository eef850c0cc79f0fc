// Small float kernels of the CPU attention (packed key scores, weighted row sums), compiled
// for several x86 levels and picked once at load time, each with a fixed summation order.
#pragma once

#include <cstddef>
#include <cstdint>

namespace attnscope::detail {

// Keys packed for the score kernel: blocks of kKeyBlock keys, each block [d, kKeyBlock]
// (key j, dim e at ((j / kKeyBlock) * d + e) * kKeyBlock + j % kKeyBlock), the last block
// zero-padded. One block is a contiguous d*16 floats, so the kernel streams it.
inline constexpr int kKeyBlock = 16;
inline size_t packed_keys_size(int n_key, int d) {
  return static_cast<size_t>((n_key + kKeyBlock - 1) / kKeyBlock) * d * kKeyBlock;
}
// Packs keys: [n_key, row_stride] (head vector at offset 0) into packed: [packed_keys_size].
void pack_keys(const float* keys, int n_key, int row_stride, int d, float* packed);
// Scores of one query against packed keys: out[j] = sum_e q[e] * key_j[e] for q: [d],
// out: [n_key]. Each sum runs over e in ascending order, whatever the vector width.
void scores_packed_f32(const float* q, const float* packed, int n_key, int d, float* out);
// out: [d] = sum_j w[j] * rows[j*row_stride + 0..d) for w: [n]; even and odd j are summed
// separately in ascending order, then added (a fixed order on every machine).
void weighted_sum_f32(const float* w, const float* rows, int row_stride, int n, int d, float* out);

// Gumbel(0,1) draws of one row of keys: out[t] = G(row_key, j0 + t) for t in [0, n), where
// G(key, j) = -log(-log(U)) and U = ((h >> 9) + 0.5) / 2^23 in (0, 1), exact in float, with
// h = mix(mix(j * 0x9E3779B1 ^ lo32(key)) ^ hi32(key)), mix = lowbias32 (32-bit integers).
// log is a branch-free float logarithm (about 1 ulp, Cephes-style polynomial), 16 keys per
// vector, so Keyformer's noise over a whole causal prompt costs little beside the scores.
// Depends only on (row_key, j): any split of a row gives the same bits.
void gumbel_row_f32(uint64_t row_key, int j0, int n, float* out);

// attention_row (ops.h) on packed keys (pack_keys), probs: [n_key]. ops.h attention_row packs
// its keys and calls this, and the CPU backend calls it on a packed copy of its cache, so both
// give identical bits. Defined in ops.cpp.
void attention_row_packed(const float* q, const float* packed, int n_key, int head_dim,
                          float* probs);

}  // namespace attnscope::detail
