// CUDA backend vs the CPU reference backend (core's make_cpu_backend) on seeded, skewed inputs
// and edge shapes. Every test that needs a device skips with the probe's reason when none is
// present; the probe/factory contract is checked everywhere.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "attnscope/backend.h"
#include "attnscope/error.h"
#include "attnscope/gpu/cuda_backend.h"

namespace attnscope {
namespace {

// Linear: |y_cuda - y_cpu| <= kLinearRelTol * (sum_k |x_k w_jk| + |b_j|). cuBLAS SGEMM in fp32
// with TF32 off differs from OpenBLAS only by summation order, whose rounding is a few
// sqrt(in) * 6e-8 of that absolute sum; TF32 (10-bit mantissa) would be ~1e-3 and fail.
constexpr double kLinearRelTol = 1e-5;
// Attention: absolute, on outputs that are convex combinations of v in [-1, 1]. The GPU's
// online softmax and per-lane dot order differ from the CPU's two-pass softmax by rounding only:
// logits (|s| up to ~40 in the sharp heads) carry ~1e-6 relative error, exp turns that into
// ~1e-5 relative probability error; 1e-4 leaves margin yet catches any indexing/masking bug,
// which moves outputs by O(1e-2) or more.
constexpr double kAttentionAbsTol = 1e-4;

constexpr std::uint32_t kSeed = 20240531;

// Skips the calling test (from SetUp or a body) when no usable device exists.
#define ATTNSCOPE_REQUIRE_CUDA()                               \
  do {                                                         \
    std::string why_unavailable;                               \
    if (!gpu::cuda_available(&why_unavailable)) {              \
      GTEST_SKIP() << "CUDA unavailable: " << why_unavailable; \
    }                                                          \
  } while (false)

std::vector<float> uniform(std::size_t count, float lo, float hi, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> values(count);
  for (float& value : values) value = dist(rng);
  return values;
}

// ---------------------------------------------------------------------------------------------
// Probe and factory contract (runs with or without a GPU).

TEST(CudaBackendProbe, UnavailableMeansReasonAndRuntimeError) {
  std::string why;
  if (gpu::cuda_available(&why)) {
    EXPECT_TRUE(why.empty()) << why;
    // With a device present, a device index that cannot exist must still be an Error(Runtime).
    for (const int bad_device : {-1, 4096}) {
      try {
        (void)gpu::make_cuda_backend(bad_device);
        ADD_FAILURE() << "make_cuda_backend(" << bad_device << ") did not throw";
      } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Runtime) << e.what();
        EXPECT_NE(std::string(e.what()).find(std::to_string(bad_device)), std::string::npos)
            << e.what();
      }
    }
    return;
  }
  EXPECT_FALSE(why.empty()) << "cuda_available() returned false without a reason";
  try {
    (void)gpu::make_cuda_backend(0);
    ADD_FAILURE() << "make_cuda_backend(0) returned a backend although cuda_available() is false";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Runtime) << e.what();
    EXPECT_NE(std::string(e.what()).find("CUDA"), std::string::npos) << e.what();
#ifdef ATTNSCOPE_HAVE_CUDA
    // The CUDA build's factory repeats the probe's reason verbatim (the no-nvcc stub words
    // its own fixed message).
    EXPECT_NE(std::string(e.what()).find(why), std::string::npos)
        << "message '" << e.what() << "' does not name the probe's reason '" << why << "'";
#endif
  }
  // The probe is stable: a second call gives the same answer and reason.
  std::string why_again;
  EXPECT_FALSE(gpu::cuda_available(&why_again));
  EXPECT_EQ(why_again, why);
  EXPECT_FALSE(gpu::cuda_available(nullptr));
}

// ---------------------------------------------------------------------------------------------
// Fixture: one CUDA and one CPU backend per test.

class CudaVsCpu : public ::testing::Test {
 protected:
  void SetUp() override {
    ATTNSCOPE_REQUIRE_CUDA();
    m_cuda = gpu::make_cuda_backend(0);
    m_cpu = make_cpu_backend();
  }
  std::unique_ptr<Backend> m_cuda;
  std::unique_ptr<Backend> m_cpu;
};

// ---------------------------------------------------------------------------------------------
// Linear.

struct LinearCase {
  int n, in, out;
  bool bias;
};

std::string linear_name(const LinearCase& c) {
  return "n" + std::to_string(c.n) + "_in" + std::to_string(c.in) + "_out" + std::to_string(c.out) +
         (c.bias ? "_bias" : "_nobias");
}

