// Reader for Hugging Face safetensors files (memory-mapped, every header field, size and
// offset checked against the file before use) and for a model directory's set of shards
// (model.safetensors, or model-*-of-*.safetensors listed by model.safetensors.index.json).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace attnscope {

// Element types of the safetensors format. Only F32/F16/BF16 convert to fp32; the others are
// recognised so that their byte sizes can be validated and a clear error given on use.
enum class SafetensorsDtype {
  F64,
  F32,
  F16,
  BF16,
  I64,
  I32,
  I16,
  I8,
  U64,
  U32,
  U16,
  U8,
  BOOL,
  F8_E4M3,
  F8_E5M2,
};

// "F32" -> F32 ...; nullopt for a name the format does not define.
std::optional<SafetensorsDtype> safetensors_dtype_from_name(const std::string& name);
const char* safetensors_dtype_name(SafetensorsDtype dtype);
size_t safetensors_dtype_size(SafetensorsDtype dtype);  // bytes per element

struct SafetensorsTensorInfo {
  std::string name;
  SafetensorsDtype dtype = SafetensorsDtype::F32;
  std::vector<uint64_t> shape;  // row-major, outermost first (PyTorch order)
  uint64_t begin = 0;           // byte offsets relative to the start of the data section
  uint64_t end = 0;
  uint64_t n_elements = 0;  // product(shape); 1 for a scalar (empty shape)
  uint64_t n_bytes() const { return end - begin; }
};

class SafetensorsFile {
 public:
  // Opens, maps and validates the whole header: 8-byte little-endian header length within the
  // file, a JSON object header, for each tensor a known dtype, a shape of non-negative
  // integers, data_offsets [begin, end] with begin <= end inside the data section, no two
  // tensors overlapping, and end - begin == product(shape) * dtype size (overflow-checked).
  // Throws Error(BadInput) "<file>: <field>: <what was expected>".
  static std::unique_ptr<SafetensorsFile> open(const std::filesystem::path& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::filesystem::path& path() const { return m_path; }
  uint64_t file_size() const { return m_file_size; }
  uint64_t header_size() const { return m_header_size; }  // JSON bytes after the 8-byte length
  uint64_t data_offset() const { return 8 + m_header_size; }
  const std::map<std::string, std::string>& metadata() const { return m_metadata; }

  // Every tensor of the header, sorted by name.
  const std::vector<SafetensorsTensorInfo>& tensors() const { return m_tensors; }
  const SafetensorsTensorInfo* find_tensor(const std::string& name) const;
  // Raw bytes of a tensor (info.n_bytes() of them), already bounds-checked by open().
  const uint8_t* tensor_data(const SafetensorsTensorInfo& info) const;
  // fp32 copy: [n_elements] in the tensor's row-major order. Throws Error(BadInput)
  // "<file>: tensor '<name>': unsupported dtype X (expected F32, F16 or BF16)".
  std::vector<float> to_fp32(const SafetensorsTensorInfo& info) const;

 private:
  SafetensorsFile() = default;
  std::filesystem::path m_path;
  uint64_t m_file_size = 0;
  uint64_t m_header_size = 0;
  std::map<std::string, std::string> m_metadata;
  std::vector<SafetensorsTensorInfo> m_tensors;
  const uint8_t* m_map = nullptr;
};

// The weights of an HF model directory, possibly spread over shards.
class SafetensorsModelFiles {
 public:
  // Uses <dir>/model.safetensors.index.json when present (its "weight_map" names, per tensor,
  // a shard file inside the directory; every shard must exist and hold the tensors it is said
  // to hold), else <dir>/model.safetensors, else every *.safetensors file in the directory
  // (a tensor name may then appear only once). Throws Error(BadInput) naming the file.
  static SafetensorsModelFiles open_directory(const std::filesystem::path& directory);

  const std::filesystem::path& directory() const { return m_directory; }
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return m_files; }
  uint64_t total_file_size() const;  // bytes of all shards
  // Tensor count per dtype name over every tensor of the set, e.g. {"BF16": 272}.
  std::map<std::string, int> dtype_counts() const;

  struct Entry {
    const SafetensorsFile* file = nullptr;
    const SafetensorsTensorInfo* info = nullptr;
  };
  // nullopt when no shard holds `name`.
  std::optional<Entry> find(const std::string& name) const;
  // Throws Error(BadInput) "<dir>: tensor '<name>': missing (expected in the safetensors files)".
  Entry require(const std::string& name) const;
  std::vector<std::string> tensor_names() const;  // sorted

 private:
  std::filesystem::path m_directory;
  std::vector<std::unique_ptr<SafetensorsFile>> m_files;
  std::map<std::string, Entry> m_index;
};

}  // namespace attnscope
