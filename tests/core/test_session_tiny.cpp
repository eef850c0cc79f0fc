// InferenceSession on a tiny random llama model built in memory (3 layers, 4 query heads over
// 2 KV heads, head_dim 8): KV-cache consistency, agreement with a plain double-precision
// reference forward written here, capture maps, errors, cancellation, sampling, generation
// and perplexity.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <map>
#include <random>
#include <vector>

#include "attnscope/error.h"
#include "attnscope/session.h"
#include "tiny_models.h"

namespace attnscope {
namespace {

// Prefill vs step-by-step decode run the same fp32 ops in different batch shapes (BLAS gemm vs
// gemv); logits of O(1) magnitude agree to a few ulps times the depth.
constexpr double kCacheTol = 1e-4;
// fp32 forward vs double reference over 3 layers with O(1) activations.
constexpr double kReferenceTol = 2e-4;

constexpr uint64_t kSeed = 1234;

// 3 layers, 4 query heads over 2 KV heads, head_dim 8, vocab 32; the biased (Qwen2-style) model
// has an untied output matrix and the unbiased one ties it, to cover both output paths.
std::shared_ptr<Model> tiny_model(bool qkv_bias, uint64_t seed = kSeed) {
  test::TinyLlamaSpec spec;
  spec.layers = 3;
  spec.qkv_bias = qkv_bias;
  spec.tied_embeddings = !qkv_bias;
  spec.seed = seed;
  return test::tiny_random_llama(spec);
}

std::vector<int32_t> tokens_of(int n, uint64_t seed = 5) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = static_cast<int32_t>(rng() % 32);
  return t;
}

// Plain reference forward in double: materialised causal attention, every position's logits.
// Returns [n, vocab].
std::vector<std::vector<double>> reference_logits(const Model& m, const std::vector<int32_t>& t) {
  const ModelConfig& c = m.config;
  const int n = static_cast<int>(t.size()), D = c.n_embd, H = c.n_head, Hkv = c.n_head_kv,
            d = c.head_dim, F = c.n_ff, V = c.vocab_size;
  using Mat = std::vector<std::vector<double>>;
  auto matvec = [](const std::vector<float>& w, const std::vector<double>& x, int out,
                   const std::vector<float>& b) {
    std::vector<double> y(out);
    const size_t in = x.size();
    for (int o = 0; o < out; ++o) {
      double acc = b.empty() ? 0.0 : b[o];
      for (size_t i = 0; i < in; ++i) acc += w[o * in + i] * x[i];
      y[o] = acc;
    }
    return y;
  };
  auto norm = [&](const std::vector<double>& x, const std::vector<float>& w) {
    double ss = 0;
    for (double v : x) ss += v * v;
    const double r = 1.0 / std::sqrt(ss / x.size() + c.rms_norm_eps);
    std::vector<double> y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * r * w[i];
    return y;
  };
  auto rope = [&](std::vector<double>& v, int heads, int pos) {
    for (int h = 0; h < heads; ++h) {
      for (int i = 0; i < d / 2; ++i) {
        const double ang = pos * std::pow(static_cast<double>(c.rope_theta), -2.0 * i / d);
        const double a = v[h * d + i], b = v[h * d + i + d / 2];
        v[h * d + i] = a * std::cos(ang) - b * std::sin(ang);
        v[h * d + i + d / 2] = b * std::cos(ang) + a * std::sin(ang);
      }
    }
  };
  Mat x(n, std::vector<double>(D));
  for (int i = 0; i < n; ++i)
    for (int e = 0; e < D; ++e) x[i][e] = m.token_embd[t[i] * D + e];
  const std::vector<float> none;
  for (const LayerWeights& w : m.layers) {
    Mat q(n), k(n), v(n);
    for (int i = 0; i < n; ++i) {
      const auto xn = norm(x[i], w.attn_norm);
      q[i] = matvec(w.wq, xn, H * d, w.bq);
      k[i] = matvec(w.wk, xn, Hkv * d, w.bk);
      v[i] = matvec(w.wv, xn, Hkv * d, w.bv);
      rope(q[i], H, i);
      rope(k[i], Hkv, i);
    }
    for (int i = 0; i < n; ++i) {
      std::vector<double> att(H * d, 0.0);
      for (int h = 0; h < H; ++h) {
        const int kvh = h / (H / Hkv);
        std::vector<double> s(i + 1);
        double mx = -1e300, z = 0;
        for (int j = 0; j <= i; ++j) {
          double dot = 0;
          for (int e = 0; e < d; ++e) dot += q[i][h * d + e] * k[j][kvh * d + e];
          s[j] = dot / std::sqrt(static_cast<double>(d));
          mx = std::max(mx, s[j]);
        }
        for (auto& p : s) z += (p = std::exp(p - mx));
        for (int j = 0; j <= i; ++j)
          for (int e = 0; e < d; ++e) att[h * d + e] += s[j] / z * v[j][kvh * d + e];
      }
      const auto o = matvec(w.wo, att, D, none);
      for (int e = 0; e < D; ++e) x[i][e] += o[e];
      const auto xn = norm(x[i], w.ffn_norm);
      const auto g = matvec(w.w_gate, xn, F, none);
      const auto u = matvec(w.w_up, xn, F, none);
      std::vector<double> hdn(F);
      for (int f = 0; f < F; ++f) hdn[f] = g[f] / (1.0 + std::exp(-g[f])) * u[f];
      const auto dn = matvec(w.w_down, hdn, D, none);
      for (int e = 0; e < D; ++e) x[i][e] += dn[e];
    }
  }
  Mat logits(n);
  for (int i = 0; i < n; ++i)
    logits[i] = matvec(m.output_weights(), norm(x[i], m.output_norm), V, none);
  return logits;
}

TEST(SessionTiny, MatchesDoubleReferenceForward) {
  for (bool bias : {false, true}) {
    auto model = tiny_model(bias);
    InferenceSession s(model);
    RecordedCapture cap(model->config, true);
    const auto t = tokens_of(20);
    const auto last = s.forward(t, &cap);
    const auto ref = reference_logits(*model, t);
    ASSERT_EQ(cap.logits().size(), 20u * 32u);
    double worst = 0;
    for (int i = 0; i < 20; ++i)
      for (int j = 0; j < 32; ++j)
        worst = std::max(worst, std::abs(cap.logits()[i * 32 + j] - ref[i][j]));
    EXPECT_LT(worst, kReferenceTol) << "seed " << kSeed << " bias " << bias << " n 20";
    for (int j = 0; j < 32; ++j) EXPECT_EQ(last[j], cap.logits()[19 * 32 + j]);
    EXPECT_EQ(s.n_past(), 20);
  }
}

TEST(SessionTiny, PrefillEqualsStepByStepDecode) {
  auto model = tiny_model(false);
  const auto t = tokens_of(12);
  InferenceSession a(model), b(model);
  RecordedCapture ca(model->config, true), cb(model->config, true);
  // Prefill 12 at once vs 5 + 1 x 7 (mixed) on the other session.
  a.forward(t, &ca);
  b.forward(std::span<const int32_t>(t).first(5), &cb);
  for (int i = 5; i < 12; ++i) b.forward(std::span<const int32_t>(t).subspan(i, 1), &cb);
  ASSERT_EQ(ca.logits().size(), cb.logits().size());
  double worst = 0;
  for (size_t i = 0; i < ca.logits().size(); ++i)
    worst = std::max(worst, static_cast<double>(std::abs(ca.logits()[i] - cb.logits()[i])));
  EXPECT_LT(worst, kCacheTol) << "seed " << kSeed << " n 12 split 5+7x1";
  // Maps recomputed from captured Q/K agree as well.
  const auto pa = ca.attention_probs(2, 3), pb = cb.attention_probs(2, 3);
  double worst_p = 0;
  for (size_t i = 0; i < pa.size(); ++i)
    worst_p = std::max(worst_p, static_cast<double>(std::abs(pa[i] - pb[i])));
  EXPECT_LT(worst_p, kCacheTol);
  // reset() restarts at position 0 and reproduces the first run.
  a.reset();
  EXPECT_EQ(a.n_past(), 0);
  const auto again = a.forward(t);
  // (All-row logits go through sgemm, last-row-only through sgemv: equal within kCacheTol.)
  for (int j = 0; j < 32; ++j) EXPECT_NEAR(again[j], ca.logits()[11 * 32 + j], kCacheTol);
}

TEST(SessionTiny, CaptureRowsCausalAndNormalised) {
  auto model = tiny_model(true);
  InferenceSession s(model);
  RecordedCapture cap(model->config, false);
  const auto t = tokens_of(9);
  s.forward(t, &cap);
  EXPECT_EQ(cap.logits().size(), 32u);  // last row only
  EXPECT_EQ(cap.logit_positions(), std::vector<int32_t>{8});
  for (int l = 0; l < 3; ++l) {
    for (int h = 0; h < 4; ++h) {
      const auto p = cap.attention_probs(l, h);
      for (int i = 0; i < 9; ++i) {
        double sum = 0;
        for (int j = 0; j < 9; ++j) {
          if (j > i) {
            ASSERT_EQ(p[i * 9 + j], 0.0f);
          }
          ASSERT_GE(p[i * 9 + j], 0.0f);
          sum += p[i * 9 + j];
        }
        EXPECT_NEAR(sum, 1.0, 1e-5) << "layer " << l << " head " << h << " row " << i;
      }
      EXPECT_EQ(p[0], 1.0f);  // position 0 sees only itself
    }
  }
}

TEST(SessionTiny, ErrorsAndCancellation) {
  auto model = tiny_model(false);
  InferenceSession s(model, nullptr, 16);
  EXPECT_EQ(s.max_context(), 16);
  try {
    s.forward(tokens_of(17));
    ADD_FAILURE() << "17 tokens accepted with context 16";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput);
    EXPECT_EQ(std::string(e.what()), "prompt: 17 tokens exceed the context length 16");
  }
  s.forward(tokens_of(10));
  EXPECT_THROW(s.forward(tokens_of(7)), Error);
  EXPECT_EQ(s.n_past(), 10);
  for (int32_t bad : {32, -1}) {
    const std::vector<int32_t> t = {1, bad};
    try {
      s.forward(t);
      ADD_FAILURE() << "token " << bad << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::BadInput);
    }
  }
  EXPECT_THROW(s.forward(std::vector<int32_t>{}), Error);
  std::atomic<bool> cancel{true};
  try {
    s.forward(tokens_of(3), nullptr, &cancel);
    ADD_FAILURE() << "cancel ignored";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Runtime);
    EXPECT_EQ(std::string(e.what()), "cancelled");
  }
  EXPECT_EQ(s.n_past(), 10);  // a cancelled call leaves the cache as it was
  cancel = false;
  s.forward(tokens_of(6), nullptr, &cancel);
  EXPECT_EQ(s.n_past(), 16);
  // Default context comes from the model.
  EXPECT_EQ(InferenceSession(model).max_context(), 64);
  // A weight of the wrong size is refused up front.
  auto broken = tiny_model(false);
  broken->layers[1].w_up.pop_back();
  EXPECT_THROW(InferenceSession{broken}, Error);
}

