// Reference CPU definitions of the llama forward pass's elementwise/row ops (ops.h). The forward
// pass and the capture recomputation both call these, so a map recomputed from captured Q/K is
// exactly what the forward used.
#include "attnscope/ops.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "simd_kernels.h"

namespace attnscope {

void rms_norm(float* x, int n, int dim, const float* weight, float eps) {
  for (int r = 0; r < n; ++r) {
    float* row = x + static_cast<size_t>(r) * dim;
    // Sum of squares in double: dim is small (hundreds) but rows can hold large outliers.
    double ss = 0.0;
    for (int i = 0; i < dim; ++i) ss += static_cast<double>(row[i]) * row[i];
    const float inv = static_cast<float>(1.0 / std::sqrt(ss / dim + static_cast<double>(eps)));
    for (int i = 0; i < dim; ++i) row[i] = weight[i] * (row[i] * inv);
  }
}

void rope_half_split(float* x, int n, int n_heads, int head_dim, const int32_t* positions,
                     float theta) {
  const int half = head_dim / 2;
  // Frequencies and angles are formed in float32 exactly as HF's LlamaRotaryEmbedding does
  // (inv_freq = 1 / theta^(2i/d) in fp32, angle = pos * inv_freq in fp32), so maps match the
  // reference to ~1e-6 even at long positions; cos/sin of that float angle are taken in double.
  std::vector<float> inv_freq(half);
  for (int i = 0; i < half; ++i) {
    const float expo = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    inv_freq[i] = 1.0f / static_cast<float>(std::pow(static_cast<double>(theta), expo));
  }
  std::vector<float> cs(half), sn(half);
  for (int r = 0; r < n; ++r) {
    const float pos = static_cast<float>(positions[r]);
    for (int i = 0; i < half; ++i) {
      const double angle = static_cast<double>(pos * inv_freq[i]);
      cs[i] = static_cast<float>(std::cos(angle));
      sn[i] = static_cast<float>(std::sin(angle));
    }
    for (int h = 0; h < n_heads; ++h) {
      float* v = x + (static_cast<size_t>(r) * n_heads + h) * head_dim;
      for (int i = 0; i < half; ++i) {
        const float a = v[i];
        const float b = v[i + half];
        v[i] = a * cs[i] - b * sn[i];
        v[i + half] = b * cs[i] + a * sn[i];
      }
    }
  }
}

void softmax_inplace(float* x, int n) {
  if (n <= 0) return;
  float mx = -std::numeric_limits<float>::infinity();
  for (int i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  if (mx == -std::numeric_limits<float>::infinity()) {
    // Every entry masked: no distribution exists; report all zeros rather than NaN.
    std::fill(x, x + n, 0.0f);
    return;
  }
  // Max subtraction keeps exp() <= 1 (no overflow); the normaliser is summed in double so
  // long rows (thousands of keys) do not lose the small tail probabilities.
  double sum = 0.0;
  for (int i = 0; i < n; ++i) {
    const float e = std::exp(x[i] - mx);
    x[i] = e;
    sum += e;
  }
  const double inv = 1.0 / sum;
  for (int i = 0; i < n; ++i) x[i] = static_cast<float>(x[i] * inv);
}

void swiglu(const float* gate, const float* up, float* out, int n) {
  for (int i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

namespace detail {

void attention_row_packed(const float* q, const float* packed, int n_key, int head_dim,
                          float* probs) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  scores_packed_f32(q, packed, n_key, head_dim, probs);
  for (int j = 0; j < n_key; ++j) probs[j] *= scale;
  softmax_inplace(probs, n_key);
}

}  // namespace detail

void attention_row(const float* q, const float* keys, int n_key, int row_stride, int head_dim,
                   float* probs) {
  if (n_key <= 0) return;
  // Pack the keys so the scores come from the same kernel (same summation order) as the CPU
  // backend's attention, which packs its cache once per call.
  thread_local std::vector<float> packed;
  packed.resize(detail::packed_keys_size(n_key, head_dim));
  detail::pack_keys(keys, n_key, row_stride, head_dim, packed.data());
  detail::attention_row_packed(q, packed.data(), n_key, head_dim, probs);
}

}  // namespace attnscope
