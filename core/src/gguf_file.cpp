// GGUF v2/v3 reader. The file is memory-mapped read-only; the header is parsed through a
// bounds-checked cursor so that every count, length and offset is validated against the file
// size (with overflow-checked arithmetic) before anything is allocated or read.
#include "attnscope/gguf_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "attnscope/error.h"

namespace attnscope {
namespace {

constexpr uint32_t kGgufMagic = 0x46554747;   // "GGUF" read as a little-endian uint32
constexpr uint32_t kMaxDims = 4;              // ggml tensors have at most 4 dimensions
constexpr int kMaxArrayDepth = 8;             // nested arrays deeper than this are rejected
constexpr uint64_t kMaxAlignment = 1u << 20;  // sane upper bound for general.alignment
// Smallest encodings, used to reject counts that cannot fit in the remaining bytes.
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;              // empty key, type, 1-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;  // empty name, n_dims 0, type, offset

std::string quote_name(const std::string& s) {
  return "'" + s + "'";
}

// Size in bytes of a fixed-size value type; 0 for String/Array/unknown.
uint64_t fixed_value_size(GgufValueType t) {
  switch (t) {
    case GgufValueType::UInt8:
    case GgufValueType::Int8:
    case GgufValueType::Bool:
      return 1;
    case GgufValueType::UInt16:
    case GgufValueType::Int16:
      return 2;
    case GgufValueType::UInt32:
    case GgufValueType::Int32:
    case GgufValueType::Float32:
      return 4;
    case GgufValueType::UInt64:
    case GgufValueType::Int64:
    case GgufValueType::Float64:
      return 8;
    default:
      return 0;
  }
}

bool known_value_type(uint32_t t) {
  return t <= static_cast<uint32_t>(GgufValueType::Float64);
}

// Bounds-checked reader over the mapped bytes. `m_where` prefixes every error with the file.
class Cursor {
 public:
  Cursor(const uint8_t* data, uint64_t size, std::string file)
      : m_data(data), m_size(size), m_file(std::move(file)) {}

  uint64_t pos() const { return m_pos; }
  uint64_t remaining() const { return m_size - m_pos; }
  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw_bad_input(m_file + ": " + field, what);
  }

  void need(uint64_t n, const std::string& field) const {
    if (n > remaining()) {
      fail(field, "truncated: needs " + std::to_string(n) + " bytes at offset " +
                      std::to_string(m_pos) + ", file has " + std::to_string(remaining()) +
                      " left");
    }
  }
  template <typename T>
  T read(const std::string& field) {
    need(sizeof(T), field);
    T v;
    std::memcpy(&v, m_data + m_pos, sizeof(T));
    m_pos += sizeof(T);
    return v;
  }
  std::string read_string(const std::string& field) {
    const auto len = read<uint64_t>(field + " (string length)");
    if (len > remaining()) {
      fail(field, "string length " + std::to_string(len) + " runs past end of file (" +
                      std::to_string(remaining()) + " bytes left)");
    }
    std::string s(reinterpret_cast<const char*>(m_data + m_pos), static_cast<size_t>(len));
    m_pos += len;
    return s;
  }