TEST(Sampler, GreedyTieRuleAndTopKOne) {
  Sampler greedy({});
  const std::vector<float> tie = {1.0f, 3.0f, 3.0f, 2.0f};
  EXPECT_EQ(greedy.sample(tie), 1);
  const std::vector<float> nan_first = {std::nanf(""), -5.0f, -7.0f};
  EXPECT_EQ(greedy.sample(nan_first), 1);
  std::mt19937_64 rng(99);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  Sampler top1({1.5f, 1, 7});
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<float> l(100);
    for (auto& x : l) x = nd(rng);
    l[trial] = l[trial + 1] = 100.0f;  // a tie at the top
    EXPECT_EQ(top1.sample(l), trial);
    EXPECT_EQ(greedy.sample(l), trial);
  }
  EXPECT_THROW(Sampler({-1.0f, 0, 0}), Error);
  EXPECT_THROW(Sampler({1.0f, -2, 0}), Error);
}

TEST(Sampler, SeededDeterminismTopKAndFrequencies) {
  const std::vector<float> l = {0.0f, std::log(2.0f), std::log(5.0f), -30.0f};
  // Probabilities at T = 1: 1/8, 2/8, 5/8, ~0.
  auto draw = [&](SamplingOptions o, int n) {
    Sampler s(o);
    std::vector<int32_t> out;
    for (int i = 0; i < n; ++i) out.push_back(s.sample(l));
    return out;
  };
  const auto a = draw({1.0f, 0, 17}, 200), b = draw({1.0f, 0, 17}, 200),
             c = draw({1.0f, 0, 18}, 200);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  const int n = 20000;
  const auto many = draw({1.0f, 0, 5}, n);
  std::map<int32_t, int> count;
  for (int32_t x : many) ++count[x];
  // Fixed seed: deterministic; 3 sigma of a binomial at n = 20000 is < 0.011.
  EXPECT_NEAR(count[0] / double(n), 0.125, 0.011);
  EXPECT_NEAR(count[1] / double(n), 0.25, 0.011);
  EXPECT_NEAR(count[2] / double(n), 0.625, 0.011);
  const auto k2 = draw({1.0f, 2, 5}, 2000);
  std::map<int32_t, int> c2;
  for (int32_t x : k2) ++c2[x];
  EXPECT_EQ(c2.count(0) + c2.count(3), 0u) << "top-k 2 sampled outside the top two";
  EXPECT_NEAR(c2[2] / 2000.0, 5.0 / 7.0, 0.035);
}

