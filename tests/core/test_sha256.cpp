// SHA-256 against the FIPS 180-2 / NIST example vectors (empty, "abc", the 448-bit and 896-bit
// two-block messages, one million 'a'), split updates across block boundaries, and files.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "../../core/src/sha256.h"
#include "attnscope/error.h"
#include "test_support.h"

namespace attnscope {
namespace {

TEST(Sha256, NistVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                       "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// Messages of every length around the 55/56/64-byte padding edges hashed in uneven pieces give
// the one-shot digest.
TEST(Sha256, SplitUpdatesMatchOneShot) {
  for (int len : {0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 200}) {
    std::string msg(static_cast<size_t>(len), '\0');
    for (int i = 0; i < len; ++i) msg[i] = static_cast<char>('a' + (i * 7) % 26);
    const std::string whole = sha256_hex(msg);
    for (size_t piece : {1u, 3u, 17u, 64u}) {
      Sha256 h;
      for (size_t at = 0; at < msg.size(); at += piece) {
        h.update(std::string_view(msg).substr(at, piece));
      }
      EXPECT_EQ(h.finish_hex(), whole) << "length " << len << " piece " << piece;
    }
  }
}

TEST(Sha256, FileAndMissingFile) {
  const auto dir = test::make_temp_dir("attnscope-sha");
  const auto path = dir / "abc.bin";
  std::ofstream(path, std::ios::binary) << "abc";
  EXPECT_EQ(sha256_file_hex(path),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_THROW(sha256_file_hex(dir / "missing.bin"), Error);
}

}  // namespace
}  // namespace attnscope
