// Unit tests of the pattern parts (full, window, sinks, hybrid, blocktopk, flexprefill,
// longheads) and mask_density: every mask is compared pair by pair with a token mask written
// here independently from the rule's definition, on hand-made or seeded Q/K/V, including
// decode rows (pos0 > 0) and lengths that are not a multiple of the block size.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "../../core/src/pattern_internal.h"
#include "attnscope/error.h"
#include "attnscope/variant_parts.h"
#include "attnscope/variant_spec.h"

namespace attnscope {
namespace {

using pattern_detail::blocktopk_select;
using pattern_detail::score_cover_idx;
using pattern_detail::score_cover_topk;

// Random Q/K/V of one layer: q [n_query, H, d] for rows pos0.., k/v [n_key, Hkv, d].
struct Tensors {
  AttentionShape shape;
  std::vector<float> q, k, v;
  LayerContext ctx(int layer = 0) const {
    LayerContext c;
    c.layer = layer;
    c.shape = shape;
    c.q = q.data();
    c.k = k.data();
    c.v = v.data();
    return c;
  }
};

Tensors random_tensors(int pos0, int n_query, int H, int Hkv, int d, unsigned seed) {
  Tensors t;
  t.shape = AttentionShape{n_query, pos0, H, Hkv, d};
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  t.q.resize(static_cast<size_t>(n_query) * H * d);
  t.k.resize(static_cast<size_t>(pos0 + n_query) * Hkv * d);
  t.v.resize(t.k.size());
  for (auto& x : t.q) x = nd(rng);
  for (auto& x : t.k) x = nd(rng);
  for (auto& x : t.v) x = nd(rng);
  return t;
}

PartConfig config(const std::string& name, std::map<std::string, std::string> params = {}) {
  PartConfig c;
  c.name = name;
  c.params = std::move(params);
  return c;
}

Model tiny_model(int context_length = 8192) {
  Model m;
  m.config.context_length = context_length;
  m.config.rope_theta = 10000.0f;
  return m;
}

// Compares mask.visible with `expected` on every causal pair of rows pos0..pos0+n_query-1 and
// mask_density with the brute-force count.
void expect_mask(const HeadMask& mask, int pos0, int n_query,
                 const std::function<bool(int, int)>& expected, const std::string& what) {
  long long vis = 0, total = 0;
  int mismatches = 0;
  for (int i = pos0; i < pos0 + n_query; ++i) {
    for (int j = 0; j <= i + 3; ++j) {  // also a few j > i, which must be hidden
      const bool want = j <= i && expected(i, j);
      if (mask.visible(i, j) != want && mismatches++ < 5) {
        ADD_FAILURE() << what << ": pair (i=" << i << ", j=" << j
                      << ") visible=" << mask.visible(i, j) << " expected=" << want;
      }
      if (j <= i) {
        ++total;
        vis += want;
      }
    }
  }
  EXPECT_EQ(mismatches, 0) << what << " pos0=" << pos0 << " n_query=" << n_query;
  const double want_density = total == 0 ? 1.0 : static_cast<double>(vis) / total;
  EXPECT_DOUBLE_EQ(mask_density(mask, pos0, n_query), want_density) << what;
}

struct Shape {
  int pos0, n_query;
};
const Shape kShapes[] = {{0, 1}, {0, 100}, {0, 257}, {37, 5}, {200, 1}, {129, 64}};

TEST(PatternParts, FullIsCausal) {
  auto part = make_pattern_part(config("full"), tiny_model());
  for (const Shape& s : kShapes) {
    Tensors t = random_tensors(s.pos0, s.n_query, 3, 1, 4, 1);
    PatternResult r = part->mask(t.ctx());
    ASSERT_EQ(r.heads.size(), 3u);
    for (const auto& m : r.heads) {
      expect_mask(
          m, s.pos0, s.n_query, [](int, int) { return true; }, "full");
    }
  }
}

TEST(PatternParts, WindowAndSinksMatchTokenRules) {
  for (int w : {1, 16, 64, 100}) {
    auto win = make_pattern_part(config("window", {{"w", std::to_string(w)}}), tiny_model());
    auto snk = make_pattern_part(config("sinks", {{"sink_tokens", "4"}, {"w", std::to_string(w)}}),
                                 tiny_model());
    for (const Shape& s : kShapes) {
      Tensors t = random_tensors(s.pos0, s.n_query, 2, 2, 4, 2);
      for (const auto& m : win->mask(t.ctx()).heads) {
        expect_mask(
            m, s.pos0, s.n_query, [w](int i, int j) { return i - j < w; },
            "window w=" + std::to_string(w));
      }
      for (const auto& m : snk->mask(t.ctx()).heads) {
        expect_mask(
            m, s.pos0, s.n_query, [w](int i, int j) { return j < 4 || i - j < w; },
            "sinks w=" + std::to_string(w));
      }
    }
  }
}

TEST(PatternParts, WindowAtLeastLengthIsIdentity) {
  const int T = 257;
  const std::string w = std::to_string(T);
  Tensors t = random_tensors(0, T, 2, 1, 4, 3);
  auto full = make_pattern_part(config("full"), tiny_model())->mask(t.ctx());
  for (const PartConfig& c :
       {config("window", {{"w", w}}), config("sinks", {{"sink_tokens", "4"}, {"w", w}}),
        config("hybrid", {{"w", w}}), config("blocktopk", {{"k", "5"}}),
        config("longheads", {{"w", "64"}, {"atten_length", "320"}})}) {
    auto part = make_pattern_part(c, tiny_model());
    for (const auto& m : part->mask(t.ctx(2)).heads) {
      for (int i = 0; i < T; ++i) {
        for (int j = 0; j < T; ++j) {
          ASSERT_EQ(m.visible(i, j), full.heads[0].visible(i, j))
              << c.name << " i=" << i << " j=" << j;
        }
      }
      EXPECT_DOUBLE_EQ(mask_density(m, 0, T), 1.0) << c.name;
    }
  }
}

TEST(PatternParts, HybridGlobalLayers) {
  auto every = make_pattern_part(config("hybrid", {{"w", "8"}, {"every", "4"}}), tiny_model());
  auto listed =
      make_pattern_part(config("hybrid", {{"w", "8"}, {"global_layers", "0+29"}}), tiny_model());
  Tensors t = random_tensors(0, 40, 2, 1, 4, 4);
  const std::set<int> global_every = {3, 7, 11, 15, 19, 23, 27};
  for (int layer = 0; layer < 30; ++layer) {
    const bool g1 = global_every.count(layer) > 0;
    const bool g2 = layer == 0 || layer == 29;
    for (const auto& m : every->mask(t.ctx(layer)).heads) {
      expect_mask(
          m, 0, 40, [g1](int i, int j) { return g1 || i - j < 8; },
          "hybrid every layer " + std::to_string(layer));
    }
    for (const auto& m : listed->mask(t.ctx(layer)).heads) {
      expect_mask(
          m, 0, 40, [g2](int i, int j) { return g2 || i - j < 8; },
          "hybrid list layer " + std::to_string(layer));
    }
  }
}

// ---- blocktopk ----

TEST(BlockTopk, SelectsTopBlocksPlusForced) {
  // Query block 7, k = 5, init 1, local 2: forced {0, 6, 7}; the two best of 1..5 by score.
  const std::vector<double> scores = {0.0, 0.5, 3.0, 0.1, 2.0, 2.5, 9.0, 9.0};
  EXPECT_EQ(blocktopk_select(scores, 7, 5, 1, 2), (std::vector<int>{0, 2, 5, 6, 7}));
  // Ties take the lower index; init 2 forces blocks 0 and 1.
  const std::vector<double> ties = {0, 0, 1, 1, 1, 0};
  EXPECT_EQ(blocktopk_select(ties, 5, 5, 2, 1), (std::vector<int>{0, 1, 2, 3, 5}));
  // k smaller than the forced set keeps the forced set.
  EXPECT_EQ(blocktopk_select(scores, 7, 1, 1, 2), (std::vector<int>{0, 6, 7}));
  // Early query blocks keep everything they can see.
  EXPECT_EQ(blocktopk_select({1.0, 2.0}, 1, 16, 1, 2), (std::vector<int>{0, 1}));
}

// Independent brute force of the simulation's rule: per group, per query row, p_cmp over blocks
// 0..qb (own block pooled over keys up to the row), summed; selection by full sort.
std::vector<std::vector<int>> brute_blocktopk(const Tensors& t, int B, int k, int init, int local,
                                              int kv) {
  const auto& s = t.shape;
  const int H = s.n_head, Hkv = s.n_head_kv, d = s.head_dim, g = H / Hkv;
  const int n_key = s.n_key();
  const int nb = (n_key + B - 1) / B;
  auto key = [&](int j) { return &t.k[(static_cast<size_t>(j) * Hkv + kv) * d]; };
  std::vector<std::vector<double>> score(nb, std::vector<double>(nb, 0.0));
  for (int r = 0; r < s.n_query; ++r) {
    const int i = s.pos0 + r, qb = i / B;
    std::vector<std::vector<double>> pooled(qb + 1, std::vector<double>(d, 0.0));
    for (int b = 0; b <= qb; ++b) {
      const int hi = b < qb ? b * B + B - 1 : i;
      for (int j = b * B; j <= hi; ++j) {
        for (int e = 0; e < d; ++e) pooled[b][e] += key(j)[e] / (hi - b * B + 1);
      }
    }
    for (int h = kv * g; h < kv * g + g; ++h) {
      std::vector<double> lg(qb + 1);
      double z = 0;
      for (int b = 0; b <= qb; ++b) {
        double dot = 0;
        for (int e = 0; e < d; ++e)
          dot += t.q[(static_cast<size_t>(r) * H + h) * d + e] * pooled[b][e];
        lg[b] = std::exp(dot / std::sqrt(static_cast<double>(d)));
        z += lg[b];
      }
      for (int b = 0; b <= qb; ++b) score[qb][b] += lg[b] / z;
    }
  }
  std::vector<std::vector<int>> sel(nb);
  for (int qb = s.pos0 / B; qb <= (n_key - 1) / B; ++qb) {
    std::set<int> chosen;
    for (int b = 0; b < init && b <= qb; ++b) chosen.insert(b);
    for (int b = qb; b > qb - local && b >= 0; --b) chosen.insert(b);
    std::vector<std::pair<double, int>> rest;
    for (int b = 0; b <= qb; ++b) {
      if (!chosen.count(b)) rest.push_back({-score[qb][b], b});
    }
    std::sort(rest.begin(), rest.end());
    for (const auto& [neg, b] : rest) {
      if (static_cast<int>(chosen.size()) >= k) break;
      chosen.insert(b);
    }
    sel[qb].assign(chosen.begin(), chosen.end());
  }
  return sel;
}

TEST(BlockTopk, MaskMatchesBruteForce) {
  struct Case {
    int pos0, n_query, B, k, init, local, w;
  };
  const Case cases[] = {{0, 150, 16, 4, 1, 2, 0}, {0, 150, 16, 3, 0, 1, 5},
                        {150, 1, 16, 4, 1, 2, 0}, {100, 30, 16, 5, 2, 2, 0},
                        {0, 64, 16, 16, 1, 2, 0}, {0, 97, 7, 6, 1, 2, 3}};
  for (const Case& c : cases) {
    Tensors t = random_tensors(c.pos0, c.n_query, 4, 2, 8, 11 + c.pos0 + c.B);
    auto part = make_pattern_part(config("blocktopk", {{"block", std::to_string(c.B)},
                                                       {"k", std::to_string(c.k)},
                                                       {"init", std::to_string(c.init)},
                                                       {"local", std::to_string(c.local)},
                                                       {"w", std::to_string(c.w)}}),
                                  tiny_model());
    PatternResult r = part->mask(t.ctx());
    ASSERT_EQ(r.heads.size(), 4u);
    for (int h = 0; h < 4; ++h) {
      const auto sel = brute_blocktopk(t, c.B, c.k, c.init, c.local, h / 2);
      expect_mask(
          r.heads[h], c.pos0, c.n_query,
          [&](int i, int j) {
            const auto& row = sel[i / c.B];
            return (c.w > 0 && i - j < c.w) ||
                   std::find(row.begin(), row.end(), j / c.B) != row.end();
          },
          "blocktopk pos0=" + std::to_string(c.pos0) + " B=" + std::to_string(c.B) +
              " k=" + std::to_string(c.k) + " head " + std::to_string(h));
    }
    // One shared selection per GQA group.
    EXPECT_EQ(r.heads[0].blocks, r.heads[1].blocks);
    EXPECT_EQ(r.heads[2].blocks, r.heads[3].blocks);
  }
}

TEST(BlockTopk, KAtLeastBlocksIsFull) {
  Tensors t = random_tensors(0, 100, 2, 1, 4, 5);
  auto part = make_pattern_part(config("blocktopk", {{"block", "16"}, {"k", "7"}}), tiny_model());
  for (const auto& m : part->mask(t.ctx()).heads) {
    expect_mask(
        m, 0, 100, [](int, int) { return true; }, "blocktopk k >= blocks");
  }
}

// ---- flexprefill ----

TEST(FlexPrefill, ScoreCoverHandCase) {
  const std::vector<double> x = {0.1, 0.4, 0.2, 0.3};
  // Sorted 0.4, 0.3, 0.2, 0.1; cumsum 0.4, 0.7, 0.9, 1.0.
  EXPECT_EQ(score_cover_topk(x, 0.75), 3);  // two entries <= 0.75, plus one
  EXPECT_EQ(score_cover_topk(x, 0.35), 1);
  EXPECT_EQ(score_cover_idx(x, 0.75), (std::vector<int>{1, 3}));
  EXPECT_EQ(score_cover_idx(x, 0.95), (std::vector<int>{1, 3, 2}));
  EXPECT_TRUE(score_cover_idx(x, 0.3).empty());
  // JSD of identical distributions is 0; of disjoint ones sqrt(ln 2).
  EXPECT_NEAR(pattern_detail::sqrt_js_divergence({0.5, 0.5}, {0.5, 0.5}), 0.0, 1e-12);
  EXPECT_NEAR(pattern_detail::sqrt_js_divergence({1, 0}, {0, 1}), std::sqrt(std::log(2.0)), 1e-12);
}

// Head 0: q = 0, so attention is uniform and pooled estimate == truth (query-aware). Head 1:
// q . k0 is huge while every block's mean key is 0 (keys cancel in pairs), so the pooled
// estimate is uniform but the true mass sits on key 0 (vertical-slash).
Tensors flex_tensors(int T, int d) {
  Tensors t;
  t.shape = AttentionShape{T, 0, 2, 1, d};
  t.q.assign(static_cast<size_t>(T) * 2 * d, 0.0f);
  t.k.assign(static_cast<size_t>(T) * d, 0.0f);
  t.v.assign(t.k.size(), 0.0f);
  t.k[0] = 40.0f;   // key 0 = +40 e1
  t.k[d] = -40.0f;  // key 1 = -40 e1 -> block 0's mean key is 0
  for (int i = 0; i < T; ++i) t.q[(static_cast<size_t>(i) * 2 + 1) * d] = 1.0f;  // head 1 q = e1
  return t;
}

// Independent D: softmax over keys of the last B rows, vertical block sums vs softmax of the
// mean query against block-mean keys.
double brute_flex_d(const Tensors& t, int h, int B) {
  const int T = t.shape.n_query, d = t.shape.head_dim, H = 2, nb = (T + B - 1) / B;
  std::vector<double> vbar(nb, 0.0), mean_q(d, 0.0);
  for (int i = T - B; i < T; ++i) {
    std::vector<double> p(i + 1);
    double z = 0;
    for (int j = 0; j <= i; ++j) {
      double dot = 0;
      for (int e = 0; e < d; ++e)
        dot += t.q[(static_cast<size_t>(i) * H + h) * d + e] * t.k[static_cast<size_t>(j) * d + e];
      p[j] = std::exp(dot / std::sqrt(d * 1.0));
      z += p[j];
    }
    for (int j = 0; j <= i; ++j) vbar[j / B] += p[j] / z / B;
    for (int e = 0; e < d; ++e) mean_q[e] += t.q[(static_cast<size_t>(i) * H + h) * d + e] / B;
  }
  std::vector<double> abar(nb);
  double z = 0;
  for (int b = 0; b < nb; ++b) {
    double dot = 0;
    const int cnt = std::min(B, T - b * B);
    for (int j = b * B; j < b * B + cnt; ++j) {
      for (int e = 0; e < d; ++e) dot += mean_q[e] * t.k[static_cast<size_t>(j) * d + e] / cnt;
    }
    abar[b] = std::exp(dot / std::sqrt(d * 1.0));
    z += abar[b];
  }
  double js = 0;
  for (int b = 0; b < nb; ++b) {
    const double a = abar[b] / z, v = vbar[b], m = (a + v) / 2;
    if (a > 0) js += 0.5 * a * std::log(a / m);
    if (v > 0) js += 0.5 * v * std::log(v / m);
  }
  return std::sqrt(js);
}

TEST(FlexPrefill, JsdDecisionAndMasks) {
  const int T = 256, B = 16, d = 8;
  Tensors t = flex_tensors(T, d);
  auto part = make_pattern_part(
      config("flexprefill",
             {{"gamma", "0.85"}, {"tau", "0.1"}, {"block", "16"}, {"min_budget", "0"}}),
      tiny_model());
  PatternResult r = part->mask(t.ctx());
  ASSERT_EQ(r.head_scores.size(), 2u);
  const double d0 = brute_flex_d(t, 0, B), d1 = brute_flex_d(t, 1, B);
  EXPECT_NEAR(r.head_scores[0], d0, 1e-5);
  EXPECT_NEAR(r.head_scores[1], d1, 1e-5);
  EXPECT_LT(r.head_scores[0], 0.1) << r.note;
  EXPECT_GT(r.head_scores[1], 0.1) << r.note;
  EXPECT_NE(r.note.find("h0 query-aware"), std::string::npos) << r.note;
  EXPECT_NE(r.note.find("h1 vertical-slash"), std::string::npos) << r.note;
  // Head 1: one vertical block (column 0) and one slash block (the diagonal).
  expect_mask(
      r.heads[1], 0, T, [](int i, int j) { return j / B == 0 || j / B == i / B; },
      "flexprefill vertical-slash head");
  // Head 0: min budget (1 block: column 0 + diagonal) plus the query-aware cover. With q = 0
  // the block attention row r is uniform 1/(r+1); cumulative sums reach 13 after rows 0..12,
  // then row 13's entries of 1/14 fit while 13 + m/14 <= 0.85 * 16 = 13.6, i.e. m = 8.
  auto qa = [](int qb, int kb) { return qb <= 12 || (qb == 13 && kb < 8); };
  expect_mask(
      r.heads[0], 0, T,
      [&](int i, int j) { return j / B == 0 || j / B == i / B || qa(i / B, j / B); },
      "flexprefill query-aware head");
  EXPECT_NE(r.note.find("qa=99"), std::string::npos) << r.note;
}

TEST(FlexPrefill, DenseFallbackAndDecode) {
  Tensors t = flex_tensors(128, 8);
  // T <= max(2B, ceil(min_budget / B) * B) = 512: dense.
  auto part = make_pattern_part(config("flexprefill", {{"block", "16"}, {"min_budget", "500"}}),
                                tiny_model());
  PatternResult r = part->mask(t.ctx());
  for (const auto& m : r.heads) EXPECT_TRUE(m.all_blocks);
  EXPECT_TRUE(r.head_scores.empty());
  Tensors dec = random_tensors(300, 1, 2, 1, 8, 9);
  for (const auto& m : part->mask(dec.ctx()).heads) EXPECT_TRUE(m.all_blocks);
}

// Independent re-statement of get_active_blocks for one head, written by distance: returns the
// set of (query block, key block) pairs with qb >= kb that the reference marks active.
std::set<std::pair<int, int>> brute_flex(const Tensors& t, int h, int B, double gamma, double tau,
                                         int min_budget, int max_budget, int div) {
  const int T = t.shape.n_query, d = t.shape.head_dim, H = t.shape.n_head;
  const int Hkv = t.shape.n_head_kv, kv = h / (H / Hkv), nb = (T + B - 1) / B;
  const double sc = 1.0 / std::sqrt(static_cast<double>(d));
  auto q = [&](int i, int e) {
    return static_cast<double>(t.q[(static_cast<size_t>(i) * H + h) * d + e]);
  };
  auto k = [&](int j, int e) {
    return static_cast<double>(t.k[(static_cast<size_t>(j) * Hkv + kv) * d + e]);
  };
  std::vector<double> vert(T, 0.0), by_dist(T, 0.0);
  for (int i = T - B; i < T; ++i) {
    std::vector<double> p(i + 1);
    double mx = -1e300, z = 0;
    for (int j = 0; j <= i; ++j) {
      double dot = 0;
      for (int e = 0; e < d; ++e) dot += q(i, e) * k(j, e);
      mx = std::max(mx, p[j] = dot * sc);
    }
    for (int j = 0; j <= i; ++j) z += (p[j] = std::exp(p[j] - mx));
    for (int j = 0; j <= i; ++j) {
      vert[j] += p[j] / z / B;
      by_dist[i - j] += p[j] / z / B;
    }
  }
  auto cover = [&](std::vector<double> x) {
    std::sort(x.rbegin(), x.rend());
    double cum = 0;
    int n = 0;
    for (double v : x) n += (cum += v) <= gamma;
    return n + 1;
  };
  const int minb = (std::max(min_budget, 1) + B - 1) / B;
  const int maxb = max_budget == 0 ? nb : std::min(nb, (max_budget + B - 1) / B);
  const int dv = div == 0 ? B : div;
  int nv = std::min(std::max(cover(vert) / dv + 1, minb), maxb);
  int ns = std::min(std::max(cover(by_dist) / dv + 1, minb), maxb);
  std::vector<double> vpool(nb, 0.0), spool(nb, 0.0), abar(nb, 0.0), mq(d, 0.0);
  for (int j = 0; j < T; ++j) vpool[j / B] += vert[j];
  for (int dist = 0; dist < T; ++dist) spool[(T - 1 - dist) / B] += by_dist[dist];
  std::vector<std::vector<double>> ak(nb, std::vector<double>(d, 0.0));
  for (int j = 0; j < T; ++j) {
    for (int e = 0; e < d; ++e) ak[j / B][e] += k(j, e) / std::min(B, T - (j / B) * B);
  }
  for (int i = T - B; i < T; ++i) {
    for (int e = 0; e < d; ++e) mq[e] += q(i, e) * sc / B;
  }
  double z = 0, mx = -1e300;
  for (int b = 0; b < nb; ++b) {
    for (int e = 0; e < d; ++e) abar[b] += mq[e] * ak[b][e];
    mx = std::max(mx, abar[b]);
  }
  for (double& a : abar) z += (a = std::exp(a - mx));
  double js = 0;
  for (int b = 0; b < nb; ++b) {
    const double a = abar[b] / z, v = vpool[b], m = (a + v) / 2;
    if (a > 0) js += 0.5 * a * std::log(a / m);
    if (v > 0) js += 0.5 * v * std::log(v / m);
  }
  const bool qa = std::sqrt(js) < tau;
  if (qa) nv = ns = minb;
  auto top = [&](std::vector<double> x, int n) {
    std::vector<int> idx(x.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return x[a] > x[b]; });
    idx.resize(std::min<size_t>(idx.size(), static_cast<size_t>(n)));
    return idx;
  };
  vpool[0] = 1e300;
  spool[nb - 1] = 1e300;
  std::set<std::pair<int, int>> on = {{0, 0}};
  for (int c : top(vpool, nv)) {
    for (int r = c; r < nb; ++r) on.insert({r, c});
  }
  for (int b : top(spool, ns)) {
    for (int r = nb - 1 - b; r < nb; ++r) on.insert({r, r - (nb - 1 - b)});
  }
  if (qa) {
    std::vector<double> flat(static_cast<size_t>(nb) * nb, 0.0);
    for (int r = 0; r < nb; ++r) {
      std::vector<double> aq(d, 0.0);
      const int cnt = std::min(B, T - r * B);
      for (int i = r * B; i < r * B + cnt; ++i) {
        for (int e = 0; e < d; ++e) aq[e] += q(i, e) / cnt;
      }
      double zr = 0, mr = -1e300;
      for (int c = 0; c <= r; ++c) {
        double dot = 0;
        for (int e = 0; e < d; ++e) dot += aq[e] * ak[c][e];
        mr = std::max(mr, flat[r * nb + c] = dot * sc);
      }
      for (int c = 0; c <= r; ++c) zr += (flat[r * nb + c] = std::exp(flat[r * nb + c] - mr));
      for (int c = 0; c <= r; ++c) flat[r * nb + c] /= zr;
    }
    double cum = 0;
    for (int idx : top(flat, nb * nb)) {
      if ((cum += flat[idx]) <= gamma * nb) on.insert({idx / nb, idx % nb});
    }
  }
  return on;
}

// Head 1 has a strong slash at distance 40 (q_i = 0.5 k_{i-40} on random keys, no ties), head 0
// is random, head 2 random with a large scale.
Tensors slash_tensors(int T, int d) {
  Tensors t = random_tensors(0, T, 3, 1, d, 41);
  for (int i = 0; i < T; ++i) {
    for (int e = 0; e < d; ++e) {
      t.q[(static_cast<size_t>(i) * 3 + 1) * d + e] =
          i >= 40 ? 0.5f * t.k[static_cast<size_t>(i - 40) * d + e] : 0.0f;
      t.q[(static_cast<size_t>(i) * 3 + 2) * d + e] *= 3.0f;
    }
  }
  return t;
}

TEST(FlexPrefill, MasksMatchIndependentRestatement) {
  struct Case {
    int T, B;
    double gamma, tau;
    int min_budget, max_budget, div;
  };
  const Case cases[] = {{300, 32, 0.9, 0.1, 0, 0, 128},
                        {300, 32, 0.95, 0.3, 64, 0, 0},
                        {300, 16, 0.9, 0.5, 32, 64, 0},
                        {256, 16, 0.8, 0.0, 48, 0, 16},
                        {400, 64, 0.9, 1.0, 0, 0, 128}};
  int n_query_aware = 0, n_vertical_slash = 0;
  for (const Case& c : cases) {
    Tensors t = slash_tensors(c.T, 64);
    auto part =
        make_pattern_part(config("flexprefill", {{"gamma", std::to_string(c.gamma)},
                                                 {"tau", std::to_string(c.tau)},
                                                 {"block", std::to_string(c.B)},
                                                 {"min_budget", std::to_string(c.min_budget)},
                                                 {"max_budget", std::to_string(c.max_budget)},
                                                 {"budget_div", std::to_string(c.div)}}),
                          tiny_model());
    PatternResult r = part->mask(t.ctx());
    ASSERT_EQ(r.heads.size(), 3u);
    for (int h = 0; h < 3; ++h) {
      const auto on = brute_flex(t, h, c.B, c.gamma, c.tau, c.min_budget, c.max_budget, c.div);
      expect_mask(
          r.heads[h], 0, c.T,
          [&](int i, int j) {
            return on.count({i / c.B, j / c.B}) > 0;
          },
          "flexprefill T=" + std::to_string(c.T) + " B=" + std::to_string(c.B) + " head " +
              std::to_string(h) + " (" + r.note + ")");
      const std::string tag = "h" + std::to_string(h) + " ";
      n_query_aware += r.note.find(tag + "query-aware") != std::string::npos;
      n_vertical_slash += r.note.find(tag + "vertical-slash") != std::string::npos;
    }
  }
  // The cases exercise both decisions.
  EXPECT_GT(n_query_aware, 0);
  EXPECT_GT(n_vertical_slash, 0);
}

// ---- longheads ----

// Chunk c of head h is visible to query block qb in `mask` for every row of that block.
std::set<int> chunks_of_row(const HeadMask& m, int i, int w) {
  std::set<int> out;
  for (int c = 0; c <= i / w; ++c) {
    if (m.visible(i, c * w)) out.insert(c);
  }
  return out;
}

TEST(LongHeads, ForcedChunksPrefillAndDecode) {
  // n = atten_length / w = 3: only the forced chunks (no free choice).
  const int w = 4, T = 30;
  auto part =
      make_pattern_part(config("longheads", {{"w", "4"}, {"atten_length", "12"}}), tiny_model());
  Tensors all = random_tensors(0, T + 2, 3, 1, 8, 21);
  Tensors pre = all;
  pre.shape = AttentionShape{T, 0, 3, 1, 8};
  PatternResult r = part->mask(pre.ctx());
  for (int h = 0; h < 3; ++h) {
    expect_mask(
        r.heads[h], 0, T,
        [&](int i, int j) {
          if (i < 12) return true;  // before atten_length: full attention
          const int qb = i / w, c = j / w;
          return c == 0 || c == qb - 1 || c == qb;
        },
        "longheads prefill head " + std::to_string(h));
  }
  // Decode p = 30 (31 tokens): first chunk, last full chunk 6, current partial chunk 7.
  Tensors d1 = all;
  d1.shape = AttentionShape{1, T, 3, 1, 8};
  d1.q.assign(all.q.begin() + static_cast<ptrdiff_t>(T) * 3 * 8,
              all.q.begin() + static_cast<ptrdiff_t>(T + 1) * 3 * 8);
  r = part->mask(d1.ctx());
  for (int h = 0; h < 3; ++h) {
    EXPECT_EQ(chunks_of_row(r.heads[h], 30, w), (std::set<int>{0, 6, 7}));
    expect_mask(
        r.heads[h], T, 1, [&](int, int j) { return j / w == 0 || j / w >= 6; },
        "longheads decode 30");
  }
  // A repeated call for the same step gives the same mask (rows are not appended twice).
  PatternResult again = part->mask(d1.ctx());
  for (int h = 0; h < 3; ++h) EXPECT_EQ(again.heads[h].blocks, r.heads[h].blocks);
  // Decode p = 31 (32 tokens, no partial chunk): first chunk and last full chunk 7.
  Tensors d2 = all;
  d2.shape = AttentionShape{1, T + 1, 3, 1, 8};
  d2.q.assign(all.q.begin() + static_cast<ptrdiff_t>(T + 1) * 3 * 8, all.q.end());
  r = part->mask(d2.ctx());
  for (int h = 0; h < 3; ++h) {
    EXPECT_EQ(chunks_of_row(r.heads[h], 31, w), (std::set<int>{0, 7}));
  }
  // A prompt no longer than atten_length is unchanged.
  Tensors short_t = random_tensors(0, 12, 3, 1, 8, 22);
  for (const auto& m : part->mask(short_t.ctx()).heads) EXPECT_TRUE(m.all_blocks);
}

// Independent chunk representation: RoPE by hand (half split, angle p * theta^(-2i/d)).
void rotate(std::vector<double>& x, double pos, double theta) {
  const int d = static_cast<int>(x.size()), half = d / 2;
  for (int i = 0; i < half; ++i) {
    const double a = pos * std::pow(theta, -2.0 * i / d);
    const double x0 = x[i], x1 = x[i + half];
    x[i] = x0 * std::cos(a) - x1 * std::sin(a);
    x[i + half] = x1 * std::cos(a) + x0 * std::sin(a);
  }
}

TEST(LongHeads, PicksTheBestScoredChunk) {
  // n = 4: forced {0, qb-1, qb} plus the best of chunks 1..qb-2 by the mean un-rotated score.
  const int w = 4, T = 40, H = 2, d = 8;
  const double theta = 10000.0;
  auto part =
      make_pattern_part(config("longheads", {{"w", "4"}, {"atten_length", "16"}}), tiny_model());
  Tensors t = random_tensors(0, T, H, 1, d, 31);
  PatternResult r = part->mask(t.ctx());
  auto vec = [&](const std::vector<float>& src, int row, int heads, int h) {
    std::vector<double> out(d);
    for (int e = 0; e < d; ++e) out[e] = src[(static_cast<size_t>(row) * heads + h) * d + e];
    return out;
  };
  for (int h = 0; h < H; ++h) {
    // r_c for chunks 0..T/w-1.
    std::vector<std::vector<double>> reps;
    for (int c = 0; c < T / w; ++c) {
      std::vector<std::vector<double>> ql, kl, vl;
      for (int u = 0; u < w; ++u) {
        auto qv = vec(t.q, c * w + u, H, h), kv = vec(t.k, c * w + u, 1, 0);
        rotate(qv, -(c * w + u), theta);
        rotate(qv, u, theta);
        rotate(kv, -(c * w + u), theta);
        rotate(kv, u, theta);
        ql.push_back(qv);
        kl.push_back(kv);
        vl.push_back(vec(t.v, c * w + u, 1, 0));
      }
      auto attend = [&](const std::vector<double>& q,
                        const std::vector<std::vector<double>>& vals) {
        std::vector<double> p(w), out(d, 0.0);
        double z = 0;
        for (int u = 0; u < w; ++u) {
          double dot = 0;
          for (int e = 0; e < d; ++e) dot += q[e] * kl[u][e];
          z += (p[u] = std::exp(dot / std::sqrt(d * 1.0)));
        }
        for (int u = 0; u < w; ++u) {
          for (int e = 0; e < d; ++e) out[e] += p[u] / z * vals[u][e];
        }
        return out;
      };
      std::vector<double> m(d, 0.0);
      for (int u = 0; u < w; ++u) {
        auto o = attend(ql[u], vl);
        for (int e = 0; e < d; ++e) m[e] += o[e] / w;
      }
      reps.push_back(attend(m, kl));
    }
    for (int qb = 4; qb < T / w; ++qb) {
      int best = -1;
      double best_score = -1e300;
      for (int c = 1; c <= qb - 2; ++c) {
        double s = 0;
        for (int i = qb * w; i < qb * w + w; ++i) {
          auto q = vec(t.q, i, H, h);
          rotate(q, -i, theta);
          for (int e = 0; e < d; ++e) s += q[e] * reps[c][e];
        }
        if (s > best_score) {
          best_score = s;
          best = c;
        }
      }
      for (int i = qb * w; i < qb * w + w; ++i) {
        EXPECT_EQ(chunks_of_row(r.heads[h], i, w), (std::set<int>{0, best, qb - 1, qb}))
            << "head " << h << " query block " << qb;
      }
    }
  }
}

// ---- mask_density ----

TEST(MaskDensity, RandomMasksMatchCounting) {
  std::mt19937 rng(77);
  for (int trial = 0; trial < 40; ++trial) {
    HeadMask m;
    m.all_blocks = false;
    m.block = 1 + static_cast<int>(rng() % 20);
    m.sink_tokens = static_cast<int>(rng() % 6);
    m.window = static_cast<int>(rng() % 3 == 0 ? 0 : rng() % 40);
    const int pos0 = static_cast<int>(rng() % 50), n_query = 1 + static_cast<int>(rng() % 90);
    m.n_qblocks = (pos0 + n_query + m.block - 1) / m.block;
    m.n_kblocks = m.n_qblocks;
    m.blocks.resize(static_cast<size_t>(m.n_qblocks) * m.n_kblocks);
    for (auto& b : m.blocks) b = rng() % 3 == 0;
    long long vis = 0, total = 0;
    for (int i = pos0; i < pos0 + n_query; ++i) {
      for (int j = 0; j <= i; ++j) {
        ++total;
        const bool on = j < m.sink_tokens || (m.window > 0 && i - j < m.window) ||
                        m.blocks[static_cast<size_t>(i / m.block) * m.n_kblocks + j / m.block];
        vis += on;
      }
    }
    EXPECT_DOUBLE_EQ(mask_density(m, pos0, n_query), static_cast<double>(vis) / total)
        << "trial " << trial << " seed 77 block=" << m.block << " pos0=" << pos0;
  }
  HeadMask bad;
  bad.all_blocks = false;
  bad.n_qblocks = 3;
  bad.n_kblocks = 3;
  bad.blocks.resize(4);
  EXPECT_THROW(mask_density(bad, 0, 10), Error);
}

// ---- registry and errors ----

TEST(PatternParts, RegistryDefaultsBuildEveryPart) {
  std::set<std::string> names;
  for (const PartSpec& s : pattern_part_specs()) {
    EXPECT_EQ(s.kind, PartKind::Pattern);
    EXPECT_TRUE(names.insert(s.name).second) << "duplicate " << s.name;
    EXPECT_TRUE(s.label == "training-free" || s.label == "simulation (needs training)") << s.name;
    PartConfig c = config(s.name);
    for (const ParamSpec& p : s.params) {
      c.params[p.name] = p.default_value;
      EXPECT_FALSE(p.help.empty()) << s.name << "." << p.name;
    }
    EXPECT_NO_THROW(make_pattern_part(c, tiny_model())) << s.name;
  }
  EXPECT_EQ(names, (std::set<std::string>{"full", "window", "sinks", "hybrid", "blocktopk",
                                          "flexprefill", "longheads"}));
}

// Through the shared spec parser: canonical parameter text (IntList joined by '+', floats
// normalised) reaches the factories intact.
TEST(PatternParts, ParsedSpecsBuildParts) {
  for (const PartSpec& s : pattern_part_specs()) {
    const VariantSpec v = VariantSpec::parse("pattern=" + s.name);
    EXPECT_NO_THROW(make_pattern_part(v.pattern, tiny_model())) << s.name;
  }
  const VariantSpec v = VariantSpec::parse("pattern=hybrid:w=8,global_layers=3+7");
  auto part = make_pattern_part(v.pattern, tiny_model());
  Tensors t = random_tensors(0, 20, 1, 1, 4, 6);
  for (int layer : {2, 3, 7, 11}) {
    const bool global = layer == 3 || layer == 7;
    expect_mask(
        part->mask(t.ctx(layer)).heads[0], 0, 20,
        [global](int i, int j) { return global || i - j < 8; },
        "parsed hybrid layer " + std::to_string(layer));
  }
  const VariantSpec f = VariantSpec::parse("pattern=flexprefill:gamma=0.95,block=32");
  EXPECT_NO_THROW(make_pattern_part(f.pattern, tiny_model()));
  const VariantSpec p = VariantSpec::parse("positions=string:shift=100,window=16");
  auto pos = make_position_part(p.positions, tiny_model());
  EXPECT_EQ(pos->effective_distance(150), 66);
}

TEST(PatternParts, BadParametersNameThePartAndParameter) {
  auto message = [](const PartConfig& c) {
    try {
      make_pattern_part(c, tiny_model());
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Usage);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(config("window", {{"w", "0"}})).find("window.w"), std::string::npos);
  EXPECT_NE(message(config("flexprefill", {{"block", "48"}})).find("flexprefill.block"),
            std::string::npos);
  EXPECT_NE(message(config("longheads", {{"w", "64"}, {"atten_length", "100"}}))
                .find("longheads.atten_length"),
            std::string::npos);
  EXPECT_NE(message(config("hybrid", {{"global_layers", "3,x"}})).find("hybrid.global_layers"),
            std::string::npos);
  EXPECT_NE(message(config("nosuch")).find("nosuch"), std::string::npos);
}

}  // namespace
}  // namespace attnscope
