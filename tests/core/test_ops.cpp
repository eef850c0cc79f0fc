// Unit tests of the elementary forward ops (ops.h) against hand-computed values, and of the
// CPU backend's linear/attention against plain double-precision loops.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "attnscope/backend.h"
#include "attnscope/ops.h"

namespace attnscope {
namespace {

// Hand values below are quoted to ~10 digits; fp32 results agree to a few ulps of O(1) values.
constexpr float kHandTol = 1e-6f;
// Backend results are fp32 with BLAS reordering; the reference is double.
constexpr double kBackendTol = 2e-5;

TEST(Ops, RmsNormHandValues) {
  // mean(x^2) = (1 + 4 + 9 + 16) / 4 = 7.5; 1/sqrt(7.5) = 0.36514837167
  std::vector<float> x = {1, 2, 3, 4, -2, 0, 0, 0};
  const std::vector<float> w = {1.0f, 1.0f, 2.0f, 0.5f};
  rms_norm(x.data(), 2, 4, w.data(), 0.0f);
  const float r = 0.36514837167f;
  EXPECT_NEAR(x[0], 1 * r, kHandTol);
  EXPECT_NEAR(x[1], 2 * r, kHandTol);
  EXPECT_NEAR(x[2], 6 * r, kHandTol);
  EXPECT_NEAR(x[3], 2 * r, kHandTol);
  // Row 2: mean(x^2) = 1 -> x unchanged times weight.
  EXPECT_NEAR(x[4], -2.0f, kHandTol);
  EXPECT_EQ(x[5], 0.0f);
}

TEST(Ops, RmsNormEpsilon) {
  std::vector<float> x = {0.0f, 0.0f};
  const std::vector<float> w = {1.0f, 1.0f};
  rms_norm(x.data(), 1, 2, w.data(), 1e-5f);  // all-zero row stays zero, no NaN
  EXPECT_EQ(x[0], 0.0f);
  std::vector<float> y = {1.0f, 1.0f};
  rms_norm(y.data(), 1, 2, w.data(), 3.0f);  // 1/sqrt(1 + 3) = 0.5
  EXPECT_NEAR(y[0], 0.5f, kHandTol);
}

TEST(Ops, RopePositionZeroIsIdentity) {
  std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8};
  const auto before = x;
  const int32_t pos[1] = {0};
  rope_half_split(x.data(), 1, 2, 4, pos, 10000.0f);
  EXPECT_EQ(x, before);
}

TEST(Ops, RopeHalfSplitHandValues) {
  // d = 4: pairs (0, 2) with frequency theta^0 = 1 and (1, 3) with theta^(-2/4) = 0.01.
  // Position 3 -> angles 3 and 0.03 rad. Two heads get the same rotation.
  std::vector<float> x = {1, 2, 3, 4, 1, 2, 3, 4};
  const int32_t pos[1] = {3};
  rope_half_split(x.data(), 1, 2, 4, pos, 10000.0f);
  // cos 3 = -0.9899924966, sin 3 = 0.1411200081, cos .03 = 0.9995500337, sin .03 = 0.0299955002
  const float want[4] = {
      1 * -0.9899924966f - 3 * 0.1411200081f,  // x0 cos - x2 sin = -1.4133525209
      2 * 0.9995500337f - 4 * 0.0299955002f,   // x1 cos - x3 sin =  1.8791180666
      3 * -0.9899924966f + 1 * 0.1411200081f,  // x2 cos + x0 sin = -2.8288574817
      4 * 0.9995500337f + 2 * 0.0299955002f,   // x3 cos + x1 sin =  4.0581911352
  };
  EXPECT_NEAR(want[0], -1.4133525209f, kHandTol);
  for (int h = 0; h < 2; ++h) {
    for (int i = 0; i < 4; ++i)
      EXPECT_NEAR(x[h * 4 + i], want[i], 2 * kHandTol) << "head " << h << " dim " << i;
  }
}

TEST(Ops, RopePairsIWithIPlusHalfAndPreservesPairNorms) {
  // Only dim 1 set: the rotation must move it into dim 1 + d/2 = 5 (not the adjacent dim 2).
  const int d = 8;
  std::vector<float> x(d, 0.0f);
  x[1] = 1.0f;
  const int32_t pos[1] = {7};
  const float theta = 100000.0f;
  rope_half_split(x.data(), 1, 1, d, pos, theta);
  const double angle = 7.0 * std::pow(100000.0, -2.0 / 8.0);  // pair index 1
  EXPECT_NEAR(x[1], std::cos(angle), kHandTol);
  EXPECT_NEAR(x[5], std::sin(angle), kHandTol);
  for (int i : {0, 2, 3, 4, 6, 7}) EXPECT_EQ(x[i], 0.0f) << "dim " << i;
  // Norm of every pair preserved at a large position.
  std::vector<float> y = {0.3f, -1.2f, 2.0f, 0.7f, 1.1f, 0.4f, -0.9f, 1.5f};
  const auto y0 = y;
  const int32_t far[1] = {5000};
  rope_half_split(y.data(), 1, 1, d, far, theta);
  for (int i = 0; i < d / 2; ++i) {
    const double before = std::hypot(y0[i], y0[i + 4]);
    const double after = std::hypot(y[i], y[i + 4]);
    EXPECT_NEAR(after, before, 1e-5) << "pair " << i;
  }
}

TEST(Ops, SoftmaxHandValues) {
  std::vector<float> x = {1, 2, 3};
  softmax_inplace(x.data(), 3);
  EXPECT_NEAR(x[0], 0.0900305732f, kHandTol);
  EXPECT_NEAR(x[1], 0.2447284711f, kHandTol);
  EXPECT_NEAR(x[2], 0.6652409558f, kHandTol);
}

TEST(Ops, SoftmaxMaskedAndLargeValues) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x = {0.0f, -inf, 0.0f};
  softmax_inplace(x.data(), 3);
  EXPECT_EQ(x[1], 0.0f);
  EXPECT_NEAR(x[0], 0.5f, kHandTol);
  EXPECT_NEAR(x[2], 0.5f, kHandTol);
  // exp(1000) overflows fp32; max subtraction must avoid it.
  std::vector<float> big = {1000.0f, 999.0f, -1000.0f};
  softmax_inplace(big.data(), 3);
  EXPECT_NEAR(big[0], 0.7310585786f, kHandTol);
  EXPECT_NEAR(big[1], 0.2689414214f, kHandTol);
  EXPECT_EQ(big[2], 0.0f);
  std::vector<float> masked = {-inf, -inf};
  softmax_inplace(masked.data(), 2);
  EXPECT_EQ(masked[0], 0.0f);
  EXPECT_EQ(masked[1], 0.0f);
}