 private:
  const uint8_t* m_data;
  uint64_t m_size;
  uint64_t m_pos = 0;
  std::string m_file;
};

GgufValue read_value(Cursor& cur, GgufValueType type, const std::string& field, int depth);

GgufValue read_array(Cursor& cur, const std::string& field, int depth) {
  if (depth >= kMaxArrayDepth) {
    cur.fail(field, "arrays nested deeper than " + std::to_string(kMaxArrayDepth) + " levels");
  }
  const auto elem_raw = cur.read<uint32_t>(field + " (array element type)");
  if (!known_value_type(elem_raw)) {
    cur.fail(field, "unknown array element type " + std::to_string(elem_raw));
  }
  const auto elem_type = static_cast<GgufValueType>(elem_raw);
  const auto count = cur.read<uint64_t>(field + " (array length)");
  // Every element takes at least this many bytes, so the count is bounded by the file.
  uint64_t min_elem = fixed_value_size(elem_type);
  if (elem_type == GgufValueType::String) min_elem = 8;
  if (elem_type == GgufValueType::Array) min_elem = 4 + 8;
  if (count > cur.remaining() / min_elem) {
    cur.fail(field, "array length " + std::to_string(count) + " runs past end of file (" +
                        std::to_string(cur.remaining()) + " bytes left)");
  }
  auto arr = std::make_shared<GgufArray>();
  arr->element_type = elem_type;
  arr->values.reserve(static_cast<size_t>(count));
  for (uint64_t i = 0; i < count; ++i) {
    arr->values.push_back(
        read_value(cur, elem_type, field + "[" + std::to_string(i) + "]", depth + 1));
  }
  GgufValue v;
  v.type = GgufValueType::Array;
  v.value = std::move(arr);
  return v;
}

GgufValue read_value(Cursor& cur, GgufValueType type, const std::string& field, int depth) {
  GgufValue v;
  v.type = type;
  switch (type) {
    case GgufValueType::UInt8:
      v.value = uint64_t{cur.read<uint8_t>(field)};
      break;
    case GgufValueType::Int8:
      v.value = int64_t{cur.read<int8_t>(field)};
      break;
    case GgufValueType::UInt16:
      v.value = uint64_t{cur.read<uint16_t>(field)};
      break;
    case GgufValueType::Int16:
      v.value = int64_t{cur.read<int16_t>(field)};
      break;
    case GgufValueType::UInt32:
      v.value = uint64_t{cur.read<uint32_t>(field)};
      break;
    case GgufValueType::Int32:
      v.value = int64_t{cur.read<int32_t>(field)};
      break;
    case GgufValueType::UInt64:
      v.value = cur.read<uint64_t>(field);
      break;
    case GgufValueType::Int64:
      v.value = cur.read<int64_t>(field);
      break;
    case GgufValueType::Float32:
      v.value = double{cur.read<float>(field)};
      break;
    case GgufValueType::Float64:
      v.value = cur.read<double>(field);
      break;
    case GgufValueType::Bool: {
      const auto b = cur.read<uint8_t>(field);
      if (b > 1) cur.fail(field, "bool value " + std::to_string(b) + ", expected 0 or 1");
      v.value = b != 0;
      break;
    }
    case GgufValueType::String:
      v.value = cur.read_string(field);
      break;
    case GgufValueType::Array:
      return read_array(cur, field, depth);
    default:
      cur.fail(field, "unknown value type " + std::to_string(static_cast<uint32_t>(type)));
  }
  return v;
}

// RAII holder for the mapping while parsing; released into the GgufFile on success.
struct Mapping {
  const uint8_t* data = nullptr;
  uint64_t size = 0;
  ~Mapping() {
    if (data != nullptr) munmap(const_cast<uint8_t*>(data), static_cast<size_t>(size));
  }
};

}  // namespace

// --- GgufValue -------------------------------------------------------------------------------

