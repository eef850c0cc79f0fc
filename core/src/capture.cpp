// RecordedCapture: keeps post-RoPE Q/K/V per layer and the logits of every forward call, and
// recomputes any head's attention probabilities on demand with the forward's own row function.
#include "attnscope/capture.h"

#include <string>

#include "attnscope/error.h"
#include "attnscope/ops.h"
#include "simd_kernels.h"

namespace attnscope {

RecordedCapture::RecordedCapture(const ModelConfig& config, bool all_logits)
    : m_config(config), m_all_logits(all_logits) {
  if (config.n_layer <= 0 || config.n_head <= 0 || config.n_head_kv <= 0 || config.head_dim <= 0 ||
      config.n_head % config.n_head_kv != 0) {
    throw_usage("capture: model config has invalid layer/head sizes");
  }
  m_q.resize(config.n_layer);
  m_k.resize(config.n_layer);
  m_v.resize(config.n_layer);
}

void RecordedCapture::on_qkv(int layer, int pos0, int n, const float* q, const float* k,
                             const float* v) {
  if (layer < 0 || layer >= m_config.n_layer) {
    throw_usage("capture: layer " + std::to_string(layer) + " out of range");
  }
  const size_t q_row = static_cast<size_t>(m_config.n_head) * m_config.head_dim;
  const size_t kv_row = static_cast<size_t>(m_config.n_head_kv) * m_config.head_dim;
  auto& lq = m_q[layer];
  auto& lk = m_k[layer];
  auto& lv = m_v[layer];
  const size_t have = lq.size() / q_row;
  if (pos0 < 0 || static_cast<size_t>(pos0) > have) {
    throw_usage("capture: layer " + std::to_string(layer) + " reported position " +
                std::to_string(pos0) + " but only " + std::to_string(have) +
                " positions are recorded");
  }
  // A position earlier than what is stored means the session rewound (reset or a cancelled
  // call retried): drop the stale rows from there on.
  lq.resize(pos0 * q_row);
  lk.resize(pos0 * kv_row);
  lv.resize(pos0 * kv_row);
  lq.insert(lq.end(), q, q + n * q_row);
  lk.insert(lk.end(), k, k + n * kv_row);
  lv.insert(lv.end(), v, v + n * kv_row);
  if (layer == m_config.n_layer - 1) m_n_tokens = pos0 + n;
}

void RecordedCapture::on_logits(int pos0, int n, const float* logits) {
  const size_t vocab = static_cast<size_t>(m_config.vocab_size);
  m_logits.insert(m_logits.end(), logits, logits + n * vocab);
  for (int i = 0; i < n; ++i) m_logit_positions.push_back(pos0 + i);
}

std::vector<float> RecordedCapture::attention_row(int layer, int head, int query) const {
  if (layer < 0 || layer >= m_config.n_layer) {
    throw_usage("attention map: layer " + std::to_string(layer) + " out of range [0, " +
                std::to_string(m_config.n_layer) + ")");
  }
  if (head < 0 || head >= m_config.n_head) {
    throw_usage("attention map: head " + std::to_string(head) + " out of range [0, " +
                std::to_string(m_config.n_head) + ")");
  }
  if (query < 0 || query >= m_n_tokens) {
    throw_usage("attention map: query position " + std::to_string(query) + " out of range [0, " +
                std::to_string(m_n_tokens) + ")");
  }
  const int H = m_config.n_head, Hkv = m_config.n_head_kv, d = m_config.head_dim;
  const int kvh = head / (H / Hkv);
  std::vector<float> row(static_cast<size_t>(query) + 1);
  const float* q = m_q[layer].data() + (static_cast<size_t>(query) * H + head) * d;
  attnscope::attention_row(q, m_k[layer].data() + static_cast<size_t>(kvh) * d, query + 1, Hkv * d,
                           d, row.data());
  return row;
}

std::vector<float> RecordedCapture::attention_probs(int layer, int head) const {
  if (layer < 0 || layer >= m_config.n_layer) {
    throw_usage("attention map: layer " + std::to_string(layer) + " out of range [0, " +
                std::to_string(m_config.n_layer) + ")");
  }
  if (head < 0 || head >= m_config.n_head) {
    throw_usage("attention map: head " + std::to_string(head) + " out of range [0, " +
                std::to_string(m_config.n_head) + ")");
  }
  const size_t T = static_cast<size_t>(m_n_tokens);
  const int H = m_config.n_head, Hkv = m_config.n_head_kv, d = m_config.head_dim;
  const int kvh = head / (H / Hkv);
  std::vector<float> probs(T * T, 0.0f);
  if (T == 0) return probs;
  // Pack the keys once for all rows; ops.h attention_row would pack them again per row and
  // gives the same bits (both end in detail::attention_row_packed, as the forward does).
  std::vector<float> packed(detail::packed_keys_size(static_cast<int>(T), d));
  detail::pack_keys(m_k[layer].data() + static_cast<size_t>(kvh) * d, static_cast<int>(T), Hkv * d,
                    d, packed.data());
  for (size_t i = 0; i < T; ++i) {
    const float* q = m_q[layer].data() + (i * H + head) * d;
    // Keys 0..i of a packed T-key buffer are the packing of those i+1 keys followed by
    // other keys in the pad slots, which the kernel reads but does not report.
    detail::attention_row_packed(q, packed.data(), static_cast<int>(i) + 1, d,
                                 probs.data() + i * T);
  }
  return probs;
}

}  // namespace attnscope
