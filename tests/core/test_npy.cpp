// NPY writer/reader tests: round trips, byte-identity with a file numpy wrote (the golden
// forward data), and rejection of corrupt headers with the file named in the message.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "attnscope/error.h"
#include "attnscope/file_util.h"
#include "attnscope/npy.h"
#include "test_support.h"

namespace attnscope {
namespace {

std::string read_bytes(const std::filesystem::path& p) {
  return read_text_file(p);
}

void write_bytes(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A format-1.0 file with the given header dict text (padded as numpy does) and payload.
std::string make_npy(const std::string& dict, const std::string& payload) {
  std::string header = dict;
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  return out + header + payload;
}

TEST(Npy, RoundTripFloatAndInt) {
  const auto dir = test::make_temp_dir("npy");
  const std::vector<float> f = {1.5f, -2.0f, 3.25f, 0.0f, 1e-30f, 7.0f};
  write_npy(dir / "f.npy", {2, 3}, f.data());
  const auto rf = read_npy_f32(dir / "f.npy");
  EXPECT_EQ(rf.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(rf.data, f);
  const std::vector<int32_t> i = {-1, 0, 49151, 2147483647};
  write_npy(dir / "i.npy", {4}, i.data());
  const auto ri = read_npy_i32(dir / "i.npy");
  EXPECT_EQ(ri.shape, (std::vector<int64_t>{4}));
  EXPECT_EQ(ri.data, i);
  // Header exactly as numpy writes it, data 64-byte aligned.
  const std::string bytes = read_bytes(dir / "f.npy");
  ASSERT_GE(bytes.size(), 10u);
  const size_t hlen =
      static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
  EXPECT_EQ((10 + hlen) % 64, 0u);
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  EXPECT_EQ(bytes.substr(10, dict.size()), dict);
  EXPECT_EQ(bytes[10 + hlen - 1], '\n');
  EXPECT_EQ(bytes.size(), 10 + hlen + 6 * 4);
  // Scalar and empty shapes.
  const float one = 4.0f;
  write_npy(dir / "s.npy", {}, &one);
  const auto rs = read_npy_f32(dir / "s.npy");
  EXPECT_TRUE(rs.shape.empty());
  ASSERT_EQ(rs.data.size(), 1u);
  EXPECT_EQ(rs.data[0], 4.0f);
  write_npy(dir / "e.npy", {0, 3}, static_cast<const float*>(nullptr));
  const auto re = read_npy_f32(dir / "e.npy");
  EXPECT_EQ(re.shape, (std::vector<int64_t>{0, 3}));
  EXPECT_TRUE(re.data.empty());
}

TEST(Npy, ByteIdenticalToNumpyWrittenFile) {
  // capital_ids.npy was written by numpy.save in scripts/golden/make_forward_golden.py.
  const auto src = test::data_dir() / "forward_golden" / "capital_ids.npy";
  const auto ids = read_npy_i32(src);
  ASSERT_EQ(ids.shape.size(), 1u);
  const auto dir = test::make_temp_dir("npy");
  write_npy(dir / "ids.npy", ids.shape, ids.data.data());
  EXPECT_EQ(read_bytes(dir / "ids.npy"), read_bytes(src));
  const auto attn = read_npy_f32(test::data_dir() / "forward_golden" / "capital_attn_L0_H0.npy");
  ASSERT_EQ(attn.shape.size(), 2u);
  EXPECT_EQ(attn.shape[0], attn.shape[1]);
}

TEST(Npy, CorruptFilesRejectedNamingTheFile) {
  const auto dir = test::make_temp_dir("npy");
  const std::string four_floats(16, '\0');
  struct Case {
    const char* name;
    std::string bytes;
    const char* expect;  // substring of the message
  };
  const std::string good_dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }";
  std::string bad_version = make_npy(good_dict, four_floats);
  bad_version[6] = 9;
  const std::vector<Case> cases = {
      {"magic.npy", "NOTNPY" + make_npy(good_dict, four_floats).substr(6), "magic"},
      {"short.npy", std::string("\x93NUM", 4), "magic"},
      {"version.npy", bad_version, "version"},
      {"dtype.npy",
       make_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", four_floats), "'<f4'"},
      {"fortran.npy",
       make_npy("{'descr': '<f4', 'fortran_order': True, 'shape': (4,), }", four_floats),
       "C order"},
      {"noshape.npy", make_npy("{'descr': '<f4', 'fortran_order': False, }", four_floats), "shape"},
      {"badshape.npy",
       make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (a,), }", four_floats), "shape"},
      {"truncated.npy", make_npy(good_dict, four_floats.substr(0, 12)), "needs 16"},
      {"extra.npy", make_npy(good_dict, four_floats + "xx"), "needs 16"},
      {"hlen.npy", std::string("\x93NUMPY\x01\x00\xff\x7f{", 11), "truncated"},
  };
  for (const auto& c : cases) {
    const auto path = dir / c.name;
    write_bytes(path, c.bytes);
    try {
      (void)read_npy_f32(path);
      ADD_FAILURE() << c.name << ": accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::BadInput) << c.name;
      const std::string msg = e.what();
      EXPECT_NE(msg.find(c.name), std::string::npos) << msg;
      EXPECT_NE(msg.find(c.expect), std::string::npos) << c.name << ": " << msg;
    }
  }
  // The good file is accepted, and an int32 read of a float file is refused.
  write_bytes(dir / "good.npy", make_npy(good_dict, four_floats));
  EXPECT_EQ(read_npy_f32(dir / "good.npy").data.size(), 4u);
  EXPECT_THROW(read_npy_i32(dir / "good.npy"), Error);
  EXPECT_THROW(read_npy_f32(dir / "missing.npy"), Error);
}

}  // namespace
}  // namespace attnscope
