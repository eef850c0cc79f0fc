// Unit tests of the grouping parts (grouping_parts.cpp, grouping_simulations.cpp) on hand-made
// tensors: KDGQA/DGQA allocations against hand computations of the reference rules, PGQA noise
// statistics, pooling against direct means, SQA head dropping, MLA reconstruction and the
// eigen-solver it rests on.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "../../core/src/grouping_parts_internal.h"
#include "attnscope/error.h"
#include "attnscope/ops.h"
#include "attnscope/variant_parts.h"
#include "attnscope/variant_spec.h"

namespace attnscope {
namespace {

using namespace grouping_detail;

// float32 sums of a few products; the parts compute in float like the reference.
constexpr float kFloatTol = 1e-5f;
// MLA full-rank reconstruction: float32 projections through a 16-dim orthonormal basis.
constexpr float kReconTol = 1e-4f;

Model make_model(int n_layer, int H, int Hkv, int d, int D, uint32_t seed) {
  Model m;
  ModelConfig& c = m.config;
  c.architecture = "llama";
  c.n_layer = n_layer;
  c.n_head = H;
  c.n_head_kv = Hkv;
  c.head_dim = d;
  c.n_embd = D;
  c.n_ff = 4;
  c.vocab_size = 8;
  c.context_length = 64;
  c.rope_theta = 10000.0f;
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  auto fill = [&](std::vector<float>& v, size_t n) {
    v.resize(n);
    for (auto& x : v) x = nd(rng);
  };
  for (int l = 0; l < n_layer; ++l) {
    LayerWeights w;
    fill(w.wq, static_cast<size_t>(H) * d * D);
    fill(w.wk, static_cast<size_t>(Hkv) * d * D);
    fill(w.wv, static_cast<size_t>(Hkv) * d * D);
    fill(w.wo, static_cast<size_t>(D) * H * d);
    m.layers.push_back(std::move(w));
  }
  return m;
}

// Holds the tensors a LayerContext points to. q: [n_query, H, d]; k, v: [pos0 + n_query, Hkv, d].
struct Ctx {
  std::vector<float> q, k, v;
  LayerContext ctx;
  Ctx(const Model& m, int layer, int pos0, int n_query) {
    const ModelConfig& c = m.config;
    q.assign(static_cast<size_t>(n_query) * c.n_head * c.head_dim, 0.0f);
    k.assign(static_cast<size_t>(pos0 + n_query) * c.n_head_kv * c.head_dim, 0.0f);
    v = k;
    ctx.config = &m.config;
    ctx.layer = layer;
    ctx.shape = AttentionShape{n_query, pos0, c.n_head, c.n_head_kv, c.head_dim};
    bind();
  }
  void bind() {
    ctx.q = q.data();
    ctx.k = k.data();
    ctx.v = v.data();
  }
  void randomize(uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (auto* vec : {&q, &k, &v}) {
      for (auto& x : *vec) x = nd(rng);
    }
  }
};

PartConfig cfg(const std::string& name, std::map<std::string, std::string> params = {}) {
  PartConfig p;
  p.name = name;
  p.params = std::move(params);
  return p;
}

// ---------------------------------------------------------------------------------------------

TEST(GroupingRounding, HalfToEvenLikeTorchRound) {
  EXPECT_EQ(round_half_even(0.5), 0.0);
  EXPECT_EQ(round_half_even(1.5), 2.0);
  EXPECT_EQ(round_half_even(2.5), 2.0);
  EXPECT_EQ(round_half_even(3.5), 4.0);
  EXPECT_EQ(round_half_even(2.4999), 2.0);
  EXPECT_EQ(round_half_even(2.5001), 3.0);
  EXPECT_EQ(round_half_even(-0.5), 0.0);
  EXPECT_EQ(round_half_even(-1.5), -2.0);
}

TEST(Kdgqa, AllocationByHand) {
  // n = [1, 2, 4] -> n_hat = [0, 1/3, 1], shares = [0, 2.25, 6.75] -> [0, 2, 7]; KV 0 gets none.
  EXPECT_EQ(kdgqa_allocation({1.0f, 2.0f, 4.0f}, 9), (std::vector<int>{0, 2, 7}));
  // n_hat = [0, 1, 1]: shares [0, 4.5, 4.5] round half-even to [0, 4, 4] (sum 8 < 9):
  // increment the first argmin (KV 0) -> [1, 4, 4].
  EXPECT_EQ(kdgqa_allocation({0.0f, 5.0f, 5.0f}, 9), (std::vector<int>{1, 4, 4}));
  // H = 8, Hkv = 4, n_hat = [0, 1, 1, 1]: shares 8/3 each round to 3 (sum 9 > 8): decrement
  // the first argmax (KV 1) -> [0, 2, 3, 3].
  EXPECT_EQ(kdgqa_allocation({1.0f, 2.0f, 2.0f, 2.0f}, 8), (std::vector<int>{0, 2, 3, 3}));
  // Order does not matter to the rule, only to the contiguous split.
  EXPECT_EQ(kdgqa_allocation({4.0f, 1.0f, 2.0f}, 9), (std::vector<int>{7, 0, 2}));
  // Equal norms: max == min (0/0 in the reference) -> native.
  EXPECT_EQ(kdgqa_allocation({3.0f, 3.0f, 3.0f}, 9), (std::vector<int>{3, 3, 3}));
  EXPECT_EQ(kdgqa_allocation({3.0f}, 9), (std::vector<int>{9}));
}

TEST(Kdgqa, ContiguousSplit) {
  EXPECT_EQ(contiguous_kv_of_query({0, 2, 7}, 9), (std::vector<int>{1, 1, 2, 2, 2, 2, 2, 2, 2}));
  EXPECT_EQ(contiguous_kv_of_query({0, 2, 3, 3}, 8), (std::vector<int>{1, 1, 2, 2, 2, 3, 3, 3}));
  EXPECT_THROW(contiguous_kv_of_query({1, 1}, 3), Error);
}

TEST(Kdgqa, PartUsesFrobeniusNormsOfTheCache) {
  const Model m = make_model(2, 9, 3, 4, 8, 1);
  Ctx c(m, 1, 0, 5);  // 5 tokens, d = 4: a head filled with constant a has norm a * sqrt(20)
  const float a[3] = {1.0f, 2.0f, 4.0f};
  for (int t = 0; t < 5; ++t)
    for (int j = 0; j < 3; ++j)
      for (int e = 0; e < 4; ++e) c.k[(t * 3 + j) * 4 + e] = (e % 2 ? -a[j] : a[j]);
  auto part = make_grouping_part(cfg("kdgqa"), m);
  const GroupingResult r = part->group(c.ctx);
  EXPECT_EQ(r.n_kv, 3);
  EXPECT_TRUE(r.k.empty());
  ASSERT_EQ(r.key_norms.size(), 3u);
  for (int j = 0; j < 3; ++j) EXPECT_NEAR(r.key_norms[j], a[j] * std::sqrt(20.0f), kFloatTol * 10);
  EXPECT_EQ(r.kv_of_query, (std::vector<int>{1, 1, 2, 2, 2, 2, 2, 2, 2}));
}

// ---------------------------------------------------------------------------------------------
// DGQA: one non-zero key element per KV head makes the norms exactly the values we choose.

void set_norms(Ctx& c, const std::vector<float>& n, int d) {
  std::fill(c.k.begin(), c.k.end(), 0.0f);
  for (size_t j = 0; j < n.size(); ++j) c.k[j * d] = n[j];
}

GroupingResult dgqa_call(GroupingPart& part, const Model& m, int pos0,
                         const std::vector<float>& n) {
  Ctx c(m, 0, pos0, 1 + (pos0 == 0 ? 2 : 0));
  set_norms(c, n, m.config.head_dim);
  return part.group(c.ctx);
}

std::vector<int> alloc_of(const GroupingResult& r, int n_kv) {
  std::vector<int> a(static_cast<size_t>(n_kv), 0);
  for (int kv : r.kv_of_query) ++a[static_cast<size_t>(kv)];
  return a;
}

std::map<std::string, std::string> dgqa_params(const char* kind, const char* every = "1") {
  return {{"kind", kind}, {"beta", "0.9"}, {"window", "300"}, {"every", every}, {"seed", "7"}};
}

TEST(Dgqa, DiffSequenceByHand) {
  const Model m = make_model(1, 9, 3, 4, 8, 2);
  auto part = make_grouping_part(cfg("dgqa", dgqa_params("diff")), m);
  // Call 1 (prefill): cache = 0 (reference buffer) -> w = n = [1, 2, 6] -> [1, 2, 6].
  GroupingResult r = dgqa_call(*part, m, 0, {1, 2, 6});
  EXPECT_EQ(alloc_of(r, 3), (std::vector<int>{1, 2, 6}));
  EXPECT_EQ(r.key_norms, (std::vector<float>{1, 2, 6}));
  // Call 2: cache = [1, 2, 6], n = [3, 2, 10] -> w = [2, 0, 4] -> shares [3, 0, 6].
  r = dgqa_call(*part, m, 3, {3, 2, 10});
  EXPECT_EQ(alloc_of(r, 3), (std::vector<int>{3, 0, 6}));
  EXPECT_EQ(r.kv_of_query, (std::vector<int>{0, 0, 0, 2, 2, 2, 2, 2, 2}));
  // Call 3: same norms -> w = 0 (0/0 in the reference) -> native.
  r = dgqa_call(*part, m, 4, {3, 2, 10});
  EXPECT_EQ(alloc_of(r, 3), (std::vector<int>{3, 3, 3}));
  // A new prefill restarts from the zero cache.
  r = dgqa_call(*part, m, 0, {1, 2, 6});
  EXPECT_EQ(alloc_of(r, 3), (std::vector<int>{1, 2, 6}));
}

TEST(Dgqa, EmaSequenceByHand) {
  const Model m = make_model(1, 9, 3, 4, 8, 3);
  auto part = make_grouping_part(cfg("dgqa", dgqa_params("ema")), m);
  // Call 1: w = 0.9 n + 0.1 * 0 -> proportional to n = [1, 2, 6].
  GroupingResult r = dgqa_call(*part, m, 0, {1, 2, 6});
  EXPECT_EQ(alloc_of(r, 3), (std::vector<int>{1, 2, 6}));
  // Call 2: w = 0.9 [10, 2, 6] + 0.1 [1, 2, 6] = [9.1, 2, 6]; shares 9 w / 17.1 =
  // [4.79, 1.05, 3.16] -> [5, 1, 3].
  r = dgqa_call(*part, m, 3, {10, 2, 6});
  EXPECT_EQ(alloc_of(r, 3), (std::vector<int>{5, 1, 3}));
}

TEST(Dgqa, TrainingScheduleEveryN) {
  const Model m = make_model(1, 9, 3, 4, 8, 4);
  auto part = make_grouping_part(cfg("dgqa", dgqa_params("diff", "2")), m);
  GroupingResult r = dgqa_call(*part, m, 0, {1, 2, 6});  // recompute: [1, 2, 6]; cache = n / 300
  EXPECT_EQ(alloc_of(r, 3), (std::vector<int>{1, 2, 6}));
  r = dgqa_call(*part, m, 3, {6, 2, 1});  // no recompute: allocation kept
  EXPECT_EQ(alloc_of(r, 3), (std::vector<int>{1, 2, 6}));
  EXPECT_EQ(r.key_norms, (std::vector<float>{1, 2, 6}));
  // Recompute: w = |[1, 2, 6] / 300 - [4, 1, 4]| = [3.9967, 0.9933, 3.98] -> [4.01, 1.00, 3.99].
  r = dgqa_call(*part, m, 4, {4, 1, 4});
  EXPECT_EQ(alloc_of(r, 3), (std::vector<int>{4, 1, 4}));
}

TEST(Dgqa, RandomRepairIsSeededAndValid) {
  // w = [1, 1, 1, 1], H = 8... needs no repair; w = [1, 1, 1] on H = 9 neither. Use shares
  // [4.5, 0, 4.5] (rounded to 4, 0, 4: one increment at a random index).
  std::set<std::vector<int>> allowed = {{5, 0, 4}, {4, 1, 4}, {4, 0, 5}};
  std::set<std::vector<int>> seen;
  for (uint64_t seed = 0; seed < 32; ++seed) {
    SplitMix64 a(seed), b(seed);
    const std::vector<int> x = dgqa_allocation({3.0f, 0.0f, 3.0f}, 9, a);
    EXPECT_EQ(x, dgqa_allocation({3.0f, 0.0f, 3.0f}, 9, b)) << "seed " << seed;
    EXPECT_TRUE(allowed.count(x)) << "seed " << seed;
    seen.insert(x);
  }
  EXPECT_EQ(seen.size(), 3u);  // every index is reachable
  // Decrement direction: shares [2.67, 2.67, 2.67, 0] round to [3, 3, 3, 0] on H = 8: one of the
  // positive entries loses one, never the zero one.
  for (uint64_t seed = 0; seed < 16; ++seed) {
    SplitMix64 g(seed);
    const std::vector<int> x = dgqa_allocation({1.0f, 1.0f, 1.0f, 0.0f}, 8, g);
    EXPECT_EQ(x[3], 0);
    EXPECT_EQ(x[0] + x[1] + x[2], 8);
    EXPECT_EQ(std::min({x[0], x[1], x[2]}), 2);
  }
}

// ---------------------------------------------------------------------------------------------

TEST(Pgqa, NoiseRowStatisticsAndDiagonal) {
  const int rows = 3, cols = 10;
  std::vector<float> o(rows * cols);
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.5f, 2.0f);
  for (auto& x : o) x = nd(rng);
  SplitMix64 g1(42), g2(42), g3(43);
  const std::vector<float> n1 = pgqa_noise(o.data(), rows, cols, g1);
  EXPECT_EQ(n1, pgqa_noise(o.data(), rows, cols, g2)) << "seed 42 not deterministic";
  EXPECT_NE(n1, pgqa_noise(o.data(), rows, cols, g3));
  for (int r = 0; r < rows; ++r) {
    double om = 0, nm = 0;
    for (int c = 0; c < cols; ++c) om += o[r * cols + c], nm += n1[r * cols + c];
    om /= cols, nm /= cols;
    double ov = 0, nv = 0;
    for (int c = 0; c < cols; ++c) {
      ov += (o[r * cols + c] - om) * (o[r * cols + c] - om);
      nv += (n1[r * cols + c] - nm) * (n1[r * cols + c] - nm);
    }
    EXPECT_NEAR(nm, om, 1e-5) << "row " << r;
    EXPECT_NEAR(std::sqrt(nv / (cols - 1)), std::sqrt(ov / (cols - 1)), 1e-5) << "row " << r;
    // The zeroed draw is the smallest possible uniform value, so after the affine rescaling
    // (positive std) the diagonal element is the row minimum.
    for (int c = 0; c < cols; ++c) EXPECT_LE(n1[r * cols + r], n1[r * cols + c]) << r << "," << c;
  }
}

TEST(Pgqa, PerturbsEachGroupsFlattenedOutput) {
  const Model m = make_model(1, 4, 2, 3, 8, 5);
  const int P = 2, H = 4, d = 3, g = 2;
  Ctx c(m, 0, 0, P);
  c.randomize(12);
  std::vector<float> out(P * H * d);
  std::mt19937 rng(13);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (auto& x : out) x = nd(rng);
  auto run = [&](const char* sigma, const char* seed) {
    auto part = make_grouping_part(cfg("pgqa", {{"sigma", sigma}, {"seed", seed}}), m);
    const GroupingResult r = part->group(c.ctx);
    EXPECT_EQ(r.kv_of_query, (std::vector<int>{0, 0, 1, 1}));
    std::vector<float> o = out;
    part->perturb_output(c.ctx, r, o.data());
    return o;
  };
  EXPECT_EQ(run("0", "1"), out);
  const std::vector<float> a = run("1", "1");
  EXPECT_EQ(a, run("1", "1"));
  EXPECT_NE(a, run("1", "2"));
  const std::vector<float> half = run("0.5", "1");
  for (int grp = 0; grp < 2; ++grp) {
    for (int r = 0; r < g; ++r) {
      const int h = grp * g + r;
      // Row = head h flattened over (P, d); noise = O - O' has the row's mean and std.
      std::vector<double> orow, nrow;
      for (int p = 0; p < P; ++p)
        for (int e = 0; e < d; ++e) {
          const size_t i = (static_cast<size_t>(p) * H + h) * d + e;
          orow.push_back(out[i]);
          nrow.push_back(out[i] - a[i]);
          EXPECT_NEAR(out[i] - half[i], 0.5 * (out[i] - a[i]), 1e-5) << "sigma scales noise";
        }
      auto mean = [](const std::vector<double>& x) {
        double s = 0;
        for (double v : x) s += v;
        return s / x.size();
      };
      EXPECT_NEAR(mean(nrow), mean(orow), 1e-5) << "head " << h;
      // Diagonal of the (g, P*d) matrix: row r, column r -> token r / d, channel r % d.
      const double diag = nrow[static_cast<size_t>(r)];
      for (double v : nrow) EXPECT_LE(diag, v + 1e-6) << "head " << h;
    }
  }
}

// ---------------------------------------------------------------------------------------------

TEST(Pooling, GqaAndMqaPoolTheMeanOfHeads) {
  const Model m = make_model(1, 8, 4, 3, 8, 6);
  Ctx c(m, 0, 0, 5);
  c.randomize(21);
  const int n_key = 5, Hkv = 4, d = 3;
  for (int groups : {1, 2, 4}) {
    auto part = groups == 1
                    ? make_grouping_part(cfg("mqa"), m)
                    : make_grouping_part(cfg("gqa", {{"groups", std::to_string(groups)}}), m);
    const GroupingResult r = part->group(c.ctx);
    ASSERT_EQ(r.n_kv, groups);
    ASSERT_EQ(r.k.size(), static_cast<size_t>(n_key * groups * d));
    const int per = Hkv / groups;
    float worst = 0;
    for (int t = 0; t < n_key; ++t)
      for (int gi = 0; gi < groups; ++gi)
        for (int e = 0; e < d; ++e) {
          double sk = 0, sv = 0;
          for (int j = gi * per; j < (gi + 1) * per; ++j) {
            sk += c.k[(t * Hkv + j) * d + e];
            sv += c.v[(t * Hkv + j) * d + e];
          }
          worst = std::max(
              worst, std::fabs(r.k[(t * groups + gi) * d + e] - static_cast<float>(sk / per)));
          worst = std::max(
              worst, std::fabs(r.v[(t * groups + gi) * d + e] - static_cast<float>(sv / per)));
        }
    EXPECT_LT(worst, kFloatTol) << "groups " << groups;
    for (int h = 0; h < 8; ++h) EXPECT_EQ(r.kv_of_query[h], (h / 2) / per) << "groups " << groups;
  }
  EXPECT_THROW(make_grouping_part(cfg("gqa", {{"groups", "3"}}), m), Error);
}

TEST(Pooling, PoolingCommutesWithRope) {
  // The comment's claim: mean of rotated keys == rotation of the mean (same position).
  const int n = 4, Hkv = 3, d = 8;
  std::vector<float> pre(n * Hkv * d);
  std::mt19937 rng(31);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (auto& x : pre) x = nd(rng);
  std::vector<int32_t> pos = {0, 7, 100, 4000};
  std::vector<float> rotated = pre;
  rope_half_split(rotated.data(), n, Hkv, d, pos.data(), 10000.0f);
  const std::vector<float> a = pool_kv_heads(rotated.data(), n, Hkv, d, 1);
  std::vector<float> b = pool_kv_heads(pre.data(), n, Hkv, d, 1);
  rope_half_split(b.data(), n, 1, d, pos.data(), 10000.0f);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], kFloatTol) << i;
}

