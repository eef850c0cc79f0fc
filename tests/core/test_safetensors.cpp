// Safetensors reader: a file written by the reference Python writer, files written by our
// test writer, every malformed case (truncation at every length, bad header, bad offsets,
// overflowing shapes, unsupported dtypes) and the shard set of a model directory.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>

#include "attnscope/error.h"
#include "attnscope/safetensors_file.h"
#include "safetensors_writer.h"
#include "test_support.h"

namespace attnscope {
namespace {

using test::f32_tensor;
using test::raw_safetensors_bytes;
using test::u16_tensor;
using test::write_binary_file;

// Runs fn and expects Error(BadInput) whose message contains every fragment.
void expect_bad_input(const std::function<void()>& fn, const std::vector<std::string>& fragments,
                      const std::string& context = "") {
  try {
    fn();
    ADD_FAILURE() << "expected Error(BadInput) " << context;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput) << e.what() << " " << context;
    for (const auto& f : fragments) {
      EXPECT_NE(std::string(e.what()).find(f), std::string::npos)
          << "message '" << e.what() << "' lacks '" << f << "' " << context;
    }
  }
}

// Bit-exact float comparison that also accepts -0.0 vs -0.0 and infinities.
void expect_same_bits(float actual, float expected, const std::string& what) {
  uint32_t a, e;
  std::memcpy(&a, &actual, 4);
  std::memcpy(&e, &expected, 4);
  EXPECT_EQ(a, e) << what << ": got " << actual << ", expected " << expected;
}

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override { m_dir = test::make_temp_dir("attnscope-safetensors"); }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(m_dir, ec);
  }
  std::filesystem::path write_raw(const std::string& name, const std::string& bytes) {
    const auto p = m_dir / name;
    write_binary_file(p, bytes);
    return p;
  }
  std::filesystem::path m_dir;
};

// Written by scripts/golden/safetensors_golden.py with the reference `safetensors` package.
TEST_F(SafetensorsTest, ReadsFileFromReferenceWriter) {
  const auto file = SafetensorsFile::open(test::data_dir() / "safetensors_golden.safetensors");
  ASSERT_EQ(file->tensors().size(), 4u);
  EXPECT_EQ(file->metadata().at("format"), "pt");
  EXPECT_EQ(file->metadata().at("note"), "attnscope golden");

  const auto* a = file->find_tensor("a.f32");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dtype, SafetensorsDtype::F32);
  EXPECT_EQ(a->shape, (std::vector<uint64_t>{2, 3}));
  const std::vector<float> a_expected = {1.5f, -2.25f, 0.0f, 3.0e-8f, -1.0e30f, 7.0f};
  const auto a_values = file->to_fp32(*a);
  ASSERT_EQ(a_values.size(), a_expected.size());
  for (size_t i = 0; i < a_expected.size(); ++i) {
    expect_same_bits(a_values[i], a_expected[i], "a.f32[" + std::to_string(i) + "]");
  }

  const auto* b = file->find_tensor("b.f16");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->dtype, SafetensorsDtype::F16);
  const std::vector<float> b_expected = {1.0f, -2.0f, 65504.0f, std::ldexp(1.0f, -24)};
  const auto b_values = file->to_fp32(*b);
  ASSERT_EQ(b_values.size(), b_expected.size());
  for (size_t i = 0; i < b_expected.size(); ++i) {
    expect_same_bits(b_values[i], b_expected[i], "b.f16[" + std::to_string(i) + "]");
  }

  const auto* c = file->find_tensor("c.bf16");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->dtype, SafetensorsDtype::BF16);
  EXPECT_EQ(c->shape, (std::vector<uint64_t>{2, 2}));
  const std::vector<float> c_expected = {1.0f, -3.0f, 0.33203125f, std::ldexp(1.0f, 100)};
  const auto c_values = file->to_fp32(*c);
  ASSERT_EQ(c_values.size(), c_expected.size());
  for (size_t i = 0; i < c_expected.size(); ++i) {
    expect_same_bits(c_values[i], c_expected[i], "c.bf16[" + std::to_string(i) + "]");
  }

  const auto* d = file->find_tensor("d.i64");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->dtype, SafetensorsDtype::I64);
  EXPECT_EQ(d->n_bytes(), 24u);
  expect_bad_input([&] { file->to_fp32(*d); },
                   {"safetensors_golden.safetensors", "d.i64", "unsupported dtype I64"});
  EXPECT_EQ(file->find_tensor("e"), nullptr);
}