std::optional<int64_t> GgufValue::as_int() const {
  if (const auto* u = std::get_if<uint64_t>(&value)) {
    if (*u > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
    return static_cast<int64_t>(*u);
  }
  if (const auto* i = std::get_if<int64_t>(&value)) return *i;
  return std::nullopt;
}

std::optional<double> GgufValue::as_double() const {
  if (const auto* d = std::get_if<double>(&value)) return *d;
  if (const auto* u = std::get_if<uint64_t>(&value)) return static_cast<double>(*u);
  if (const auto* i = std::get_if<int64_t>(&value)) return static_cast<double>(*i);
  return std::nullopt;
}

const std::string* GgufValue::as_string() const {
  return std::get_if<std::string>(&value);
}

const GgufArray* GgufValue::as_array() const {
  if (const auto* a = std::get_if<std::shared_ptr<GgufArray>>(&value)) return a->get();
  return nullptr;
}

// --- GgufFile --------------------------------------------------------------------------------

std::unique_ptr<GgufFile> GgufFile::open(const std::filesystem::path& path) {
  const std::string file = path.string();
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw_bad_input(file, "is a directory, expected a GGUF file");
  }
  // Refuse FIFOs, devices and sockets before open(): opening a FIFO would block.
  const auto status = std::filesystem::status(path, ec);
  if (!ec && std::filesystem::exists(status) && !std::filesystem::is_regular_file(status)) {
    throw_bad_input(file, "not a regular file");
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw_bad_input(file, std::string("cannot open (") + std::strerror(errno) + ")");
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw_bad_input(file, "not a regular file");
  }
  Mapping map;
  map.size = static_cast<uint64_t>(st.st_size);
  if (map.size < 4 + 4 + 8 + 8) {
    ::close(fd);
    throw_bad_input(file + ": header", "truncated: file has " + std::to_string(map.size) +
                                           " bytes, a GGUF header needs at least 24");
  }
  void* p = mmap(nullptr, static_cast<size_t>(map.size), PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_errno = errno;
  ::close(fd);
  if (p == MAP_FAILED) {
    throw_bad_input(file, std::string("cannot map (") + std::strerror(map_errno) + ")");
  }
  map.data = static_cast<const uint8_t*>(p);

  std::unique_ptr<GgufFile> out(new GgufFile());
  out->m_path = path;
  out->m_file_size = map.size;
  Cursor cur(map.data, map.size, file);

  const auto magic = cur.read<uint32_t>("magic");
  if (magic != kGgufMagic) cur.fail("magic", "not a GGUF file (expected bytes 'GGUF')");
  out->m_version = cur.read<uint32_t>("version");
  if (out->m_version != 2 && out->m_version != 3) {
    cur.fail("version", "GGUF version " + std::to_string(out->m_version) + ", expected 2 or 3");
  }
  const auto n_tensors = cur.read<uint64_t>("tensor_count");
  const auto n_kv = cur.read<uint64_t>("metadata_kv_count");
  if (n_kv > cur.remaining() / kMinKvBytes) {
    cur.fail("metadata_kv_count", std::to_string(n_kv) + " entries cannot fit in the " +
                                      std::to_string(cur.remaining()) + " bytes left");
  }
  if (n_tensors > cur.remaining() / kMinTensorInfoBytes) {
    cur.fail("tensor_count", std::to_string(n_tensors) + " tensors cannot fit in the " +
                                 std::to_string(cur.remaining()) + " bytes left");
  }

  for (uint64_t i = 0; i < n_kv; ++i) {
    const std::string kv_field = "metadata[" + std::to_string(i) + "]";
    std::string key = cur.read_string(kv_field + " key");
    const std::string field = "metadata " + quote_name(key);
    const auto type_raw = cur.read<uint32_t>(field + " (value type)");
    if (!known_value_type(type_raw)) {
      cur.fail(field, "unknown value type " + std::to_string(type_raw));
    }
    GgufValue value = read_value(cur, static_cast<GgufValueType>(type_raw), field, 0);
    if (out->m_metadata.count(key) != 0) cur.fail(field, "duplicate key");
    out->m_metadata.emplace(std::move(key), std::move(value));
  }

  if (const GgufValue* a = out->find("general.alignment")) {
    const auto v = a->as_int();
    if (!v || *v <= 0 || static_cast<uint64_t>(*v) > kMaxAlignment || (*v & (*v - 1)) != 0) {
      cur.fail("metadata 'general.alignment'",
               "expected a power of two between 1 and " + std::to_string(kMaxAlignment));
    }
    out->m_alignment = static_cast<uint64_t>(*v);
  }

  std::set<std::string> names;
  out->m_tensors.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo info;
    info.name = cur.read_string("tensor[" + std::to_string(i) + "] name");
    const std::string field = "tensor " + quote_name(info.name);
    if (!names.insert(info.name).second) cur.fail(field, "duplicate tensor name");
    info.n_dims = cur.read<uint32_t>(field + " n_dims");
    if (info.n_dims > kMaxDims) {
      cur.fail(field + " n_dims", std::to_string(info.n_dims) + ", expected at most 4");
    }
    info.n_elements = 1;
    for (uint32_t d = 0; d < info.n_dims; ++d) {
      info.dims[d] = cur.read<uint64_t>(field + " dims");
      if (__builtin_mul_overflow(info.n_elements, info.dims[d], &info.n_elements)) {
        cur.fail(field + " dims", "product of dimensions overflows 64 bits");
      }
    }
    info.type_id = cur.read<uint32_t>(field + " type");
    const auto traits = ggml_type_traits(info.type_id);
    if (!traits) {
      cur.fail(field + " type", "unknown tensor type id " + std::to_string(info.type_id));
    }
    info.offset = cur.read<uint64_t>(field + " offset");
    if (info.dims[0] % traits->block_elems != 0) {
      cur.fail(field + " dims", "row length " + std::to_string(info.dims[0]) +
                                    " is not a multiple of the " + traits->name + " block size " +
                                    std::to_string(traits->block_elems));
    }
    const auto bytes = ggml_tensor_bytes(static_cast<GgmlType>(info.type_id), info.n_elements);
    if (!bytes) cur.fail(field + " dims", "byte size overflows 64 bits");
    info.n_bytes = *bytes;
    out->m_tensors.push_back(std::move(info));
  }

  // The data section starts at the next multiple of the alignment after the header.
  const uint64_t header_end = cur.pos();
  const uint64_t align = out->m_alignment;
  uint64_t data_offset = header_end + (align - header_end % align) % align;
  if (data_offset > map.size) {
    if (!out->m_tensors.empty()) {
      cur.fail("data section", "starts at offset " + std::to_string(data_offset) +
                                   ", past end of file (" + std::to_string(map.size) + " bytes)");
    }
    data_offset = map.size;  // no tensors: nothing will be read from the data section
  }
  out->m_data_offset = data_offset;
  const uint64_t data_size = map.size - data_offset;
  for (const auto& info : out->m_tensors) {
    const std::string field = "tensor " + quote_name(info.name) + " offset";
    if (info.offset % align != 0) {
      cur.fail(field, std::to_string(info.offset) + " is not a multiple of the alignment " +
                          std::to_string(align));
    }
    uint64_t end = 0;
    if (__builtin_add_overflow(info.offset, info.n_bytes, &end) || end > data_size) {
      cur.fail(field, "data [" + std::to_string(info.offset) + ", +" +
                          std::to_string(info.n_bytes) + ") runs past end of data section (" +
                          std::to_string(data_size) + " bytes)");
    }
  }

  out->m_map = map.data;
  map.data = nullptr;  // ownership moves to the GgufFile
  return out;
}