TEST(Native, IdentityMapping) {
  const Model m = make_model(1, 9, 3, 4, 8, 7);
  Ctx c(m, 0, 0, 2);
  const GroupingResult r = make_grouping_part(cfg("native"), m)->group(c.ctx);
  EXPECT_EQ(r.n_kv, 3);
  EXPECT_TRUE(r.k.empty() && r.v.empty() && r.key_norms.empty() && r.active_query_heads.empty());
  EXPECT_EQ(r.kv_of_query, (std::vector<int>{0, 0, 0, 1, 1, 1, 2, 2, 2}));
}

TEST(GroupingFactory, UnknownNameAndRegistry) {
  const Model m = make_model(1, 9, 3, 4, 8, 8);
  EXPECT_THROW(make_grouping_part(cfg("nope"), m), Error);
  std::set<std::string> names;
  for (const PartSpec& s : grouping_part_specs()) {
    EXPECT_EQ(s.kind, PartKind::Grouping);
    EXPECT_TRUE(names.insert(s.name).second) << s.name;
    EXPECT_TRUE(s.label == "training-free" || s.label == "simulation (needs training)") << s.name;
    for (const ParamSpec& p : s.params) {
      EXPECT_FALSE(p.help.empty()) << s.name << "." << p.name;
      if (p.type == ParamType::Int || p.type == ParamType::Float) {
        const double v = std::stod(p.default_value);
        EXPECT_TRUE(v >= p.min && v <= p.max) << s.name << "." << p.name;
      }
    }
  }
  EXPECT_EQ(names,
            (std::set<std::string>{"native", "mqa", "gqa", "kdgqa", "dgqa", "pgqa", "sqa", "mla"}));
}

