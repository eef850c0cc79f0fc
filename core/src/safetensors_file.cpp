// Safetensors reader: maps the file, validates the JSON header against the file length and
// converts F32/F16/BF16 tensors to fp32; plus the shard set of an HF model directory.
#include "attnscope/safetensors_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "attnscope/error.h"
#include "attnscope/file_util.h"
#include "attnscope/ggml_types.h"

namespace attnscope {

namespace {

// The format stores every number little-endian; we copy F32 bytes straight into floats.
static_assert(std::endian::native == std::endian::little,
              "safetensors reader assumes little-endian");

// Largest JSON header accepted: the reference implementation's limit (100 MB); anything larger
// is a corrupt length field, and refusing it keeps a bad file from making us parse garbage.
constexpr uint64_t kMaxHeaderBytes = 100ull * 1000 * 1000;

struct DtypeRow {
  SafetensorsDtype dtype;
  const char* name;
  size_t size;
};

constexpr DtypeRow kDtypes[] = {
    {SafetensorsDtype::F64, "F64", 8},         {SafetensorsDtype::F32, "F32", 4},
    {SafetensorsDtype::F16, "F16", 2},         {SafetensorsDtype::BF16, "BF16", 2},
    {SafetensorsDtype::I64, "I64", 8},         {SafetensorsDtype::I32, "I32", 4},
    {SafetensorsDtype::I16, "I16", 2},         {SafetensorsDtype::I8, "I8", 1},
    {SafetensorsDtype::U64, "U64", 8},         {SafetensorsDtype::U32, "U32", 4},
    {SafetensorsDtype::U16, "U16", 2},         {SafetensorsDtype::U8, "U8", 1},
    {SafetensorsDtype::BOOL, "BOOL", 1},       {SafetensorsDtype::F8_E4M3, "F8_E4M3", 1},
    {SafetensorsDtype::F8_E5M2, "F8_E5M2", 1},
};

const DtypeRow& dtype_row(SafetensorsDtype dtype) {
  for (const auto& row : kDtypes) {
    if (row.dtype == dtype) return row;
  }
  return kDtypes[1];  // unreachable: every enumerator has a row
}

// Overflow-safe a * b.
bool mul_overflows(uint64_t a, uint64_t b, uint64_t* out) {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) return true;
  *out = a * b;
  return false;
}

std::string shape_text(const std::vector<uint64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

// Parses one header entry; `where` is "<file>: tensor '<name>'".
SafetensorsTensorInfo parse_tensor_entry(const std::string& where, const std::string& name,
                                         const nlohmann::json& entry, uint64_t data_size) {
  if (!entry.is_object())
    throw_bad_input(where, "expected an object with dtype, shape, data_offsets");
  SafetensorsTensorInfo info;
  info.name = name;

  const auto dtype_it = entry.find("dtype");
  if (dtype_it == entry.end() || !dtype_it->is_string()) {
    throw_bad_input(where + ": dtype", "expected a string such as \"F32\"");
  }
  const auto dtype = safetensors_dtype_from_name(dtype_it->get<std::string>());
  if (!dtype) {
    throw_bad_input(where + ": dtype", "unsupported dtype \"" + dtype_it->get<std::string>() +
                                           "\" (expected F32, F16 or BF16)");
  }
  info.dtype = *dtype;

  const auto shape_it = entry.find("shape");
  if (shape_it == entry.end() || !shape_it->is_array()) {
    throw_bad_input(where + ": shape", "expected an array of non-negative integers");
  }
  info.n_elements = 1;
  for (const auto& dim : *shape_it) {
    if (!dim.is_number_unsigned()) {
      throw_bad_input(where + ": shape", "expected an array of non-negative integers");
    }
    const uint64_t d = dim.get<uint64_t>();
    info.shape.push_back(d);
    if (mul_overflows(info.n_elements, d, &info.n_elements)) {
      throw_bad_input(where + ": shape",
                      "element count of " + shape_text(info.shape) + "... overflows 64 bits");
    }
  }

  const auto off_it = entry.find("data_offsets");
  if (off_it == entry.end() || !off_it->is_array() || off_it->size() != 2 ||
      !(*off_it)[0].is_number_unsigned() || !(*off_it)[1].is_number_unsigned()) {
    throw_bad_input(where + ": data_offsets", "expected [begin, end] as non-negative integers");
  }
  info.begin = (*off_it)[0].get<uint64_t>();
  info.end = (*off_it)[1].get<uint64_t>();
  if (info.begin > info.end) {
    throw_bad_input(where + ": data_offsets",
                    "begin " + std::to_string(info.begin) + " > end " + std::to_string(info.end));
  }
  if (info.end > data_size) {
    throw_bad_input(where + ": data_offsets", "end " + std::to_string(info.end) +
                                                  " beyond the data section of " +
                                                  std::to_string(data_size) + " bytes");
  }
  uint64_t expected_bytes = 0;
  if (mul_overflows(info.n_elements, dtype_row(info.dtype).size, &expected_bytes)) {
    throw_bad_input(where + ": shape", "byte size of " + shape_text(info.shape) + " " +
                                           dtype_row(info.dtype).name + " overflows 64 bits");
  }
  if (expected_bytes != info.n_bytes()) {
    throw_bad_input(where + ": data_offsets", std::to_string(info.n_bytes()) + " bytes, expected " +
                                                  std::to_string(expected_bytes) + " for shape " +
                                                  shape_text(info.shape) + " of " +
                                                  dtype_row(info.dtype).name);
  }
  return info;
}

// Closes the descriptor on every path out of open().
struct FdGuard {
  int fd = -1;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

std::optional<SafetensorsDtype> safetensors_dtype_from_name(const std::string& name) {
  for (const auto& row : kDtypes) {
    if (name == row.name) return row.dtype;
  }
  return std::nullopt;
}

const char* safetensors_dtype_name(SafetensorsDtype dtype) {
  return dtype_row(dtype).name;
}

size_t safetensors_dtype_size(SafetensorsDtype dtype) {
  return dtype_row(dtype).size;
}

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const std::filesystem::path& path) {
  const std::string where = path.string();
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw_bad_input(where, "is a directory, expected a file");

  FdGuard guard;
  guard.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (guard.fd < 0)
    throw_bad_input(where, std::string("cannot read (") + std::strerror(errno) + ")");
  struct stat st {};
  if (::fstat(guard.fd, &st) != 0) {
    throw_bad_input(where, std::string("cannot stat (") + std::strerror(errno) + ")");
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) {
    throw_bad_input(where, "file of " + std::to_string(file_size) +
                               " bytes is too short for the 8-byte header length");
  }

  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->m_path = path;
  file->m_file_size = file_size;
  void* map = ::mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, guard.fd, 0);
  if (map == MAP_FAILED)
    throw_bad_input(where, std::string("cannot map (") + std::strerror(errno) + ")");
  file->m_map = static_cast<const uint8_t*>(map);  // unmapped by the destructor from here on

  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | file->m_map[i];
  if (header_size > file_size - 8) {
    throw_bad_input(where + ": header length", std::to_string(header_size) +
                                                   " bytes, beyond the file's remaining " +
                                                   std::to_string(file_size - 8) + " bytes");
  }
  if (header_size > kMaxHeaderBytes) {
    throw_bad_input(where + ": header length", std::to_string(header_size) +
                                                   " bytes, expected at most " +
                                                   std::to_string(kMaxHeaderBytes));
  }
  file->m_header_size = header_size;
  const uint64_t data_size = file_size - 8 - header_size;

  const char* header_begin = reinterpret_cast<const char*>(file->m_map + 8);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(header_begin, header_begin + header_size);
  } catch (const nlohmann::json::exception& e) {
    throw_bad_input(where + ": header", std::string("invalid JSON (") + e.what() + ")");
  }
  if (!header.is_object()) throw_bad_input(where + ": header", "expected a JSON object");

  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) {
        throw_bad_input(where + ": __metadata__", "expected an object of string values");
      }
      for (const auto& [mkey, mvalue] : value.items()) {
        if (!mvalue.is_string()) {
          throw_bad_input(where + ": __metadata__: " + mkey, "expected a string value");
        }
        file->m_metadata[mkey] = mvalue.get<std::string>();
      }
      continue;
    }
    file->m_tensors.push_back(
        parse_tensor_entry(where + ": tensor '" + key + "'", key, value, data_size));
  }
  std::sort(file->m_tensors.begin(), file->m_tensors.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });

  // No two non-empty tensors may share bytes: a writer that did so produced a corrupt file.
  std::vector<const SafetensorsTensorInfo*> by_offset;
  for (const auto& t : file->m_tensors) {
    if (t.n_bytes() > 0) by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const auto* a, const auto* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i]->begin < by_offset[i - 1]->end) {
      throw_bad_input(where + ": tensor '" + by_offset[i]->name + "': data_offsets",
                      "overlaps tensor '" + by_offset[i - 1]->name + "' (begin " +
                          std::to_string(by_offset[i]->begin) + " < its end " +
                          std::to_string(by_offset[i - 1]->end) + ")");
    }
  }
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (m_map) ::munmap(const_cast<uint8_t*>(m_map), m_file_size);
}

