// InferenceSession: the llama forward pass (RMSNorm, Q/K/V with optional bias, half-split RoPE,
// causal GQA over a growing KV cache, SwiGLU FFN, tied or separate output) on a Backend.
#include "attnscope/session.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "attnscope/error.h"
#include "attnscope/ops.h"

namespace attnscope {
namespace {

// KV cache growth step in positions: small prompts never pay for the full context
// (SmolLM2: 8192 positions x 30 layers x K+V = 377 MB), long ones reallocate rarely.
constexpr int kCacheChunk = 512;
// Logit rows computed per block when all rows are wanted: bounds the [rows, vocab] buffer
// (128 x 49152 floats = 25 MB) however long the prompt is.
constexpr int kLogitBlock = 128;

// Throws when a weight vector does not hold exactly the elements its shape needs, so the forward
// pass can never read past one (models built by hand in tests skip validate_model).
void check_size(const std::vector<float>& w, size_t expected, const std::string& what) {
  if (w.size() != expected) {
    throw_usage("session: weight " + what + " has " + std::to_string(w.size()) +
                " elements, expected " + std::to_string(expected));
  }
}

void check_bias(const std::vector<float>& b, size_t expected, const std::string& what) {
  if (!b.empty()) check_size(b, expected, what);
}

void add_inplace(float* x, const float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] += y[i];
}

}  // namespace

InferenceSession::InferenceSession(std::shared_ptr<const Model> model,
                                   std::shared_ptr<Backend> backend, int max_context)
    : m_model(std::move(model)), m_backend(std::move(backend)) {
  if (!m_model) throw_usage("session: no model");
  const ModelConfig& c = m_model->config;
  if (c.n_layer <= 0 || c.n_head <= 0 || c.n_head_kv <= 0 || c.head_dim <= 0 || c.n_embd <= 0 ||
      c.n_ff <= 0 || c.vocab_size <= 0 || c.n_head % c.n_head_kv != 0 ||
      static_cast<int>(m_model->layers.size()) != c.n_layer) {
    throw_usage("session: model config is inconsistent (layers/heads/sizes)");
  }
  const size_t D = c.n_embd, F = c.n_ff, V = c.vocab_size;
  const size_t qd = static_cast<size_t>(c.n_head) * c.head_dim;
  const size_t kvd = static_cast<size_t>(c.n_head_kv) * c.head_dim;
  check_size(m_model->token_embd, V * D, "token_embd");
  check_size(m_model->output_norm, D, "output_norm");
  check_size(m_model->output_weights(), V * D, "output");
  for (int l = 0; l < c.n_layer; ++l) {
    const LayerWeights& w = m_model->layers[l];
    const std::string p = "blk." + std::to_string(l) + ".";
    check_size(w.attn_norm, D, p + "attn_norm");
    check_size(w.wq, qd * D, p + "attn_q");
    check_size(w.wk, kvd * D, p + "attn_k");
    check_size(w.wv, kvd * D, p + "attn_v");
    check_bias(w.bq, qd, p + "attn_q.bias");
    check_bias(w.bk, kvd, p + "attn_k.bias");
    check_bias(w.bv, kvd, p + "attn_v.bias");
    check_size(w.wo, D * qd, p + "attn_output");
    check_size(w.ffn_norm, D, p + "ffn_norm");
    check_size(w.w_gate, F * D, p + "ffn_gate");
    check_size(w.w_up, F * D, p + "ffn_up");
    check_size(w.w_down, D * F, p + "ffn_down");
  }
  if (!m_backend) m_backend = make_cpu_backend();
  const int model_ctx = c.context_length > 0 ? c.context_length : 2048;
  m_max_context = max_context > 0 ? max_context : model_ctx;
  m_k_cache.resize(c.n_layer);
  m_v_cache.resize(c.n_layer);
}

void InferenceSession::reset() {
  m_n_past = 0;
}

