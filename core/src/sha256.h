// SHA-256 (FIPS 180-4) for model identities in traces: a small streaming implementation,
// since core links no crypto library.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace attnscope {

class Sha256 {
 public:
  Sha256();
  // data: [size] bytes appended to the message.
  void update(const void* data, size_t size);
  void update(std::string_view text) { update(text.data(), text.size()); }
  // Finishes the message (padding + length) and returns the 32-byte digest; the object is
  // then reset for a new message.
  std::array<uint8_t, 32> finish();
  // finish() as 64 lowercase hex digits.
  std::string finish_hex();

 private:
  void reset();
  void compress(const uint8_t* block);  // block: [64]

  std::array<uint32_t, 8> m_state{};
  std::array<uint8_t, 64> m_buffer{};
  size_t m_buffered = 0;
  uint64_t m_total_bytes = 0;
};

// Hex digest of a byte string.
std::string sha256_hex(std::string_view data);
// Hex digest of a file's bytes; Error(BadInput) "<path>: cannot read" on failure.
std::string sha256_file_hex(const std::filesystem::path& path);

}  // namespace attnscope
