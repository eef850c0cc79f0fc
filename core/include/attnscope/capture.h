// The capture seam: the forward pass reports per-layer post-RoPE Q, K, V and the logits to a
// Capture. RecordedCapture keeps them and recomputes any head's attention probabilities on
// demand, so maps never need to be stored. Variants and views build on this interface.
#pragma once

#include <cstdint>
#include <vector>

#include "attnscope/model.h"

namespace attnscope {

class Capture {
 public:
  virtual ~Capture() = default;
  // Called for each layer of each forward call, after RoPE. Rows are absolute positions
  // pos0 .. pos0+n-1. q: [n, H, d]; k, v: [n, Hkv, d].
  virtual void on_qkv(int layer, int pos0, int n, const float* q, const float* k,
                      const float* v) {
    (void)layer, (void)pos0, (void)n, (void)q, (void)k, (void)v;
  }
  // Called for each layer of each forward call after attention (before the output projection):
  // out: [n, H, d] for positions pos0 .. pos0+n-1, so per-layer output error can be measured.
  virtual void on_attention_output(int layer, int pos0, int n, const float* out) {
    (void)layer, (void)pos0, (void)n, (void)out;
  }
  // logits: [n, vocab] for positions pos0 .. pos0+n-1. Only the last row is computed unless
  // wants_all_logits() is true.
  virtual void on_logits(int pos0, int n, const float* logits) {
    (void)pos0, (void)n, (void)logits;
  }
  virtual bool wants_all_logits() const { return false; }
};

// Stores everything reported, appending across prefill and decode calls.
class RecordedCapture : public Capture {
 public:
  explicit RecordedCapture(const ModelConfig& config, bool all_logits = true);

  void on_qkv(int layer, int pos0, int n, const float* q, const float* k,
              const float* v) override;
  void on_logits(int pos0, int n, const float* logits) override;
  bool wants_all_logits() const override { return m_all_logits; }

  const ModelConfig& config() const { return m_config; }
  int n_tokens() const { return m_n_tokens; }  // positions captured so far
  const std::vector<float>& q(int layer) const { return m_q.at(layer); }  // [T, H, d]
  const std::vector<float>& k(int layer) const { return m_k.at(layer); }  // [T, Hkv, d]
  const std::vector<float>& v(int layer) const { return m_v.at(layer); }  // [T, Hkv, d]
  // [n_logit_rows, vocab]; with all_logits one row per position, else one per forward call.
  const std::vector<float>& logits() const { return m_logits; }
  const std::vector<int32_t>& logit_positions() const { return m_logit_positions; }

  // Attention probabilities of (layer, head): [T, T] row-major, row i = query position i,
  // zero above the diagonal, each row summing to 1. Throws Error(Usage) on a bad layer/head.
  std::vector<float> attention_probs(int layer, int head) const;
  // One row (query position `query`) of the same matrix: [query + 1].
  std::vector<float> attention_row(int layer, int head, int query) const;

 private:
  ModelConfig m_config;
  bool m_all_logits;
  int m_n_tokens = 0;
  std::vector<std::vector<float>> m_q, m_k, m_v;
  std::vector<float> m_logits;
  std::vector<int32_t> m_logit_positions;
};

}  // namespace attnscope
