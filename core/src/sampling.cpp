// Sampler (greedy / temperature + top-k with a seeded mt19937_64), generate() and
// evaluate_perplexity() on top of InferenceSession.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <string>

#include "attnscope/error.h"
#include "attnscope/session.h"

namespace attnscope {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Greedy pick: the highest logit, the lowest id among equal maxima; NaN never wins.
int32_t argmax_lowest(std::span<const float> logits) {
  int32_t best = -1;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (std::isnan(logits[i])) continue;
    if (best < 0 || logits[i] > logits[best]) best = static_cast<int32_t>(i);
  }
  if (best < 0) throw_runtime("sampler: every logit is NaN");
  return best;
}

// Scores the logit rows of one perplexity window as they are computed, without storing them.
class NllCapture final : public Capture {
 public:
  NllCapture(std::span<const int32_t> window, int vocab) : m_window(window), m_vocab(vocab) {}
  bool wants_all_logits() const override { return true; }
  void on_logits(int pos0, int n, const float* logits) override {
    for (int r = 0; r < n; ++r) {
      const size_t pos = static_cast<size_t>(pos0 + r);
      if (pos + 1 >= m_window.size()) continue;  // the last position predicts nothing here
      const float* row = logits + static_cast<size_t>(r) * m_vocab;
      // log-sum-exp in double with max subtraction.
      float mx = row[0];
      for (int j = 1; j < m_vocab; ++j) mx = std::max(mx, row[j]);
      double sum = 0.0;
      for (int j = 0; j < m_vocab; ++j) sum += std::exp(static_cast<double>(row[j]) - mx);
      const double lse = mx + std::log(sum);
      m_nll_sum += lse - row[m_window[pos + 1]];
      ++m_count;
    }
  }
  double nll_sum() const { return m_nll_sum; }
  int count() const { return m_count; }

 private:
  std::span<const int32_t> m_window;
  int m_vocab;
  double m_nll_sum = 0.0;
  int m_count = 0;
};

// Prefill chunk of the perplexity windows: bounds activation memory for long windows.
constexpr int kPerplexityChunk = 512;

}  // namespace

Sampler::Sampler(SamplingOptions options) : m_options(options), m_rng(options.seed) {
  if (!(m_options.temperature >= 0.0f) || !std::isfinite(m_options.temperature)) {
    throw_usage("sampling: temperature must be a finite number >= 0");
  }
  if (m_options.top_k < 0) throw_usage("sampling: top_k must be >= 0");
}

int32_t Sampler::sample(std::span<const float> logits) {
  if (logits.empty()) throw_usage("sampler: empty logits");
  if (m_options.temperature == 0.0f || m_options.top_k == 1) return argmax_lowest(logits);
  // Candidates (NaN excluded): the top-k by logit, ties to the lower id, or all of them.
  std::vector<int32_t> ids;
  ids.reserve(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    if (!std::isnan(logits[i])) ids.push_back(static_cast<int32_t>(i));
  }
  if (ids.empty()) throw_runtime("sampler: every logit is NaN");
  auto better = [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  size_t k = ids.size();
  if (m_options.top_k > 0 && static_cast<size_t>(m_options.top_k) < k) {
    k = static_cast<size_t>(m_options.top_k);
    std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end(), better);
    ids.resize(k);
  } else {
    // No cut-off: candidates stay in id order (a fixed order is all the draw needs); the best
    // one goes first so the softmax below subtracts the maximum.
    std::iter_swap(ids.begin(), std::min_element(ids.begin(), ids.end(), better));
  }
  // Softmax of logits / T in double over the candidates (max first, so exp <= 1).
  const double inv_t = 1.0 / m_options.temperature;
  const double mx = logits[ids[0]];
  std::vector<double> p(k);
  double sum = 0.0;
  for (size_t i = 0; i < k; ++i) {
    p[i] = std::exp((static_cast<double>(logits[ids[i]]) - mx) * inv_t);
    sum += p[i];
  }
  // Uniform in [0, 1) from the top 53 bits: the same stream on every standard library
  // (std::uniform_real_distribution is not specified bit-for-bit).
  const double u = static_cast<double>(m_rng() >> 11) * 0x1.0p-53 * sum;
  double acc = 0.0;
  for (size_t i = 0; i < k; ++i) {
    acc += p[i];
    if (u < acc) return ids[i];
  }
  return ids[k - 1];
}

double GenerationResult::prefill_tokens_per_second() const {
  return prefill_seconds > 0 ? n_prompt / prefill_seconds : 0.0;
}

double GenerationResult::decode_tokens_per_second() const {
  // Tokens produced after the prefill over the time spent after it (sampling + decode steps).
  return decode_seconds > 0 ? static_cast<double>(tokens.size()) / decode_seconds : 0.0;
}

GenerationResult generate(InferenceSession& session, std::span<const int32_t> prompt,
                          int max_tokens, const SamplingOptions& options,
                          const std::function<bool(int32_t)>& on_token,
                          const std::atomic<bool>* cancel) {
  if (max_tokens < 0) throw_usage("generate: max_tokens must be >= 0");
  GenerationResult result;
  result.n_prompt = static_cast<int>(prompt.size());
  const auto& tok = session.model().tokenizer;
  const int32_t eos = tok ? tok->eos_id() : -1;
  Sampler sampler(options);

  auto t0 = Clock::now();
  std::vector<float> logits = session.forward(prompt, nullptr, cancel);
  result.prefill_seconds = seconds_since(t0);

  t0 = Clock::now();
  for (int i = 0; i < max_tokens; ++i) {
    const int32_t next = sampler.sample(logits);
    if (next == eos) break;  // EOS ends the answer and is not part of it
    result.tokens.push_back(next);
    if (on_token && !on_token(next)) break;
    if (i + 1 == max_tokens || session.n_past() >= session.max_context()) break;
    const int32_t one[1] = {next};
    logits = session.forward(one, nullptr, cancel);
  }
  result.decode_seconds = seconds_since(t0);
  return result;
}

double PerplexityResult::tokens_per_second() const {
  return seconds > 0 ? n_predicted / seconds : 0.0;
}

PerplexityResult evaluate_perplexity(InferenceSession& session, std::span<const int32_t> tokens,
                                     const std::atomic<bool>* cancel) {
  if (tokens.size() < 2) throw_bad_input("perplexity", "needs at least 2 tokens");
  const auto t0 = Clock::now();
  const size_t window = static_cast<size_t>(session.max_context());
  const int vocab = session.model().config.vocab_size;
  double nll_sum = 0.0;
  int count = 0;
  for (size_t w0 = 0; w0 < tokens.size(); w0 += window) {
    const auto win = tokens.subspan(w0, std::min(window, tokens.size() - w0));
    if (win.size() < 2) break;  // a single trailing token has nothing to predict
    session.reset();
    NllCapture nll(win, vocab);
    for (size_t c0 = 0; c0 < win.size(); c0 += kPerplexityChunk) {
      const auto chunk = win.subspan(c0, std::min<size_t>(kPerplexityChunk, win.size() - c0));
      session.forward(chunk, &nll, cancel);
    }
    nll_sum += nll.nll_sum();
    count += nll.count();
  }
  session.reset();
  PerplexityResult r;
  r.n_predicted = count;
  r.mean_nll = count > 0 ? nll_sum / count : 0.0;
  r.perplexity = std::exp(r.mean_nll);
  r.seconds = seconds_since(t0);
  return r;
}

}  // namespace attnscope