// ---------------------------------------------------------------------------------------------

TEST(Sqa, ZeroesExactlyTheDroppedHeads) {
  // H = 4, Hkv = 2, d = 2, D = 3. W_O^h = s_h * B, W_Q^h norms q_h. V rows are constant per KV
  // head, so o_h = v_kv whatever the probabilities: ||W_O^h o_h|| = s_h ||B v_kv||.
  Model m = make_model(1, 4, 2, 2, 3, 9);
  const float s[4] = {1, 5, 3, 2}, qn[4] = {10, 1, 1, 1};
  LayerWeights& w = m.layers[0];
  for (int r = 0; r < 3; ++r)
    for (int h = 0; h < 4; ++h)
      for (int e = 0; e < 2; ++e) w.wo[r * 8 + h * 2 + e] = s[h] * (r == e ? 1.0f : 0.0f);
  for (int h = 0; h < 4; ++h)
    for (int i = 0; i < 2 * 3; ++i) w.wq[h * 6 + i] = (i == 0 ? qn[h] : 0.0f);
  Ctx c(m, 0, 0, 3);
  c.randomize(41);
  for (int t = 0; t < 3; ++t)
    for (int j = 0; j < 2; ++j)
      for (int e = 0; e < 2; ++e) c.v[(t * 2 + j) * 2 + e] = 1.0f + j + e;
  std::vector<float> out(3 * 4 * 2);
  for (size_t i = 0; i < out.size(); ++i) out[i] = 0.25f * static_cast<float>(i + 1);
  auto check = [&](const char* choose, std::vector<int> expect) {
    auto part = make_grouping_part(
        cfg("sqa", {{"heads", "2"}, {"choose", choose}, {"calib_rows", "64"}}), m);
    const GroupingResult r = part->group(c.ctx);
    EXPECT_EQ(r.active_query_heads, expect) << choose;
    EXPECT_EQ(r.kv_of_query, (std::vector<int>{0, 0, 1, 1}));
    std::vector<float> o = out;
    part->perturb_output(c.ctx, r, o.data());
    for (int i = 0; i < 3; ++i)
      for (int h = 0; h < 4; ++h)
        for (int e = 0; e < 2; ++e) {
          const size_t idx = (i * 4 + h) * 2 + e;
          const bool kept = std::find(expect.begin(), expect.end(), h) != expect.end();
          EXPECT_EQ(o[idx], kept ? out[idx] : 0.0f) << choose << " head " << h;
        }
  };
  check("output", {1, 2});   // scores s_h * |v_kv|: [1*|.|, 5*|.|, 3*|..|, 2*|..|]
  check("weights", {0, 1});  // ||W_O^h|| ||W_Q^h||: [10, 5, 3, 2] * sqrt(2)
  EXPECT_THROW(make_grouping_part(
                   cfg("sqa", {{"heads", "5"}, {"choose", "output"}, {"calib_rows", "64"}}), m),
               Error);
}