// Hand-chosen bit patterns with their IEEE values worked out by hand; an odd-sized U8 tensor
// first so that the 16-bit data sits at odd addresses.
TEST_F(SafetensorsTest, ConvertsHalfAndBfloatBitPatternsExactly) {
  const std::vector<uint16_t> f16_bits = {0x3C00, 0xC000, 0x3555, 0x7BFF, 0x0001,
                                          0x0400, 0x8000, 0x7C00, 0xFC00};
  const std::vector<float> f16_values = {1.0f,
                                         -2.0f,
                                         0.333251953125f,  // 1 + 341/1024 scaled by 2^-2
                                         65504.0f,
                                         std::ldexp(1.0f, -24),  // smallest subnormal
                                         std::ldexp(1.0f, -14),  // smallest normal
                                         -0.0f,
                                         std::numeric_limits<float>::infinity(),
                                         -std::numeric_limits<float>::infinity()};
  const std::vector<uint16_t> bf16_bits = {0x3F80, 0xC040, 0x3EAA, 0x7F7F, 0x0001, 0xFF80};
  const std::vector<float> bf16_values = {1.0f,
                                          -3.0f,
                                          0.33203125f,                  // 0x3EAA0000
                                          std::ldexp(255.0f, 127 - 7),  // bf16 max
                                          std::ldexp(1.0f, -133),       // bf16 subnormal
                                          -std::numeric_limits<float>::infinity()};
  test::SafetensorsTensor odd{"odd.u8", "U8", {3}, std::string("\x01\x02\x03", 3)};
  const auto path = m_dir / "bits.safetensors";
  test::write_safetensors(path,
                          {odd, u16_tensor("h", "F16", {f16_bits.size()}, f16_bits),
                           u16_tensor("bf", "BF16", {2, 3}, bf16_bits),
                           f32_tensor("scalar", {}, {42.5f}), f32_tensor("empty", {0, 4}, {})},
                          {{"k", "v"}});
  const auto file = SafetensorsFile::open(path);
  EXPECT_EQ(file->metadata().at("k"), "v");
  ASSERT_EQ(file->tensors().size(), 5u);
  // Sorted by name.
  EXPECT_EQ(file->tensors()[0].name, "bf");
  EXPECT_EQ(file->tensors()[4].name, "scalar");

  const auto h = file->to_fp32(*file->find_tensor("h"));
  ASSERT_EQ(h.size(), f16_values.size());
  for (size_t i = 0; i < h.size(); ++i) {
    expect_same_bits(h[i], f16_values[i], "F16 bits " + std::to_string(f16_bits[i]));
  }
  const auto bf = file->to_fp32(*file->find_tensor("bf"));
  ASSERT_EQ(bf.size(), bf16_values.size());
  for (size_t i = 0; i < bf.size(); ++i) {
    expect_same_bits(bf[i], bf16_values[i], "BF16 bits " + std::to_string(bf16_bits[i]));
  }
  const auto* scalar = file->find_tensor("scalar");
  EXPECT_TRUE(scalar->shape.empty());
  EXPECT_EQ(scalar->n_elements, 1u);
  EXPECT_EQ(file->to_fp32(*scalar), std::vector<float>{42.5f});
  const auto* empty = file->find_tensor("empty");
  EXPECT_EQ(empty->n_elements, 0u);
  EXPECT_TRUE(file->to_fp32(*empty).empty());
  expect_bad_input([&] { file->to_fp32(*file->find_tensor("odd.u8")); },
                   {"odd.u8", "unsupported dtype U8"});
}

// Every strict prefix of a valid file is rejected with a clear error, never a crash.
TEST_F(SafetensorsTest, RejectsEveryTruncation) {
  const std::string full = test::safetensors_bytes(
      {f32_tensor("w", {2, 2}, {1, 2, 3, 4}), u16_tensor("x", "BF16", {3}, {1, 2, 3})},
      {{"format", "pt"}});
  ASSERT_NO_THROW(SafetensorsFile::open(write_raw("full.safetensors", full)));
  for (size_t n = 0; n < full.size(); ++n) {
    const auto p = write_raw("cut.safetensors", full.substr(0, n));
    expect_bad_input(
        [&] { SafetensorsFile::open(p); }, {"cut.safetensors"},
        "(prefix of " + std::to_string(n) + " of " + std::to_string(full.size()) + " bytes)");
  }
}

