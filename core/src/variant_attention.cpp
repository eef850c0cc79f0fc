// The reference attention row of a variant (variant_attention.h): scores from the same packed
// kernel the CPU backend uses (so full causal with nothing hidden gives the backend's bits),
// STRING's far keys scored with a re-rotated query, then mask, keep set and a stable softmax.
#include "attnscope/variant_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "attnscope/error.h"
#include "attnscope/ops.h"
#include "attnscope/variant_engine.h"
#include "simd_kernels.h"

namespace attnscope {
namespace detail {

void rotate_by(const float* q, int head_dim, int delta, float theta, float* out) {
  const int half = head_dim / 2;
  // cos/sin of the rotation, cached per thread for the last (delta, theta, d): a variant rotates
  // every far row by the same W - S. Formed as ops.cpp rope_half_split forms them (fp32
  // inv_freq and angle, cos/sin in double) so rotating by delta matches RoPE at position delta.
  thread_local int cached_delta = 0, cached_dim = -1;
  thread_local float cached_theta = 0.0f;
  thread_local std::vector<float> cs, sn;
  if (cached_dim != head_dim || cached_delta != delta || cached_theta != theta) {
    cs.assign(half, 0.0f);
    sn.assign(half, 0.0f);
    for (int i = 0; i < half; ++i) {
      const float expo = static_cast<float>(2 * i) / static_cast<float>(head_dim);
      const float inv_freq = 1.0f / static_cast<float>(std::pow(static_cast<double>(theta), expo));
      const double angle = static_cast<double>(static_cast<float>(delta) * inv_freq);
      cs[i] = static_cast<float>(std::cos(angle));
      sn[i] = static_cast<float>(std::sin(angle));
    }
    cached_dim = head_dim;
    cached_delta = delta;
    cached_theta = theta;
  }
  for (int i = 0; i < half; ++i) {
    const float a = q[i];
    const float b = q[i + half];
    out[i] = a * cs[i] - b * sn[i];
    out[i + half] = b * cs[i] + a * sn[i];
  }
}

void variant_attention_row_packed(const float* q_row, const float* q_shifted, int pos,
                                  const float* packed, int head_dim, const HeadMask* mask,
                                  int string_shift, const uint8_t* keep, float* probs) {
  const int n_key = pos + 1;
  scores_packed_f32(q_row, packed, n_key, head_dim, probs);
  if (q_shifted != nullptr && string_shift > 0 && pos >= string_shift) {
    // Keys j <= pos - S (distance >= S) see the query as if it sat at pos - S + W: the scores
    // of that prefix are recomputed with the re-rotated query (same kernel, same order).
    scores_packed_f32(q_shifted, packed, pos - string_shift + 1, head_dim, probs);
  }
  // Same scale and multiplication as detail::attention_row_packed (ops.cpp).
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  for (int j = 0; j < n_key; ++j) probs[j] *= scale;
  const bool masked = mask != nullptr && !mask->all_blocks;
  if (masked || keep != nullptr) {
    constexpr float kHidden = -std::numeric_limits<float>::infinity();
    int n_visible = 0;
    for (int j = 0; j < n_key; ++j) {
      if ((keep != nullptr && keep[j] == 0) || (masked && !mask->visible(pos, j))) {
        probs[j] = kHidden;
      } else {
        ++n_visible;
      }
    }
    if (n_visible == 0) {
      // Every key hidden (e.g. the query's own key evicted and no other kept): attend the
      // query's own key rather than produce an undefined distribution.
      std::fill(probs, probs + n_key, 0.0f);
      probs[pos] = 1.0f;
      return;
    }
  }
  softmax_inplace(probs, n_key);
}

}  // namespace detail

void variant_attention_row(const float* q_row, int pos, const float* k, int n_kv, int kv,
                           int head_dim, const VariantRowSpec& spec, float* probs) {
  if (q_row == nullptr || k == nullptr || probs == nullptr) {
    throw_usage("variant_attention_row: null tensor");
  }
  if (pos < 0 || n_kv <= 0 || kv < 0 || kv >= n_kv || head_dim <= 0 || head_dim % 2 != 0) {
    throw_usage("variant_attention_row: invalid shape (pos " + std::to_string(pos) + ", kv " +
                std::to_string(kv) + "/" + std::to_string(n_kv) + ", head_dim " +
                std::to_string(head_dim) + ")");
  }
  if (spec.string_shift < 0) throw_usage("variant_attention_row: negative STRING shift");
  const int n_key = pos + 1;
  thread_local std::vector<float> packed, shifted;
  packed.resize(detail::packed_keys_size(n_key, head_dim));
  detail::pack_keys(k + static_cast<size_t>(kv) * head_dim, n_key, n_kv * head_dim, head_dim,
                    packed.data());
  shifted.resize(static_cast<size_t>(head_dim));
  variant_attention_row_on_packed(q_row, pos, packed.data(), head_dim, spec, shifted.data(), probs);
}

void variant_attention_row_on_packed(const float* q_row, int pos, const float* packed, int head_dim,
                                     const VariantRowSpec& spec, float* shifted, float* probs) {
  const float* q_shift = nullptr;
  if (spec.string_shift > 0 && pos >= spec.string_shift) {
    detail::rotate_by(q_row, head_dim, spec.string_window - spec.string_shift, spec.rope_theta,
                      shifted);
    q_shift = shifted;
  }
  detail::variant_attention_row_packed(q_row, q_shift, pos, packed, head_dim, spec.mask,
                                       spec.string_shift, spec.keep, probs);
}

}  // namespace attnscope