TEST(Generation, GreedyMatchesManualLoopAndStopsAtEos) {
  auto model = tiny_model(false);
  const auto prompt = tokens_of(6);
  // Manual greedy loop.
  std::vector<int32_t> manual;
  {
    InferenceSession s(model);
    Sampler g({});
    auto logits = s.forward(prompt);
    for (int i = 0; i < 8; ++i) {
      manual.push_back(g.sample(logits));
      const int32_t one[1] = {manual.back()};
      logits = s.forward(one);
    }
  }
  InferenceSession s(model);
  std::vector<int32_t> seen;
  const auto r = generate(s, prompt, 8, {}, [&](int32_t t) {
    seen.push_back(t);
    return true;
  });
  EXPECT_EQ(r.tokens, manual);
  EXPECT_EQ(seen, manual);
  EXPECT_EQ(r.n_prompt, 6);
  EXPECT_EQ(s.n_past(), 6 + 7);  // the last token is sampled, not fed back
  EXPECT_GT(r.prefill_seconds, 0.0);
  // on_token returning false stops after that token.
  InferenceSession s2(model);
  const auto r2 = generate(s2, prompt, 8, {}, [](int32_t) { return false; });
  EXPECT_EQ(r2.tokens.size(), 1u);
  // With an EOS id equal to the 4th greedy token, generation stops before it.
  TokenizerSpec spec;
  for (int i = 0; i < 32; ++i) spec.tokens.push_back(std::string(1, static_cast<char>('A' + i)));
  spec.eos_id = manual[3];
  spec.source = "tiny";
  auto eos_model = tiny_model(false);
  eos_model->tokenizer = Tokenizer::from_spec(spec);
  InferenceSession s3(eos_model);
  const auto r3 = generate(s3, prompt, 8, {});
  size_t first_eos = 0;
  while (manual[first_eos] != spec.eos_id) ++first_eos;
  EXPECT_EQ(r3.tokens,
            std::vector<int32_t>(manual.begin(),
                                 manual.begin() + static_cast<std::ptrdiff_t>(first_eos)));
}

