// KV policies under a non-contiguous grouping map (LayerContext::kv_of_query, as KDGQA/DGQA
// produce): SnapKV and H2O must score each query head against the KV head the map names and
// reduce over exactly the query heads mapped to each KV head; a KV head no query head reads
// keeps its most recent candidates. Brute force in double precision, written plainly here (the
// reference attention is kv_policy_fixtures' KvQk::probs).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "attnscope/error.h"
#include "attnscope/kv_policies.h"
#include "attnscope/variant_parts.h"
#include "attnscope/variant_spec.h"
#include "kv_policy_fixtures.h"

namespace attnscope {
namespace {

// H = 4 query heads over Hkv = 3 KV heads (not a divisor: only a map can express it).
// KV 0 <- heads {1, 3}, KV 1 <- none, KV 2 <- heads {0, 2}; contiguous groups would differ.
constexpr int kH = 4, kHkv = 3, kD = 6;
const std::vector<int> kMap = {2, 0, 2, 0};

using namespace test;  // kv_policy_fixtures: KvQk, make_policy, kept_set, range, unite, ...
using Set = PositionSet;

// Hand-made Q/K of one layer read through kMap.
struct Data : test::KvQk {
  Data(int n, uint32_t seed) : KvQk(n, seed, kH, kHkv, kD, 1, &kMap) {}
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
  for (int h : hs) v = how == "max" ? std::max(v, per_head[h][j]) : v + per_head[h][j] / hs.size();
  return v;
}

TEST(KvGroupingMap, SnapKvReducesOverExactlyTheMappedHeads) {
  const int T = 30, w = 4, b = 14, kernel = 3, nv = T - w;
  const Data data(T, 21);
  for (const std::string how : {"mean", "max"}) {
    auto p = make_policy("snapkv", {{"budget", std::to_string(b)},
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
        for (int t = j - kernel / 2; t <= j + kernel / 2; ++t)
          acc += t >= 0 && t < nv ? vote[t] : 0;
        pooled[h][j] = acc / kernel;
      }
    }
    for (int kv = 0; kv < kHkv; ++kv) {
      std::map<int, double> s;
      for (int j = 0; j < nv; ++j) s[j] = reduce(pooled, kv, j, how);
      const Set want = unite(pick_top(s, range(0, nv), b - w), range(nv, T));
      const Set got = kept_set(*p, 0, kv);
      EXPECT_EQ(got, want) << how << " kv " << kv << " want " << show(want) << " got " << show(got);
    }
    // The unread KV head keeps the most recent positions.
    EXPECT_EQ(kept_set(*p, 0, 1), range(T - b, T)) << how;
  }
}

TEST(KvGroupingMap, H2oReducesOverExactlyTheMappedHeadsAcrossDecodeSteps) {
  const int T = 20, steps = 5, budget = 9, recent = 3, heavy = budget - recent;
  const Data data(T + steps, 5);
  for (const std::string how : {"mean", "max"}) {
    auto p = make_policy(
        "h2o",
        {{"budget", std::to_string(budget)}, {"recent", std::to_string(recent)}, {"reduce", how}});
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
      EXPECT_EQ(kept_set(*p, 0, kv), keep[kv]) << how << " prefill kv " << kv;
    for (int pos = T; pos < T + steps; ++pos) {
      p->before_decode(data.decode(pos));
      for (int kv = 0; kv < kHkv; ++kv) keep[kv].insert(pos);
      evict(pos + 1);
      for (int kv = 0; kv < kHkv; ++kv)
        EXPECT_EQ(kept_set(*p, 0, kv), keep[kv])
            << how << " pos " << pos << " kv " << kv << " want " << show(keep[kv]);
      // The probabilities a variant used (each head over its mapped KV head's kept keys).
      const auto used = used_probs(data, *p, pos);
      p->after_decode(data.decode(pos), used.data());
      for (int h = 0; h < kH; ++h)
        for (int j = 0; j <= pos; ++j) score[h][j] += used[static_cast<size_t>(h) * (pos + 1) + j];
    }
    EXPECT_EQ(kept_set(*p, 0, 1), range(T + steps - budget, T + steps)) << how;
  }
}

TEST(KvGroupingMap, MapOfTheWrongSizeOrRangeIsAnError) {
  const Data data(10, 3);
  const std::vector<int> short_map = {0, 1}, bad = {0, 1, 2, 3};
  for (const auto* m : {&short_map, &bad}) {
    LayerContext c = data.prefill(10);
    c.kv_of_query = m;
    auto p = make_policy("h2o", {{"budget", "4"}});
    EXPECT_THROW(p->after_prefill(c), Error);
  }
}

}  // namespace
}  // namespace attnscope
