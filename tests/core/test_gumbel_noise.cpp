// Keyformer's noise source (simd_kernels.h gumbel_row_f32): draws are Gumbel(0,1) -- checked
// against the distribution's CDF (Kolmogorov-Smirnov), mean and variance -- independent of
// how a row is split, identical to the scalar entry point, and uncorrelated between neighbours.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cmath>
#include <numbers>
#include <vector>

#include "../../core/src/kv_policy_common.h"  // white-box: gumbel_noise / gumbel_row_key
#include "../../core/src/simd_kernels.h"

namespace attnscope {
namespace {

constexpr int kDraws = 200000;
// KS critical value at alpha = 1e-4 is about 2.15 / sqrt(n); 0.006 for n = 200000 leaves room.
constexpr double kKsTol = 0.006;
// Standard errors for n = 200000: mean sqrt(pi^2/6 / n) = 0.0029, variance ~0.012.
constexpr double kMeanTol = 0.015, kVarTol = 0.05;
constexpr double kCorrTol = 0.01;  // |lag-1 correlation| of independent draws ~ 1/sqrt(n)

std::vector<float> draws(uint64_t seed) {
  // Rows of 1000 keys over 200 query positions, as Keyformer draws them.
  std::vector<float> out;
  out.reserve(kDraws);
  std::vector<float> row(1000);
  for (int pos = 0; pos < kDraws / 1000; ++pos) {
    detail::gumbel_row_f32(kvp::gumbel_row_key(seed, 3, 1, pos), 0, 1000, row.data());
    out.insert(out.end(), row.begin(), row.end());
  }
  return out;
}

// The documented definition, written plainly in scalar code with double-precision logs.
uint32_t lowbias32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}
double reference_gumbel(uint64_t row_key, int j) {
  const uint32_t lo = static_cast<uint32_t>(row_key), hi = static_cast<uint32_t>(row_key >> 32);
  const uint32_t h = lowbias32(lowbias32(static_cast<uint32_t>(j) * 0x9E3779B1u ^ lo) ^ hi);
  const double u = ((h >> 9) + 0.5) / 8388608.0;
  return -std::log(-std::log(u));
}
// U is exact in float and the two float logs are about 1 ulp each (log of U near 1 keeps its
// relative accuracy, since U - 1 is exact): a draw is within a few float ulps of the truth.
constexpr double kDrawTol = 2e-6;

TEST(GumbelNoise, EqualsTheDefinitionComputedInDouble) {
  std::vector<float> row(4096);
  double worst = 0;
  for (int pos = 0; pos < 16; ++pos) {
    const uint64_t key = kvp::gumbel_row_key(5, pos % 3, pos % 7, pos);
    detail::gumbel_row_f32(key, 0, 4096, row.data());
    for (int j = 0; j < 4096; ++j) {
      const double want = reference_gumbel(key, j);
      const double err = std::abs(row[j] - want) / std::max(1.0, std::abs(want));
      worst = std::max(worst, err);
      ASSERT_LT(err, kDrawTol) << "row " << pos << " key " << j << ": got " << row[j]
                               << ", want " << want;
    }
  }
  std::printf("worst relative error of a draw: %.3g\n", worst);
}

TEST(GumbelNoise, FollowsTheGumbelDistribution) {
  std::vector<float> g = draws(42);
  double sum = 0, sq = 0;
  for (float x : g) {
    ASSERT_TRUE(std::isfinite(x));
    sum += x;
  }
  const double mean = sum / g.size();
  for (float x : g) sq += (x - mean) * (x - mean);
  const double var = sq / (g.size() - 1);
  EXPECT_NEAR(mean, std::numbers::egamma, kMeanTol);
  EXPECT_NEAR(var, std::numbers::pi * std::numbers::pi / 6.0, kVarTol);

  std::sort(g.begin(), g.end());
  double ks = 0;
  const double n = static_cast<double>(g.size());
  for (size_t i = 0; i < g.size(); ++i) {
    const double cdf = std::exp(-std::exp(-static_cast<double>(g[i])));
    ks = std::max({ks, std::abs(cdf - i / n), std::abs(cdf - (i + 1) / n)});
  }
  EXPECT_LT(ks, kKsTol) << "Kolmogorov-Smirnov distance to Gumbel(0,1), n = " << g.size();
}

TEST(GumbelNoise, NeighboursAreUncorrelated) {
  const std::vector<float> g = draws(7);
  double mean = 0;
  for (float x : g) mean += x;
  mean /= g.size();
  double c0 = 0, c1 = 0;
  for (size_t i = 0; i + 1 < g.size(); ++i) {
    c0 += (g[i] - mean) * (g[i] - mean);
    c1 += (g[i] - mean) * (g[i + 1] - mean);
  }
  EXPECT_LT(std::abs(c1 / c0), kCorrTol);
}

TEST(GumbelNoise, SplitRowsAndScalarCallsGiveTheSameBits) {
  const uint64_t key = kvp::gumbel_row_key(9, 2, 4, 777);
  std::vector<float> whole(1001), parts(1001);
  detail::gumbel_row_f32(key, 0, 1001, whole.data());
  // Pieces of odd sizes at odd offsets (not multiples of the vector width).
  int at = 0;
  for (int len : {1, 15, 17, 3, 500, 465}) {
    detail::gumbel_row_f32(key, at, len, parts.data() + at);
    at += len;
  }
  ASSERT_EQ(at, 1001);
  for (int j = 0; j < 1001; ++j) {
    ASSERT_EQ(whole[j], parts[j]) << "key " << j;
    ASSERT_EQ(static_cast<double>(whole[j]), kvp::gumbel_at(key, j)) << "key " << j;
    ASSERT_EQ(static_cast<double>(whole[j]), kvp::gumbel_noise(9, 2, 4, 777, j)) << "key " << j;
  }
}

TEST(GumbelNoise, SeedsLayersHeadsAndRowsDrawDifferentNoise) {
  std::vector<float> a(64), b(64);
  const auto differs = [&](uint64_t ka, uint64_t kb) {
    detail::gumbel_row_f32(ka, 0, 64, a.data());
    detail::gumbel_row_f32(kb, 0, 64, b.data());
    int same = 0;
    for (int j = 0; j < 64; ++j) same += a[j] == b[j];
    return same < 4;
  };
  const uint64_t base = kvp::gumbel_row_key(1, 2, 3, 4);
  EXPECT_TRUE(differs(base, kvp::gumbel_row_key(2, 2, 3, 4)));
  EXPECT_TRUE(differs(base, kvp::gumbel_row_key(1, 3, 3, 4)));
  EXPECT_TRUE(differs(base, kvp::gumbel_row_key(1, 2, 4, 4)));
  EXPECT_TRUE(differs(base, kvp::gumbel_row_key(1, 2, 3, 5)));
}

}  // namespace
}  // namespace attnscope
