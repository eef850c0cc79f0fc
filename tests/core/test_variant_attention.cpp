// variant_attention_row against a brute-force double-precision reference written here:
// RoPE applied in double to pre-rotation vectors at the positions STRING assigns, masks by the
// HeadMask rule spelled out independently, keep flags, the all-hidden fallback; and equality
// with ops.h attention_row for plain causal attention.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "attnscope/error.h"
#include "attnscope/ops.h"
#include "attnscope/variant_attention.h"
#include "attnscope/variant_engine.h"

namespace attnscope {
namespace {

// fp32 scores (d = 16, O(1) entries) against a double reference: a few ulps of the logits.
constexpr double kRefTol = 2e-6;
// The brief's bound for plain causal attention against ops.h attention_row (same kernel:
// expected exactly equal).
constexpr double kOpsTol = 1e-6;
constexpr uint64_t kSeed = 77;
constexpr int kD = 16;
constexpr int kNkv = 2;
constexpr int kN = 40;  // keys
constexpr double kTheta = 10000.0;

// v rotated in double by HF half-split RoPE at position p.
std::vector<double> rope_double(const std::vector<double>& v, double p) {
  const int half = kD / 2;
  std::vector<double> out(kD);
  for (int i = 0; i < half; ++i) {
    const double ang = p * std::pow(kTheta, -2.0 * i / kD);
    out[i] = v[i] * std::cos(ang) - v[i + half] * std::sin(ang);
    out[i + half] = v[i + half] * std::cos(ang) + v[i] * std::sin(ang);
  }
  return out;
}

struct Data {
  std::vector<std::vector<double>> q_raw, k_raw;  // pre-rotation, [kN][kD] (k for head `kv`)
  std::vector<float> q_post;                      // [kN, kD] post-RoPE queries
  std::vector<float> k_post;                      // [kN, kNkv, kD] post-RoPE keys
};

Data make_data(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  Data d;
  d.q_raw.assign(kN, std::vector<double>(kD));
  d.k_raw.assign(static_cast<size_t>(kN) * kNkv, std::vector<double>(kD));
  d.q_post.resize(static_cast<size_t>(kN) * kD);
  d.k_post.resize(static_cast<size_t>(kN) * kNkv * kD);
  for (int j = 0; j < kN; ++j) {
    for (auto& x : d.q_raw[j]) x = nd(rng);
    const auto qr = rope_double(d.q_raw[j], j);
    for (int e = 0; e < kD; ++e) d.q_post[j * kD + e] = static_cast<float>(qr[e]);
    for (int h = 0; h < kNkv; ++h) {
      auto& kr = d.k_raw[static_cast<size_t>(j) * kNkv + h];
      for (auto& x : kr) x = nd(rng);
      const auto kp = rope_double(kr, j);
      for (int e = 0; e < kD; ++e)
        d.k_post[(static_cast<size_t>(j) * kNkv + h) * kD + e] = static_cast<float>(kp[e]);
    }
  }
  return d;
}

// Independent visibility rule (variant_parts.h HeadMask contract).
bool visible_ref(const HeadMask& m, int i, int j) {
  if (j > i) return false;
  if (m.all_blocks) return true;
  if (j < m.sink_tokens) return true;
  if (m.window > 0 && i - j < m.window) return true;
  const int qb = i / m.block, kb = j / m.block;
  if (qb >= m.n_qblocks || kb >= m.n_kblocks) return false;
  return m.blocks[qb * m.n_kblocks + kb] != 0;
}

// Reference probabilities: the query sits at position j + r' where r' is STRING's distance for
// r = pos - j; scores from double RoPE of the raw vectors.
std::vector<double> reference_row(const Data& d, int pos, int kv, const HeadMask* mask, int S,
                                  int W, const uint8_t* keep) {
  std::vector<double> logit(pos + 1, -INFINITY);
  bool any = false;
  for (int j = 0; j <= pos; ++j) {
    if (mask != nullptr && !visible_ref(*mask, pos, j)) continue;
    if (keep != nullptr && keep[j] == 0) continue;
    const int r = pos - j;
    const int r_eff = (S > 0 && r >= S) ? r - S + W : r;
    const auto qv = rope_double(d.q_raw[pos], j + r_eff);
    const auto kvv = rope_double(d.k_raw[static_cast<size_t>(j) * kNkv + kv], j);
    double s = 0;
    for (int e = 0; e < kD; ++e) s += qv[e] * kvv[e];
    logit[j] = s / std::sqrt(static_cast<double>(kD));
    any = true;
  }
  std::vector<double> p(pos + 1, 0.0);
  if (!any) {
    p[pos] = 1.0;
    return p;
  }
  double mx = -INFINITY;
  for (double x : logit) mx = std::max(mx, x);
  double sum = 0;
  for (int j = 0; j <= pos; ++j) {
    if (std::isfinite(logit[j])) sum += (p[j] = std::exp(logit[j] - mx));
  }
  for (auto& x : p) x /= sum;
  return p;
}

double worst_diff(const std::vector<float>& got, const std::vector<double>& want) {
  double w = 0;
  for (size_t j = 0; j < want.size(); ++j) w = std::max(w, std::abs(got[j] - want[j]));
  return w;
}

TEST(VariantAttentionRow, PlainCausalEqualsOpsAttentionRow) {
  const Data d = make_data(kSeed);
  for (int pos : {0, 1, 15, 16, 17, kN - 1}) {
    for (int kv = 0; kv < kNkv; ++kv) {
      std::vector<float> got(pos + 1), ops(pos + 1);
      VariantRowSpec spec;
      variant_attention_row(&d.q_post[pos * kD], pos, d.k_post.data(), kNkv, kv, kD, spec,
                            got.data());
      attention_row(&d.q_post[pos * kD], d.k_post.data() + kv * kD, pos + 1, kNkv * kD, kD,
                    ops.data());
      double w = 0;
      for (int j = 0; j <= pos; ++j)
        w = std::max(w, static_cast<double>(std::abs(got[j] - ops[j])));
      EXPECT_LE(w, kOpsTol) << "seed " << kSeed << " pos " << pos << " kv " << kv;
      const auto ref = reference_row(d, pos, kv, nullptr, 0, 0, nullptr);
      EXPECT_LE(worst_diff(got, ref), kRefTol) << "seed " << kSeed << " pos " << pos;
    }
  }
}

TEST(VariantAttentionRow, MasksKeepAndStringMatchBruteForce) {
  const Data d = make_data(kSeed + 1);
  HeadMask window;
  window.all_blocks = false;
  window.window = 5;
  HeadMask sinks_window = window;
  sinks_window.sink_tokens = 3;
  HeadMask blocks;
  blocks.all_blocks = false;
  blocks.block = 8;
  blocks.n_qblocks = 5;
  blocks.n_kblocks = 5;
  blocks.blocks.assign(25, 0);
  for (int qb = 0; qb < 5; ++qb) {
    blocks.blocks[qb * 5 + qb] = 1;                     // own block
    if (qb >= 2) blocks.blocks[qb * 5 + (qb - 2)] = 1;  // a block two back
  }
  blocks.sink_tokens = 1;
  std::vector<uint8_t> keep(kN, 1);
  for (int j = 2; j < kN; j += 3) keep[j] = 0;  // every third key evicted
  const HeadMask* masks[] = {nullptr, &window, &sinks_window, &blocks};
  const std::pair<int, int> strings[] = {{0, 0}, {6, 2}, {12, 4}, {1, 0}};
  double worst = 0;
  int cases = 0;
  for (const HeadMask* m : masks) {
    for (auto [S, W] : strings) {
      for (const uint8_t* kp :
           {static_cast<const uint8_t*>(nullptr), static_cast<const uint8_t*>(keep.data())}) {
        for (int pos : {0, 3, 7, 13, 24, kN - 1}) {
          VariantRowSpec spec;
          spec.mask = m;
          spec.string_shift = S;
          spec.string_window = W;
          spec.rope_theta = static_cast<float>(kTheta);
          spec.keep = kp;
          std::vector<float> got(pos + 1);
          variant_attention_row(&d.q_post[pos * kD], pos, d.k_post.data(), kNkv, 1, kD, spec,
                                got.data());
          const auto ref = reference_row(d, pos, 1, m, S, W, kp);
          const double w = worst_diff(got, ref);
          worst = std::max(worst, w);
          ++cases;
          EXPECT_LE(w, kRefTol) << "seed " << kSeed + 1 << " pos " << pos << " S " << S << " W "
                                << W << " keep " << (kp != nullptr) << " mask " << (m != nullptr);
          double sum = 0;
          for (float p : got) sum += p;
          EXPECT_NEAR(sum, 1.0, 1e-5);
        }
      }
    }
  }
  EXPECT_EQ(cases, 4 * 4 * 2 * 6) << "worst " << worst;
}

TEST(VariantAttentionRow, EverythingHiddenAttendsOwnKey) {
  const Data d = make_data(kSeed + 2);
  std::vector<uint8_t> keep(kN, 0);
  VariantRowSpec spec;
  spec.keep = keep.data();
  std::vector<float> got(11);
  variant_attention_row(&d.q_post[10 * kD], 10, d.k_post.data(), kNkv, 0, kD, spec, got.data());
  for (int j = 0; j < 10; ++j) EXPECT_EQ(got[j], 0.0f) << j;
  EXPECT_EQ(got[10], 1.0f);
}

TEST(VariantAttentionRow, RotateByComposesWithRope) {
  // rotate_by(R(p) x, delta) == R(p + delta) x, to fp32 rounding.
  const Data d = make_data(kSeed + 3);
  std::vector<float> out(kD);
  detail::rotate_by(&d.q_post[30 * kD], kD, -17, static_cast<float>(kTheta), out.data());
  const auto want = rope_double(d.q_raw[30], 13);
  for (int e = 0; e < kD; ++e) EXPECT_NEAR(out[e], want[e], 1e-5) << "dim " << e;
}

TEST(VariantAttentionRow, RejectsBadShapes) {
  const Data d = make_data(kSeed);
  std::vector<float> p(4);
  VariantRowSpec spec;
  EXPECT_THROW(
      variant_attention_row(d.q_post.data(), 3, d.k_post.data(), kNkv, 2, kD, spec, p.data()),
      Error);
  EXPECT_THROW(
      variant_attention_row(d.q_post.data(), -1, d.k_post.data(), kNkv, 0, kD, spec, p.data()),
      Error);
  EXPECT_THROW(
      variant_attention_row(d.q_post.data(), 3, d.k_post.data(), kNkv, 0, 7, spec, p.data()),
      Error);
}

}  // namespace
}  // namespace attnscope
