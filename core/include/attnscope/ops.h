// Elementary CPU ops of the llama forward pass, exposed so tests can check each against
// hand-computed values. All are the reference definitions other backends must match.
#pragma once

#include <cstdint>
#include <span>

namespace attnscope {

// x: [n, dim] normalised in place: x * w / sqrt(mean(x^2) + eps), row by row.
void rms_norm(float* x, int n, int dim, const float* weight, float eps);

// x: [n, n_heads, head_dim] rotated in place at positions[n] with HF's half-split pairing:
// dims (i, i + d/2) form the pair rotated by angle pos * theta^(-2i/d).
void rope_half_split(float* x, int n, int n_heads, int head_dim, const int32_t* positions,
                     float theta);

// x: [n] replaced by softmax(x); -inf entries get probability 0. Returns nothing.
void softmax_inplace(float* x, int n);

// out: [n] = silu(gate) * up, elementwise.
void swiglu(const float* gate, const float* up, float* out, int n);

// Attention probabilities of one query head against keys 0..n_key-1 (causal limit applied
// by the caller via n_key). q: [d], keys: [n_key, row_stride] with the head's vector at
// offset 0 of each row; probs: [n_key]. scale = 1/sqrt(d).
void attention_row(const float* q, const float* keys, int n_key, int row_stride, int head_dim,
                   float* probs);

}  // namespace attnscope
