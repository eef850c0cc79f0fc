// GPT-2 byte-level alphabet: the reversible map between the 256 byte values and 256 printable
// Unicode characters that byte-level BPE vocabularies are written in (e.g. 0x20 -> "Ġ").
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace attnscope::detail {

class ByteLevelAlphabet {
 public:
  // The one shared table (built once, immutable, thread-safe).
  static const ByteLevelAlphabet& get();

  // Code point that byte b is written as.
  char32_t char_of(uint8_t b) const { return m_char_of[b]; }
  // Byte that code point c stands for, or -1 when c is not in the alphabet.
  int byte_of(char32_t c) const;

  // Appends the byte-level spelling (UTF-8) of raw bytes.
  void encode(std::string_view bytes, std::string& out) const;
  // Raw bytes of a byte-level string; characters outside the alphabet are kept as their own
  // UTF-8 bytes (what HF's ByteLevel decoder does).
  void decode(std::string_view spelled, std::string& out) const;
  // True when every character of the UTF-8 string `s` is in the alphabet.
  bool all_in_alphabet(std::string_view s) const;

 private:
  ByteLevelAlphabet();
  std::array<char32_t, 256> m_char_of{};
  std::array<std::string, 256> m_utf8_of{};  // UTF-8 of m_char_of[b]
  std::array<int16_t, 324> m_byte_of{};      // code point (all < 324) -> byte, -1 if none
};

// Appends the UTF-8 encoding of code point c.
void append_utf8(char32_t c, std::string& out);
// Decodes one code point of valid UTF-8 at s[i]; returns its length in bytes (1 on a bad lead
// byte, so callers always advance).
size_t next_utf8(std::string_view s, size_t i, char32_t* c);

}  // namespace attnscope::detail
