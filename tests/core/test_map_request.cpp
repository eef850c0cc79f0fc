// Pooled attention maps: at full resolution equal to a brute-force softmax over the visible keys
// (mask, group map, KV keep set applied), max/mean pooling checked on hand-made bins, request
// validation, and a T=4096 trace pooled to 64x64 without a [T, T] allocation.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <iostream>
#include <random>

#include "attnscope/error.h"
#include "attnscope/map_request.h"

using attnscope::MapRequest;
using attnscope::PooledMap;
using attnscope::Trace;

namespace {

// Softmax rows are normalised in float; different summation order moves values by a few ulps.
constexpr float kMapTolerance = 2e-6f;

Trace make_trace(int T, int H, int n_kv, int d, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  Trace t;
  t.model = {"m", "", "llama", "m", 1, H, n_kv, d, 1000, 10000.0f};
  t.variant = attnscope::VariantSpec::baseline();
  t.tokens.assign(static_cast<size_t>(T), 1);
  t.n_prompt = T;
  t.q.emplace_back(static_cast<size_t>(T) * H * d);
  t.k.emplace_back(static_cast<size_t>(T) * n_kv * d);
  for (auto& x : t.q[0]) x = dist(rng);
  for (auto& x : t.k[0]) x = dist(rng);
  t.k_heads = {n_kv};
  return t;
}

// Independent reference: softmax(q.k / sqrt(d)) over keys j <= i that `visible` admits; a row
// with nothing visible attends its own key.
std::vector<float> brute_force_row(const Trace& t, int head, int kv, int i,
                                   const std::function<bool(int)>& visible) {
  const int H = t.model.n_head, d = t.model.head_dim, n_kv = t.k_heads[0];
  std::vector<double> s(static_cast<size_t>(i) + 1, -INFINITY);
  double mx = -INFINITY;
  for (int j = 0; j <= i; ++j) {
    if (!visible(j)) continue;
    double dot = 0;
    for (int c = 0; c < d; ++c) {
      dot += static_cast<double>(t.q[0][(static_cast<size_t>(i) * H + head) * d + c]) *
             t.k[0][(static_cast<size_t>(j) * n_kv + kv) * d + c];
    }
    s[static_cast<size_t>(j)] = dot / std::sqrt(static_cast<double>(d));
    mx = std::max(mx, s[static_cast<size_t>(j)]);
  }
  std::vector<float> p(static_cast<size_t>(i) + 1, 0.0f);
  if (mx == -INFINITY) {
    p[static_cast<size_t>(i)] = 1.0f;
    return p;
  }
  double z = 0;
  for (double v : s) z += v == -INFINITY ? 0 : std::exp(v - mx);
  for (int j = 0; j <= i; ++j) {
    const double v = s[static_cast<size_t>(j)];
    p[static_cast<size_t>(j)] = v == -INFINITY ? 0.0f : static_cast<float>(std::exp(v - mx) / z);
  }
  return p;
}

PooledMap full_map(const Trace& t, int head) {
  MapRequest r;
  r.head = head;
  r.out_rows = t.n_tokens();
  r.out_cols = t.n_tokens();
  return attnscope::compute_map(t, r);
}

TEST(MapRequest, FullResolutionEqualsBruteForceWithMaskGroupsAndKeepSet) {
  const int T = 40, H = 4, n_kv = 2, d = 16;
  Trace t = make_trace(T, H, n_kv, d, 11);
  t.n_prompt = 36;  // the last 4 rows are decode steps with a keep set
  t.groups.push_back({n_kv, {1, 0, 0, 1}, {}});
  std::vector<attnscope::HeadMask> masks(H);
  masks[1].window = 6;  // sliding window
  masks[1].all_blocks = false;
  masks[2].all_blocks = false;  // block pattern + 2 sinks
  masks[2].sink_tokens = 2;
  masks[2].block = 8;
  masks[2].n_qblocks = 5;
  masks[2].n_kblocks = 5;
  masks[2].blocks.assign(25, 0);
  for (int b = 0; b < 5; ++b) masks[2].blocks[static_cast<size_t>(b) * 5 + b] = 1;
  masks[2].blocks[4 * 5 + 1] = 1;
  t.masks.push_back(masks);
  std::mt19937 rng(5);
  for (int s = 0; s < 4; ++s) {
    attnscope::KvStep k;
    k.position = 36 + s;
    k.budgets = {20, 20};
    k.lost_mass = {0, 0};
    for (int h = 0; h < n_kv; ++h) {
      std::vector<uint8_t> r(static_cast<size_t>(k.position) + 1);
      for (auto& x : r) x = static_cast<uint8_t>(rng() % 3);  // about a third evicted
      k.reasons.push_back(r);
    }
    t.kv_steps.push_back({k});
  }
  for (int head = 0; head < H; ++head) {
    const PooledMap m = full_map(t, head);
    ASSERT_EQ(m.rows, T);
    ASSERT_EQ(m.cols, T);
    const int kv = t.groups[0].kv_of_query[static_cast<size_t>(head)];
    float worst = 0;
    for (int i = 0; i < T; ++i) {
      const auto* ks = i >= 36 ? &t.kv_steps[static_cast<size_t>(i - 36)][0] : nullptr;
      const auto ref = brute_force_row(t, head, kv, i, [&](int j) {
        if (!masks[static_cast<size_t>(head)].visible(i, j)) return false;
        return ks == nullptr || ks->reasons[static_cast<size_t>(kv)][static_cast<size_t>(j)] != 0;
      });
      for (int j = 0; j < T; ++j) {
        const float want = j <= i ? ref[static_cast<size_t>(j)] : 0.0f;
        worst = std::max(worst, std::fabs(m.values[static_cast<size_t>(i) * T + j] - want));
      }
    }
    EXPECT_LE(worst, kMapTolerance) << "seed 11, T=40 H=4 n_kv=2 d=16, head " << head;
  }
}

TEST(MapRequest, MaxAndMeanPoolingOnHandBins) {
  // T=5, 2x2 output: row bins [0,2) [2,5), col bins [0,2) [2,5) (edges floor(i*5/2)).
  const int T = 5;
  Trace t = make_trace(T, 1, 1, 4, 3);
  const PooledMap full = full_map(t, 0);
  auto p = [&](int i, int j) { return full.values[static_cast<size_t>(i) * T + j]; };
  MapRequest r;
  r.out_rows = 2;
  r.out_cols = 2;
  r.reduce = MapRequest::Max;
  const PooledMap mx = attnscope::compute_map(t, r);
  EXPECT_EQ(mx.row_edges, (std::vector<int>{0, 2, 5}));
  EXPECT_EQ(mx.col_edges, (std::vector<int>{0, 2, 5}));
  EXPECT_EQ(mx.row_stride, 3);
  EXPECT_FLOAT_EQ(mx.values[0], std::max({p(0, 0), p(1, 0), p(1, 1)}));
  EXPECT_FLOAT_EQ(mx.values[1], 0.0f);  // keys 2..4 are all in the future of rows 0..1
  EXPECT_FLOAT_EQ(mx.values[2], std::max({p(2, 0), p(2, 1), p(3, 0), p(3, 1), p(4, 0), p(4, 1)}));
  EXPECT_FLOAT_EQ(mx.values[3], std::max({p(2, 2), p(3, 2), p(3, 3), p(4, 2), p(4, 3), p(4, 4)}));
  r.reduce = MapRequest::Mean;
  const PooledMap mean = attnscope::compute_map(t, r);
  // Mean over all cells of the bin, causal zeros included.
  EXPECT_NEAR(mean.values[0], (p(0, 0) + p(1, 0) + p(1, 1)) / 4.0f, 1e-7f);
  EXPECT_FLOAT_EQ(mean.values[1], 0.0f);
  EXPECT_NEAR(mean.values[2], (p(2, 0) + p(2, 1) + p(3, 0) + p(3, 1) + p(4, 0) + p(4, 1)) / 6.0f,
              1e-7f);
  EXPECT_NEAR(mean.values[3], (p(2, 2) + p(3, 2) + p(3, 3) + p(4, 2) + p(4, 3) + p(4, 4)) / 9.0f,
              1e-7f);
  // Sub-ranges: rows 3..4 x keys 1..3 at full resolution are the same cells.
  MapRequest sub;
  sub.q_begin = 3;
  sub.q_end = 5;
  sub.k_begin = 1;
  sub.k_end = 4;
  sub.out_rows = 100;  // reduced to the range
  sub.out_cols = 100;
  const PooledMap s = attnscope::compute_map(t, sub);
  ASSERT_EQ(s.rows, 2);
  ASSERT_EQ(s.cols, 3);
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 3; ++j)
      EXPECT_EQ(s.values[static_cast<size_t>(i) * 3 + j], p(3 + i, 1 + j));
  }
  // Rows sum to 1 at full resolution.
  for (int i = 0; i < T; ++i) {
    float sum = 0;
    for (int j = 0; j < T; ++j) sum += p(i, j);
    EXPECT_NEAR(sum, 1.0f, 1e-6f) << "row " << i;
  }
}