// ---------------------------------------------------------------------------------------------

TEST(Eigen, KnownAndRandomSymmetric) {
  std::vector<double> vals, vecs;
  symmetric_eigen({2, 1, 1, 2}, 2, vals, vecs);
  EXPECT_NEAR(vals[0], 3.0, 1e-12);
  EXPECT_NEAR(vals[1], 1.0, 1e-12);
  EXPECT_NEAR(std::fabs(vecs[0]), std::sqrt(0.5), 1e-12);
  for (int n : {1, 3, 20, 57}) {
    std::mt19937 rng(100 + n);
    std::normal_distribution<double> nd(0.0, 1.0);
    std::vector<double> a(n * n);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j <= i; ++j) a[i * n + j] = a[j * n + i] = nd(rng);
    if (n == 20) {  // rank-deficient with a repeated eigenvalue 0
      std::vector<double> b(n * 3);
      for (auto& x : b) x = nd(rng);
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) {
          double s = 0;
          for (int t = 0; t < 3; ++t) s += b[i * 3 + t] * b[j * 3 + t];
          a[i * n + j] = s;
        }
    }
    symmetric_eigen(a, n, vals, vecs);
    double worst = 0;
    for (int e = 0; e < n; ++e) {
      if (e > 0) {
        EXPECT_GE(vals[e - 1], vals[e]) << "n " << n;
      }
      for (int i = 0; i < n; ++i) {
        double s = 0;
        for (int j = 0; j < n; ++j) s += a[i * n + j] * vecs[e * n + j];
        worst = std::max(worst, std::fabs(s - vals[e] * vecs[e * n + i]));
      }
      for (int f = 0; f <= e; ++f) {
        double dot = 0;
        for (int j = 0; j < n; ++j) dot += vecs[e * n + j] * vecs[f * n + j];
        worst = std::max(worst, std::fabs(dot - (e == f ? 1.0 : 0.0)));
      }
    }
    EXPECT_LT(worst, 1e-10) << "n " << n << " residual/orthonormality";
    // Asking for the top 2 vectors only gives the same rows.
    std::vector<double> vals2, vecs2;
    symmetric_eigen(a, n, vals2, vecs2, std::min(n, 2));
    ASSERT_EQ(vecs2.size(), static_cast<size_t>(std::min(n, 2) * n));
    for (size_t i = 0; i < vecs2.size(); ++i) EXPECT_NEAR(vecs2[i], vecs[i], 1e-12) << "n " << n;
  }
}

