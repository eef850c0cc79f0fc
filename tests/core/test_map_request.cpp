// Pooled attention maps: at full resolution equal to a brute-force softmax over the visible keys
// (mask, group map, KV keep set applied), max/mean pooling checked on hand-made bins, request
// validation, and a T=4096 trace pooled to 64x64 without a [T, T] allocation. Row sampling
// against a hand pooling of exactly the documented rows of the full-resolution map; compute_maps
// against compute_map bit for bit, with cancel and progress; difference_map against b - a.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <iostream>
#include <random>

#include "attnscope/error.h"
#include "attnscope/map_request.h"
#include "trace_builders.h"

using attnscope::MapRequest;
using attnscope::PooledMap;
using attnscope::Trace;

namespace {

// Softmax rows are normalised in float; different summation order moves values by a few ulps.
constexpr float kMapTolerance = 2e-6f;

using attnscope::test::make_qk_trace;

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
  Trace t = make_qk_trace(T, H, n_kv, d, 11);
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
  Trace t = make_qk_trace(T, 1, 1, 4, 3);
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
  const Trace t = make_qk_trace(8, 2, 1, 4, 1);
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
  const Trace t = make_qk_trace(T, 2, 1, 64, 9);
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

namespace {

// Two layers of random Q/K with everything a row can depend on: a prefill group map, masks
// (window, block pattern), decode rows with their own grouping (DGQA) and keep sets.
Trace rich_trace(uint32_t seed) {
  const int T = 48, H = 4, n_kv = 2, d = 16, n_prompt = 40;
  Trace t = make_qk_trace(T, H, n_kv, d, seed);
  const Trace layer1 = make_qk_trace(T, H, n_kv, d, seed + 1);
  t.model.n_layer = 2;
  t.q.push_back(layer1.q[0]);
  t.k.push_back(layer1.k[0]);
  t.k_heads = {n_kv, n_kv};
  t.n_prompt = n_prompt;
  t.groups = {{n_kv, {1, 0, 0, 1}, {}}, {n_kv, {0, 0, 1, 1}, {}}};
  for (int l = 0; l < 2; ++l) {
    std::vector<attnscope::HeadMask> masks(H);
    masks[1].window = 6 + l;
    masks[1].all_blocks = false;
    masks[2].all_blocks = false;
    masks[2].sink_tokens = 2;
    masks[2].block = 8;
    masks[2].n_qblocks = 6;
    masks[2].n_kblocks = 6;
    masks[2].blocks.assign(36, 0);
    for (int b = 0; b < 6; ++b) masks[2].blocks[static_cast<size_t>(b) * 6 + b] = 1;
    masks[2].blocks[5 * 6 + 1] = 1;
    t.masks.push_back(masks);
  }
  std::mt19937 rng(seed + 2);
  for (int s = 0; s < T - n_prompt; ++s) {
    std::vector<attnscope::KvStep> ks;
    std::vector<attnscope::GroupStep> gs;
    for (int l = 0; l < 2; ++l) {
      attnscope::KvStep k;
      k.position = n_prompt + s;
      k.budgets = {20, 20};
      k.lost_mass = {0, 0};
      for (int h = 0; h < n_kv; ++h) {
        std::vector<uint8_t> r(static_cast<size_t>(k.position) + 1);
        for (auto& x : r) x = static_cast<uint8_t>(rng() % 3);  // about a third evicted
        k.reasons.push_back(r);
      }
      ks.push_back(k);
      gs.push_back({n_kv, {s % 2, 1 - s % 2, 1, 0}, {}});
    }
    t.kv_steps.push_back(ks);
    t.group_steps.push_back(gs);
  }
  return t;
}

// Edge i of `bins` bins over [begin, end), as documented on PooledMap.
std::vector<int> documented_edges(int begin, int end, int bins) {
  std::vector<int> e;
  for (int i = 0; i <= bins; ++i)
    e.push_back(begin + static_cast<int>(int64_t{i} * (end - begin) / bins));
  return e;
}

// The query rows MapRequest::sample_rows documents for a bin [first, first + size).
std::vector<int> documented_rows(int first, int size, int n) {
  std::vector<int> rows;
  if (n == 0 || size <= n) {
    for (int i = 0; i < size; ++i) rows.push_back(first + i);
  } else if (n == 1) {
    rows.push_back(first);
  } else {
    for (int r = 0; r < n; ++r)
      rows.push_back(first + static_cast<int>(int64_t{r} * (size - 1) / (n - 1)));
  }
  return rows;
}

// Mean cells are sums of up to a few hundred probabilities in double, rounded to float once.
constexpr float kPooledMeanTolerance = 1e-7f;

bool same_map(const PooledMap& a, const PooledMap& b) {
  return a.rows == b.rows && a.cols == b.cols && a.q_begin == b.q_begin && a.q_end == b.q_end &&
         a.k_begin == b.k_begin && a.k_end == b.k_end && a.row_edges == b.row_edges &&
         a.col_edges == b.col_edges && a.row_stride == b.row_stride &&
         a.col_stride == b.col_stride && a.sampled == b.sampled &&
         a.values.size() == b.values.size() &&
         std::memcmp(a.values.data(), b.values.data(), a.values.size() * sizeof(float)) == 0;
}

TEST(MapRequestSampling, SampledBinsPoolExactlyTheDocumentedRows) {
  const Trace t = rich_trace(21);
  const int T = t.n_tokens();
  for (int layer = 0; layer < 2; ++layer) {
    for (int head = 0; head < 4; ++head) {
      MapRequest fr;
      fr.layer = layer;
      fr.head = head;
      fr.out_rows = T;
      fr.out_cols = T;
      const PooledMap full = attnscope::compute_map(t, fr);  // exact probabilities
      auto p = [&](int i, int j) { return full.values[static_cast<size_t>(i) * T + j]; };
      for (int n : {1, 2, 4, 7}) {
        for (auto reduce : {MapRequest::Max, MapRequest::Mean}) {
          MapRequest r = fr;
          r.q_begin = 2;
          r.q_end = 47;  // 45 rows in 3 bins of 15 (includes the 8 decode rows)
          r.k_begin = 1;
          r.k_end = 45;
          r.out_rows = 3;
          r.out_cols = 5;
          r.sample_rows = n;
          r.reduce = reduce;
          const PooledMap m = attnscope::compute_map(t, r);
          SCOPED_TRACE("seed 21, T=48, layer " + std::to_string(layer) + " head " +
                       std::to_string(head) + " sample_rows " + std::to_string(n) +
                       (reduce == MapRequest::Max ? " max" : " mean"));
          const auto re = documented_edges(2, 47, 3), ce = documented_edges(1, 45, 5);
          ASSERT_EQ(m.row_edges, re);
          ASSERT_EQ(m.col_edges, ce);
          EXPECT_TRUE(m.sampled);
          float worst = 0;
          for (int row = 0; row < 3; ++row) {
            const auto rows = documented_rows(re[row], re[row + 1] - re[row], n);
            ASSERT_EQ(rows.size(), static_cast<size_t>(n));
            for (int c = 0; c < 5; ++c) {
              float mx = 0;
              double sum = 0;
              for (int i : rows) {
                for (int j = ce[c]; j < ce[c + 1]; ++j) {
                  mx = std::max(mx, p(i, j));
                  sum += p(i, j);
                }
              }
              const float got = m.values[static_cast<size_t>(row) * 5 + c];
              if (reduce == MapRequest::Max) {
                EXPECT_EQ(got, mx) << "bin " << row << "," << c;
              } else {
                const auto want = static_cast<float>(
                    sum / (static_cast<double>(rows.size()) * (ce[c + 1] - ce[c])));
                worst = std::max(worst, std::fabs(got - want));
              }
            }
          }
          EXPECT_LE(worst, kPooledMeanTolerance);
        }
      }
    }
  }
}

TEST(MapRequestSampling, ExactWhenEveryBinFits) {
  const Trace t = rich_trace(5);
  for (auto reduce : {MapRequest::Max, MapRequest::Mean}) {
    MapRequest r;
    r.layer = 1;
    r.head = 2;
    r.out_rows = 7;  // bins of 6 or 7 rows over T = 48
    r.out_cols = 9;
    r.reduce = reduce;
    const PooledMap exact = attnscope::compute_map(t, r);
    EXPECT_FALSE(exact.sampled);
    EXPECT_EQ(exact.row_stride, 7);
    for (int n : {7, 8, 100}) {
      r.sample_rows = n;
      const PooledMap m = attnscope::compute_map(t, r);
      EXPECT_TRUE(same_map(m, exact)) << "sample_rows " << n << " >= every bin's size";
    }
    // 6 rows per bin: the 7-row bins are sampled, the 6-row bins stay exact.
    r.sample_rows = 6;
    const PooledMap m = attnscope::compute_map(t, r);
    EXPECT_TRUE(m.sampled);
    int exact_bins = 0, sampled_bins = 0;
    for (int row = 0; row < m.rows; ++row) {
      const bool fits =
          m.row_edges[static_cast<size_t>(row) + 1] - m.row_edges[static_cast<size_t>(row)] <= 6;
      const bool same = std::memcmp(&m.values[static_cast<size_t>(row) * m.cols],
                                    &exact.values[static_cast<size_t>(row) * m.cols],
                                    static_cast<size_t>(m.cols) * sizeof(float)) == 0;
      if (fits) {
        EXPECT_TRUE(same) << "bin " << row << " has at most 6 rows";
        ++exact_bins;
      } else {
        ++sampled_bins;
      }
    }
    EXPECT_GT(exact_bins, 0);
    EXPECT_GT(sampled_bins, 0);
  }
  MapRequest bad;
  bad.sample_rows = -1;
  try {
    attnscope::compute_map(t, bad);
    ADD_FAILURE() << "negative sample_rows accepted";
  } catch (const attnscope::Error& e) {
    EXPECT_EQ(e.kind(), attnscope::ErrorKind::Usage);
    EXPECT_NE(std::string(e.what()).find("sample_rows"), std::string::npos) << e.what();
  }
}

// Many different requests: layers, heads, ranges, resolutions, reductions, sampling, keep sets.
std::vector<MapRequest> many_requests() {
  std::vector<MapRequest> out;
  std::mt19937 rng(77);
  for (int layer = 0; layer < 2; ++layer) {
    for (int head = 0; head < 4; ++head) {
      for (int v = 0; v < 5; ++v) {
        MapRequest r;
        r.layer = layer;
        r.head = head;
        r.reduce = (v % 2) ? MapRequest::Mean : MapRequest::Max;
        r.apply_kv = v != 3;
        r.sample_rows = v == 4 ? 3 : (v == 2 ? 1 : 0);
        if (v >= 1) {
          r.q_begin = static_cast<int>(rng() % 20);
          r.q_end = r.q_begin + 1 + static_cast<int>(rng() % static_cast<unsigned>(48 - r.q_begin));
          r.k_begin = static_cast<int>(rng() % 30);
          r.k_end = v == 2 ? 0
                           : r.k_begin + 1 +
                                 static_cast<int>(rng() % static_cast<unsigned>(48 - r.k_begin));
        }
        r.out_rows = 1 + static_cast<int>(rng() % 50);
        r.out_cols = 1 + static_cast<int>(rng() % 50);
        out.push_back(r);
      }
    }
  }
  return out;
}

TEST(ComputeMaps, EqualsComputeMapBitForBit) {
  const Trace t = rich_trace(9);
  const auto requests = many_requests();
  std::vector<double> fractions;
  const auto maps =
      attnscope::compute_maps(t, requests, nullptr, [&](double f) { fractions.push_back(f); });
  ASSERT_EQ(maps.size(), requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_TRUE(same_map(maps[i], attnscope::compute_map(t, requests[i])))
        << "seed 9, request " << i << ": layer " << requests[i].layer << " head "
        << requests[i].head << " sample_rows " << requests[i].sample_rows;
  }
  // One call per request, in increasing order, ending at 1.
  ASSERT_EQ(fractions.size(), requests.size());
  EXPECT_TRUE(std::is_sorted(fractions.begin(), fractions.end()));
  EXPECT_EQ(fractions.back(), 1.0);
  EXPECT_TRUE(attnscope::compute_maps(t, {}).empty());
}

TEST(ComputeMaps, CancelThrowsAndBadRequestsFailFirst) {
  const Trace t = rich_trace(3);
  // 200 maps: far more than worker threads, so a cancel stops most of them.
  std::vector<MapRequest> requests;
  for (int rep = 0; rep < 5; ++rep) {
    for (const MapRequest& r : many_requests()) requests.push_back(r);
  }
  auto expect_cancelled = [&](const std::atomic<bool>* cancel,
                              const std::function<void(double)>& progress, const char* what) {
    try {
      attnscope::compute_maps(t, requests, cancel, progress);
      ADD_FAILURE() << what << ": not cancelled";
    } catch (const attnscope::Error& e) {
      EXPECT_EQ(e.kind(), attnscope::ErrorKind::Runtime) << what;
      EXPECT_NE(std::string(e.what()).find("cancelled"), std::string::npos) << e.what();
    }
  };
  std::atomic<bool> cancel{true};
  expect_cancelled(&cancel, {}, "cancelled before the call");
  cancel = false;
  int calls = 0;
  expect_cancelled(
      &cancel,
      [&](double) {
        ++calls;
        cancel = true;
      },
      "cancelled after the first map");
  EXPECT_LT(calls, static_cast<int>(requests.size())) << "work went on after the cancel";
  // A bad request anywhere: Usage before any work.
  auto bad = requests;
  bad.back().head = 4;
  int progress_calls = 0;
  try {
    attnscope::compute_maps(t, bad, nullptr, [&](double) { ++progress_calls; });
    ADD_FAILURE() << "head 4 of 4 accepted";
  } catch (const attnscope::Error& e) {
    EXPECT_EQ(e.kind(), attnscope::ErrorKind::Usage) << e.what();
  }
  EXPECT_EQ(progress_calls, 0);
}

TEST(ComputeMap, CancelFlagStopsItAndAClearFlagChangesNothing) {
  const Trace t = rich_trace(3);
  for (const MapRequest& r : many_requests()) {
    std::atomic<bool> clear{false};
    const attnscope::PooledMap with = attnscope::compute_map(t, r, &clear);
    const attnscope::PooledMap without = attnscope::compute_map(t, r);
    ASSERT_EQ(with.values, without.values);
    std::atomic<bool> set{true};
    try {
      attnscope::compute_map(t, r, &set);
      ADD_FAILURE() << "not cancelled";
    } catch (const attnscope::Error& e) {
      EXPECT_EQ(e.kind(), attnscope::ErrorKind::Runtime);
      EXPECT_NE(std::string(e.what()).find("cancelled"), std::string::npos) << e.what();
    }
  }
}

TEST(DifferenceMap, IsBMinusAOverTheSameBins) {
  const Trace ta = rich_trace(1), tb = rich_trace(2);
  MapRequest r;
  r.layer = 1;
  r.head = 3;
  r.out_rows = 10;
  r.out_cols = 12;
  r.reduce = MapRequest::Mean;
  const PooledMap a = attnscope::compute_map(ta, r), b = attnscope::compute_map(tb, r);
  const PooledMap d = attnscope::difference_map(a, b);
  EXPECT_EQ(d.rows, 10);
  EXPECT_EQ(d.cols, 12);
  EXPECT_EQ(d.row_edges, a.row_edges);
  EXPECT_EQ(d.col_edges, a.col_edges);
  ASSERT_EQ(d.values.size(), a.values.size());
  bool any_nonzero = false;
  for (size_t i = 0; i < d.values.size(); ++i) {
    EXPECT_EQ(d.values[i], b.values[i] - a.values[i]) << "cell " << i;
    any_nonzero = any_nonzero || d.values[i] != 0.0f;
  }
  EXPECT_TRUE(any_nonzero) << "two seeds should give different maps";
  EXPECT_FALSE(d.sampled);
  // a - a is exactly zero.
  for (float v : attnscope::difference_map(a, a).values) EXPECT_EQ(v, 0.0f);
  // Sampling in either input marks the difference as sampled.
  MapRequest rs = r;
  rs.sample_rows = 2;
  EXPECT_TRUE(attnscope::difference_map(a, attnscope::compute_map(tb, rs)).sampled);

  auto expect_usage = [&](const PooledMap& x, const PooledMap& y, const char* what) {
    try {
      attnscope::difference_map(x, y);
      ADD_FAILURE() << what << ": accepted";
    } catch (const attnscope::Error& e) {
      EXPECT_EQ(e.kind(), attnscope::ErrorKind::Usage) << what;
      EXPECT_NE(std::string(e.what()).find("difference_map"), std::string::npos) << e.what();
    }
  };
  MapRequest other = r;
  other.out_cols = 11;
  expect_usage(a, attnscope::compute_map(tb, other), "different column count");
  other = r;
  other.q_begin = 1;  // same 10 rows, shifted edges
  expect_usage(a, attnscope::compute_map(tb, other), "shifted row edges");
  other = r;
  other.k_end = 47;
  expect_usage(a, attnscope::compute_map(tb, other), "different key range");
  PooledMap broken = b;
  broken.values.pop_back();
  expect_usage(a, broken, "values shorter than rows x cols");
}

}  // namespace