// Every single-byte corruption either still parses (then every tensor converts or is refused
// with Error) or is refused with Error(BadInput): never a crash or an out-of-bounds read
// (run under ASan to see the latter).
TEST_F(SafetensorsTest, SurvivesEveryByteCorruption) {
  const std::string full = test::safetensors_bytes(
      {f32_tensor("w", {2, 2}, {1, 2, 3, 4}), u16_tensor("x", "F16", {3}, {1, 2, 3})});
  const unsigned char replacements[] = {0x00, 0xFF, '9', '"', '['};
  int n_rejected = 0;
  for (size_t i = 0; i < full.size(); ++i) {
    for (const unsigned char r : replacements) {
      std::string bytes = full;
      bytes[i] = static_cast<char>(r);
      const auto p = write_raw("m.safetensors", bytes);
      try {
        const auto file = SafetensorsFile::open(p);
        for (const auto& t : file->tensors()) {
          try {
            const auto values = file->to_fp32(t);
            EXPECT_EQ(values.size(), t.n_elements);
          } catch (const Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::BadInput) << e.what();
          }
        }
      } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::BadInput) << e.what() << " (byte " << i << ")";
        ++n_rejected;
      }
    }
  }
  // Corrupting the length field or the JSON structure must be noticed in most positions.
  EXPECT_GT(n_rejected, static_cast<int>(full.size()));
}

TEST_F(SafetensorsTest, RejectsHeaderLengthBeyondFile) {
  std::string bytes = raw_safetensors_bytes("{}", "");
  bytes[0] = 100;  // claims 100 header bytes, file has 2
  expect_bad_input([&] { SafetensorsFile::open(write_raw("a.safetensors", bytes)); },
                   {"a.safetensors", "header length", "100 bytes"});
  std::string huge(8, '\xff');  // 2^64 - 1
  expect_bad_input([&] { SafetensorsFile::open(write_raw("b.safetensors", huge + "{}")); },
                   {"b.safetensors", "header length"});
}

TEST_F(SafetensorsTest, RejectsBadJson) {
  expect_bad_input(
      [&] {
        SafetensorsFile::open(write_raw("a.safetensors", raw_safetensors_bytes("{\"w\": ", "")));
      },
      {"a.safetensors", "header", "invalid JSON"});
  expect_bad_input(
      [&] {
        SafetensorsFile::open(write_raw("b.safetensors", raw_safetensors_bytes("[1, 2]", "")));
      },
      {"b.safetensors", "expected a JSON object"});
  expect_bad_input(
      [&] {
        SafetensorsFile::open(
            write_raw("c.safetensors", raw_safetensors_bytes(R"({"__metadata__": {"k": 1}})", "")));
      },
      {"c.safetensors", "__metadata__: k", "string"});
  expect_bad_input(
      [&] {
        SafetensorsFile::open(write_raw("d.safetensors", raw_safetensors_bytes(R"({"w": 3})", "")));
      },
      {"d.safetensors", "tensor 'w'", "expected an object"});
}

// Header with one tensor entry (JSON object text) and `data_bytes` zero bytes of data.
std::string one_tensor_file(const std::string& entry, size_t data_bytes) {
  return raw_safetensors_bytes("{\"w\": " + entry + "}", std::string(data_bytes, '\0'));
}