// MLA test model: Hkv = 2, d = 4 -> joint width n = 16, D = 24. Keys built pre-RoPE then rotated.
struct MlaData {
  Model m;
  std::vector<float> k_pre, k_post, v;
  int n_key;
};

MlaData mla_data(int n_key, int w_rank) {
  MlaData x{make_model(1, 4, 2, 4, 24, 51), {}, {}, {}, n_key};
  std::mt19937 rng(52);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  LayerWeights& w = x.m.layers[0];
  if (w_rank > 0) {  // W = A B of rank w_rank
    std::vector<float> a(16 * w_rank), b(w_rank * 24);
    for (auto& e : a) e = nd(rng);
    for (auto& e : b) e = nd(rng);
    for (int i = 0; i < 16; ++i)
      for (int j = 0; j < 24; ++j) {
        float s = 0;
        for (int t = 0; t < w_rank; ++t) s += a[i * w_rank + t] * b[t * 24 + j];
        (i < 8 ? w.wk[i * 24 + j] : w.wv[(i - 8) * 24 + j]) = s;
      }
  }
  // Activations x_t -> [k; v] = W x_t (in the weights' column space).
  x.k_pre.resize(n_key * 8);
  x.v.resize(n_key * 8);
  for (int t = 0; t < n_key; ++t) {
    std::vector<float> in(24);
    for (auto& e : in) e = nd(rng);
    for (int i = 0; i < 8; ++i) {
      float sk = 0, sv = 0;
      for (int j = 0; j < 24; ++j) sk += w.wk[i * 24 + j] * in[j], sv += w.wv[i * 24 + j] * in[j];
      x.k_pre[t * 8 + i] = sk;
      x.v[t * 8 + i] = sv;
    }
  }
  x.k_post = x.k_pre;
  std::vector<int32_t> pos(n_key);
  for (int t = 0; t < n_key; ++t) pos[t] = t;
  rope_half_split(x.k_post.data(), n_key, 2, 4, pos.data(), x.m.config.rope_theta);
  return x;
}

