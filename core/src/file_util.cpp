// Whole-file reads, atomic writes of files and directories, and UTF-8 validation.
#include "attnscope/file_util.h"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "attnscope/error.h"

namespace attnscope {

std::string read_text_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw_bad_input(path.string(), "is a directory, expected a file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw_bad_input(path.string(), std::string("cannot read (") + std::strerror(errno) + ")");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw_bad_input(path.string(), "read error");
  return buffer.str();
}

std::string unique_suffix() {
  static std::atomic<unsigned> counter{0};
  std::random_device rd;
  const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  return std::to_string(rd() ^ static_cast<unsigned>(now)) + "-" + std::to_string(counter++);
}

void write_file_atomic(const std::filesystem::path& path, std::string_view bytes) {
  const auto tmp = std::filesystem::path(path.string() + ".tmp-" + unique_suffix());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) {
      throw_runtime(path.string() + ": cannot write (" + std::strerror(errno) + ")");
    }
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      std::error_code ignored;
      std::filesystem::remove(tmp, ignored);
      throw_runtime(path.string() + ": cannot write (disk full or I/O error)");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw_runtime(path.string() + ": cannot replace file (" + ec.message() + ")");
  }
}

void replace_directory_atomic(const std::filesystem::path& dir, const std::string& marker,
                              const std::string& what,
                              const std::function<void(const std::filesystem::path& tmp)>& fill) {
  namespace fs = std::filesystem;
  // "runs/" and "runs" name the same directory; "." or ".." cannot be renamed.
  fs::path target = dir.lexically_normal();
  if (target.filename().empty()) target = target.parent_path();
  const std::string name = target.filename().string();
  if (name.empty() || name == "." || name == "..") {
    throw_runtime(dir.string() + ": expected a directory name to write the " + what + " to");
  }
  std::error_code ec;
  const auto status = fs::symlink_status(target, ec);
  if (fs::exists(status)) {
    if (!fs::is_directory(status)) {
      throw_runtime(dir.string() + ": exists and is not a " + what + " directory (" +
                    (fs::is_symlink(status) ? "a symbolic link" : "not a directory") +
                    "); not replacing it");
    }
    const bool marked = fs::is_regular_file(fs::symlink_status(target / marker, ec));
    const bool empty = fs::is_empty(target, ec) && !ec;
    if (!marked && !empty) {
      throw_runtime(dir.string() + ": exists and is not a " + what + " directory (no " + marker +
                    "); not replacing it");
    }
  }
  fs::path parent = target.parent_path();
  if (parent.empty()) parent = ".";
  fs::create_directories(parent, ec);
  if (ec)
    throw_runtime(dir.string() + ": cannot create " + parent.string() + " (" + ec.message() + ")");
  const fs::path tmp = parent / (name + ".tmp-" + unique_suffix());
  const fs::path old = parent / (name + ".old-" + unique_suffix());
  fs::create_directory(tmp, ec);
  if (ec)
    throw_runtime(dir.string() + ": cannot create " + tmp.string() + " (" + ec.message() + ")");
  try {
    fill(tmp);
    bool moved_old = false;
    if (fs::exists(fs::symlink_status(target, ec))) {
      fs::rename(target, old, ec);
      if (ec) {
        throw_runtime(dir.string() + ": cannot move the old " + what + " aside (" + ec.message() +
                      ")");
      }
      moved_old = true;
    }
    fs::rename(tmp, target, ec);
    if (ec) {
      const std::string why = ec.message();
      if (moved_old) fs::rename(old, target, ec);
      throw_runtime(dir.string() + ": cannot write (" + why + ")");
    }
    if (moved_old) fs::remove_all(old, ec);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
}

bool is_valid_utf8(std::string_view text, size_t* bad_offset) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    size_t len = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07;
    } else {
      if (bad_offset) *bad_offset = i;
      return false;
    }
    if (i + len > n) {
      if (bad_offset) *bad_offset = i;
      return false;
    }
    for (size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) {
        if (bad_offset) *bad_offset = i;
        return false;
      }
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    // Overlong encodings, surrogates and values beyond U+10FFFF are invalid.
    const bool overlong =
        (len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
    if (overlong || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
      if (bad_offset) *bad_offset = i;
      return false;
    }
    i += len;
  }
  return true;
}

}  // namespace attnscope