// Runs both backends on the given data and checks the bound above, reporting the worst ratio.
void expect_linear_match(Backend& cuda, Backend& cpu, const LinearCase& c,
                         const std::vector<float>& x, const std::vector<float>& w,
                         const std::vector<float>& b, const std::string& context) {
  const std::size_t y_count = static_cast<std::size_t>(c.n) * c.out;
  std::vector<float> y_cuda(y_count, std::nanf(""));
  std::vector<float> y_cpu(y_count, std::nanf(""));
  const float* bias = c.bias ? b.data() : nullptr;
  cuda.linear(x.data(), c.n, c.in, w.data(), c.out, bias, y_cuda.data());
  cpu.linear(x.data(), c.n, c.in, w.data(), c.out, bias, y_cpu.data());

  double worst = 0.0;  // worst |diff| / bound
  std::size_t worst_index = 0;
  for (int r = 0; r < c.n; ++r) {
    const float* xr = x.data() + static_cast<std::size_t>(r) * c.in;
    for (int o = 0; o < c.out; ++o) {
      const float* wo = w.data() + static_cast<std::size_t>(o) * c.in;
      double bound = c.bias ? std::fabs(static_cast<double>(b[o])) : 0.0;
      for (int k = 0; k < c.in; ++k) bound += std::fabs(static_cast<double>(xr[k]) * wo[k]);
      const std::size_t index = static_cast<std::size_t>(r) * c.out + o;
      const double diff = std::fabs(static_cast<double>(y_cuda[index]) - y_cpu[index]);
      // NaN (an element never written) must fail: !(diff <= x) is true for NaN.
      const double ratio = !(diff <= 1e300) ? INFINITY : diff / std::max(bound, 1e-30);
      if (!(ratio <= worst)) {
        worst = ratio;
        worst_index = index;
      }
    }
  }
  EXPECT_LE(worst, kLinearRelTol) << context << ": seed " << kSeed << ", shape n=" << c.n
                                  << " in=" << c.in << " out=" << c.out
                                  << (c.bias ? " with bias" : " no bias")
                                  << ", worst relative error " << worst << " at row "
                                  << worst_index / c.out << " col " << worst_index % c.out
                                  << " (cuda " << y_cuda[worst_index] << ", cpu "
                                  << y_cpu[worst_index] << ")";
}

// Readable names in ctest's listing instead of gtest's raw byte dump.
void PrintTo(const LinearCase& c, std::ostream* os) {
  *os << linear_name(c);
}

class CudaLinear : public CudaVsCpu, public ::testing::WithParamInterface<LinearCase> {};

TEST_P(CudaLinear, MatchesCpu) {
  const LinearCase c = GetParam();
  std::mt19937 rng(kSeed);
  // Activations O(1), weights at a trained model's scale, one row of large activations so the
  // bound is not dominated by uniform data.
  std::vector<float> x = uniform(static_cast<std::size_t>(c.n) * c.in, -2.0f, 2.0f, rng);
  for (int k = 0; k < c.in; ++k) x[k] *= 50.0f;
  const std::vector<float> w = uniform(static_cast<std::size_t>(c.out) * c.in, -0.08f, 0.08f, rng);
  const std::vector<float> b = uniform(static_cast<std::size_t>(c.out), -1.0f, 1.0f, rng);
  expect_linear_match(*m_cuda, *m_cpu, c, x, w, b, "linear " + linear_name(c));
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CudaLinear,
    ::testing::Values(LinearCase{1, 576, 576, false}, LinearCase{1, 576, 576, true},
                      LinearCase{3, 576, 192, true}, LinearCase{3, 576, 192, false},
                      LinearCase{7, 576, 1536, true}, LinearCase{64, 576, 1536, false},
                      LinearCase{129, 1536, 576, true}, LinearCase{1, 576, 49152, false},
                      LinearCase{3, 576, 49152, true}, LinearCase{5, 7, 3, true},
                      LinearCase{1, 1, 1, true}, LinearCase{2, 33, 65, false}),
    [](const ::testing::TestParamInfo<LinearCase>& p) { return linear_name(p.param); });

