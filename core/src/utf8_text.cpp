// UTF-8 repair: invalid sequences become U+FFFD; streamed bytes are cut before an unfinished
// trailing sequence.
#include "attnscope/utf8_text.h"

#include "attnscope/file_util.h"

namespace attnscope {
namespace {

// Expected length of a UTF-8 sequence from its lead byte; 0 for a continuation/invalid byte.
size_t utf8_sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 0;
}

}  // namespace

size_t complete_utf8_prefix(std::string_view bytes) {
  const size_t n = bytes.size();
  // A sequence is at most 4 bytes, so only the last 3 bytes can be an unfinished one.
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const auto c = static_cast<unsigned char>(bytes[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    const size_t len = utf8_sequence_length(c);
    return (len > back) ? n - back : n;
  }
  return n;
}

std::string sanitize_utf8(std::string_view bytes) {
  static constexpr const char* kReplacement = "\xEF\xBF\xBD";  // U+FFFD
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    const size_t len = utf8_sequence_length(static_cast<unsigned char>(bytes[i]));
    if (len > 0 && i + len <= bytes.size() && is_valid_utf8(bytes.substr(i, len))) {
      out.append(bytes.substr(i, len));
      i += len;
    } else {
      // One U+FFFD for a broken sequence: the lead byte and the continuation bytes it claims.
      size_t skip = 1;
      while (len > 1 && skip < len && i + skip < bytes.size() &&
             (static_cast<unsigned char>(bytes[i + skip]) & 0xC0) == 0x80) {
        ++skip;
      }
      out += kReplacement;
      i += skip;
    }
  }
  return out;
}

}  // namespace attnscope
