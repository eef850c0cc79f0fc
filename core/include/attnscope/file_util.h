// Small file helpers shared by core: whole-file reads with clear errors, atomic writes.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace attnscope {

// Throws Error(BadInput) "<path>: cannot read (reason)".
std::string read_text_file(const std::filesystem::path& path);
// Writes to "<path>.tmp-XXXX" then renames over path; the old file survives any failure.
// Throws Error(Runtime) "<path>: cannot write (reason)".
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);
// Returns true if `text` is valid UTF-8; otherwise sets *bad_offset to the first bad byte.
bool is_valid_utf8(std::string_view text, size_t* bad_offset = nullptr);

}  // namespace attnscope