// Scratch buffers grow and are reused; the weight stays cached across calls and sizes of n.
TEST_F(CudaVsCpu, LinearScratchReuseAcrossCallSizes) {
  std::mt19937 rng(kSeed + 1);
  const int in = 576, out = 1536;
  const std::vector<float> w = uniform(static_cast<std::size_t>(out) * in, -0.08f, 0.08f, rng);
  const std::vector<float> b = uniform(out, -1.0f, 1.0f, rng);
  for (const int n : {64, 1, 129, 3, 129}) {
    const LinearCase c{n, in, out, true};
    const std::vector<float> x = uniform(static_cast<std::size_t>(n) * in, -2.0f, 2.0f, rng);
    expect_linear_match(*m_cuda, *m_cpu, c, x, w, b, "call sequence n=" + std::to_string(n));
  }
}

// A host address reused for different weights (model unloaded, another loaded) must not be
// served from the stale device copy.
TEST_F(CudaVsCpu, LinearWeightCacheNoticesNewDataAtSameAddress) {
  std::mt19937 rng(kSeed + 2);
  const LinearCase c{4, 576, 192, false};
  std::vector<float> w = uniform(static_cast<std::size_t>(c.out) * c.in, -0.08f, 0.08f, rng);
  const std::vector<float> x = uniform(static_cast<std::size_t>(c.n) * c.in, -2.0f, 2.0f, rng);
  const std::vector<float> b;
  expect_linear_match(*m_cuda, *m_cpu, c, x, w, b, "first weights");
  const float* address = w.data();
  const std::vector<float> replacement = uniform(w.size(), -0.08f, 0.08f, rng);
  std::copy(replacement.begin(), replacement.end(), w.begin());
  ASSERT_EQ(address, w.data());
  expect_linear_match(*m_cuda, *m_cpu, c, x, w, b, "new weights at the same address");
}

TEST_F(CudaVsCpu, LinearRejectsEmptyShapes) {
  std::vector<float> buffer(16, 1.0f);
  EXPECT_THROW(m_cuda->linear(buffer.data(), 0, 4, buffer.data(), 4, nullptr, buffer.data()),
               Error);
  EXPECT_THROW(m_cuda->linear(buffer.data(), 2, 4, buffer.data(), -1, nullptr, buffer.data()),
               Error);
}

// ---------------------------------------------------------------------------------------------
// Attention.

struct AttentionCase {
  int n_query, pos0, n_head, n_head_kv, head_dim;
};

std::string attention_name(const AttentionCase& c) {
  return "q" + std::to_string(c.n_query) + "_pos" + std::to_string(c.pos0) + "_H" +
         std::to_string(c.n_head) + "_Hkv" + std::to_string(c.n_head_kv) + "_d" +
         std::to_string(c.head_dim);
}

AttentionShape to_shape(const AttentionCase& c) {
  AttentionShape s;
  s.n_query = c.n_query;
  s.pos0 = c.pos0;
  s.n_head = c.n_head;
  s.n_head_kv = c.n_head_kv;
  s.head_dim = c.head_dim;
  return s;
}

void PrintTo(const AttentionCase& c, std::ostream* os) {
  *os << attention_name(c);
}

class CudaAttention : public CudaVsCpu, public ::testing::WithParamInterface<AttentionCase> {};

