// GgufFile on well-formed files written by the test writer: every metadata value type,
// nested arrays, typed lookups, tensor infos, alignment, v2 and v3, raw tensor bytes.
#include <gtest/gtest.h>

#include <cstring>

#include "attnscope/error.h"
#include "attnscope/gguf_file.h"
#include "gguf_writer.h"
#include "test_support.h"

namespace attnscope {
namespace {

using namespace attnscope::test;

std::unique_ptr<GgufFile> write_and_open(const GgufWriter& w, const std::string& name) {
  static const auto dir = make_temp_dir("gguf-file");
  const auto path = dir / name;
  w.write(path);
  return GgufFile::open(path);
}

TEST(GgufFile, ReadsEveryValueType) {
  GgufWriter w;
  w.add("u8", gv_u8(200));
  w.add("i8", gv_i8(-100));
  w.add("u16", gv_u16(60000));
  w.add("i16", gv_i16(-30000));
  w.add("u32", gv_u32(4000000000u));
  w.add("i32", gv_i32(-2000000000));
  w.add("u64", gv_u64(uint64_t{1} << 40));
  w.add("u64big", gv_u64(~uint64_t{0}));
  w.add("i64", gv_i64(-(int64_t{1} << 50)));
  w.add("f32", gv_f32(0.25f));
  w.add("f64", gv_f64(-1.5e100));
  w.add("yes", gv_bool(true));
  w.add("no", gv_bool(false));
  w.add("str", gv_string("h\xC3\xA9llo"));
  w.add("empty", gv_string(""));
  w.add("strs", gv_string_array({"a", "", "ccc"}));
  w.add("ints", gv_i32_array({1, -2, 3}));
  w.add("floats", gv_f32_array({0.5f, -1.0f}));
  w.add("nested", gv_array(9, {gv_i32_array({7, 8}), gv_array(8, {}), gv_string_array({"x"})}));
  const auto f = write_and_open(w, "types.gguf");

  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->metadata().size(), 19u);
  EXPECT_EQ(f->require_int("u8"), 200);
  EXPECT_EQ(f->find("u8")->type, GgufValueType::UInt8);
  EXPECT_EQ(f->require_int("i8"), -100);
  EXPECT_EQ(f->require_int("u16"), 60000);
  EXPECT_EQ(f->require_int("i16"), -30000);
  EXPECT_EQ(f->require_int("u32"), 4000000000LL);
  EXPECT_EQ(f->require_int("i32"), -2000000000);
  EXPECT_EQ(f->require_int("u64"), int64_t{1} << 40);
  EXPECT_FALSE(f->find("u64big")->as_int().has_value());  // beyond int64
  EXPECT_EQ(f->require_int("i64"), -(int64_t{1} << 50));
  EXPECT_EQ(f->require_double("f32"), 0.25);
  EXPECT_EQ(f->require_double("f64"), -1.5e100);
  EXPECT_EQ(f->require_double("u16"), 60000.0);  // integers read as numbers too
  EXPECT_EQ(std::get<bool>(f->find("yes")->value), true);
  EXPECT_EQ(std::get<bool>(f->find("no")->value), false);
  EXPECT_EQ(f->require_string("str"), "h\xC3\xA9llo");
  EXPECT_EQ(f->require_string("empty"), "");
  EXPECT_EQ(f->require_string_array("strs"), (std::vector<std::string>{"a", "", "ccc"}));
  EXPECT_EQ(f->optional_int_array("ints"), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(f->optional_float_array("floats"), (std::vector<double>{0.5, -1.0}));
  EXPECT_TRUE(f->optional_int_array("absent").empty());
  EXPECT_FALSE(f->optional_string("absent").has_value());
  EXPECT_EQ(f->optional_int("u8"), 200);

  const GgufArray* nested = f->find("nested")->as_array();
  ASSERT_NE(nested, nullptr);
  EXPECT_EQ(nested->element_type, GgufValueType::Array);
  ASSERT_EQ(nested->values.size(), 3u);
  EXPECT_EQ(nested->values[0].as_array()->values[1].as_int(), 8);
  EXPECT_EQ(nested->values[1].as_array()->element_type, GgufValueType::String);
  EXPECT_TRUE(nested->values[1].as_array()->values.empty());
  EXPECT_EQ(*nested->values[2].as_array()->values[0].as_string(), "x");
}

TEST(GgufFile, TypedLookupErrorsNameFileAndKey) {
  GgufWriter w;
  w.add_string("name", "x");
  w.add_u32("count", 3);
  const auto f = write_and_open(w, "lookup.gguf");
  auto message_of = [](auto fn) -> std::string {
    try {
      fn();
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::BadInput);
      return e.what();
    }
    return "(no error)";
  };
  const std::string m1 = message_of([&] { f->require_int("name"); });
  EXPECT_NE(m1.find("lookup.gguf"), std::string::npos) << m1;
  EXPECT_NE(m1.find("'name'"), std::string::npos) << m1;
  EXPECT_NE(m1.find("integer"), std::string::npos) << m1;
  const std::string m2 = message_of([&] { f->require_string("missing.key"); });
  EXPECT_NE(m2.find("'missing.key'"), std::string::npos) << m2;
  EXPECT_NE(m2.find("missing"), std::string::npos) << m2;
  const std::string m3 = message_of([&] { f->require_string_array("count"); });
  EXPECT_NE(m3.find("array of strings"), std::string::npos) << m3;
  EXPECT_NE(message_of([&] { f->optional_float_array("name"); }).find("'name'"), std::string::npos);
}

class GgufLayout : public ::testing::TestWithParam<std::pair<uint32_t, uint32_t>> {};

// Tensors of several types and sizes at aligned offsets; bytes come back exactly.
TEST_P(GgufLayout, TensorInfosAndBytes) {
  const auto [version, alignment] = GetParam();
  GgufWriter w(version);
  if (alignment != 32) w.set_alignment(alignment);
  w.add_string("general.architecture", "test");
  w.add_f32_tensor("a", {3}, {1.0f, 2.0f, 3.0f});
  std::string q8(34 * 2, '\0');
  for (size_t i = 0; i < q8.size(); ++i) q8[i] = static_cast<char>(i * 7 + 1);
  w.add_tensor({"b.q8", {32, 2}, 8, q8, std::nullopt});
  w.add_f32_tensor("c", {1, 2, 1, 2}, {5.0f, 6.0f, 7.0f, 8.0f});
  const auto f = write_and_open(
      w, "layout-" + std::to_string(version) + "-" + std::to_string(alignment) + ".gguf");
  EXPECT_EQ(f->version(), version);
  EXPECT_EQ(f->alignment(), alignment);
  EXPECT_EQ(f->data_offset() % alignment, 0u);
  ASSERT_EQ(f->tensors().size(), 3u);

  const GgufTensorInfo* a = f->find_tensor("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->n_dims, 1u);
  EXPECT_EQ(a->dims[0], 3u);
  EXPECT_EQ(a->n_elements, 3u);
  EXPECT_EQ(a->n_bytes, 12u);
  EXPECT_EQ(f->dequantize_tensor(*a), (std::vector<float>{1.0f, 2.0f, 3.0f}));

  const GgufTensorInfo* b = f->find_tensor("b.q8");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->type_id, 8u);
  EXPECT_EQ(b->n_elements, 64u);
  EXPECT_EQ(b->n_bytes, 68u);
  EXPECT_EQ(b->offset % alignment, 0u);
  EXPECT_EQ(std::memcmp(f->tensor_data(*b), q8.data(), q8.size()), 0);

  const GgufTensorInfo* c = f->find_tensor("c");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->n_dims, 4u);
  EXPECT_EQ(c->n_elements, 4u);
  EXPECT_EQ(f->dequantize_tensor(*c), (std::vector<float>{5.0f, 6.0f, 7.0f, 8.0f}));
  EXPECT_EQ(f->find_tensor("nope"), nullptr);
}

INSTANTIATE_TEST_SUITE_P(VersionsAndAlignments, GgufLayout,
                         ::testing::Values(std::make_pair(3u, 32u), std::make_pair(2u, 32u),
                                           std::make_pair(3u, 1u), std::make_pair(3u, 64u),
                                           std::make_pair(3u, 256u)));

TEST(GgufFile, NoTensorsNoMetadata) {
  GgufWriter w;
  const auto f = write_and_open(w, "empty.gguf");
  EXPECT_TRUE(f->tensors().empty());
  EXPECT_TRUE(f->metadata().empty());
}

}  // namespace
}  // namespace attnscope
