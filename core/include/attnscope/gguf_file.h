// Reader for GGUF v2/v3 files: metadata of every value type, tensor infos and memory-mapped
// tensor data. Every count, size and offset is checked against the file length before use.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "attnscope/ggml_types.h"

namespace attnscope {

enum class GgufValueType : uint32_t {
  UInt8 = 0, Int8 = 1, UInt16 = 2, Int16 = 3, UInt32 = 4, Int32 = 5, Float32 = 6, Bool = 7,
  String = 8, Array = 9, UInt64 = 10, Int64 = 11, Float64 = 12,
};

struct GgufValue;
struct GgufArray {
  GgufValueType element_type;
  std::vector<GgufValue> values;
};

struct GgufValue {
  GgufValueType type = GgufValueType::UInt8;
  // Integers of every width are held widened; the original type stays in `type`.
  std::variant<uint64_t, int64_t, double, bool, std::string, std::shared_ptr<GgufArray>> value;

  std::optional<int64_t> as_int() const;     // any integer type (uint64 beyond int64 -> nullopt)
  std::optional<double> as_double() const;   // any numeric type
  const std::string* as_string() const;      // String only
  const GgufArray* as_array() const;         // Array only
};

struct GgufTensorInfo {
  std::string name;
  uint32_t n_dims = 0;
  uint64_t dims[4] = {1, 1, 1, 1};  // ggml order: dims[0] is the fastest-varying (row length)
  uint32_t type_id = 0;             // GgmlType value as stored
  uint64_t offset = 0;              // relative to the start of the data section
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;
};

class GgufFile {
 public:
  // Opens and validates the whole header; throws Error(BadInput) naming the file and field.
  static std::unique_ptr<GgufFile> open(const std::filesystem::path& path);
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::filesystem::path& path() const { return m_path; }
  uint32_t version() const { return m_version; }
  uint64_t file_size() const { return m_file_size; }
  uint64_t alignment() const { return m_alignment; }
  uint64_t data_offset() const { return m_data_offset; }

  const std::map<std::string, GgufValue>& metadata() const { return m_metadata; }
  const GgufValue* find(const std::string& key) const;
  // Required typed lookups: throw Error(BadInput) "<file>: metadata '<key>': expected ..." .
  int64_t require_int(const std::string& key) const;
  double require_double(const std::string& key) const;
  std::string require_string(const std::string& key) const;
  std::optional<int64_t> optional_int(const std::string& key) const;
  std::optional<double> optional_double(const std::string& key) const;
  std::optional<std::string> optional_string(const std::string& key) const;
  // String array / int array / float array; throws naming the key if absent or wrong type.
  std::vector<std::string> require_string_array(const std::string& key) const;
  std::vector<int64_t> optional_int_array(const std::string& key) const;  // empty if absent
  std::vector<double> optional_float_array(const std::string& key) const;  // empty if absent

  const std::vector<GgufTensorInfo>& tensors() const { return m_tensors; }
  const GgufTensorInfo* find_tensor(const std::string& name) const;
  // Raw bytes of a tensor inside the mapping (size info.n_bytes), already bounds-checked.
  const uint8_t* tensor_data(const GgufTensorInfo& info) const;
  // Dequantized copy; throws Error(BadInput) for a type this build cannot dequantize.
  std::vector<float> dequantize_tensor(const GgufTensorInfo& info) const;

 private:
  GgufFile() = default;
  std::filesystem::path m_path;
  uint32_t m_version = 0;
  uint64_t m_file_size = 0;
  uint64_t m_alignment = 32;
  uint64_t m_data_offset = 0;
  std::map<std::string, GgufValue> m_metadata;
  std::vector<GgufTensorInfo> m_tensors;
  const uint8_t* m_map = nullptr;
};

}  // namespace attnscope
