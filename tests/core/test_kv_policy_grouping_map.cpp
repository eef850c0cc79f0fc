// KV policies under a non-contiguous grouping map (LayerContext::kv_of_query, as KDGQA/DGQA
// produce): SnapKV and H2O must score each query head against the KV head the map names and
// reduce over exactly the query heads mapped to each KV head; a KV head no query head reads
// keeps its most recent candidates. Brute force in double precision, written plainly here.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "attnscope/error.h"
#include "attnscope/kv_policies.h"
#include "attnscope/variant_parts.h"
#include "attnscope/variant_spec.h"

namespace attnscope {
namespace {

// H = 4 query heads over Hkv = 3 KV heads (not a divisor: only a map can express it).
// KV 0 <- heads {1, 3}, KV 1 <- none, KV 2 <- heads {0, 2}; contiguous groups would differ.
constexpr int kH = 4, kHkv = 3, kD = 6;
const std::vector<int> kMap = {2, 0, 2, 0};

using Set = std::set<int>;

std::string show(const Set& s) {
  std::string out = "{";
  for (int j : s) out += std::to_string(j) + ",";
  return out + "}";
}

std::vector<float> random_tensor(size_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>((rng() / 4294967296.0 * 2.0 - 1.0) * scale);
  return v;
}

struct Data {
  std::vector<float> q, k;  // [n, H, d], [n, Hkv, d]
  ModelConfig cfg;
  Data(int n, uint32_t seed) {
    q = random_tensor(static_cast<size_t>(n) * kH * kD, seed, 2.0f);
    k = random_tensor(static_cast<size_t>(n) * kHkv * kD, seed + 1000, 1.5f);
    cfg.n_layer = 1;
    cfg.n_head = kH;
    cfg.n_head_kv = kHkv;
    cfg.head_dim = kD;
  }
  LayerContext prefill(int T) const {
    LayerContext c;
    c.config = &cfg;
    c.shape = {T, 0, kH, kHkv, kD};
    c.q = q.data();
    c.k = k.data();
    c.v = k.data();
    c.kv_of_query = &kMap;
    return c;
  }
  LayerContext decode(int pos) const {
    LayerContext c = prefill(1);
    c.shape.pos0 = pos;
    c.q = q.data() + static_cast<size_t>(pos) * kH * kD;
    return c;
  }
  // Attention of query position `pos`, head h, over keys j <= pos of KV head kMap[h] that are
  // in `keep` (null = all), in double.
  std::vector<double> probs(int pos, int h, const Set* keep) const {
    const int kv = kMap[static_cast<size_t>(h)];
    std::vector<double> logit(static_cast<size_t>(pos) + 1, -INFINITY), p(logit.size(), 0.0);
    double mx = -INFINITY;
    for (int j = 0; j <= pos; ++j) {
      if (keep && !keep->count(j)) continue;
      double s = 0;
      for (int c = 0; c < kD; ++c)
        s += static_cast<double>(q[(static_cast<size_t>(pos) * kH + h) * kD + c]) *
             k[(static_cast<size_t>(j) * kHkv + kv) * kD + c];
      logit[j] = s / std::sqrt(static_cast<double>(kD));
      mx = std::max(mx, logit[j]);
    }
    double z = 0;
    for (int j = 0; j <= pos; ++j)
      if (std::isfinite(logit[j])) z += std::exp(logit[j] - mx);
    for (int j = 0; j <= pos; ++j)
      if (std::isfinite(logit[j])) p[j] = std::exp(logit[j] - mx) / z;
    return p;
  }
};

std::vector<int> heads_of(int kv) {
  std::vector<int> hs;
  for (int h = 0; h < kH; ++h)
    if (kMap[static_cast<size_t>(h)] == kv) hs.push_back(h);
  return hs;
}

// Group score of position j for KV head kv: mean/max over its mapped heads; an unread KV head
// scores by position (recency).
double reduce(const std::vector<std::vector<double>>& per_head, int kv, int j,
              const std::string& how) {
  const auto hs = heads_of(kv);
  if (hs.empty()) return j;
  double v = how == "max" ? -INFINITY : 0.0;
  for (int h : hs)
    v = how == "max" ? std::max(v, per_head[h][j]) : v + per_head[h][j] / hs.size();
  return v;
}

Set pick_top(const std::map<int, double>& score, const Set& cands, int k) {
  std::vector<int> v(cands.begin(), cands.end());
  std::sort(v.begin(), v.end(), [&](int a, int b) {
    const double sa = score.at(a), sb = score.at(b);
    return sa != sb ? sa > sb : a < b;
  });
  if (k < static_cast<int>(v.size())) v.resize(static_cast<size_t>(std::max(0, k)));
  return Set(v.begin(), v.end());
}

Set range(int lo, int hi) {
  Set s;
  for (int j = lo; j < hi; ++j) s.insert(j);
  return s;
}

Set unite(Set a, const Set& b) {
  a.insert(b.begin(), b.end());
  return a;
}

Set kept_set(const KvPolicy& p, int kv) {
  Set s;
  const auto& r = p.decision(0).reasons[static_cast<size_t>(kv)];
  for (size_t j = 0; j < r.size(); ++j)
    if (r[j] != KeepReason::Evicted) s.insert(static_cast<int>(j));
  return s;
}

std::unique_ptr<KvPolicy> make(const std::string& name, std::map<std::string, std::string> params) {
  static const Model dummy{};  // these policies never read the model
  PartConfig c;
  c.name = name;
  c.params = std::move(params);
  return make_kv_policy(c, dummy);
}

TEST(KvGroupingMap, SnapKvReducesOverExactlyTheMappedHeads) {
  const int T = 30, w = 4, b = 14, kernel = 3, nv = T - w;
  const Data data(T, 21);
  for (const std::string how : {"mean", "max"}) {
    auto p = make("snapkv", {{"budget", std::to_string(b)},
                             {"window", std::to_string(w)},
                             {"kernel", std::to_string(kernel)},
                             {"pool", "avg"},
                             {"reduce", how}});
    p->after_prefill(data.prefill(T));
    // Window votes per head, avg-pooled with zero padding counted (torch avg_pool1d).
    std::vector<std::vector<double>> pooled(kH, std::vector<double>(nv, 0.0));
    for (int h = 0; h < kH; ++h) {
      std::vector<double> vote(nv, 0.0);
      for (int i = nv; i < T; ++i) {
        const auto pr = data.probs(i, h, nullptr);
        for (int j = 0; j < nv; ++j) vote[j] += pr[j];
      }
      for (int j = 0; j < nv; ++j) {
        double acc = 0;
        for (int t = j - kernel / 2; t <= j + kernel / 2; ++t) acc += t >= 0 && t < nv ? vote[t] : 0;
        pooled[h][j] = acc / kernel;
      }
    }
    for (int kv = 0; kv < kHkv; ++kv) {
      std::map<int, double> s;
      for (int j = 0; j < nv; ++j) s[j] = reduce(pooled, kv, j, how);
      const Set want = unite(pick_top(s, range(0, nv), b - w), range(nv, T));
      const Set got = kept_set(*p, kv);
      EXPECT_EQ(got, want) << how << " kv " << kv << " want " << show(want) << " got "
                           << show(got);
    }
    // The unread KV head keeps the most recent positions.
    EXPECT_EQ(kept_set(*p, 1), range(T - b, T)) << how;
  }
}

TEST(KvGroupingMap, H2oReducesOverExactlyTheMappedHeadsAcrossDecodeSteps) {
  const int T = 20, steps = 5, budget = 9, recent = 3, heavy = budget - recent;
  const Data data(T + steps, 5);
  for (const std::string how : {"mean", "max"}) {
    auto p = make("h2o", {{"budget", std::to_string(budget)},
                          {"recent", std::to_string(recent)},
                          {"reduce", how}});
    std::vector<std::vector<double>> score(kH, std::vector<double>(T + steps, 0.0));
    for (int i = 0; i < T; ++i)
      for (int h = 0; h < kH; ++h) {
        const auto pr = data.probs(i, h, nullptr);
        for (int j = 0; j <= i; ++j) score[h][j] += pr[j];
      }
    std::vector<Set> keep(kHkv, range(0, T));
    auto evict = [&](int n) {
      for (int kv = 0; kv < kHkv; ++kv) {
        std::map<int, double> red;
        Set cands;
        for (int j : keep[kv]) {
          if (j >= n - recent) continue;
          cands.insert(j);
          red[j] = reduce(score, kv, j, how);
        }
        keep[kv] = unite(pick_top(red, cands, heavy), range(n - recent, n));
        for (int j = 0; j < n; ++j)
          if (!keep[kv].count(j))
            for (int h : heads_of(kv)) score[h][j] = 0;
      }
    };
    p->after_prefill(data.prefill(T));
    evict(T);
    for (int kv = 0; kv < kHkv; ++kv)
      EXPECT_EQ(kept_set(*p, kv), keep[kv]) << how << " prefill kv " << kv;
    for (int pos = T; pos < T + steps; ++pos) {
      p->before_decode(data.decode(pos));
      for (int kv = 0; kv < kHkv; ++kv) keep[kv].insert(pos);
      evict(pos + 1);
      for (int kv = 0; kv < kHkv; ++kv)
        EXPECT_EQ(kept_set(*p, kv), keep[kv])
            << how << " pos " << pos << " kv " << kv << " want " << show(keep[kv]);
      // The probabilities a variant used (each head over its mapped KV head's kept keys).
      std::vector<float> used(static_cast<size_t>(kH) * (pos + 1));
      for (int h = 0; h < kH; ++h) {
        const Set k = kept_set(*p, kMap[static_cast<size_t>(h)]);
        const auto pr = data.probs(pos, h, &k);
        for (int j = 0; j <= pos; ++j) used[static_cast<size_t>(h) * (pos + 1) + j] = pr[j];
      }
      p->after_decode(data.decode(pos), used.data());
      for (int h = 0; h < kH; ++h)
        for (int j = 0; j <= pos; ++j) score[h][j] += used[static_cast<size_t>(h) * (pos + 1) + j];
    }
    EXPECT_EQ(kept_set(*p, 1), range(T + steps - budget, T + steps)) << how;
  }
}

TEST(KvGroupingMap, MapOfTheWrongSizeOrRangeIsAnError) {
  const Data data(10, 3);
  const std::vector<int> short_map = {0, 1}, bad = {0, 1, 2, 3};
  for (const auto* m : {&short_map, &bad}) {
    LayerContext c = data.prefill(10);
    c.kv_of_query = m;
    auto p = make("h2o", {{"budget", "4"}});
    EXPECT_THROW(p->after_prefill(c), Error);
  }
}

}  // namespace
}  // namespace attnscope