const SafetensorsTensorInfo* SafetensorsFile::find_tensor(const std::string& name) const {
  const auto it = std::lower_bound(m_tensors.begin(), m_tensors.end(), name,
                                   [](const auto& t, const std::string& n) { return t.name < n; });
  return it != m_tensors.end() && it->name == name ? &*it : nullptr;
}

const uint8_t* SafetensorsFile::tensor_data(const SafetensorsTensorInfo& info) const {
  return m_map + data_offset() + info.begin;
}

std::vector<float> SafetensorsFile::to_fp32(const SafetensorsTensorInfo& info) const {
  const std::string where = m_path.string() + ": tensor '" + info.name + "'";
  if (info.dtype != SafetensorsDtype::F32 && info.dtype != SafetensorsDtype::F16 &&
      info.dtype != SafetensorsDtype::BF16) {
    throw_bad_input(where, std::string("unsupported dtype ") + safetensors_dtype_name(info.dtype) +
                               " (expected F32, F16 or BF16)");
  }
  // open() checked n_bytes == n_elements * dtype size and that the range lies in the file.
  if (info.n_elements > std::numeric_limits<size_t>::max() / sizeof(float)) {
    throw_bad_input(where, "too many elements to hold in memory");
  }
  std::vector<float> out(static_cast<size_t>(info.n_elements));
  const uint8_t* src = tensor_data(info);
  const size_t n = out.size();
  switch (info.dtype) {
    case SafetensorsDtype::F32:
      if (n) std::memcpy(out.data(), src, n * sizeof(float));
      break;
    case SafetensorsDtype::F16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);  // data may be unaligned: the header length is free
        out[i] = fp16_to_fp32(h);
      }
      break;
    case SafetensorsDtype::BF16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        out[i] = bf16_to_fp32(h);
      }
      break;
    default:
      break;
  }
  return out;
}

