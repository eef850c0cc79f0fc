// NPY format 1.0 writer and reader (float32 '<f4', float64 '<f8', int32 '<i4', uint8 '|u1',
// C order), written atomically.
#include "attnscope/npy.h"

#include <bit>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>

#include "attnscope/error.h"
#include "attnscope/file_util.h"

namespace attnscope {
namespace {

static_assert(std::endian::native == std::endian::little,
              "NPY '<f4'/'<i4' data is written as the host's bytes: little-endian hosts only");

constexpr std::string_view kMagic = "\x93NUMPY";
constexpr size_t kPreamble = 10;   // magic (6) + version (2) + header length (2), format 1.0
constexpr size_t kAlignment = 64;  // numpy pads the header so data starts 64-byte aligned

int64_t element_count(const std::vector<int64_t>& shape, const std::string& where) {
  int64_t count = 1;
  for (int64_t dim : shape) {
    if (dim < 0) throw_bad_input(where, "shape has a negative dimension");
    if (dim != 0 && count > std::numeric_limits<int64_t>::max() / 8 / dim) {
      throw_bad_input(where, "shape is too large");
    }
    count *= dim;
  }
  return count;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    s += std::to_string(shape[i]);
    if (shape.size() == 1 || i + 1 < shape.size()) s += ",";
    if (i + 1 < shape.size()) s += " ";
  }
  return s + ")";
}

void write_any(const std::filesystem::path& path, const std::vector<int64_t>& shape,
               const void* data, const char* descr, size_t element_size) {
  const int64_t count = element_count(shape, path.string());
  std::string header = std::string("{'descr': '") + descr +
                       "', 'fortran_order': False, 'shape': " + shape_text(shape) + ", }";
  const size_t total = kPreamble + header.size() + 1;  // + '\n'
  header.append((kAlignment - total % kAlignment) % kAlignment, ' ');
  header += '\n';
  if (header.size() > 0xffff) throw_usage(path.string() + ": NPY header too long");
  std::string bytes(kMagic);
  bytes += static_cast<char>(1);
  bytes += static_cast<char>(0);
  bytes += static_cast<char>(header.size() & 0xff);
  bytes += static_cast<char>((header.size() >> 8) & 0xff);
  bytes += header;
  const size_t nbytes = static_cast<size_t>(count) * element_size;
  if (nbytes > 0) bytes.append(static_cast<const char*>(data), nbytes);
  write_file_atomic(path, bytes);
}

// Value text after `'key':` in the header dict, up to (not including) the next top-level ',' or
// '}' ; shapes keep their parentheses.
std::string dict_value(std::string_view header, std::string_view key, const std::string& where) {
  std::string quoted(1, '\'');  // built by append: GCC 12 misfires -Wrestrict on "'" + str
  quoted.append(key);
  quoted += '\'';
  const size_t at = header.find(quoted);
  if (at == std::string_view::npos) throw_bad_input(where, "NPY header has no " + quoted);
  size_t p = header.find(':', at + quoted.size());
  if (p == std::string_view::npos) throw_bad_input(where, "NPY header " + quoted + " has no value");
  ++p;
  while (p < header.size() && header[p] == ' ') ++p;
  size_t end = p;
  if (p < header.size() && header[p] == '(') {
    end = header.find(')', p);
    if (end == std::string_view::npos) throw_bad_input(where, "NPY header shape is not closed");
    ++end;
  } else if (p < header.size() && (header[p] == '\'' || header[p] == '"')) {
    end = header.find(header[p], p + 1);
    if (end == std::string_view::npos) throw_bad_input(where, "NPY header string is not closed");
    ++end;
  } else {
    while (end < header.size() && header[end] != ',' && header[end] != '}') ++end;
  }
  std::string v(header.substr(p, end - p));
  while (!v.empty() && v.back() == ' ') v.pop_back();
  return v;
}

std::vector<int64_t> parse_shape(const std::string& text, const std::string& where) {
  if (text.size() < 2 || text.front() != '(' || text.back() != ')') {
    throw_bad_input(where, "NPY header shape must be a tuple, got " + text);
  }
  std::vector<int64_t> shape;
  size_t p = 1;
  const size_t end = text.size() - 1;
  while (p < end) {
    while (p < end && (text[p] == ' ' || text[p] == ',')) ++p;
    if (p >= end) break;
    if (text[p] < '0' || text[p] > '9')
      throw_bad_input(where, "NPY header shape must hold non-negative integers, got " + text);
    int64_t dim = 0;
    while (p < end && text[p] >= '0' && text[p] <= '9') {
      if (dim > (std::numeric_limits<int64_t>::max() - 9) / 10)
        throw_bad_input(where, "NPY header shape dimension too large");
      dim = dim * 10 + (text[p] - '0');
      ++p;
    }
    if (p < end && text[p] != ',' && text[p] != ' ')
      throw_bad_input(where, "NPY header shape must hold integers, got " + text);
    shape.push_back(dim);
  }
  return shape;
}

template <typename T>
NpyArray<T> read_any(const std::filesystem::path& path, const char* descr) {
  const std::string where = path.string();
  const std::string bytes = read_text_file(path);
  if (bytes.size() < kPreamble || std::string_view(bytes).substr(0, 6) != kMagic) {
    throw_bad_input(where, "not an NPY file (missing \\x93NUMPY magic)");
  }
  const auto major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0, header_start = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) |
                 (static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) throw_bad_input(where, "NPY header is truncated");
    header_len = 0;
    for (int i = 0; i < 4; ++i)
      header_len |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
    header_start = 12;
  } else {
    throw_bad_input(where,
                    "unsupported NPY version " + std::to_string(major) + " (expected 1, 2 or 3)");
  }
  if (header_len > bytes.size() - header_start) throw_bad_input(where, "NPY header is truncated");
  const std::string_view header(bytes.data() + header_start, header_len);
  if (header.find('{') == std::string_view::npos || header.find('}') == std::string_view::npos) {
    throw_bad_input(where, "NPY header is not a dict");
  }
  const std::string d = dict_value(header, "descr", where);
  std::string want(1, '\'');
  want.append(descr);
  want += '\'';
  if (d != want) {
    throw_bad_input(where, std::string("NPY dtype must be '") + descr + "', got " + d);
  }
  const std::string fo = dict_value(header, "fortran_order", where);
  if (fo != "False")
    throw_bad_input(where, "NPY array must be C order (fortran_order False), got " + fo);
  NpyArray<T> out;
  out.shape = parse_shape(dict_value(header, "shape", where), where);
  const int64_t count = element_count(out.shape, where);
  const size_t data_start = header_start + header_len;
  const size_t data_len = bytes.size() - data_start;
  if (data_len != static_cast<size_t>(count) * sizeof(T)) {
    throw_bad_input(where, "NPY data holds " + std::to_string(data_len) + " bytes, shape " +
                               shape_text(out.shape) + " needs " +
                               std::to_string(static_cast<size_t>(count) * sizeof(T)));
  }
  out.data.resize(static_cast<size_t>(count));
  if (count > 0) std::memcpy(out.data.data(), bytes.data() + data_start, data_len);
  return out;
}

}  // namespace

void write_npy(const std::filesystem::path& path, const std::vector<int64_t>& shape,
               const float* data) {
  write_any(path, shape, data, "<f4", sizeof(float));
}

void write_npy(const std::filesystem::path& path, const std::vector<int64_t>& shape,
               const double* data) {
  write_any(path, shape, data, "<f8", sizeof(double));
}

void write_npy(const std::filesystem::path& path, const std::vector<int64_t>& shape,
               const int32_t* data) {
  write_any(path, shape, data, "<i4", sizeof(int32_t));
}

void write_npy(const std::filesystem::path& path, const std::vector<int64_t>& shape,
               const uint8_t* data) {
  write_any(path, shape, data, "|u1", sizeof(uint8_t));
}

NpyArray<float> read_npy_f32(const std::filesystem::path& path) {
  return read_any<float>(path, "<f4");
}

NpyArray<double> read_npy_f64(const std::filesystem::path& path) {
  return read_any<double>(path, "<f8");
}

NpyArray<int32_t> read_npy_i32(const std::filesystem::path& path) {
  return read_any<int32_t>(path, "<i4");
}

NpyArray<uint8_t> read_npy_u8(const std::filesystem::path& path) {
  return read_any<uint8_t>(path, "|u1");
}

}  // namespace attnscope
