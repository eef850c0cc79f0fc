// Dequantization of every supported ggml type: fp16/bf16 conversions against hand values,
// block formats against (a) the reconstruction defined by the format for values quantized by
// the test writer, through a real GGUF file, and (b) golden data from gguf.quants.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>

#include "attnscope/file_util.h"
#include "attnscope/ggml_types.h"
#include "attnscope/gguf_file.h"
#include "gguf_writer.h"
#include "test_support.h"

namespace attnscope {
namespace {

using test::Quantized;

TEST(GgmlTypes, Fp16HandValues) {
  EXPECT_EQ(fp16_to_fp32(0x3C00), 1.0f);
  EXPECT_EQ(fp16_to_fp32(0xC000), -2.0f);
  EXPECT_EQ(fp16_to_fp32(0x7BFF), 65504.0f);
  EXPECT_EQ(fp16_to_fp32(0x0001), std::ldexp(1.0f, -24));     // smallest subnormal
  EXPECT_EQ(fp16_to_fp32(0x03FF), std::ldexp(1023.0f, -24));  // largest subnormal
  EXPECT_EQ(fp16_to_fp32(0x0400), std::ldexp(1.0f, -14));     // smallest normal
  EXPECT_EQ(fp16_to_fp32(0x3555), 0.333251953125f);
  EXPECT_TRUE(std::signbit(fp16_to_fp32(0x8000)));
  EXPECT_EQ(fp16_to_fp32(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7E00)));

  EXPECT_EQ(fp32_to_fp16(1.0f), 0x3C00);
  EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7BFF);
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7C00);  // halfway to the next binade rounds to inf
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);      // tie -> even
  EXPECT_EQ(fp32_to_fp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);  // tie -> even (up)
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);  // tie between 0 and 2^-24 -> 0
  EXPECT_EQ(fp32_to_fp16(std::ldexp(3.0f, -26)), 0x0001);
  EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
  EXPECT_EQ(bf16_to_fp32(0x3F80), 1.0f);
  EXPECT_EQ(bf16_to_fp32(0xC0A0), -5.0f);
}

TEST(GgmlTypes, Fp16RoundTripsEveryFiniteHalf) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7C00) == 0x7C00) continue;  // inf/NaN
    ASSERT_EQ(fp32_to_fp16(fp16_to_fp32(static_cast<uint16_t>(h))), h) << "half bits " << h;
  }
}

TEST(GgmlTypes, TraitsAndBytes) {
  // Block sizes from the format definition (ggml-common.h).
  const std::vector<std::tuple<GgmlType, size_t, size_t>> expected = {
      {GgmlType::F32, 1, 4},      {GgmlType::F16, 1, 2},      {GgmlType::BF16, 1, 2},
      {GgmlType::Q4_0, 32, 18},   {GgmlType::Q4_1, 32, 20},   {GgmlType::Q5_0, 32, 22},
      {GgmlType::Q5_1, 32, 24},   {GgmlType::Q8_0, 32, 34},   {GgmlType::Q2_K, 256, 84},
      {GgmlType::Q3_K, 256, 110}, {GgmlType::Q4_K, 256, 144}, {GgmlType::Q5_K, 256, 176},
      {GgmlType::Q6_K, 256, 210}, {GgmlType::Q8_K, 256, 292},
  };
  for (const auto& [type, elems, bytes] : expected) {
    const auto t = ggml_type_traits(static_cast<uint32_t>(type));
    ASSERT_TRUE(t.has_value());
    EXPECT_EQ(t->block_elems, elems) << t->name;
    EXPECT_EQ(t->block_bytes, bytes) << t->name;
  }
  EXPECT_FALSE(ggml_type_traits(4).has_value());  // removed Q4_2
  EXPECT_FALSE(ggml_type_traits(99).has_value());
  EXPECT_EQ(ggml_type_name(3), "Q4_1");
  EXPECT_EQ(ggml_tensor_bytes(GgmlType::Q4_1, 64), 40u);
  EXPECT_FALSE(ggml_tensor_bytes(GgmlType::Q4_1, 33).has_value());  // not whole blocks
  EXPECT_FALSE(ggml_tensor_bytes(GgmlType::F32, uint64_t{1} << 63).has_value());  // overflow
}

struct QuantCase {
  const char* name;
  GgmlType type;
  std::function<Quantized(const std::vector<float>&)> quantize;
  // Worst |dequantized - original| allowed, as a fraction of the largest |x| in the data:
  // about half a quantization step of the format (plus scale rounding for two-level scales).
  float tolerance;
};

void PrintTo(const QuantCase& c, std::ostream* os) {
  *os << c.name;
}

class DequantRoundTrip : public ::testing::TestWithParam<QuantCase> {};

