// Inference on a Model: prefill and incremental decode over a KV cache, on a Backend, with an
// optional Capture; greedy/temperature/top-k sampling; generation and perplexity helpers.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <span>
#include <vector>

#include "attnscope/attention_hook.h"
#include "attnscope/backend.h"
#include "attnscope/capture.h"
#include "attnscope/model.h"

namespace attnscope {

class InferenceSession {
 public:
  // backend == nullptr uses a CPU backend. max_context <= 0 uses the model's context length.
  explicit InferenceSession(std::shared_ptr<const Model> model,
                            std::shared_ptr<Backend> backend = nullptr, int max_context = 0);

  void reset();  // empties the KV cache
  int n_past() const { return m_n_past; }
  int max_context() const { return m_max_context; }
  const Model& model() const { return *m_model; }
  Backend& backend() { return *m_backend; }
  // Attention seam for variants: when set, each layer's attention goes to hook->attend first;
  // the backend computes it where the hook declines (returns false). Null removes the hook.
  void set_attention_hook(std::shared_ptr<AttentionHook> hook) { m_hook = std::move(hook); }

  // tokens: [n] appended at positions n_past .. n_past+n-1. Returns the logits [vocab] of the
  // last token. Throws Error(BadInput) when n_past + n exceeds max_context or an id is out of
  // range; Error(Runtime) "cancelled" when *cancel becomes true between layers.
  std::vector<float> forward(std::span<const int32_t> tokens, Capture* capture = nullptr,
                             const std::atomic<bool>* cancel = nullptr);

 private:
  std::shared_ptr<const Model> m_model;
  std::shared_ptr<Backend> m_backend;
  std::shared_ptr<AttentionHook> m_hook;
  int m_max_context = 0;
  int m_n_past = 0;
  std::vector<std::vector<float>> m_k_cache, m_v_cache;  // per layer [max_context, Hkv, d]
};

struct SamplingOptions {
  float temperature = 0.0f;  // 0 = greedy
  int top_k = 0;             // 0 = all tokens
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(SamplingOptions options);
  // logits: [vocab]. Greedy picks the lowest id among equal maxima.
  int32_t sample(std::span<const float> logits);

 private:
  SamplingOptions m_options;
  std::mt19937_64 m_rng;
};

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated ids (prompt excluded)
  int n_prompt = 0;
  double prefill_seconds = 0;
  double decode_seconds = 0;
  double prefill_tokens_per_second() const;
  double decode_tokens_per_second() const;
};

// Prefills `prompt` then samples up to max_tokens, stopping after the model's EOS.
// on_token (may be empty) sees each new id; returning false stops early.
GenerationResult generate(InferenceSession& session, std::span<const int32_t> prompt,
                          int max_tokens, const SamplingOptions& options,
                          const std::function<bool(int32_t)>& on_token = {},
                          const std::atomic<bool>* cancel = nullptr);

struct PerplexityResult {
  double perplexity = 0;
  double mean_nll = 0;
  int n_predicted = 0;  // tokens scored (all but the first of each window)
  double seconds = 0;
  double tokens_per_second() const;
};

// Perplexity of `tokens` in windows of at most the session's context (no overlap).
PerplexityResult evaluate_perplexity(InferenceSession& session, std::span<const int32_t> tokens,
                                     const std::atomic<bool>* cancel = nullptr);

}  // namespace attnscope