TEST_F(SafetensorsTest, RejectsBadOffsets) {
  struct Case {
    std::string entry;
    size_t data;
    std::vector<std::string> fragments;
  };
  const std::vector<Case> cases = {
      {R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})", 4, {"data_offsets", "beyond"}},
      {R"({"dtype":"F32","shape":[2],"data_offsets":[8,16]})", 8, {"data_offsets", "beyond"}},
      {R"({"dtype":"F32","shape":[0],"data_offsets":[8,4]})", 8, {"begin 8 > end 4"}},
      {R"({"dtype":"F32","shape":[2],"data_offsets":[0]})", 8, {"data_offsets", "[begin, end]"}},
      {R"({"dtype":"F32","shape":[2],"data_offsets":[-1,7]})", 8, {"data_offsets"}},
      {R"({"dtype":"F32","shape":[2],"data_offsets":[0,8.0]})", 8, {"data_offsets"}},
      {R"({"dtype":"F32","shape":[2]})", 8, {"data_offsets"}},
      {R"({"dtype":"F32","shape":[-2],"data_offsets":[0,8]})", 8, {"shape"}},
      {R"({"dtype":"F32","shape":"2","data_offsets":[0,8]})", 8, {"shape"}},
      {R"({"shape":[2],"data_offsets":[0,8]})", 8, {"dtype"}},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto p = write_raw("o.safetensors", one_tensor_file(cases[i].entry, cases[i].data));
    auto fragments = cases[i].fragments;
    fragments.push_back("tensor 'w'");
    expect_bad_input([&] { SafetensorsFile::open(p); }, fragments, "case " + cases[i].entry);
  }
  // Two tensors sharing bytes.
  const std::string overlap = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                              R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  expect_bad_input(
      [&] {
        SafetensorsFile::open(
            write_raw("ov.safetensors", raw_safetensors_bytes(overlap, std::string(12, '\0'))));
      },
      {"ov.safetensors", "tensor 'b'", "overlaps tensor 'a'"});
}

TEST_F(SafetensorsTest, RejectsShapeOverflow) {
  // 2^32 * 2^32 elements overflows 64 bits.
  const auto p1 =
      write_raw("a.safetensors",
                one_tensor_file(
                    R"({"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]})", 0));
  expect_bad_input([&] { SafetensorsFile::open(p1); }, {"tensor 'w'", "shape", "overflows"});
  // 2^62 elements fit, 2^62 * 4 bytes do not.
  const auto p2 = write_raw(
      "b.safetensors",
      one_tensor_file(R"({"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]})", 0));
  expect_bad_input([&] { SafetensorsFile::open(p2); }, {"tensor 'w'", "overflows"});
  // A dimension beyond uint64 parses as a float and is not an integer.
  const auto p3 = write_raw(
      "c.safetensors",
      one_tensor_file(R"({"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,0]})", 0));
  expect_bad_input([&] { SafetensorsFile::open(p3); }, {"tensor 'w'", "shape"});
}

TEST_F(SafetensorsTest, RejectsByteSizeNotMatchingDtype) {
  const auto p = write_raw(
      "a.safetensors", one_tensor_file(R"({"dtype":"F32","shape":[2],"data_offsets":[0,6]})", 6));
  expect_bad_input([&] { SafetensorsFile::open(p); },
                   {"tensor 'w'", "6 bytes, expected 8", "[2]", "F32"});
  const auto q =
      write_raw("b.safetensors",
                one_tensor_file(R"({"dtype":"BF16","shape":[3,2],"data_offsets":[0,24]})", 24));
  expect_bad_input([&] { SafetensorsFile::open(q); }, {"tensor 'w'", "24 bytes, expected 12"});
}

TEST_F(SafetensorsTest, RejectsUnknownDtype) {
  const auto p = write_raw(
      "a.safetensors", one_tensor_file(R"({"dtype":"Q4_0","shape":[2],"data_offsets":[0,2]})", 2));
  expect_bad_input([&] { SafetensorsFile::open(p); },
                   {"a.safetensors", "tensor 'w'", "unsupported dtype \"Q4_0\""});
}

TEST_F(SafetensorsTest, RejectsMissingOrDirectoryPath) {
  expect_bad_input([&] { SafetensorsFile::open(m_dir / "none.safetensors"); },
                   {"none.safetensors", "cannot read"});
  expect_bad_input([&] { SafetensorsFile::open(m_dir); }, {"is a directory"});
}

std::vector<test::SafetensorsTensor> three_tensors() {
  return {f32_tensor("t0", {2}, {1, 2}), u16_tensor("t1", "BF16", {1, 2}, {0x3F80, 0x4000}),
          u16_tensor("t2", "F16", {3}, {0x3C00, 0x4000, 0x4200})};
}