TEST(Ops, SwigluHandValues) {
  const std::vector<float> gate = {0.0f, 1.0f, -2.0f, 20.0f};
  const std::vector<float> up = {5.0f, 2.0f, 1.0f, 0.5f};
  std::vector<float> out(4);
  swiglu(gate.data(), up.data(), out.data(), 4);
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_NEAR(out[1], 1.4621171573f, kHandTol);   // 1 * sigmoid(1) * 2
  EXPECT_NEAR(out[2], -0.2384058440f, kHandTol);  // -2 * sigmoid(-2)
  EXPECT_NEAR(out[3], 10.0f, 1e-5f);              // silu(20) ~ 20
}

TEST(Ops, AttentionRowHandCase) {
  // d = 4, scale 1/2; keys laid out with stride 8 (another head's data in between).
  const float q[4] = {1, 0, 2, 0};
  const float keys[3 * 8] = {
      0, 0, 0, 0, 99, 99, 99, 99,  // score 0
      2, 0, 0, 0, 99, 99, 99, 99,  // q.k = 2 -> 1
      0, 5, 2, 0, 99, 99, 99, 99,  // q.k = 4 -> 2
  };
  float probs[3];
  attention_row(q, keys, 3, 8, 4, probs);
  EXPECT_NEAR(probs[0], 0.0900305732f, kHandTol);
  EXPECT_NEAR(probs[1], 0.2447284711f, kHandTol);
  EXPECT_NEAR(probs[2], 0.6652409558f, kHandTol);
  // Two keys: scores 0 and 1 -> sigmoid.
  attention_row(q, keys, 2, 8, 4, probs);
  EXPECT_NEAR(probs[0], 0.2689414214f, kHandTol);
  EXPECT_NEAR(probs[1], 0.7310585786f, kHandTol);
}