TEST(MapRequest, InvalidRequestsAreUsageErrors) {
  const Trace t = make_trace(8, 2, 1, 4, 1);
  auto expect_usage = [&](MapRequest r, const char* what) {
    try {
      attnscope::compute_map(t, r);
      ADD_FAILURE() << what << ": accepted";
    } catch (const attnscope::Error& e) {
      EXPECT_EQ(e.kind(), attnscope::ErrorKind::Usage) << what << ": " << e.what();
    }
  };
  MapRequest r;
  r.layer = 1;
  expect_usage(r, "layer 1 of 1");
  r = {};
  r.head = 2;
  expect_usage(r, "head 2 of 2");
  r = {};
  r.q_begin = 5;
  r.q_end = 3;
  expect_usage(r, "empty query range");
  r = {};
  r.k_end = 9;
  expect_usage(r, "key range past T");
  r = {};
  r.out_cols = 0;
  expect_usage(r, "zero columns");
  Trace no_qk = t;
  no_qk.q.clear();
  EXPECT_THROW(attnscope::compute_map(no_qk, MapRequest{}), attnscope::Error);
}

TEST(MapRequest, LongTracePoolsFastWithoutTheFullMatrix) {
  // T=4096: the full map would be 64 MiB per head; the pooled one is 16 KiB. Each row's softmax
  // is computed once, so this takes well under a second on 2 cores.
  const int T = 4096;
  const Trace t = make_trace(T, 2, 1, 64, 9);
  MapRequest r;
  r.head = 1;
  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  const auto start = std::chrono::steady_clock::now();
  const PooledMap m = attnscope::compute_map(t, r);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  rusage after{};
  getrusage(RUSAGE_SELF, &after);
  // Peak resident set (KiB) may only grow by far less than one [T, T] float matrix (64 MiB).
  EXPECT_LT(after.ru_maxrss - before.ru_maxrss, 16 * 1024) << "peak RSS grew by KiB";
  ASSERT_EQ(m.rows, 64);
  ASSERT_EQ(m.cols, 64);
  EXPECT_EQ(m.values.size(), 64u * 64u);
  // Mean pooling of a causal map: each row bin's total mass is (rows in bin) / cells, and the
  // upper triangle beyond the diagonal bin is exactly 0.
  r.reduce = MapRequest::Mean;
  const PooledMap mean = attnscope::compute_map(t, r);
  for (int row = 0; row < 64; ++row) {
    double mass = 0;
    for (int c = 0; c < 64; ++c) {
      mass += mean.values[static_cast<size_t>(row) * 64 + c] * 64.0 * 64.0;  // cells per bin
      if (c > row) {
        EXPECT_EQ(mean.values[static_cast<size_t>(row) * 64 + c], 0.0f);
      }
    }
    EXPECT_NEAR(mass, 64.0, 1e-3) << "row bin " << row;  // 64 query rows, each summing to 1
  }
  EXPECT_LT(seconds, 20.0) << "pooled 4096-token map took " << seconds << " s";
  std::cerr << "[ info ] T=4096 64x64 max map: " << seconds << " s\n";
}

}  // namespace