GgufFile::~GgufFile() {
  if (m_map != nullptr) munmap(const_cast<uint8_t*>(m_map), static_cast<size_t>(m_file_size));
}

const GgufValue* GgufFile::find(const std::string& key) const {
  const auto it = m_metadata.find(key);
  return it == m_metadata.end() ? nullptr : &it->second;
}

namespace {
[[noreturn]] void bad_key(const std::filesystem::path& path, const std::string& key,
                          const std::string& what) {
  throw_bad_input(path.string() + ": metadata " + quote_name(key), what);
}
}  // namespace

int64_t GgufFile::require_int(const std::string& key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) bad_key(m_path, key, "missing, expected an integer");
  const auto i = v->as_int();
  if (!i) bad_key(m_path, key, "expected an integer");
  return *i;
}

double GgufFile::require_double(const std::string& key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) bad_key(m_path, key, "missing, expected a number");
  const auto d = v->as_double();
  if (!d) bad_key(m_path, key, "expected a number");
  return *d;
}

std::string GgufFile::require_string(const std::string& key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) bad_key(m_path, key, "missing, expected a string");
  const auto* s = v->as_string();
  if (s == nullptr) bad_key(m_path, key, "expected a string");
  return *s;
}

std::optional<int64_t> GgufFile::optional_int(const std::string& key) const {
  if (find(key) == nullptr) return std::nullopt;
  return require_int(key);
}

