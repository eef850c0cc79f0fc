// Small file helpers shared by core: whole-file reads with clear errors, atomic writes of files
// and of whole directories.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

namespace attnscope {

// Throws Error(BadInput) "<path>: cannot read (reason)".
std::string read_text_file(const std::filesystem::path& path);
// Writes to "<path>.tmp-XXXX" then renames over path; the old file survives any failure.
// Throws Error(Runtime) "<path>: cannot write (reason)".
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);
// Replaces the directory `dir` as one step: `fill(tmp)` writes the new contents into a fresh
// sibling "<dir>.tmp-XXXX"; then an existing `dir` is renamed aside to "<dir>.old-XXXX", tmp is
// renamed to `dir` and the old one removed (restored if the rename fails). An existing `dir` must
// be an empty directory or hold the regular file `marker` (e.g. "trace.json"); anything else is
// refused before `fill` runs, so a user's unrelated folder is never touched. On any failure
// (including an exception from `fill`) `dir` is left as it was and tmp is removed.
// `what` names the kind in messages ("trace", "session"). Throws Error(Runtime) "<dir>: ...";
// an exception from `fill` propagates unchanged.
void replace_directory_atomic(const std::filesystem::path& dir, const std::string& marker,
                              const std::string& what,
                              const std::function<void(const std::filesystem::path& tmp)>& fill);
// A suffix for temporary siblings, unique within the process and unlikely across processes.
std::string unique_suffix();
// Returns true if `text` is valid UTF-8; otherwise sets *bad_offset to the first bad byte.
bool is_valid_utf8(std::string_view text, size_t* bad_offset = nullptr);

}  // namespace attnscope