std::vector<float> InferenceSession::forward(std::span<const int32_t> tokens, Capture* capture,
                                             const std::atomic<bool>* cancel) {
  const Model& m = *m_model;
  const ModelConfig& c = m.config;
  const int n = static_cast<int>(tokens.size());
  if (n == 0) throw_bad_input("prompt", "no tokens");
  if (static_cast<int64_t>(m_n_past) + n > m_max_context) {
    throw_bad_input("prompt", std::to_string(m_n_past + static_cast<int64_t>(n)) +
                                  " tokens exceed the context length " +
                                  std::to_string(m_max_context));
  }
  for (int i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= c.vocab_size) {
      throw_bad_input("prompt", "token id " + std::to_string(tokens[i]) + " at index " +
                                    std::to_string(i) + " is outside the vocabulary [0, " +
                                    std::to_string(c.vocab_size) + ")");
    }
  }
  const int D = c.n_embd, H = c.n_head, Hkv = c.n_head_kv, d = c.head_dim, F = c.n_ff;
  const size_t qdim = static_cast<size_t>(H) * d, kvdim = static_cast<size_t>(Hkv) * d;
  const size_t rows = static_cast<size_t>(n);

  // Grow the KV cache to cover the new positions (content of earlier positions is kept).
  const int need = m_n_past + n;
  const size_t have = m_k_cache[0].size() / kvdim;
  if (static_cast<size_t>(need) > have) {
    const int cap = std::min(m_max_context, (need + kCacheChunk - 1) / kCacheChunk * kCacheChunk);
    for (int l = 0; l < c.n_layer; ++l) {
      m_k_cache[l].resize(static_cast<size_t>(cap) * kvdim);
      m_v_cache[l].resize(static_cast<size_t>(cap) * kvdim);
    }
  }

  std::vector<int32_t> positions(rows);
  for (int i = 0; i < n; ++i) positions[i] = m_n_past + i;

  // x: [n, D] residual stream.
  std::vector<float> x(rows * D), xn(rows * D), tmp(rows * D);
  for (int i = 0; i < n; ++i) {
    std::memcpy(&x[i * static_cast<size_t>(D)], &m.token_embd[tokens[i] * static_cast<size_t>(D)],
                sizeof(float) * D);
  }
  std::vector<float> q(rows * qdim), k(rows * kvdim), v(rows * kvdim), att(rows * qdim);
  std::vector<float> gate(rows * F), up(rows * F);
  Backend& be = *m_backend;
  auto bias_of = [](const std::vector<float>& b) { return b.empty() ? nullptr : b.data(); };

  for (int l = 0; l < c.n_layer; ++l) {
    if (cancel != nullptr && cancel->load()) throw_runtime("cancelled");
    const LayerWeights& w = m.layers[l];
    // Attention block.
    xn = x;
    rms_norm(xn.data(), n, D, w.attn_norm.data(), c.rms_norm_eps);
    be.linear(xn.data(), n, D, w.wq.data(), static_cast<int>(qdim), bias_of(w.bq), q.data());
    be.linear(xn.data(), n, D, w.wk.data(), static_cast<int>(kvdim), bias_of(w.bk), k.data());
    be.linear(xn.data(), n, D, w.wv.data(), static_cast<int>(kvdim), bias_of(w.bv), v.data());
    rope_half_split(q.data(), n, H, d, positions.data(), c.rope_theta);
    rope_half_split(k.data(), n, Hkv, d, positions.data(), c.rope_theta);
    std::memcpy(&m_k_cache[l][m_n_past * kvdim], k.data(), sizeof(float) * rows * kvdim);
    std::memcpy(&m_v_cache[l][m_n_past * kvdim], v.data(), sizeof(float) * rows * kvdim);
    if (capture != nullptr) capture->on_qkv(l, m_n_past, n, q.data(), k.data(), v.data());
    AttentionShape shape;
    shape.n_query = n;
    shape.pos0 = m_n_past;
    shape.n_head = H;
    shape.n_head_kv = Hkv;
    shape.head_dim = d;
    if (!m_hook || !m_hook->attend(l, shape, q.data(), m_k_cache[l].data(),
                                   m_v_cache[l].data(), att.data())) {
      be.attention(shape, q.data(), m_k_cache[l].data(), m_v_cache[l].data(), att.data());
    }
    if (capture != nullptr) capture->on_attention_output(l, m_n_past, n, att.data());
    be.linear(att.data(), n, static_cast<int>(qdim), w.wo.data(), D, nullptr, tmp.data());
    add_inplace(x.data(), tmp.data(), rows * D);
    // Feed-forward block: down(silu(gate x) * up x).
    xn = x;
    rms_norm(xn.data(), n, D, w.ffn_norm.data(), c.rms_norm_eps);
    be.linear(xn.data(), n, D, w.w_gate.data(), F, nullptr, gate.data());
    be.linear(xn.data(), n, D, w.w_up.data(), F, nullptr, up.data());
    swiglu(gate.data(), up.data(), gate.data(), n * F);
    be.linear(gate.data(), n, F, w.w_down.data(), D, nullptr, tmp.data());
    add_inplace(x.data(), tmp.data(), rows * D);
  }
  if (cancel != nullptr && cancel->load()) throw_runtime("cancelled");

  const int V = c.vocab_size;
  const float* out_w = m.output_weights().data();
  std::vector<float> last(V);
  const bool all = capture != nullptr && capture->wants_all_logits();
  const int first_row = all ? 0 : n - 1;
  rms_norm(&x[static_cast<size_t>(first_row) * D], n - first_row, D, m.output_norm.data(),
           c.rms_norm_eps);
  std::vector<float> logits;
  for (int r0 = first_row; r0 < n; r0 += kLogitBlock) {
    const int nb = std::min(kLogitBlock, n - r0);
    logits.resize(static_cast<size_t>(nb) * V);
    be.linear(&x[static_cast<size_t>(r0) * D], nb, D, out_w, V, nullptr, logits.data());
    if (capture != nullptr) capture->on_logits(m_n_past + r0, nb, logits.data());
    if (r0 + nb == n) {
      std::copy(logits.end() - V, logits.end(), last.begin());
    }
  }
  m_n_past += n;
  return last;
}

}  // namespace attnscope
