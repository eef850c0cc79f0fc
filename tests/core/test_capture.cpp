// RecordedCapture tests: appending across calls, maps recomputed from Q/K against a double
// softmax written here, causality, row sums, GQA head mapping and error cases.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "attnscope/capture.h"
#include "attnscope/error.h"

namespace attnscope {
namespace {

// fp32 scores and softmax against a double reference with O(1) inputs.
constexpr double kProbTol = 1e-6;

ModelConfig tiny_config() {
  ModelConfig c;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_head_kv = 2;
  c.head_dim = 8;
  c.vocab_size = 5;
  return c;
}

TEST(Capture, MapsMatchDoubleSoftmaxAndAreCausal) {
  const ModelConfig c = tiny_config();
  RecordedCapture cap(c);
  const uint64_t seed = 42;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int T = 70;  // > 64 keys: exercises the four-block score path and a partial block
  const int qrow = c.n_head * c.head_dim, kvrow = c.n_head_kv * c.head_dim;
  std::vector<float> q(T * qrow), k(T * kvrow), v(T * kvrow);
  for (auto& x : q) x = nd(rng);
  for (auto& x : k) x = nd(rng);
  for (auto& x : v) x = nd(rng);
  // Prefill 5 positions, then two decode steps, for every layer.
  for (int l = 0; l < c.n_layer; ++l) cap.on_qkv(l, 0, 5, q.data(), k.data(), v.data());
  for (int p = 5; p < T; ++p) {
    for (int l = 0; l < c.n_layer; ++l) {
      cap.on_qkv(l, p, 1, q.data() + p * qrow, k.data() + p * kvrow, v.data() + p * kvrow);
    }
  }
  ASSERT_EQ(cap.n_tokens(), T);
  EXPECT_EQ(cap.q(1), q);
  EXPECT_EQ(cap.k(0), k);
  for (int h = 0; h < c.n_head; ++h) {
    const auto probs = cap.attention_probs(1, h);
    ASSERT_EQ(probs.size(), static_cast<size_t>(T * T));
    const int kvh = h / 2;  // heads 0,1 -> kv 0; heads 2,3 -> kv 1
    double worst = 0;
    for (int i = 0; i < T; ++i) {
      double sum = 0;
      for (int j = 0; j < T; ++j) {
        if (j > i) {
          EXPECT_EQ(probs[i * T + j], 0.0f) << "above diagonal at " << i << "," << j;
        }
        sum += probs[i * T + j];
      }
      EXPECT_NEAR(sum, 1.0, 1e-5) << "row " << i;
      std::vector<double> s(i + 1);
      double mx = -1e300, z = 0;
      for (int j = 0; j <= i; ++j) {
        double dot = 0;
        for (int e = 0; e < c.head_dim; ++e) {
          dot += static_cast<double>(q[i * qrow + h * c.head_dim + e]) *
                 k[j * kvrow + kvh * c.head_dim + e];
        }
        s[j] = dot / std::sqrt(8.0);
        mx = std::max(mx, s[j]);
      }
      for (auto& x : s) z += (x = std::exp(x - mx));
      for (int j = 0; j <= i; ++j) worst = std::max(worst, std::abs(s[j] / z - probs[i * T + j]));
      const auto row = cap.attention_row(1, h, i);
      ASSERT_EQ(row.size(), static_cast<size_t>(i + 1));
      for (int j = 0; j <= i; ++j) EXPECT_EQ(row[j], probs[i * T + j]);
    }
    EXPECT_LT(worst, kProbTol) << "seed " << seed << " head " << h << " T " << T;
  }
}

TEST(Capture, LogitsAppendAndRewind) {
  const ModelConfig c = tiny_config();
  RecordedCapture cap(c, true);
  EXPECT_TRUE(cap.wants_all_logits());
  const std::vector<float> l(10, 1.0f);
  cap.on_logits(0, 2, l.data());
  cap.on_logits(2, 1, l.data());
  EXPECT_EQ(cap.logits().size(), 15u);
  EXPECT_EQ(cap.logit_positions(), (std::vector<int32_t>{0, 1, 2}));
  EXPECT_FALSE(RecordedCapture(c, false).wants_all_logits());
  // Rewind: a session reset reports position 0 again; stale rows are replaced.
  std::vector<float> q(3 * 32, 1.0f), kv(3 * 16, 1.0f);
  for (int l2 = 0; l2 < 2; ++l2) cap.on_qkv(l2, 0, 3, q.data(), kv.data(), kv.data());
  for (int l2 = 0; l2 < 2; ++l2) cap.on_qkv(l2, 0, 2, q.data(), kv.data(), kv.data());
  EXPECT_EQ(cap.n_tokens(), 2);
  EXPECT_EQ(cap.q(0).size(), 2u * 32u);
  // A gap (position beyond what is stored) is a usage error.
  EXPECT_THROW(cap.on_qkv(0, 5, 1, q.data(), kv.data(), kv.data()), Error);
}

TEST(Capture, BadLayerHeadQueryThrowUsage) {
  RecordedCapture cap(tiny_config());
  std::vector<float> q(32, 0.5f), kv(16, 0.25f);
  for (int l = 0; l < 2; ++l) cap.on_qkv(l, 0, 1, q.data(), kv.data(), kv.data());
  for (auto [layer, head] : {std::pair{-1, 0}, {2, 0}, {0, -1}, {0, 4}}) {
    try {
      (void)cap.attention_probs(layer, head);
      ADD_FAILURE() << "accepted layer " << layer << " head " << head;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Usage);
    }
  }
  EXPECT_THROW((void)cap.attention_row(0, 0, 1), Error);
  const auto p = cap.attention_probs(0, 3);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0], 1.0f);
  ModelConfig bad = tiny_config();
  bad.n_head_kv = 3;
  EXPECT_THROW(RecordedCapture{bad}, Error);
}

}  // namespace
}  // namespace attnscope
