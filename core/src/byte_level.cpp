// GPT-2 byte-level alphabet (bytes_to_unicode): printable Latin-1 bytes stand for themselves,
// the other 68 bytes are shifted to U+0100.. in byte order.
#include "byte_level.h"

namespace attnscope::detail {

void append_utf8(char32_t c, std::string& out) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

size_t next_utf8(std::string_view s, size_t i, char32_t* c) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  size_t len = 1;
  char32_t cp = b0;
  if (b0 >= 0xF0) {
    len = 4, cp = b0 & 0x07;
  } else if (b0 >= 0xE0) {
    len = 3, cp = b0 & 0x0F;
  } else if (b0 >= 0xC0) {
    len = 2, cp = b0 & 0x1F;
  }
  if (i + len > s.size()) {  // truncated: treat the lead byte alone
    *c = b0;
    return 1;
  }
  for (size_t k = 1; k < len; ++k) {
    cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  }
  *c = cp;
  return len;
}

ByteLevelAlphabet::ByteLevelAlphabet() {
  m_byte_of.fill(-1);
  auto printable = [](int b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  };
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const char32_t c = printable(b) ? static_cast<char32_t>(b) : next++;
    m_char_of[static_cast<size_t>(b)] = c;
    m_byte_of[c] = static_cast<int16_t>(b);
    append_utf8(c, m_utf8_of[static_cast<size_t>(b)]);
  }
}

const ByteLevelAlphabet& ByteLevelAlphabet::get() {
  static const ByteLevelAlphabet table;
  return table;
}

int ByteLevelAlphabet::byte_of(char32_t c) const {
  return c < m_byte_of.size() ? m_byte_of[c] : -1;
}

void ByteLevelAlphabet::encode(std::string_view bytes, std::string& out) const {
  for (const char ch : bytes) out += m_utf8_of[static_cast<unsigned char>(ch)];
}

void ByteLevelAlphabet::decode(std::string_view spelled, std::string& out) const {
  size_t i = 0;
  while (i < spelled.size()) {
    char32_t c = 0;
    const size_t len = next_utf8(spelled, i, &c);
    const int b = byte_of(c);
    if (b >= 0) {
      out.push_back(static_cast<char>(b));
    } else {
      out.append(spelled.substr(i, len));
    }
    i += len;
  }
}

bool ByteLevelAlphabet::all_in_alphabet(std::string_view s) const {
  size_t i = 0;
  while (i < s.size()) {
    char32_t c = 0;
    const size_t len = next_utf8(s, i, &c);
    if (byte_of(c) < 0) return false;
    i += len;
  }
  return true;
}

}  // namespace attnscope::detail