std::optional<double> GgufFile::optional_double(const std::string& key) const {
  if (find(key) == nullptr) return std::nullopt;
  return require_double(key);
}

std::optional<std::string> GgufFile::optional_string(const std::string& key) const {
  if (find(key) == nullptr) return std::nullopt;
  return require_string(key);
}

std::vector<std::string> GgufFile::require_string_array(const std::string& key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) bad_key(m_path, key, "missing, expected an array of strings");
  const GgufArray* a = v->as_array();
  if (a == nullptr || a->element_type != GgufValueType::String) {
    bad_key(m_path, key, "expected an array of strings");
  }
  std::vector<std::string> out;
  out.reserve(a->values.size());
  for (const auto& e : a->values) out.push_back(*e.as_string());
  return out;
}

std::vector<int64_t> GgufFile::optional_int_array(const std::string& key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return {};
  const GgufArray* a = v->as_array();
  if (a == nullptr) bad_key(m_path, key, "expected an array of integers");
  std::vector<int64_t> out;
  out.reserve(a->values.size());
  for (size_t i = 0; i < a->values.size(); ++i) {
    const auto x = a->values[i].as_int();
    if (!x) bad_key(m_path, key, "element " + std::to_string(i) + ": expected an integer");
    out.push_back(*x);
  }
  return out;
}

std::vector<double> GgufFile::optional_float_array(const std::string& key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return {};
  const GgufArray* a = v->as_array();
  if (a == nullptr) bad_key(m_path, key, "expected an array of numbers");
  std::vector<double> out;
  out.reserve(a->values.size());
  for (size_t i = 0; i < a->values.size(); ++i) {
    const auto x = a->values[i].as_double();
    if (!x) bad_key(m_path, key, "element " + std::to_string(i) + ": expected a number");
    out.push_back(*x);
  }
  return out;
}

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
  for (const auto& t : m_tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

const uint8_t* GgufFile::tensor_data(const GgufTensorInfo& info) const {
  // Offsets were validated at open(); re-check in case `info` did not come from this file.
  uint64_t end = 0;
  if (__builtin_add_overflow(info.offset, info.n_bytes, &end) ||
      end > m_file_size - m_data_offset) {
    throw_bad_input(m_path.string() + ": tensor " + quote_name(info.name), "data out of range");
  }
  return m_map + m_data_offset + info.offset;
}

std::vector<float> GgufFile::dequantize_tensor(const GgufTensorInfo& info) const {
  const auto traits = ggml_type_traits(info.type_id);
  if (!traits || !traits->dequantizable) {
    throw_bad_input(m_path.string() + ": tensor " + quote_name(info.name) + " type",
                    "cannot convert type " + ggml_type_name(info.type_id) + " to fp32");
  }
  const auto bytes = ggml_tensor_bytes(static_cast<GgmlType>(info.type_id), info.n_elements);
  if (!bytes || *bytes != info.n_bytes) {
    throw_bad_input(m_path.string() + ": tensor " + quote_name(info.name), "inconsistent size");
  }
  const uint8_t* src = tensor_data(info);
  std::vector<float> out(static_cast<size_t>(info.n_elements));
  dequantize(static_cast<GgmlType>(info.type_id), src, out.data(), out.size());
  return out;
}

}  // namespace attnscope