TEST_F(SafetensorsTest, ShardedDirectory) {
  const auto shards = test::write_sharded_safetensors(m_dir, three_tensors(), 2);
  ASSERT_EQ(shards.size(), 2u);
  const auto set = SafetensorsModelFiles::open_directory(m_dir);
  EXPECT_EQ(set.files().size(), 2u);
  EXPECT_EQ(set.tensor_names(), (std::vector<std::string>{"t0", "t1", "t2"}));
  EXPECT_EQ(set.total_file_size(), std::filesystem::file_size(m_dir / shards[0]) +
                                       std::filesystem::file_size(m_dir / shards[1]));
  EXPECT_EQ(set.dtype_counts(), (std::map<std::string, int>{{"BF16", 1}, {"F16", 1}, {"F32", 1}}));
  // n=3 over 2 shards: t0 in shard 1, t1 and t2 in shard 2.
  EXPECT_EQ(set.require("t0").file->path().filename(), shards[0]);
  EXPECT_EQ(set.require("t2").file->path().filename(), shards[1]);
  const auto e = set.require("t2");
  EXPECT_EQ(e.file->to_fp32(*e.info), (std::vector<float>{1.0f, 2.0f, 3.0f}));
  const auto b = set.require("t1");
  EXPECT_EQ(b.file->to_fp32(*b.info), (std::vector<float>{1.0f, 2.0f}));
  EXPECT_FALSE(set.find("nope").has_value());
  expect_bad_input([&] { set.require("nope"); }, {"tensor 'nope'", "missing"});
}

TEST_F(SafetensorsTest, ShardedIndexPointingAtMissingShard) {
  const auto shards = test::write_sharded_safetensors(m_dir, three_tensors(), 2);
  std::filesystem::remove(m_dir / shards[1]);
  expect_bad_input([&] { SafetensorsModelFiles::open_directory(m_dir); },
                   {"model.safetensors.index.json", "weight_map", shards[1], "does not exist"});
}

TEST_F(SafetensorsTest, ShardedIndexErrors) {
  test::write_sharded_safetensors(m_dir, three_tensors(), 2);
  const auto index = m_dir / "model.safetensors.index.json";
  auto rewrite_index = [&](const nlohmann::json& j) { write_binary_file(index, j.dump()); };

  // Tensor said to be in a shard that does not hold it.
  rewrite_index({{"weight_map", {{"t0", "model-00002-of-00002.safetensors"}}}});
  expect_bad_input([&] { SafetensorsModelFiles::open_directory(m_dir); },
                   {"weight_map: t0", "not found in shard 'model-00002-of-00002.safetensors'"});
  // Shard outside the directory.
  rewrite_index({{"weight_map", {{"t0", "../model-00001-of-00002.safetensors"}}}});
  expect_bad_input([&] { SafetensorsModelFiles::open_directory(m_dir); },
                   {"weight_map: t0", "file name of a shard"});
  rewrite_index({{"metadata", nlohmann::json::object()}});
  expect_bad_input([&] { SafetensorsModelFiles::open_directory(m_dir); }, {"weight_map"});
  write_binary_file(index, "{\"weight_map\": ");
  expect_bad_input([&] { SafetensorsModelFiles::open_directory(m_dir); },
                   {"model.safetensors.index.json", "invalid JSON"});
}

TEST_F(SafetensorsTest, DirectoryWithoutIndex) {
  expect_bad_input([&] { SafetensorsModelFiles::open_directory(m_dir); }, {"no model.safetensors"});
  // Unindexed shards are all read; a tensor may appear only once.
  test::write_safetensors(m_dir / "x.safetensors", {f32_tensor("a", {1}, {1})});
  test::write_safetensors(m_dir / "y.safetensors", {f32_tensor("b", {1}, {2})});
  EXPECT_EQ(SafetensorsModelFiles::open_directory(m_dir).tensor_names(),
            (std::vector<std::string>{"a", "b"}));
  test::write_safetensors(m_dir / "z.safetensors", {f32_tensor("a", {1}, {3})});
  expect_bad_input([&] { SafetensorsModelFiles::open_directory(m_dir); },
                   {"z.safetensors", "tensor 'a'", "expected once"});
  // model.safetensors, when present, is the only file read.
  test::write_safetensors(m_dir / "model.safetensors", {f32_tensor("m", {1}, {4})});
  EXPECT_EQ(SafetensorsModelFiles::open_directory(m_dir).tensor_names(),
            std::vector<std::string>{"m"});
}

}  // namespace
}  // namespace attnscope