TEST_P(CudaAttention, MatchesCpu) {
  const AttentionCase c = GetParam();
  const AttentionShape s = to_shape(c);
  const int d = c.head_dim;
  std::mt19937 rng(kSeed);
  std::vector<float> q =
      uniform(static_cast<std::size_t>(c.n_query) * c.n_head * d, -1.0f, 1.0f, rng);
  std::vector<float> k =
      uniform(static_cast<std::size_t>(s.n_key()) * c.n_head_kv * d, -1.0f, 1.0f, rng);
  const std::vector<float> v =
      uniform(static_cast<std::size_t>(s.n_key()) * c.n_head_kv * d, -1.0f, 1.0f, rng);
  // Skew per query head: h % 3 == 0 sharp (logit std ~4, nearly one-hot rows), h % 3 == 1
  // near-uniform (logits ~1e-2), h % 3 == 2 as drawn.
  for (int r = 0; r < c.n_query; ++r) {
    for (int h = 0; h < c.n_head; ++h) {
      const float factor = h % 3 == 0 ? 12.0f : (h % 3 == 1 ? 0.02f : 1.0f);
      float* qh = q.data() + (static_cast<std::size_t>(r) * c.n_head + h) * d;
      for (int i = 0; i < d; ++i) qh[i] *= factor;
    }
  }
  // KV head 0: a shared offset on every key shifts all its logits by a large common amount,
  // which only a max-subtracted softmax survives; key 0 is made a strong "sink".
  for (int j = 0; j < s.n_key(); ++j) {
    float* kj = k.data() + static_cast<std::size_t>(j) * c.n_head_kv * d;
    for (int i = 0; i < d; ++i) kj[i] += 2.0f + (j == 0 ? 3.0f : 0.0f);
  }

  const std::size_t out_count = q.size();
  std::vector<float> out_cuda(out_count, std::nanf(""));
  std::vector<float> out_cpu(out_count, std::nanf(""));
  m_cuda->attention(s, q.data(), k.data(), v.data(), out_cuda.data());
  m_cpu->attention(s, q.data(), k.data(), v.data(), out_cpu.data());

  double worst = 0.0;
  std::size_t worst_index = 0;
  for (std::size_t i = 0; i < out_count; ++i) {
    const double diff = std::fabs(static_cast<double>(out_cuda[i]) - out_cpu[i]);
    const double err = !(diff <= 1e300) ? INFINITY : diff;  // NaN/unwritten fails
    if (!(err <= worst)) {
      worst = err;
      worst_index = i;
    }
  }
  const std::size_t per_row = static_cast<std::size_t>(c.n_head) * d;
  EXPECT_LE(worst, kAttentionAbsTol)
      << "seed " << kSeed << ", shape " << attention_name(c) << ", worst abs error " << worst
      << " at row " << worst_index / per_row << " head " << (worst_index % per_row) / d << " dim "
      << worst_index % d << " (cuda " << out_cuda[worst_index] << ", cpu " << out_cpu[worst_index]
      << ")";
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CudaAttention,
    ::testing::Values(
        // Decode (one query) at several cache lengths, SmolLM2 grouping.
        AttentionCase{1, 0, 9, 3, 64}, AttentionCase{1, 1, 9, 3, 64},
        AttentionCase{1, 63, 9, 3, 64}, AttentionCase{1, 1000, 9, 3, 64},
        // Prefill lengths around the 32-key chunk and 4-warp block boundaries.
        AttentionCase{7, 0, 9, 3, 64}, AttentionCase{64, 0, 9, 3, 64},
        AttentionCase{65, 0, 9, 3, 64}, AttentionCase{257, 0, 9, 3, 64},
        AttentionCase{1030, 0, 9, 3, 64},
        // Chunked prefill: queries start mid-sequence.
        AttentionCase{37, 100, 9, 3, 64},
        // Groupings: MHA, MQA, and other head sizes (incl. one not a multiple of 32).
        AttentionCase{65, 0, 4, 4, 64}, AttentionCase{1, 1000, 4, 4, 64},
        AttentionCase{65, 0, 8, 1, 128}, AttentionCase{1, 1000, 8, 1, 128},
        AttentionCase{33, 0, 9, 3, 32}, AttentionCase{257, 0, 4, 4, 128},
        AttentionCase{40, 3, 4, 2, 256}, AttentionCase{17, 5, 6, 2, 100}),
    [](const ::testing::TestParamInfo<AttentionCase>& p) { return attention_name(p.param); });

TEST_F(CudaVsCpu, AttentionRejectsInvalidShapes) {
  std::vector<float> buffer(4096, 0.5f);
  const auto call = [&](int n_query, int pos0, int n_head, int n_head_kv, int head_dim) {
    m_cuda->attention(to_shape({n_query, pos0, n_head, n_head_kv, head_dim}), buffer.data(),
                      buffer.data(), buffer.data(), buffer.data());
  };
  EXPECT_THROW(call(1, 0, 9, 2, 8), Error);    // H not a multiple of Hkv
  EXPECT_THROW(call(1, 0, 1, 1, 300), Error);  // head_dim above the kernel's 256
  EXPECT_THROW(call(0, 0, 1, 1, 8), Error);    // no query rows
  EXPECT_THROW(call(1, -1, 1, 1, 8), Error);   // negative position
  EXPECT_THROW(call(1, 0, 0, 0, 8), Error);    // no heads
}

TEST_F(CudaVsCpu, NamesTheDevice) {
  EXPECT_EQ(m_cuda->name(), "cuda");
  const std::string device = m_cuda->device_name();
  EXPECT_NE(device.find("(CUDA "), std::string::npos) << device;
  EXPECT_NE(device.find(", cc "), std::string::npos) << device;
}

}  // namespace
}  // namespace attnscope