TEST(Ops, AttentionRowOddHeadDimMatchesDouble) {
  // head_dim 37 exercises the vector kernel's tail; reference is a plain double loop.
  const uint64_t seed = 7;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int d = 37, n = 50;
  std::vector<float> q(d), k(static_cast<size_t>(n) * d);
  for (auto& v : q) v = nd(rng);
  for (auto& v : k) v = nd(rng);
  std::vector<float> p(n);
  attention_row(q.data(), k.data(), n, d, d, p.data());
  std::vector<double> s(n);
  double mx = -1e300, sum = 0;
  for (int j = 0; j < n; ++j) {
    double dot = 0;
    for (int i = 0; i < d; ++i) dot += static_cast<double>(q[i]) * k[j * d + i];
    s[j] = dot / std::sqrt(static_cast<double>(d));
    mx = std::max(mx, s[j]);
  }
  for (auto& v : s) sum += (v = std::exp(v - mx));
  double worst = 0;
  for (int j = 0; j < n; ++j) worst = std::max(worst, std::abs(p[j] - s[j] / sum));
  EXPECT_LT(worst, 1e-6) << "seed " << seed << " d " << d << " n " << n;
}

TEST(CpuBackend, LinearWithBiasMatchesDouble) {
  auto be = make_cpu_backend(2);
  EXPECT_EQ(be->name(), "cpu");
  EXPECT_NE(be->device_name().find("OpenBLAS"), std::string::npos);
  const uint64_t seed = 11;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int n : {1, 5}) {
    const int in = 33, out = 17;
    std::vector<float> x(static_cast<size_t>(n) * in), w(static_cast<size_t>(out) * in), b(out),
        y(static_cast<size_t>(n) * out);
    for (auto& v : x) v = nd(rng);
    for (auto& v : w) v = nd(rng);
    for (auto& v : b) v = nd(rng);
    be->linear(x.data(), n, in, w.data(), out, b.data(), y.data());
    double worst = 0;
    for (int r = 0; r < n; ++r) {
      for (int o = 0; o < out; ++o) {
        double acc = b[o];
        for (int i = 0; i < in; ++i) acc += static_cast<double>(x[r * in + i]) * w[o * in + i];
        worst = std::max(worst, std::abs(acc - y[r * out + o]));
      }
    }
    EXPECT_LT(worst, kBackendTol) << "seed " << seed << " n " << n << " in " << in << " out "
                                  << out;
  }
}

TEST(CpuBackend, GqaAttentionWithOffsetMatchesDouble) {
  auto be = make_cpu_backend(2);
  const uint64_t seed = 3;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  AttentionShape s;
  s.n_query = 6;
  s.pos0 = 5;
  s.n_head = 6;
  s.n_head_kv = 2;
  s.head_dim = 16;
  const int T = s.n_key(), H = s.n_head, Hkv = s.n_head_kv, d = s.head_dim;
  std::vector<float> q(static_cast<size_t>(s.n_query) * H * d), k(static_cast<size_t>(T) * Hkv * d),
      v(k.size()), out(q.size());
  for (auto& x : q) x = nd(rng);
  for (auto& x : k) x = nd(rng);
  for (auto& x : v) x = nd(rng);
  be->attention(s, q.data(), k.data(), v.data(), out.data());
  double worst = 0;
  for (int i = 0; i < s.n_query; ++i) {
    for (int h = 0; h < H; ++h) {
      const int kvh = h / (H / Hkv);  // heads 0-2 -> kv 0, 3-5 -> kv 1
      const int nk = s.pos0 + i + 1;
      std::vector<double> p(nk);
      double mx = -1e300, sum = 0;
      for (int j = 0; j < nk; ++j) {
        double dot = 0;
        for (int e = 0; e < d; ++e)
          dot += static_cast<double>(q[(i * H + h) * d + e]) * k[(j * Hkv + kvh) * d + e];
        p[j] = dot / 4.0;
        mx = std::max(mx, p[j]);
      }
      for (auto& x : p) sum += (x = std::exp(x - mx));
      for (int e = 0; e < d; ++e) {
        double acc = 0;
        for (int j = 0; j < nk; ++j) acc += p[j] / sum * v[(j * Hkv + kvh) * d + e];
        worst = std::max(worst, std::abs(acc - out[(i * H + h) * d + e]));
      }
    }
  }
  EXPECT_LT(worst, kBackendTol) << "seed " << seed << " n_query 6 pos0 5 H 6 Hkv 2 d 16";
}

}  // namespace
}  // namespace attnscope
