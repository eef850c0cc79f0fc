// KV-cache policies on hand-made Q/K (H=4, Hkv=2, d=6, T=30): each policy's kept set, step by
// step, equals a brute-force implementation of its rule written plainly here in double
// precision (enumerate scores, sort, pick); budgets are exact; the registry and errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "../../core/src/kv_policy_common.h"  // white-box: pool1d and the Gumbel noise source
#include "attnscope/error.h"
#include "attnscope/kv_policies.h"
#include "attnscope/variant_parts.h"
#include "attnscope/variant_spec.h"
#include "kv_policy_fixtures.h"

namespace attnscope {
namespace {

constexpr int kH = 4, kHkv = 2, kD = 6, kG = kH / kHkv;
constexpr double kPoolTol = 1e-12;  // pooling is exact double arithmetic on small integers

using namespace test;  // kv_policy_fixtures: KvQk, make_policy, kept_set, range, unite, ...
using Set = PositionSet;

// Hand-made Q/K over the file's head layout (contiguous groups of kG query heads).
struct Data : test::KvQk {
  Data(int n, uint32_t seed, int n_layer = 2) : KvQk(n, seed, kH, kHkv, kD, n_layer) {}
};

// ---------------------------------------------------------------------------------------------

TEST(KvRegistry, ListsEveryPolicyWithValidDefaults) {
  const auto specs = kv_part_specs();
  std::set<std::string> names;
  for (const auto& s : specs) {
    EXPECT_EQ(s.kind, PartKind::Kv);
    names.insert(s.name);
    for (const auto& p : s.params) EXPECT_FALSE(p.help.empty()) << s.name << "." << p.name;
  }
  EXPECT_EQ(names, (std::set<std::string>{"full", "streamingllm", "h2o", "tova", "snapkv",
                                          "pyramidkv", "compresskv", "keyformer", "knorm"}));
  for (const auto& n : names) {
    if (n != "compresskv") {
      EXPECT_NO_THROW(make_policy(n, {})) << n;
    }
  }
}

TEST(KvRegistry, BadParametersNameThePartAndParameter) {
  auto expect_usage = [](const std::string& name, std::map<std::string, std::string> params,
                         const std::string& needle) {
    try {
      make_policy(name, std::move(params));
      ADD_FAILURE() << name << ": no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Usage);
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_usage("snapkv", {{"budget", "-1"}}, "kv.snapkv.budget");
  expect_usage("snapkv", {{"kernel", "4"}}, "kv.snapkv.kernel");
  expect_usage("snapkv", {{"budget", "16"}, {"window", "16"}}, "kv.snapkv.budget");
  expect_usage("snapkv", {{"pool", "median"}}, "kv.snapkv.pool");
  expect_usage("h2o", {{"bogus", "1"}}, "kv.h2o.bogus");
  expect_usage("streamingllm", {{"budget", "4"}, {"sinks", "4"}}, "kv.streamingllm.budget");
  expect_usage("nosuch", {}, "nosuch");
}

TEST(KvPolicies, DecodeBeforePrefillIsAnError) {
  Data data(8, 1);
  auto p = make_policy("streamingllm", {{"budget", "6"}});
  EXPECT_THROW(p->before_decode(data.decode(5)), Error);
  EXPECT_THROW(p->decision(0), Error);
  p->after_prefill(data.prefill(5));
  EXPECT_THROW(p->before_decode(data.decode(7)), Error);  // skips positions 5 and 6
}

TEST(KvPooling, TorchPool1dSemanticsOnAHandVector) {
  const double in[5] = {1, 2, 3, 4, 5};
  double out[5];
  kvp::pool1d(in, 5, 3, false, out);  // zero padding counted: ends divide by 3
  const double avg3[5] = {1, 2, 3, 4, 3};
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(out[i], avg3[i], kPoolTol) << "avg k=3 i=" << i;
  kvp::pool1d(in, 5, 5, false, out);
  const double avg5[5] = {1.2, 2.0, 3.0, 2.8, 2.4};
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(out[i], avg5[i], kPoolTol) << "avg k=5 i=" << i;
  kvp::pool1d(in, 5, 3, true, out);
  const double max3[5] = {2, 3, 4, 5, 5};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(out[i], max3[i]) << "max k=3 i=" << i;
  const double neg[3] = {-1, -2, -3};  // max padding must not contribute a 0
  kvp::pool1d(neg, 3, 3, true, out);
  EXPECT_EQ(out[0], -1);
  EXPECT_EQ(out[2], -2);
}

TEST(KvPolicies, FullKeepsEverything) {
  Data data(34, 2);
  auto p = make_policy("full", {});
  p->after_prefill(data.prefill(30));
  for (int pos = 30; pos < 34; ++pos) {
    p->before_decode(data.decode(pos));
    for (int kv = 0; kv < kHkv; ++kv) EXPECT_EQ(kept_set(*p, 0, kv), range(0, pos + 1));
  }
}

TEST(KvPolicies, StreamingLlmKeepsExactlySinksAndWindow) {
  Data data(40, 3);
  auto p = make_policy("streamingllm", {{"budget", "10"}, {"sinks", "3"}});
  p->after_prefill(data.prefill(30));
  for (int n = 30; n <= 40; ++n) {
    if (n > 30) p->before_decode(data.decode(n - 1));
    const Set want = unite(range(0, 3), range(n - 7, n));
    for (int kv = 0; kv < kHkv; ++kv) {
      EXPECT_EQ(kept_set(*p, 0, kv), want) << "n=" << n;
      const auto& r = p->decision(0).reasons[static_cast<size_t>(kv)];
      EXPECT_EQ(r[0], KeepReason::Sink);
      EXPECT_EQ(r[static_cast<size_t>(n - 1)], KeepReason::Recent);
      EXPECT_EQ(p->decision(0).budgets[static_cast<size_t>(kv)], 10);
    }
  }
  // Budget >= length: identity.
  auto q = make_policy("streamingllm", {{"budget", "64"}});
  q->after_prefill(data.prefill(30));
  EXPECT_EQ(kept_set(*q, 0, 1), range(0, 30));
}

// H2O reference: per-query-head causal column sums over the prompt, then the probabilities used
// at each decode step; per KV head keep the last `recent` plus the top `heavy` by group mean/max.
void check_h2o(const std::string& reduce) {
  const int T = 20, steps = 12, budget = 10, recent = 3, heavy = budget - recent;
  Data data(T + steps, 4);
  // Decode queries and keys share one direction, so decoded tokens gather decode-time mass:
  // only the accumulation of the used probabilities lets them displace prompt heavy hitters.
  for (int pos = T; pos < T + steps; ++pos) {
    for (int c = 0; c < kH * kD; ++c) data.q[static_cast<size_t>(pos) * kH * kD + c] = 1.5f;
    for (int c = 0; c < kHkv * kD; ++c) data.k[static_cast<size_t>(pos) * kHkv * kD + c] = 1.5f;
  }
  auto p = make_policy("h2o", {{"budget", "10"}, {"recent", "3"}, {"reduce", reduce}});
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
        double v = reduce == "max" ? -INFINITY : 0.0;
        for (int h = kv * kG; h < (kv + 1) * kG; ++h)
          v = reduce == "max" ? std::max(v, score[h][j]) : v + score[h][j] / kG;
        red[j] = v;
      }
      keep[kv] = unite(pick_top(red, cands, heavy), range(n - recent, n));
      for (int j = 0; j < n; ++j)
        if (!keep[kv].count(j))
          for (int h = kv * kG; h < (kv + 1) * kG; ++h) score[h][j] = 0;
    }
  };
  p->after_prefill(data.prefill(T));
  evict(T);
  for (int kv = 0; kv < kHkv; ++kv) EXPECT_EQ(kept_set(*p, 0, kv), keep[kv]) << "prefill kv " << kv;
  for (int pos = T; pos < T + steps; ++pos) {
    p->before_decode(data.decode(pos));
    for (int kv = 0; kv < kHkv; ++kv) keep[kv].insert(pos);
    evict(pos + 1);
    for (int kv = 0; kv < kHkv; ++kv) {
      EXPECT_EQ(kept_set(*p, 0, kv), keep[kv])
          << reduce << " step pos " << pos << " kv " << kv << " want " << show(keep[kv]);
      EXPECT_EQ(static_cast<int>(keep[kv].size()), budget);
    }
    // The attention used at this step, accumulated by both.
    const auto used = used_probs(data, *p, pos);
    p->after_decode(data.decode(pos), used.data());
    for (int h = 0; h < kH; ++h)
      for (int j = 0; j <= pos; ++j) score[h][j] += used[static_cast<size_t>(h) * (pos + 1) + j];
  }
}

TEST(KvPolicies, H2oMatchesBruteForceAcrossDecodeStepsMean) {
  check_h2o("mean");
}
TEST(KvPolicies, H2oMatchesBruteForceAcrossDecodeStepsMax) {
  check_h2o("max");
}

TEST(KvPolicies, H2oRatioModeUsesPromptFractions) {
  Data data(30, 5);
  auto p = make_policy("h2o", {{"heavy_ratio", "0.2"}, {"recent_ratio", "0.1"}});
  p->after_prefill(data.prefill(30));
  for (int kv = 0; kv < kHkv; ++kv) {
    EXPECT_EQ(kept_set(*p, 0, kv).size(), 6u + 3u);  // int(0.2*30) + int(0.1*30)
    EXPECT_TRUE(kept_set(*p, 0, kv).count(29));
  }
}

TEST(KvPolicies, TovaMatchesBruteForceAndSharesTheSet) {
  const int T = 30, steps = 6, K = 10;
  Data data(T + steps, 6);
  // Position T+2's key points away from every query head's direction, so only the force-keep
  // of the newest token keeps it.
  for (int kv = 0; kv < kHkv; ++kv)
    for (int c = 0; c < kD; ++c) {
      double m = 0;
      for (int h = 0; h < kH; ++h) m += data.q[(static_cast<size_t>(T + 2) * kH + h) * kD + c];
      data.k[(static_cast<size_t>(T + 2) * kHkv + kv) * kD + c] = static_cast<float>(-2.0 * m);
    }
  auto p = make_policy("tova", {{"budget", "10"}});
  Set keep = range(0, T);
  auto evict_with = [&](int pos) {
    if (static_cast<int>(keep.size()) <= K) return;
    std::map<int, double> s;
    for (int j : keep) s[j] = 0;
    for (int h = 0; h < kH; ++h) {
      const auto pr = data.probs(pos, h, &keep);
      for (int j : keep) s[j] += pr[j] / kH;  // mean over ALL heads of the layer
    }
    Set cands = keep;
    cands.erase(pos);
    keep = unite(pick_top(s, cands, K - 1), {pos});
  };
  p->after_prefill(data.prefill(T));
  evict_with(T - 1);
  for (int pos = T - 1; pos < T + steps; ++pos) {
    if (pos >= T) {
      p->before_decode(data.decode(pos));
      keep.insert(pos);
      evict_with(pos);
    }
    EXPECT_EQ(kept_set(*p, 0, 0), keep) << "pos " << pos << " want " << show(keep);
    EXPECT_EQ(kept_set(*p, 0, 1), keep) << "TOVA's set is shared by all KV heads";
    EXPECT_EQ(static_cast<int>(keep.size()), K);
  }
}

// SnapKV reference: window queries (positions qpos) vote over j < n - w with attention over
// the kept keys; votes pooled torch-style along positions; reduced over the group (or averaged
// over `heads` shared by all KV heads when heads is non-empty); top (b - w) + window.
std::vector<Set> ref_snap(const Data& data, int n, int w, int b, int kernel, bool max_pool,
                          const std::vector<Set>* keep, const std::string& reduce,
                          const std::vector<int>& heads = {}) {
  const int nv = n - w;
  std::vector<std::vector<double>> pooled(kH, std::vector<double>(nv, 0.0));
  for (int h = 0; h < kH; ++h) {
    std::vector<double> vote(nv, 0.0);
    for (int i = n - w; i < n; ++i) {
      const auto pr = data.probs(i, h, keep ? &(*keep)[h / kG] : nullptr);
      for (int j = 0; j < nv; ++j) vote[j] += pr[j];
    }
    for (int j = 0; j < nv; ++j) {
      double acc = max_pool ? -INFINITY : 0.0;
      for (int t = j - kernel / 2; t <= j + kernel / 2; ++t) {
        const bool inside = t >= 0 && t < nv;
        if (max_pool) {
          if (inside) acc = std::max(acc, vote[t]);
        } else {
          acc += inside ? vote[t] : 0.0;  // the zero padding counts in the average
        }
      }
      pooled[h][j] = max_pool ? acc : acc / kernel;
    }
  }
  std::vector<Set> out(kHkv);
  for (int kv = 0; kv < kHkv; ++kv) {
    std::map<int, double> s;
    Set cands;
    for (int j = 0; j < nv; ++j) {
      if (keep && !(*keep)[kv].count(j)) continue;
      cands.insert(j);
      double v = 0;
      if (!heads.empty()) {
        for (int h : heads) v += pooled[h][j] / heads.size();
      } else {
        v = reduce == "max" ? -INFINITY : 0.0;
        for (int h = kv * kG; h < (kv + 1) * kG; ++h)
          v = reduce == "max" ? std::max(v, pooled[h][j]) : v + pooled[h][j] / kG;
      }
      s[j] = v;
    }
    out[kv] = unite(pick_top(s, cands, b - w), range(nv, n));
  }
  return out;
}

TEST(KvPolicies, SnapKvMatchesBruteForce) {
  const int T = 30;
  Data data(T + 4, 7);
  for (const std::string pool : {"avg", "max"})
    for (const std::string reduce : {"mean", "max"})
      for (int kernel : {1, 3, 5}) {
        auto p = make_policy("snapkv", {{"budget", "14"},
                                        {"window", "4"},
                                        {"kernel", std::to_string(kernel)},
                                        {"pool", pool},
                                        {"reduce", reduce}});
        p->after_prefill(data.prefill(T));
        const auto want = ref_snap(data, T, 4, 14, kernel, pool == "max", nullptr, reduce);
        for (int kv = 0; kv < kHkv; ++kv) {
          const Set got = kept_set(*p, 0, kv);
          EXPECT_EQ(got, want[kv]) << pool << "/" << reduce << " k=" << kernel << " kv " << kv
                                   << " want " << show(want[kv]) << " got " << show(got);
          EXPECT_EQ(got.size(), 14u);
          for (int j = T - 4; j < T; ++j)
            EXPECT_EQ(p->decision(0).reasons[kv][j], KeepReason::Window);
        }
        // Decode appends without eviction (the paper): the set grows by one per step.
        for (int pos = T; pos < T + 4; ++pos) {
          p->before_decode(data.decode(pos));
          EXPECT_EQ(kept_set(*p, 0, 0), unite(want[0], range(T, pos + 1)));
        }
      }
  // Prompt shorter than the budget: no compression (reference's early return).
  auto q = make_policy("snapkv", {{"budget", "31"}, {"window", "4"}});
  q->after_prefill(data.prefill(T));
  EXPECT_EQ(kept_set(*q, 0, 1), range(0, T));
}

TEST(KvPolicies, SnapKvDecodeEvictKeepsTheBudgetEachStep) {
  const int T = 30, w = 4, b = 12;
  Data data(T + 6, 8);
  auto p = make_policy(
      "snapkv", {{"budget", "12"}, {"window", "4"}, {"kernel", "3"}, {"decode_evict", "true"}});
  p->after_prefill(data.prefill(T));
  std::vector<Set> keep = ref_snap(data, T, w, b, 3, false, nullptr, "mean");
  for (int pos = T; pos < T + 6; ++pos) {
    p->before_decode(data.decode(pos));
    for (auto& s : keep) s.insert(pos);
    keep = ref_snap(data, pos + 1, w, b, 3, false, &keep, "mean");
    for (int kv = 0; kv < kHkv; ++kv) {
      EXPECT_EQ(kept_set(*p, 0, kv), keep[kv]) << "pos " << pos << " kv " << kv;
      EXPECT_EQ(static_cast<int>(keep[kv].size()), b);
    }
  }
}

TEST(KvPolicies, PyramidKvBudgetTableIsTheSmolLm2Example) {
  // B=128, w=8, beta=20, 30 layers, long prompt: min=6, max=234, integer step (234-6)//29 = 7.
  const int T = 300;
  Data data(T, 9, 30);
  auto p = make_policy("pyramidkv", {{"budget", "128"}});
  auto real = make_policy("pyramidkv", {{"budget", "128"}, {"steps", "real"}});
  long total_real = 0;
  for (int l = 0; l < 30; ++l) {
    p->after_prefill(data.prefill(T, l));
    real->after_prefill(data.prefill(T, l));
    const int want = 234 - 7 * l + 8;  // KVCache-Factory integer arithmetic
    EXPECT_EQ(p->decision(l).budgets[0], want) << "layer " << l;
    EXPECT_EQ(static_cast<int>(kept_set(*p, l, 1).size()), want) << "layer " << l;
    total_real += real->decision(l).budgets[0];
    EXPECT_EQ(static_cast<int>(kept_set(*real, l, 0).size()), real->decision(l).budgets[0]);
  }
  // The research note's worked example (real-valued steps): layer 0 keeps 234+8, layer 29 6+8.
  EXPECT_EQ(real->decision(0).budgets[0], 234 + 8);
  EXPECT_EQ(real->decision(29).budgets[0], 6 + 8);
  EXPECT_EQ(p->decision(29).budgets[0], 31 + 8);
  EXPECT_EQ(total_real, 30L * 128);
  EXPECT_EQ(pyramidkv_layer_budgets(128, 8, 20, 30, 300, true)[29], 39);
  // Short prompts: below 2(B-w) uniform B; below B nothing compressed.
  EXPECT_EQ(pyramidkv_layer_budgets(128, 8, 20, 30, 200, true), std::vector<int>(30, 128));
  // Prompt that clamps max to T - w: T=240: max=232, min=8, step=(224)//29=7.
  EXPECT_EQ(pyramidkv_layer_budgets(128, 8, 20, 30, 240, true)[0], 232 + 8);
  EXPECT_EQ(pyramidkv_layer_budgets(128, 8, 20, 30, 240, true)[29], 232 - 29 * 7 + 8);
}

TEST(KvPolicies, PyramidKvSelectionMatchesBruteForce) {
  // 3 layers, B=12, w=2, beta=20: min=0, max=20, step 10 -> layers keep 20, 10, 0 (+2 window).
  const int T = 30;
  Data data(T, 10, 3);
  auto p = make_policy("pyramidkv", {{"budget", "12"}, {"window", "2"}, {"kernel", "7"}});
  const int budgets[3] = {22, 12, 2};
  for (int l = 0; l < 3; ++l) {
    p->after_prefill(data.prefill(T, l));
    const auto want = ref_snap(data, T, 2, budgets[l], 7, true, nullptr, "mean");
    for (int kv = 0; kv < kHkv; ++kv)
      EXPECT_EQ(kept_set(*p, l, kv), want[kv]) << "layer " << l << " kv " << kv;
  }
}

TEST(KvPolicies, CompressKvVotesWithRetrievalHeadsOnly) {
  const int T = 30;
  Data data(T, 11, 2);
  auto cal = std::make_shared<CompressKvCalibration>();
  cal->n_layer = 2;
  cal->n_head = kH;
  cal->head_scores = {0.1f, 0.9f, 0.5f, 0.2f,   // layer 0: heads 1, 2
                      0.7f, 0.1f, 0.2f, 0.8f};  // layer 1: heads 3, 0
  PartConfig c;
  c.name = "compresskv";
  c.params = {{"budget", "12"}, {"window", "3"}, {"first_k", "2"}};
  auto p = make_compresskv_policy(c, cal);
  const std::vector<int> heads[2] = {{1, 2}, {0, 3}};
  for (int l = 0; l < 2; ++l) {
    p->after_prefill(data.prefill(T, l));
    const auto want = ref_snap(data, T, 3, 12, 5, false, nullptr, "mean", heads[l]);
    EXPECT_EQ(want[0], want[1]);
    for (int kv = 0; kv < kHkv; ++kv)
      EXPECT_EQ(kept_set(*p, l, kv), want[kv]) << "layer " << l << " kv " << kv;
  }
  // A calibration of another model shape is refused.
  Data other(T, 11, 3);
  EXPECT_THROW(p->after_prefill(other.prefill(T, 2)), Error);
}

TEST(KvPolicies, CompressKvLayerBudgetsByHand) {
  // f=32, pool = 3*64 - 96 = 96: 32+48, 32+24, 32+24.
  EXPECT_EQ(compresskv_layer_budgets({0.5f, 0.25f, 0.25f}, 64), (std::vector<int>{80, 56, 56}));
  // Layer 0 clipped to 3B=300; repair adds the missing 412 one per layer per pass in
  // descending-error order (layers 1..9 tie at 0: index order): 45 passes of 9 + 7 more.
  std::vector<float> e(10, 0.0f);
  e[0] = 1.0f;
  std::vector<int> want(10, 32 + 45);
  want[0] = 300;
  for (int l = 1; l <= 7; ++l) want[l] += 1;
  EXPECT_EQ(compresskv_layer_budgets(e, 100), want);
  EXPECT_EQ(std::accumulate(want.begin(), want.end(), 0), 1000);
}

// Keyformer reference: scores accumulate softmax((z + G) / tau) (G from the policy's seeded
// noise source), tau = tau_init + t * delta at decode step t; recent w always kept, the top
// (k - w) of the other kept positions by group-mean score; evicted scores dropped.
TEST(KvPolicies, KeyformerMatchesBruteForceAndIsMonotone) {
  const int T = 12, steps = 20, seed = 17;
  Data data(T + steps, 12);
  // A short prompt, many steps and a large temperature step, so a wrong schedule changes
  // decisions.
  // Decode queries and keys share one direction, so sharp (low-temperature) steps pour their
  // mass on decoded tokens while hot steps spread it: the schedule decides who survives.
  for (int pos = T; pos < T + steps; ++pos) {
    for (int c = 0; c < kH * kD; ++c) data.q[static_cast<size_t>(pos) * kH * kD + c] = 2.0f;
    for (int c = 0; c < kHkv * kD; ++c) data.k[static_cast<size_t>(pos) * kHkv * kD + c] = 2.0f;
  }
  const std::map<std::string, std::string> params = {
      {"seed", std::to_string(seed)}, {"tau_delta", "2"}, {"budget", "7"}};
  auto p = make_policy("keyformer", params);
  auto again = make_policy("keyformer", params);
  const int k = 7, w = static_cast<int>(0.3 * k);  // recent 2
  std::vector<std::vector<double>> score(kH, std::vector<double>(T + steps, 0.0));
  std::vector<Set> keep(kHkv, range(0, T));
  auto add_scores = [&](int pos, double tau) {
    for (int h = 0; h < kH; ++h) {
      const Set& ks = keep[h / kG];
      std::map<int, double> x;
      double mx = -INFINITY;
      for (int j : ks) {
        if (j > pos) continue;
        double z = 0;
        for (int c = 0; c < kD; ++c)
          z += static_cast<double>(data.q[(static_cast<size_t>(pos) * kH + h) * kD + c]) *
               data.k[(static_cast<size_t>(j) * kHkv + h / kG) * kD + c];
        z /= std::sqrt(static_cast<double>(kD));
        x[j] = (z + kvp::gumbel_noise(seed, 0, h, pos, j)) / tau;
        mx = std::max(mx, x[j]);
      }
      double sum = 0;
      for (auto& [j, v] : x) sum += std::exp(v - mx);
      for (auto& [j, v] : x) score[h][j] += std::exp(v - mx) / sum;
    }
  };
  auto evict = [&](int n) {
    for (int kv = 0; kv < kHkv; ++kv) {
      std::map<int, double> s;
      Set cands;
      for (int j : keep[kv])
        if (j < n - w) {
          cands.insert(j);
          s[j] = (score[2 * kv][j] + score[2 * kv + 1][j]) / 2;
        }
      keep[kv] = unite(pick_top(s, cands, k - w), range(n - w, n));
      for (int j = 0; j < n; ++j)
        if (!keep[kv].count(j)) score[2 * kv][j] = score[2 * kv + 1][j] = 0;
    }
  };
  for (int i = 0; i < T; ++i) add_scores(i, 1.0);
  evict(T);
  p->after_prefill(data.prefill(T));
  again->after_prefill(data.prefill(T));
  std::vector<Set> prev = keep;
  for (int kv = 0; kv < kHkv; ++kv) EXPECT_EQ(kept_set(*p, 0, kv), keep[kv]);
  for (int t = 1; t <= steps; ++t) {
    const int pos = T + t - 1;
    p->before_decode(data.decode(pos));
    again->before_decode(data.decode(pos));
    for (auto& s : keep) s.insert(pos);
    add_scores(pos, 1.0 + 2.0 * t);
    evict(pos + 1);
    for (int kv = 0; kv < kHkv; ++kv) {
      const Set got = kept_set(*p, 0, kv);
      EXPECT_EQ(got, keep[kv]) << "step " << t << " kv " << kv << " want " << show(keep[kv]);
      EXPECT_EQ(static_cast<int>(got.size()), k);
      EXPECT_EQ(got, kept_set(*again, 0, kv)) << "same seed, same decisions";
      for (int j : got)
        EXPECT_TRUE(j == pos || prev[kv].count(j)) << "position " << j << " returned";
    }
    prev = keep;
  }
}

TEST(KvPolicies, KnormKeepsSmallestKeyNormsPlusSinksAndWindow) {
  const int T = 30, steps = 5, B = 10, S = 2, W = 3;
  Data data(T + steps, 13);
  auto p = make_policy("knorm", {{"budget", "10"}, {"sinks", "2"}, {"window", "3"}});
  std::vector<Set> keep(kHkv, range(0, T));
  auto evict = [&](int n) {
    for (int kv = 0; kv < kHkv; ++kv) {
      std::map<int, double> s;
      Set cands;
      for (int j : keep[kv])
        if (j >= S && j < n - W) {
          double ss = 0;
          for (int c = 0; c < kD; ++c) {
            const double x = data.k[(static_cast<size_t>(j) * kHkv + kv) * kD + c];
            ss += x * x;
          }
          s[j] = -std::sqrt(ss);
          cands.insert(j);
        }
      keep[kv] = unite(unite(range(0, S), range(n - W, n)), pick_top(s, cands, B - S - W));
    }
  };
  p->after_prefill(data.prefill(T));
  evict(T);
  for (int pos = T - 1; pos < T + steps; ++pos) {
    if (pos >= T) {
      p->before_decode(data.decode(pos));
      for (auto& s : keep) s.insert(pos);
      evict(pos + 1);
    }
    for (int kv = 0; kv < kHkv; ++kv) {
      EXPECT_EQ(kept_set(*p, 0, kv), keep[kv]) << "pos " << pos << " kv " << kv;
      EXPECT_EQ(static_cast<int>(keep[kv].size()), B);
    }
  }
}

TEST(KvPolicies, BudgetAtLeastLengthIsIdentity) {
  const int T = 30;
  Data data(T + 2, 14);
  const std::vector<std::pair<std::string, std::map<std::string, std::string>>> cases = {
      {"streamingllm", {{"budget", "40"}}}, {"h2o", {{"budget", "40"}}},
      {"tova", {{"budget", "40"}}},         {"snapkv", {{"budget", "40"}}},
      {"pyramidkv", {{"budget", "40"}}},    {"keyformer", {{"budget", "40"}}},
      {"knorm", {{"budget", "40"}}}};
  for (const auto& [name, params] : cases) {
    auto p = make_policy(name, params);
    p->after_prefill(data.prefill(T));
    p->before_decode(data.decode(T));
    p->before_decode(data.decode(T + 1));
    for (int kv = 0; kv < kHkv; ++kv) EXPECT_EQ(kept_set(*p, 0, kv), range(0, T + 2)) << name;
  }
}

}  // namespace
}  // namespace attnscope