// ---- shard set of a model directory ----

namespace {

// A shard named by the index must be a plain file name inside the directory.
bool is_plain_file_name(const std::string& name) {
  if (name.empty() || name == "." || name == "..") return false;
  return name.find('/') == std::string::npos && name.find('\\') == std::string::npos;
}

}  // namespace

SafetensorsModelFiles SafetensorsModelFiles::open_directory(
    const std::filesystem::path& directory) {
  SafetensorsModelFiles set;
  set.m_directory = directory;
  const auto index_path = directory / "model.safetensors.index.json";
  const auto single_path = directory / "model.safetensors";
  std::error_code ec;

  if (std::filesystem::exists(index_path, ec)) {
    const std::string where = index_path.string();
    nlohmann::json index;
    try {
      index = nlohmann::json::parse(read_text_file(index_path));
    } catch (const nlohmann::json::exception& e) {
      throw_bad_input(where, std::string("invalid JSON (") + e.what() + ")");
    }
    if (!index.is_object()) throw_bad_input(where, "expected a JSON object");
    const auto map_it = index.find("weight_map");
    if (map_it == index.end() || !map_it->is_object()) {
      throw_bad_input(where + ": weight_map",
                      "expected an object mapping tensor names to shard files");
    }
    std::map<std::string, const SafetensorsFile*> shards;
    for (const auto& [tensor, shard_value] : map_it->items()) {
      if (!shard_value.is_string() || !is_plain_file_name(shard_value.get<std::string>())) {
        throw_bad_input(where + ": weight_map: " + tensor,
                        "expected the file name of a shard in the same directory");
      }
      const std::string shard = shard_value.get<std::string>();
      auto shard_it = shards.find(shard);
      if (shard_it == shards.end()) {
        const auto shard_path = directory / shard;
        if (!std::filesystem::is_regular_file(shard_path, ec)) {
          throw_bad_input(where + ": weight_map: " + tensor,
                          "shard '" + shard + "' does not exist in " + directory.string());
        }
        set.m_files.push_back(SafetensorsFile::open(shard_path));
        shard_it = shards.emplace(shard, set.m_files.back().get()).first;
      }
      const SafetensorsTensorInfo* info = shard_it->second->find_tensor(tensor);
      if (!info) {
        throw_bad_input(where + ": weight_map: " + tensor,
                        "tensor not found in shard '" + shard + "'");
      }
      set.m_index[tensor] = Entry{shard_it->second, info};
    }
    return set;
  }

  std::vector<std::filesystem::path> paths;
  if (std::filesystem::exists(single_path, ec)) {
    paths.push_back(single_path);
  } else {
    for (const auto& e : std::filesystem::directory_iterator(directory, ec)) {
      if (e.path().extension() == ".safetensors" && e.is_regular_file(ec))
        paths.push_back(e.path());
    }
    std::sort(paths.begin(), paths.end());
  }
  if (paths.empty()) {
    throw_bad_input(directory.string(),
                    "no model.safetensors, model.safetensors.index.json or *.safetensors file");
  }
  for (const auto& p : paths) {
    set.m_files.push_back(SafetensorsFile::open(p));
    const SafetensorsFile* file = set.m_files.back().get();
    for (const auto& info : file->tensors()) {
      const auto [it, inserted] = set.m_index.emplace(info.name, Entry{file, &info});
      if (!inserted) {
        throw_bad_input(p.string() + ": tensor '" + info.name + "'",
                        "also in " + it->second.file->path().string() + " (expected once)");
      }
    }
  }
  return set;
}

uint64_t SafetensorsModelFiles::total_file_size() const {
  uint64_t total = 0;
  for (const auto& f : m_files) total += f->file_size();
  return total;
}

std::map<std::string, int> SafetensorsModelFiles::dtype_counts() const {
  std::map<std::string, int> counts;
  for (const auto& [name, entry] : m_index) ++counts[safetensors_dtype_name(entry.info->dtype)];
  return counts;
}

std::optional<SafetensorsModelFiles::Entry> SafetensorsModelFiles::find(
    const std::string& name) const {
  const auto it = m_index.find(name);
  if (it == m_index.end()) return std::nullopt;
  return it->second;
}

SafetensorsModelFiles::Entry SafetensorsModelFiles::require(const std::string& name) const {
  const auto entry = find(name);
  if (!entry) {
    throw_bad_input(m_directory.string() + ": tensor '" + name + "'",
                    "missing (expected in the safetensors files)");
  }
  return *entry;
}

std::vector<std::string> SafetensorsModelFiles::tensor_names() const {
  std::vector<std::string> names;
  names.reserve(m_index.size());
  for (const auto& [name, entry] : m_index) names.push_back(name);
  return names;
}

}  // namespace attnscope
