// Metrics: KL/argmax/log-prob/top-k on hand-computed logits, and head metrics (entropy, sink
// mass, locality, induction retrieval score, row sampling, masks, grouping, decode keep sets)
// on tiny hand-made traces against closed forms and a brute-force double-precision reference;
// their progress and cancel hooks; head badges on hand-made metrics.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "attnscope/error.h"
#include "attnscope/metrics.h"

namespace attnscope {
namespace {

// Closed forms evaluated in double vs the same sums in double: only rounding differs.
constexpr double kExactTol = 1e-12;
// Attention probabilities are float32 (variant_attention_row) vs a double reference; metrics of
// O(1) size over <= 6 keys agree to a few float ulps.
constexpr double kFloatTol = 2e-6;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

template <typename F>
void expect_error(ErrorKind kind, F&& f) {
  try {
    f();
    ADD_FAILURE() << "expected an attnscope::Error";
  } catch (const Error& e) {
    EXPECT_EQ(static_cast<int>(e.kind()), static_cast<int>(kind)) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// Logit metrics

TEST(Metrics, KlHandComputed) {
  // p = softmax(0, ln 2) = (1/3, 2/3); q = (1/2, 1/2).
  const std::vector<float> p = {0.0f, static_cast<float>(std::log(2.0))};
  const std::vector<float> q = {0.0f, 0.0f};
  const double lp1 = static_cast<double>(static_cast<float>(std::log(2.0)));
  const double p0 = 1.0 / (1.0 + std::exp(lp1)), p1 = 1.0 - p0;
  const double expected = p0 * std::log(p0 / 0.5) + p1 * std::log(p1 / 0.5);
  EXPECT_NEAR(kl_divergence_from_logits(p, q), expected, kExactTol);
  EXPECT_NEAR(expected, (1.0 / 3) * std::log(2.0 / 3) + (2.0 / 3) * std::log(4.0 / 3), 1e-7);
  // A constant shift of the logits changes nothing.
  const std::vector<float> q_shift = {100.0f, 100.0f};
  EXPECT_NEAR(kl_divergence_from_logits(p, q_shift), expected, kExactTol);
}

TEST(Metrics, KlIdenticalIsExactlyZeroAndNonNegative) {
  std::mt19937_64 rng(7);
  std::normal_distribution<float> nd(0.0f, 5.0f);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<float> a(257), b(257);
    for (auto& x : a) x = nd(rng);
    for (auto& x : b) x = nd(rng);
    EXPECT_EQ(kl_divergence_from_logits(a, a), 0.0) << "seed 7 trial " << trial;
    EXPECT_GE(kl_divergence_from_logits(a, b), 0.0) << "seed 7 trial " << trial;
    // Tiny perturbations must still give KL >= 0 (rounding could go negative unclamped).
    std::vector<float> c = a;
    c[trial] = std::nextafter(c[trial], 1e9f);
    EXPECT_GE(kl_divergence_from_logits(a, c), 0.0) << "seed 7 trial " << trial;
  }
}

TEST(Metrics, KlNegativeInfinityLogits) {
  // p = (1, 0): KL(p || uniform over 2) = ln 2; the -inf term contributes nothing.
  const std::vector<float> p = {0.0f, kNegInf};
  const std::vector<float> q = {0.0f, 0.0f};
  EXPECT_NEAR(kl_divergence_from_logits(p, q), std::log(2.0), kExactTol);
  // q = 0 where p > 0: infinite divergence.
  EXPECT_EQ(kl_divergence_from_logits(q, p), std::numeric_limits<double>::infinity());
  // Both masked on the same entry: ordinary finite value, identical -> 0.
  const std::vector<float> r = {1.0f, kNegInf, -2.0f};
  EXPECT_EQ(kl_divergence_from_logits(r, r), 0.0);
}

TEST(Metrics, KlErrors) {
  const std::vector<float> a = {0.0f, 1.0f}, b = {0.0f, 1.0f, 2.0f};
  expect_error(ErrorKind::Usage, [&] { kl_divergence_from_logits(a, b); });
  expect_error(ErrorKind::Usage, [&] { kl_divergence_from_logits({}, {}); });
  const std::vector<float> nan = {0.0f, std::numeric_limits<float>::quiet_NaN()};
  expect_error(ErrorKind::BadInput, [&] { kl_divergence_from_logits(nan, a); });
  const std::vector<float> all_masked = {kNegInf, kNegInf};
  expect_error(ErrorKind::BadInput, [&] { kl_divergence_from_logits(all_masked, a); });
}

TEST(Metrics, ArgmaxLowestIdOnTies) {
  EXPECT_EQ(argmax(std::vector<float>{1.0f, 3.0f, 3.0f, 2.0f}), 1);
  EXPECT_EQ(argmax(std::vector<float>{kNegInf, kNegInf}), 0);
  EXPECT_EQ(argmax(std::vector<float>{std::numeric_limits<float>::quiet_NaN(), -5.0f, -5.0f}), 1);
  expect_error(ErrorKind::Usage, [] { argmax(std::vector<float>{}); });
}

TEST(Metrics, LogProbOf) {
  // softmax(0, ln 3) = (1/4, 3/4).
  const float l3 = static_cast<float>(std::log(3.0));
  const std::vector<float> logits = {0.0f, l3, kNegInf};
  const double e = std::exp(static_cast<double>(l3));
  EXPECT_NEAR(log_prob_of(logits, 0), -std::log(1.0 + e), kExactTol);
  EXPECT_NEAR(log_prob_of(logits, 1), static_cast<double>(l3) - std::log(1.0 + e), kExactTol);
  EXPECT_NEAR(log_prob_of(logits, 0), std::log(0.25), 1e-7);
  EXPECT_EQ(log_prob_of(logits, 2), -std::numeric_limits<double>::infinity());
  expect_error(ErrorKind::Usage, [&] { log_prob_of(logits, 3); });
  expect_error(ErrorKind::Usage, [&] { log_prob_of(logits, -1); });
}

TEST(Metrics, TopKOrderTiesAndLogProbs) {
  const std::vector<float> logits = {1.0f, 5.0f, 3.0f, 5.0f, 2.0f};
  double z = 0;
  for (float x : logits) z += std::exp(static_cast<double>(x));
  const TopKDistribution t = top_k_distribution(logits, 3);
  ASSERT_EQ(t.ids, (std::vector<int32_t>{1, 3, 2}));
  ASSERT_EQ(t.logprobs.size(), 3u);
  EXPECT_NEAR(t.logprobs[0], 5.0 - std::log(z), 1e-6);
  EXPECT_NEAR(t.logprobs[1], 5.0 - std::log(z), 1e-6);
  EXPECT_NEAR(t.logprobs[2], 3.0 - std::log(z), 1e-6);
  EXPECT_EQ(top_k_distribution(logits, 10).ids, (std::vector<int32_t>{1, 3, 2, 4, 0}));
  EXPECT_TRUE(top_k_distribution(logits, 0).ids.empty());
  expect_error(ErrorKind::Usage, [&] { top_k_distribution(logits, -1); });
  // Brute force on random logits with many ties: sorted by (logit desc, id asc).
  std::mt19937_64 rng(11);
  std::vector<float> r(300);
  for (auto& x : r) x = static_cast<float>(rng() % 17);
  const TopKDistribution big = top_k_distribution(r, 40);
  std::vector<int32_t> ref(300);
  for (int i = 0; i < 300; ++i) ref[i] = i;
  std::stable_sort(ref.begin(), ref.end(), [&](int32_t a, int32_t b) { return r[a] > r[b]; });
  ref.resize(40);
  EXPECT_EQ(big.ids, ref) << "seed 11, vocab 300, k 40";
}

// ---------------------------------------------------------------------------------------------
// Head metrics

// A one-layer trace of T tokens with H query heads over n_kv KV heads, head_dim d.
Trace tiny_trace(const std::vector<int32_t>& tokens, int H, int n_kv, int d) {
  Trace t;
  t.tokens = tokens;
  t.n_prompt = static_cast<int>(tokens.size());
  t.model.n_head = H;
  t.model.n_head_kv = n_kv;
  t.model.head_dim = d;
  t.model.n_layer = 1;
  t.model.rope_theta = 10000.0f;
  const size_t T = tokens.size();
  t.q.assign(1, std::vector<float>(T * H * d, 0.0f));
  t.k.assign(1, std::vector<float>(T * n_kv * d, 0.0f));
  t.k_heads = {n_kv};
  return t;
}

void fill_random(Trace& t, uint64_t seed, float scale) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, scale);
  for (auto& layer : t.q) {
    for (auto& x : layer) x = nd(rng);
  }
  for (auto& layer : t.k) {
    for (auto& x : layer) x = nd(rng);
  }
}

// Brute-force reference probabilities of row i, head h (double softmax over visible & kept keys,
// scale 1/sqrt(d); a row with nothing visible attends only to itself).
std::vector<double> ref_row(const Trace& t, int l, int h, int kv, int i, const HeadMask* mask,
                            const std::vector<uint8_t>* keep) {
  const int H = t.model.n_head, d = t.model.head_dim, n_kv = t.k_heads[l];
  const float* q = &t.q[l][(static_cast<size_t>(i) * H + h) * d];
  // STRING: keys at distance >= S see the query rotated by W - S positions (half-split RoPE:
  // pair (c, c + d/2) turns by delta * theta^(-2c/d)), computed here in double.
  std::vector<double> q_far(d);
  const int S = t.string_shift, W = t.string_window;
  for (int c = 0; c < d / 2; ++c) {
    const double angle = (W - S) * std::pow(static_cast<double>(t.model.rope_theta), -2.0 * c / d);
    q_far[c] = q[c] * std::cos(angle) - q[c + d / 2] * std::sin(angle);
    q_far[c + d / 2] = q[c + d / 2] * std::cos(angle) + q[c] * std::sin(angle);
  }
  std::vector<double> s(i + 1, -std::numeric_limits<double>::infinity());
  bool any = false;
  for (int j = 0; j <= i; ++j) {
    if (mask != nullptr && !mask->visible(i, j)) continue;
    if (keep != nullptr && (*keep)[j] == 0) continue;
    const bool far = S > 0 && i - j >= S;
    double dot = 0;
    for (int c = 0; c < d; ++c) {
      dot += (far ? q_far[c] : static_cast<double>(q[c])) *
             t.k[l][(static_cast<size_t>(j) * n_kv + kv) * d + c];
    }
    s[j] = dot / std::sqrt(static_cast<double>(d));
    any = true;
  }
  std::vector<double> p(i + 1, 0.0);
  if (!any) {
    p[i] = 1.0;
    return p;
  }
  double mx = -std::numeric_limits<double>::infinity();
  for (double x : s) mx = std::max(mx, x);
  double z = 0;
  for (int j = 0; j <= i; ++j) z += std::isinf(s[j]) ? 0.0 : std::exp(s[j] - mx);
  for (int j = 0; j <= i; ++j) p[j] = std::isinf(s[j]) ? 0.0 : std::exp(s[j] - mx) / z;
  return p;
}

// The four metrics from reference rows, following the documented definitions directly.
HeadMetrics ref_metrics(const Trace& t, int h, const std::vector<int>& rows,
                        const HeadMetricOptions& o, const std::function<int(int)>& kv_of_row,
                        const HeadMask* mask,
                        const std::function<const std::vector<uint8_t>*(int)>& keep_of_row) {
  HeadMetrics m;
  int n_retr = 0;
  for (int i : rows) {
    const std::vector<double> p = ref_row(t, 0, h, kv_of_row(i), i, mask, keep_of_row(i));
    double rm = 0;
    bool eligible = false;
    for (int j = 0; j <= i; ++j) {
      if (p[j] > 0) m.entropy -= p[j] * std::log(p[j]);
      if (j < o.sink_tokens) m.sink_mass += p[j];
      if (i - j <= o.locality_window) m.locality += p[j];
      if (j >= 1 && t.tokens[j - 1] == t.tokens[i]) {
        rm += p[j];
        eligible = true;
      }
    }
    if (eligible) {
      m.retrieval_score += rm;
      ++n_retr;
    }
  }
  const double n = static_cast<double>(rows.size());
  m.entropy /= n;
  m.sink_mass /= n;
  m.locality /= n;
  m.retrieval_score = n_retr > 0 ? m.retrieval_score / n_retr : 0.0;
  return m;
}

void expect_metrics_near(const HeadMetrics& got, const HeadMetrics& want, double tol,
                         const std::string& what) {
  EXPECT_NEAR(got.entropy, want.entropy, tol) << what << " entropy";
  EXPECT_NEAR(got.sink_mass, want.sink_mass, tol) << what << " sink_mass";
  EXPECT_NEAR(got.locality, want.locality, tol) << what << " locality";
  EXPECT_NEAR(got.retrieval_score, want.retrieval_score, tol) << what << " retrieval_score";
}

const std::vector<int32_t> kTokens = {5, 7, 5, 7, 9, 5};  // T = 6

TEST(HeadMetrics, UniformAttentionClosedForms) {
  // q = 0: every row is uniform over its i + 1 keys, so the metrics have closed forms.
  Trace t = tiny_trace(kTokens, 2, 1, 4);
  HeadMetricOptions o;
  o.sink_tokens = 2;
  o.locality_window = 1;
  const std::vector<HeadMetrics> m = compute_head_metrics(t, o);
  ASSERT_EQ(m.size(), 2u);
  // entropy: mean of ln(i+1) = ln(6!) / 6.
  const double entropy = std::log(720.0) / 6.0;
  // sinks (first 2 keys): rows 0,1 -> 1; row i >= 2 -> 2/(i+1).
  const double sink = (1 + 1 + 2.0 / 3 + 2.0 / 4 + 2.0 / 5 + 2.0 / 6) / 6.0;
  // locality (distance <= 1): row 0 -> 1, row i >= 1 -> 2/(i+1).
  const double local = (1 + 1 + 2.0 / 3 + 2.0 / 4 + 2.0 / 5 + 2.0 / 6) / 6.0;
  // Induction keys: row 2 (token 5, earlier at 0) -> key 1: 1/3; row 3 (7, earlier at 1) ->
  // key 2: 1/4; row 5 (5, earlier at 0 and 2) -> keys 1, 3: 2/6; rows 0, 1, 4 have none.
  const double retrieval = (1.0 / 3 + 1.0 / 4 + 2.0 / 6) / 3.0;  // = 11/36
  for (int h = 0; h < 2; ++h) {
    EXPECT_EQ(m[h].layer, 0);
    EXPECT_EQ(m[h].head, h);
    EXPECT_NEAR(m[h].entropy, entropy, kFloatTol);
    EXPECT_NEAR(m[h].sink_mass, sink, kFloatTol);
    EXPECT_NEAR(m[h].locality, local, kFloatTol);
    EXPECT_NEAR(m[h].retrieval_score, 11.0 / 36.0, kFloatTol);
    EXPECT_NEAR(retrieval, 11.0 / 36.0, kExactTol);
  }
}

TEST(HeadMetrics, RowSamplingEvenAndDeterministic) {
  // T = 6, max_rows = 3: rows floor(r * 5 / 2) = 0, 2, 5. Uniform attention again.
  Trace t = tiny_trace(kTokens, 2, 1, 4);
  HeadMetricOptions o;
  o.max_rows = 3;
  o.sink_tokens = 1;
  o.locality_window = 0;
  const auto m = compute_head_metrics(t, o);
  EXPECT_NEAR(m[0].entropy, (0.0 + std::log(3.0) + std::log(6.0)) / 3.0, kFloatTol);
  EXPECT_NEAR(m[0].sink_mass, (1.0 + 1.0 / 3 + 1.0 / 6) / 3.0, kFloatTol);
  EXPECT_NEAR(m[0].locality, (1.0 + 1.0 / 3 + 1.0 / 6) / 3.0, kFloatTol);
  // Rows 2 and 5 are eligible: (1/3 + 2/6) / 2.
  EXPECT_NEAR(m[0].retrieval_score, (1.0 / 3 + 2.0 / 6) / 2.0, kFloatTol);
  // max_rows = 1 takes the last row only.
  o.max_rows = 1;
  const auto last = compute_head_metrics(t, o);
  EXPECT_NEAR(last[1].entropy, std::log(6.0), kFloatTol);
  const auto again = compute_head_metrics(t, o);
  EXPECT_EQ(again[1].entropy, last[1].entropy);
}

TEST(HeadMetrics, RandomTraceMatchesBruteForce) {
  const uint64_t seed = 42;
  Trace t = tiny_trace(kTokens, 2, 1, 4);
  fill_random(t, seed, 1.5f);
  HeadMetricOptions o;
  o.sink_tokens = 2;
  o.locality_window = 2;
  const auto m = compute_head_metrics(t, o);
  const std::vector<int> rows = {0, 1, 2, 3, 4, 5};
  for (int h = 0; h < 2; ++h) {
    const HeadMetrics want = ref_metrics(
        t, h, rows, o, [](int) { return 0; }, nullptr, [](int) { return nullptr; });
    expect_metrics_near(m[h], want, kFloatTol,
                        "seed 42, T=6 H=2 Hkv=1 d=4, head " + std::to_string(h));
  }
}

TEST(HeadMetrics, MasksAndGroupingMap) {
  const uint64_t seed = 43;
  // Two KV heads with a swapped allocation: query head 0 reads KV 1, head 1 reads KV 0.
  Trace t = tiny_trace(kTokens, 2, 2, 4);
  fill_random(t, seed, 1.5f);
  t.groups.resize(1);
  t.groups[0].n_kv = 2;
  t.groups[0].kv_of_query = {1, 0};
  // Head 0: one sink + window 2 (no block table); head 1: block mask of 2-token blocks where
  // only the diagonal blocks are on.
  HeadMask sw;
  sw.sink_tokens = 1;
  sw.window = 2;
  sw.all_blocks = false;
  HeadMask blocks;
  blocks.block = 2;
  blocks.all_blocks = false;
  blocks.n_qblocks = 3;
  blocks.n_kblocks = 3;
  blocks.blocks = {1, 0, 0, 0, 1, 0, 0, 0, 1};
  t.masks = {{sw, blocks}};
  HeadMetricOptions o;
  o.sink_tokens = 1;
  o.locality_window = 1;
  const auto m = compute_head_metrics(t, o);
  const std::vector<int> rows = {0, 1, 2, 3, 4, 5};
  const HeadMetrics w0 = ref_metrics(
      t, 0, rows, o, [](int) { return 1; }, &sw, [](int) { return nullptr; });
  const HeadMetrics w1 = ref_metrics(
      t, 1, rows, o, [](int) { return 0; }, &blocks, [](int) { return nullptr; });
  expect_metrics_near(m[0], w0, kFloatTol, "seed 43, head 0 (sink+window, KV 1)");
  expect_metrics_near(m[1], w1, kFloatTol, "seed 43, head 1 (diagonal blocks, KV 0)");
  // Diagonal 2-blocks with window 1 locality: every row's mass is within distance 1.
  EXPECT_NEAR(m[1].locality, 1.0, kFloatTol);
}

TEST(HeadMetrics, DecodeRowsUseKeepSetsAndStepGroups) {
  const uint64_t seed = 44;
  Trace t = tiny_trace(kTokens, 2, 2, 4);  // native map: head h reads KV h
  fill_random(t, seed, 1.5f);
  t.n_prompt = 4;  // rows 4 and 5 are decode steps 0 and 1
  // Step 1 (row 5) swaps the allocation, as DGQA may between steps.
  t.group_steps.resize(2);
  t.group_steps[0] = {GroupStep{2, {0, 1}, {}}};
  t.group_steps[1] = {GroupStep{2, {1, 0}, {}}};
  t.kv_steps.resize(2);
  // reasons[step][kv]: 0 = evicted.
  const std::vector<std::vector<std::vector<uint8_t>>> reasons = {
      {{1, 0, 2, 0, 2}, {1, 1, 0, 0, 2}}, {{1, 0, 0, 3, 2, 2}, {0, 3, 3, 0, 0, 2}}};
  std::vector<std::vector<std::vector<uint8_t>>> keep(2, std::vector<std::vector<uint8_t>>(2));
  for (int s = 0; s < 2; ++s) {
    KvStep ks;
    ks.position = 4 + s;
    ks.budgets = {3, 3};
    ks.reasons = reasons[s];
    ks.lost_mass = {0.0f, 0.0f};
    t.kv_steps[s] = {ks};
    for (int kv = 0; kv < 2; ++kv) {
      for (uint8_t r : reasons[s][kv]) keep[s][kv].push_back(r != 0 ? 1 : 0);
    }
  }
  HeadMetricOptions o;
  o.sink_tokens = 1;
  o.locality_window = 1;
  const auto m = compute_head_metrics(t, o);
  const std::vector<int> rows = {0, 1, 2, 3, 4, 5};
  for (int h = 0; h < 2; ++h) {
    auto kv_of_row = [h](int i) { return i == 5 ? 1 - h : h; };
    const HeadMetrics want =
        ref_metrics(t, h, rows, o, kv_of_row, nullptr, [&](int i) -> const std::vector<uint8_t>* {
          return i >= 4 ? &keep[i - 4][kv_of_row(i)] : nullptr;
        });
    expect_metrics_near(m[h], want, kFloatTol,
                        "seed 44, decode keep sets + step groups, head " + std::to_string(h));
  }
}

TEST(HeadMetrics, StringShiftedDistances) {
  // STRING S = 3, W = 1 on T = 6: rows 3..5 score keys at distance >= 3 with the query rotated
  // by W - S = -2 positions. theta 100 makes the rotation large enough to matter at d = 4.
  const uint64_t seed = 45;
  Trace t = tiny_trace(kTokens, 2, 1, 4);
  fill_random(t, seed, 1.5f);
  t.model.rope_theta = 100.0f;
  t.string_shift = 3;
  t.string_window = 1;
  HeadMetricOptions o;
  o.sink_tokens = 1;
  o.locality_window = 1;
  const auto m = compute_head_metrics(t, o);
  const std::vector<int> rows = {0, 1, 2, 3, 4, 5};
  Trace plain = t;
  plain.string_shift = 0;
  plain.string_window = 0;
  const auto m_plain = compute_head_metrics(plain, o);
  for (int h = 0; h < 2; ++h) {
    const HeadMetrics want = ref_metrics(
        t, h, rows, o, [](int) { return 0; }, nullptr, [](int) { return nullptr; });
    // Float rotation (cos/sin of fp32 angles) vs double: a few ulps more than plain rows.
    expect_metrics_near(m[h], want, 1e-5, "seed 45, STRING S=3 W=1, head " + std::to_string(h));
    EXPECT_GT(std::abs(m[h].entropy - m_plain[h].entropy), 1e-4)
        << "seed 45: STRING changed nothing, the test would not see it";
  }
}

TEST(HeadMetrics, RankHeads) {
  std::vector<HeadMetrics> m(4);
  for (int i = 0; i < 4; ++i) m[i].head = i;
  m[0].sink_mass = 0.2;
  m[1].sink_mass = 0.9;
  m[2].sink_mass = 0.2;
  m[3].sink_mass = 0.5;
  rank_heads(m, "sink_mass");
  EXPECT_EQ(m[0].head, 1);
  EXPECT_EQ(m[1].head, 3);
  EXPECT_EQ(m[2].head, 0);  // ties keep their order
  EXPECT_EQ(m[3].head, 2);
  expect_error(ErrorKind::Usage, [&] { rank_heads(m, "perplexity"); });
}

TEST(HeadMetrics, BadTracesFailCleanly) {
  const Trace good = tiny_trace(kTokens, 2, 1, 4);
  HeadMetricOptions o;
  {
    Trace t = good;
    t.q.clear();
    t.k.clear();
    t.k_heads.clear();
    expect_error(ErrorKind::Usage, [&] { compute_head_metrics(t, o); });
  }
  {
    Trace t = good;
    t.q[0].pop_back();
    expect_error(ErrorKind::BadInput, [&] { compute_head_metrics(t, o); });
  }
  {
    Trace t = good;
    t.k_heads = {3};
    expect_error(ErrorKind::BadInput, [&] { compute_head_metrics(t, o); });
  }
  {
    Trace t = good;
    t.groups.resize(1);
    t.groups[0].kv_of_query = {0, 1};  // KV head 1 does not exist
    expect_error(ErrorKind::BadInput, [&] { compute_head_metrics(t, o); });
  }
  {
    Trace t = good;
    HeadMask bad;
    bad.all_blocks = false;
    bad.n_qblocks = 2;
    bad.n_kblocks = 2;
    bad.blocks = {1};  // too short
    t.masks = {{bad, bad}};
    expect_error(ErrorKind::BadInput, [&] { compute_head_metrics(t, o); });
  }
  {
    HeadMetricOptions bad = o;
    bad.max_rows = 0;
    expect_error(ErrorKind::Usage, [&] { compute_head_metrics(good, bad); });
  }
}

TEST(HeadMetrics, ProgressCountsHeadsAndLeavesResultsUnchanged) {
  Trace t = tiny_trace(kTokens, 4, 2, 4);
  fill_random(t, 7, 1.0f);
  t.q.push_back(t.q[0]);  // a second layer, so progress spans layers
  t.k.push_back(t.k[0]);
  t.k_heads.push_back(2);
  t.model.n_layer = 2;
  HeadMetricOptions o;
  const auto plain = compute_head_metrics(t, o);
  std::vector<double> fractions;
  o.progress = [&](double f) { fractions.push_back(f); };
  const auto with_progress = compute_head_metrics(t, o);
  ASSERT_EQ(with_progress.size(), 8u);
  for (size_t i = 0; i < plain.size(); ++i) {
    EXPECT_EQ(with_progress[i].entropy, plain[i].entropy) << i;
    EXPECT_EQ(with_progress[i].retrieval_score, plain[i].retrieval_score) << i;
  }
  // One call per (layer, head), in increasing order: 1/8, 2/8, ..., 1.
  ASSERT_EQ(fractions.size(), 8u);
  for (size_t i = 0; i < fractions.size(); ++i) {
    EXPECT_DOUBLE_EQ(fractions[i], static_cast<double>(i + 1) / 8.0);
  }
}

TEST(HeadMetrics, CancelThrowsRuntimeCancelled) {
  // 32 heads: more jobs than worker threads, so a cancel stops some of them.
  Trace t = tiny_trace(kTokens, 32, 2, 4);
  fill_random(t, 8, 1.0f);
  auto expect_cancelled = [&](const HeadMetricOptions& o, const char* what) {
    try {
      compute_head_metrics(t, o);
      ADD_FAILURE() << what << ": not cancelled";
    } catch (const Error& e) {
      EXPECT_EQ(static_cast<int>(e.kind()), static_cast<int>(ErrorKind::Runtime)) << what;
      EXPECT_NE(std::string(e.what()).find("cancelled"), std::string::npos) << e.what();
    }
  };
  std::atomic<bool> cancel{true};
  HeadMetricOptions o;
  o.cancel = &cancel;
  expect_cancelled(o, "set before the call");
  cancel = false;
  int calls = 0;
  o.progress = [&](double) {
    ++calls;
    cancel = true;  // after the first head
  };
  expect_cancelled(o, "set after the first head");
  EXPECT_LT(calls, 32) << "heads went on after the cancel";
  cancel = false;
  o.progress = {};
  EXPECT_EQ(compute_head_metrics(t, o).size(), 32u) << "an unset flag changes nothing";
}

TEST(HeadBadges, ThresholdsAreInclusiveAndIndependent) {
  const HeadBadgeThresholds th;  // documented defaults
  EXPECT_EQ(th.sink_mass, 0.6);
  EXPECT_EQ(th.locality, 0.5);
  EXPECT_EQ(th.retrieval_score, 0.2);
  auto metrics = [](double sink, double local, double retrieval) {
    HeadMetrics m;
    m.entropy = 1.0;
    m.sink_mass = sink;
    m.locality = local;
    m.retrieval_score = retrieval;
    return m;
  };
  EXPECT_EQ(head_badges(metrics(0.1, 0.1, 0.01)), 0);
  EXPECT_EQ(head_badges(metrics(0.6, 0.1, 0.01)), kBadgeSink);  // at the threshold
  EXPECT_EQ(head_badges(metrics(std::nextafter(0.6, 0.0), 0.1, 0.01)), 0);
  EXPECT_EQ(head_badges(metrics(0.1, 0.5, 0.01)), kBadgeLocal);
  EXPECT_EQ(head_badges(metrics(0.1, 0.49, 0.01)), 0);
  EXPECT_EQ(head_badges(metrics(0.1, 0.1, 0.2)), kBadgeRetrieval);
  EXPECT_EQ(head_badges(metrics(0.1, 0.1, 0.19)), 0);
  EXPECT_EQ(head_badges(metrics(0.9, 0.7, 0.3)), kBadgeSink | kBadgeLocal | kBadgeRetrieval);
  EXPECT_EQ(head_badges(metrics(0.7, 0.1, 0.25)), kBadgeSink | kBadgeRetrieval);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(head_badges(metrics(nan, nan, nan)), 0) << "NaN never qualifies";
  // Custom thresholds move each badge on its own.
  HeadBadgeThresholds strict;
  strict.sink_mass = 0.95;
  strict.locality = 0.0;         // every head is local
  strict.retrieval_score = 1.5;  // none can be
  EXPECT_EQ(head_badges(metrics(0.9, 0.0, 1.0), strict), kBadgeLocal);
  EXPECT_EQ(head_badges(metrics(0.95, 0.0, 1.0), strict), kBadgeSink | kBadgeLocal);
}

}  // namespace
}  // namespace attnscope