TEST(Perplexity, WindowsMatchReferenceNll) {
  auto model = tiny_model(true);
  const auto t = tokens_of(20, 77);
  InferenceSession s(model, nullptr, 8);
  const auto r = evaluate_perplexity(s, t);
  // Windows [0,8), [8,16), [16,20): 7 + 7 + 3 predictions.
  EXPECT_EQ(r.n_predicted, 17);
  double nll = 0;
  for (size_t w0 = 0; w0 < t.size(); w0 += 8) {
    const std::vector<int32_t> win(
        t.begin() + static_cast<std::ptrdiff_t>(w0),
        t.begin() + static_cast<std::ptrdiff_t>(std::min(t.size(), w0 + 8)));
    const auto ref = reference_logits(*model, win);
    for (size_t i = 0; i + 1 < win.size(); ++i) {
      double mx = -1e300, z = 0;
      for (double v : ref[i]) mx = std::max(mx, v);
      for (double v : ref[i]) z += std::exp(v - mx);
      nll += mx + std::log(z) - ref[i][win[i + 1]];
    }
  }
  EXPECT_NEAR(r.mean_nll, nll / 17, kReferenceTol);
  EXPECT_NEAR(r.perplexity, std::exp(nll / 17), kReferenceTol * r.perplexity * 10);
  EXPECT_THROW(evaluate_perplexity(s, std::vector<int32_t>{1}), Error);
}

}  // namespace
}  // namespace attnscope