GroupingResult mla_group(GroupingPart& part, const MlaData& x, int pos0, int n_query) {
  Ctx c(x.m, 0, pos0, n_query);
  std::copy_n(x.k_post.begin(), c.k.size(), c.k.begin());
  std::copy_n(x.v.begin(), c.v.size(), c.v.begin());
  return part.group(c.ctx);
}

double mla_error(const GroupingResult& r, const MlaData& x, int n_key) {
  double e = 0;
  for (int i = 0; i < n_key * 8; ++i) {
    e += std::pow(r.k[i] - x.k_post[i], 2) + std::pow(r.v[i] - x.v[i], 2);
  }
  return e;
}

TEST(Mla, FullRankReconstructsAndErrorFallsWithRank) {
  const MlaData x = mla_data(6, 0);
  double prev = 1e300;
  for (int r = 1; r <= 16; ++r) {
    auto part = make_grouping_part(cfg("mla", {{"rank", std::to_string(r)}}), x.m);
    const GroupingResult g = mla_group(*part, x, 0, 6);
    ASSERT_EQ(g.n_kv, 2);
    ASSERT_EQ(g.k.size(), x.k_post.size());
    EXPECT_EQ(g.kv_of_query, (std::vector<int>{0, 0, 1, 1}));
    const double err = mla_error(g, x, 6);
    EXPECT_LE(err, prev * (1 + 1e-6) + 1e-9) << "rank " << r;
    prev = err;
    if (r == 16) {
      float worst = 0;
      for (size_t i = 0; i < g.k.size(); ++i) {
        worst = std::max({worst, std::fabs(g.k[i] - x.k_post[i]), std::fabs(g.v[i] - x.v[i])});
      }
      EXPECT_LT(worst, kReconTol) << "full rank 16, 6 tokens";
    }
  }
  EXPECT_THROW(make_grouping_part(cfg("mla", {{"rank", "17"}}), x.m), Error);
}

