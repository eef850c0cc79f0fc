// Malformed GGUF files: each must produce Error(BadInput) whose message names the file and
// the field, never a crash, a hang or an out-of-bounds read (run under ASan to be sure).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>
#include <fstream>
#include <random>

#include "attnscope/error.h"
#include "attnscope/gguf_file.h"
#include "attnscope/model.h"
#include "gguf_writer.h"
#include "test_support.h"

namespace attnscope {
namespace {

using namespace attnscope::test;

std::filesystem::path temp_dir() {
  static const auto dir = make_temp_dir("gguf-bad");
  return dir;
}

std::filesystem::path write_bytes(const std::string& name, const std::string& bytes) {
  const auto path = temp_dir() / name;
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

// Opens `bytes` as file `name`; returns the BadInput message ("" if it opened).
std::string open_error(const std::string& name, const std::string& bytes) {
  const auto path = write_bytes(name, bytes);
  try {
    GgufFile::open(path);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput) << e.what();
    return e.what();
  }
  return "";
}

void expect_error(const std::string& name, const std::string& bytes,
                  const std::vector<std::string>& fragments) {
  const std::string msg = open_error(name, bytes);
  ASSERT_FALSE(msg.empty()) << name << ": opened without error";
  EXPECT_NE(msg.find(name), std::string::npos) << "message does not name the file: " << msg;
  for (const auto& frag : fragments) {
    EXPECT_NE(msg.find(frag), std::string::npos) << "message lacks '" << frag << "': " << msg;
  }
}

// A small valid file with metadata of several kinds and two tensors; the last tensor's data
// ends exactly at end of file.
GgufWriter small_valid() {
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.add_u32("llama.block_count", 1);
  w.add("tokens", gv_string_array({"a", "bc"}));
  w.add("nested", gv_array(9, {gv_i32_array({1, 2})}));
  w.add_f32_tensor("w1", {4}, {1, 2, 3, 4});
  w.add_tensor({"w2", {32}, 8, std::string(34, '\x01'), std::nullopt});
  return w;
}

template <typename T>
std::string le(T v) {
  std::string s(sizeof(T), '\0');
  std::memcpy(s.data(), &v, sizeof(T));
  return s;
}

TEST(GgufBadInput, ValidBaselineOpens) {
  EXPECT_EQ(open_error("valid.gguf", small_valid().bytes()), "");
}

TEST(GgufBadInput, WrongMagic) {
  GgufWriter w = small_valid();
  w.magic_override = 0x46554746;  // "FGUF"
  expect_error("magic.gguf", w.bytes(), {"magic"});
}

TEST(GgufBadInput, UnsupportedVersions) {
  for (uint32_t v : {0u, 1u, 4u, 0xFFFFFFFFu}) {
    GgufWriter w(v);
    expect_error("version.gguf", w.bytes(), {"version", std::to_string(v)});
  }
}

// Every proper prefix of a valid file must fail cleanly (header, metadata, tensor infos,
// padding and tensor data are all cut somewhere).
TEST(GgufBadInput, EveryTruncationFails) {
  const std::string full = small_valid().bytes();
  for (size_t len = 0; len < full.size(); ++len) {
    const std::string msg = open_error("trunc.gguf", full.substr(0, len));
    ASSERT_FALSE(msg.empty()) << "prefix of " << len << " / " << full.size() << " bytes opened";
    ASSERT_NE(msg.find("trunc.gguf"), std::string::npos) << msg;
  }
}

TEST(GgufBadInput, TruncatedTensorData) {
  const std::string full = small_valid().bytes();
  expect_error("data.gguf", full.substr(0, full.size() - 1), {"'w2'", "offset", "end"});
}

TEST(GgufBadInput, OffsetPastEnd) {
  GgufWriter w;
  w.add_tensor({"far", {4}, 0, std::string(16, '\0'), uint64_t{1} << 40});
  expect_error("offset.gguf", w.bytes(), {"'far'", "offset"});
  GgufWriter w2;  // offset + size overflows uint64
  w2.add_tensor({"wrap", {4}, 0, std::string(16, '\0'), ~uint64_t{0} - 31});
  expect_error("wrap.gguf", w2.bytes(), {"'wrap'", "offset"});
}

TEST(GgufBadInput, MisalignedOffset) {
  GgufWriter w;
  w.add_tensor({"odd", {4}, 0, std::string(48, '\0'), uint64_t{4}});
  expect_error("align.gguf", w.bytes(), {"'odd'", "alignment"});
}

TEST(GgufBadInput, BadAlignmentValue) {
  GgufWriter w;
  w.add("general.alignment", gv_u32(3));
  expect_error("alignval.gguf", w.bytes(), {"general.alignment", "power of two"});
  GgufWriter w2;
  w2.add("general.alignment", gv_string("32"));
  expect_error("alignstr.gguf", w2.bytes(), {"general.alignment"});
}

TEST(GgufBadInput, TooManyDims) {
  GgufWriter w;
  w.add_tensor({"t5", {1, 1, 1, 1, 2}, 0, std::string(8, '\0'), std::nullopt});
  expect_error("ndims.gguf", w.bytes(), {"'t5'", "n_dims", "5"});
}

TEST(GgufBadInput, DimensionProductOverflow) {
  GgufWriter w;
  w.add_tensor({"huge", {uint64_t{1} << 33, uint64_t{1} << 33}, 0, "", std::nullopt});
  expect_error("overflow.gguf", w.bytes(), {"'huge'", "dims", "overflow"});
  GgufWriter w2;  // element count fits, byte count does not
  w2.add_tensor({"bytes", {uint64_t{1} << 62}, 0, "", std::nullopt});
  expect_error("overflow2.gguf", w2.bytes(), {"'bytes'", "overflow"});
}

TEST(GgufBadInput, RowNotWholeBlocks) {
  GgufWriter w;
  w.add_tensor({"q", {33}, 8, std::string(68, '\0'), std::nullopt});
  expect_error("blocks.gguf", w.bytes(), {"'q'", "block"});
}

TEST(GgufBadInput, UnknownTensorType) {
  GgufWriter w;
  w.add_tensor({"mystery", {4}, 99, std::string(16, '\0'), std::nullopt});
  expect_error("type.gguf", w.bytes(), {"'mystery'", "type", "99"});
}

TEST(GgufBadInput, AbsurdCounts) {
  GgufWriter w = small_valid();
  w.kv_count_override = uint64_t{1} << 60;
  expect_error("nkv.gguf", w.bytes(), {"metadata_kv_count"});
  GgufWriter w2 = small_valid();
  w2.tensor_count_override = uint64_t{1} << 60;
  expect_error("ntensors.gguf", w2.bytes(), {"tensor_count"});
}

TEST(GgufBadInput, StringLengthPastEof) {
  GgufWriter w;
  w.add("s", GgufWValue{8, le<uint64_t>(1000000000000ULL) + "abc"});
  expect_error("strlen.gguf", w.bytes(), {"'s'", "string length"});
  // The key itself too.
  std::string raw = le<uint32_t>(0x46554747) + le<uint32_t>(3) + le<uint64_t>(0) + le<uint64_t>(1) +
                    le<uint64_t>(~uint64_t{0}) + std::string(32, 'k');
  expect_error("keylen.gguf", raw, {"key", "string length"});
}

TEST(GgufBadInput, ArrayLengthPastEof) {
  GgufWriter w;
  w.add("arr", GgufWValue{9, le<uint32_t>(5) + le<uint64_t>(uint64_t{1} << 50) + "xxxx"});
  expect_error("arrlen.gguf", w.bytes(), {"'arr'", "array length"});
  GgufWriter w2;  // array of strings whose count cannot fit in the remaining bytes
  w2.add("sarr", GgufWValue{9, le<uint32_t>(8) + le<uint64_t>(1000) + le<uint64_t>(0)});
  expect_error("sarrlen.gguf", w2.bytes(), {"'sarr'", "array length"});
}

TEST(GgufBadInput, DeeplyNestedArrays) {
  GgufWValue v = gv_i32_array({1});
  for (int i = 0; i < 1000; ++i) v = gv_array(9, {v});
  GgufWriter w;
  w.add("deep", v);
  expect_error("deep.gguf", w.bytes(), {"'deep'", "nested"});
}

TEST(GgufBadInput, UnknownValueTypes) {
  GgufWriter w;
  w.add("bad", GgufWValue{13, "xxxx"});
  expect_error("vtype.gguf", w.bytes(), {"'bad'", "value type", "13"});
  GgufWriter w2;
  w2.add("badarr", GgufWValue{9, le<uint32_t>(77) + le<uint64_t>(0)});
  expect_error("atype.gguf", w2.bytes(), {"'badarr'", "element type", "77"});
  GgufWriter w3;
  w3.add("flag", GgufWValue{7, std::string(1, '\x02')});
  expect_error("bool.gguf", w3.bytes(), {"'flag'", "bool"});
}

TEST(GgufBadInput, Duplicates) {
  GgufWriter w;
  w.add_u32("k", 1);
  w.add_u32("k", 2);
  expect_error("dupkey.gguf", w.bytes(), {"'k'", "duplicate"});
  GgufWriter w2;
  w2.add_f32_tensor("t", {1}, {1.0f});
  w2.add_f32_tensor("t", {1}, {2.0f});
  expect_error("duptensor.gguf", w2.bytes(), {"'t'", "duplicate"});
}

TEST(GgufBadInput, UnreadablePathAndDirectory) {
  const auto missing = temp_dir() / "does-not-exist.gguf";
  try {
    GgufFile::open(missing);
    ADD_FAILURE() << "opened a missing file";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput);
    EXPECT_NE(std::string(e.what()).find("does-not-exist.gguf"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("cannot open"), std::string::npos) << e.what();
  }
  const auto dir = temp_dir() / "a-directory.gguf";
  std::filesystem::create_directories(dir);
  for (auto fn : {+[](const std::filesystem::path& p) { GgufFile::open(p); },
                  +[](const std::filesystem::path& p) { load_gguf_model(p); }}) {
    try {
      fn(dir);
      ADD_FAILURE() << "opened a directory";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::BadInput);
      EXPECT_NE(std::string(e.what()).find("a-directory.gguf"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("directory"), std::string::npos) << e.what();
    }
  }
  // A FIFO must be refused, not opened (opening one would block until a writer appears).
  const auto fifo = temp_dir() / "a-fifo.gguf";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  try {
    GgufFile::open(fifo);
    ADD_FAILURE() << "opened a FIFO";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("a-fifo.gguf"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("regular file"), std::string::npos) << e.what();
  }
}

TEST(GgufBadInput, MissingRequiredModelMetadata) {
  GgufWriter w;  // a GGUF that parses but lacks llama.block_count
  w.add_string("general.architecture", "llama");
  w.add_u32("llama.embedding_length", 64);
  const auto path = write_bytes("noblocks.gguf", w.bytes());
  try {
    load_gguf_model(path);
    ADD_FAILURE() << "loaded a model without block_count";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput);
    const std::string msg = e.what();
    EXPECT_NE(msg.find("noblocks.gguf"), std::string::npos) << msg;
    EXPECT_NE(msg.find("llama.block_count"), std::string::npos) << msg;
  }
}

// Seeded random byte corruption of a valid file: opening and reading every tensor either
// works or throws Error; it must never crash or read out of bounds.
TEST(GgufBadInput, RandomCorruptionNeverCrashes) {
  constexpr uint32_t kSeed = 7;
  constexpr int kTrials = 500;  // each trial writes a file; keeps the test around a second
  std::mt19937 rng(kSeed);
  const std::string full = small_valid().bytes();
  int failures = 0;
  for (int trial = 0; trial < kTrials; ++trial) {
    std::string bytes = full;
    const int n_flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < n_flips; ++k) {
      bytes[rng() % bytes.size()] = static_cast<char>(rng() & 0xFF);
    }
    const auto path = write_bytes("fuzz.gguf", bytes);
    try {
      const auto f = GgufFile::open(path);
      for (const auto& t : f->tensors()) {
        if (t.n_elements <= 1024) f->dequantize_tensor(t);
      }
    } catch (const Error& e) {
      ASSERT_EQ(e.kind(), ErrorKind::BadInput) << "seed " << kSeed << " trial " << trial;
      ++failures;
    }
  }
  EXPECT_GT(failures, 0) << "seed " << kSeed;  // corruption must be detected sometimes
}

}  // namespace
}  // namespace attnscope
