// UTF-8 repair for text that leaves the program (terminals, CSV/JSON exports, streamed output):
// invalid bytes replaced by U+FFFD, and the complete prefix of a stream that may end mid-sequence.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace attnscope {

// Length of the longest prefix of `bytes` that does not end inside a UTF-8 sequence that
// could still be completed by more bytes (so streaming can hold back only that tail).
size_t complete_utf8_prefix(std::string_view bytes);
// `bytes` with every invalid UTF-8 sequence replaced by one U+FFFD, so terminals and JSON get
// valid text.
std::string sanitize_utf8(std::string_view bytes);

}  // namespace attnscope