TEST(Mla, SubspaceIsThatOfTheWeights) {
  // W of rank 3: data in its column space is reconstructed exactly at rank 3, not at rank 2.
  const MlaData x = mla_data(6, 3);
  auto r3 = make_grouping_part(cfg("mla", {{"rank", "3"}}), x.m);
  auto r2 = make_grouping_part(cfg("mla", {{"rank", "2"}}), x.m);
  double scale = 0;
  for (int i = 0; i < 6 * 8; ++i) scale += x.k_post[i] * x.k_post[i] + x.v[i] * x.v[i];
  EXPECT_LT(mla_error(mla_group(*r3, x, 0, 6), x, 6), 1e-8 * scale);
  EXPECT_GT(mla_error(mla_group(*r2, x, 0, 6), x, 6), 1e-3 * scale);
}

TEST(Mla, DecodeExtendsTheCachedReconstruction) {
  const MlaData x = mla_data(7, 0);
  auto inc = make_grouping_part(cfg("mla", {{"rank", "5"}}), x.m);
  auto fresh = make_grouping_part(cfg("mla", {{"rank", "5"}}), x.m);
  mla_group(*inc, x, 0, 5);
  mla_group(*inc, x, 5, 1);
  const GroupingResult a = mla_group(*inc, x, 6, 1);
  const GroupingResult b = mla_group(*fresh, x, 0, 7);
  ASSERT_EQ(a.k.size(), b.k.size());
  for (size_t i = 0; i < a.k.size(); ++i) {
    EXPECT_NEAR(a.k[i], b.k[i], kFloatTol) << i;
    EXPECT_NEAR(a.v[i], b.v[i], kFloatTol) << i;
  }
}

}  // namespace
}  // namespace attnscope