TEST_P(DequantRoundTrip, ThroughGgufFileMatchesFormatDefinition) {
  const QuantCase& c = GetParam();
  constexpr uint32_t kSeed = 20240611;
  std::mt19937 rng(kSeed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  constexpr uint64_t kCols = 512, kRows = 2;  // two K super-blocks or 16 legacy blocks per row
  std::vector<float> x(kCols * kRows);
  for (auto& v : x) v = normal(rng);
  x[5] = 0.0f;  // exact zero and a positive extreme in the data
  x[700] = 4.0f;
  const Quantized q = c.quantize(x);
  ASSERT_EQ(q.expected.size(), x.size());

  test::GgufWriter w;
  w.add_u32("test.n", 1);
  w.add_tensor({"t", {kCols, kRows}, static_cast<uint32_t>(c.type), q.bytes, std::nullopt});
  const auto dir = test::make_temp_dir("gguf-dequant");
  const auto path = dir / (std::string(c.name) + ".gguf");
  w.write(path);
  const auto file = GgufFile::open(path);
  const GgufTensorInfo* info = file->find_tensor("t");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->n_bytes, q.bytes.size());
  const std::vector<float> y = file->dequantize_tensor(*info);
  ASSERT_EQ(y.size(), x.size());

  float amax = 0.0f, worst = 0.0f;
  size_t worst_i = 0, mismatches = 0, first_mismatch = 0;
  for (float v : x) amax = std::max(amax, std::fabs(v));
  for (size_t i = 0; i < y.size(); ++i) {
    if (y[i] != q.expected[i] && mismatches++ == 0) first_mismatch = i;
    const float err = std::fabs(y[i] - x[i]);
    if (err > worst) worst = err, worst_i = i;
  }
  EXPECT_EQ(mismatches, 0u) << c.name << " seed " << kSeed << " shape [" << kRows << ", " << kCols
                            << "]: first mismatch at " << first_mismatch << ": got "
                            << y[first_mismatch] << ", format defines "
                            << q.expected[first_mismatch];
  EXPECT_LE(worst, c.tolerance * amax)
      << c.name << " seed " << kSeed << ": worst error " << worst << " at " << worst_i
      << " (x = " << x[worst_i] << ", y = " << y[worst_i] << "), amax " << amax;
}

INSTANTIATE_TEST_SUITE_P(
    AllTypes, DequantRoundTrip,
    ::testing::Values(QuantCase{"F16", GgmlType::F16, test::quantize_f16, 1e-3f},
                      QuantCase{"BF16", GgmlType::BF16, test::quantize_bf16, 4e-3f},
                      QuantCase{"Q8_0", GgmlType::Q8_0, test::quantize_q8_0, 0.005f},
                      QuantCase{"Q4_0", GgmlType::Q4_0, test::quantize_q4_0, 0.075f},
                      QuantCase{"Q4_1", GgmlType::Q4_1, test::quantize_q4_1, 0.07f},
                      QuantCase{"Q5_0", GgmlType::Q5_0, test::quantize_q5_0, 0.04f},
                      QuantCase{"Q5_1", GgmlType::Q5_1, test::quantize_q5_1, 0.035f},
                      QuantCase{"Q2_K", GgmlType::Q2_K, test::quantize_q2_k, 0.3f},
                      QuantCase{"Q3_K", GgmlType::Q3_K, test::quantize_q3_k, 0.15f},
                      QuantCase{"Q4_K", GgmlType::Q4_K, test::quantize_q4_k, 0.075f},
                      QuantCase{"Q5_K", GgmlType::Q5_K, test::quantize_q5_k, 0.04f},
                      QuantCase{"Q6_K", GgmlType::Q6_K, test::quantize_q6_k, 0.02f},
                      QuantCase{"Q8_K", GgmlType::Q8_K, test::quantize_q8_k, 0.005f}),
    [](const auto& p) { return std::string(p.param.name); });

std::string from_hex(const std::string& hex) {
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<char>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  }
  return out;
}

// Golden values from gguf.quants.dequantize (scripts/golden/make_dequant_golden.py) for
// seeded random block bytes: covers every bit position of every block field.
TEST(GgmlDequant, MatchesGgufPythonGolden) {
  const auto json =
      nlohmann::json::parse(read_text_file(test::data_dir() / "ggml_dequant_golden.json"));
  int checked = 0;
  for (const auto& [name, entry] : json.at("types").items()) {
    uint32_t id = 0;
    bool found = false;
    for (uint32_t t = 0; t < 64 && !found; ++t) {
      if (ggml_type_traits(t) && ggml_type_name(t) == name) id = t, found = true;
    }
    ASSERT_TRUE(found) << name;
    const std::string bytes = from_hex(entry.at("hex").get<std::string>());
    const auto expected = entry.at("values").get<std::vector<float>>();
    const auto n_bytes = ggml_tensor_bytes(static_cast<GgmlType>(id), expected.size());
    ASSERT_TRUE(n_bytes.has_value()) << name;
    ASSERT_EQ(*n_bytes, bytes.size()) << name;
    std::vector<float> y(expected.size());
    dequantize(static_cast<GgmlType>(id), bytes.data(), y.data(), y.size());
    size_t mismatches = 0, first = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      if (y[i] != expected[i] && mismatches++ == 0) first = i;
    }
    EXPECT_EQ(mismatches, 0u) << name << " (seed " << json.at("seed") << "): first mismatch at "
                              << first << ": got " << y[first] << ", gguf.quants gives "
                              << expected[first];
    ++checked;
  }
  EXPECT_EQ(checked, 12);  // 10 block types + F16 + BF16
}

}  // namespace
}  // namespace attnscope
