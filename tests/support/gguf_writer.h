// Test helper: a small GGUF v2/v3 writer (metadata of every value type, nested arrays,
// tensors of any type from raw bytes, configurable alignment, header overrides for
// malformed-file tests) and quantizers that pack known floats into each ggml block format
// following the format definition, returning the exact reconstruction the format defines.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace attnscope::test {

// One encoded metadata value: GGUF value-type id and its little-endian payload bytes.
struct GgufWValue {
  uint32_t type = 0;
  std::string payload;
};

GgufWValue gv_u8(uint8_t v);
GgufWValue gv_i8(int8_t v);
GgufWValue gv_u16(uint16_t v);
GgufWValue gv_i16(int16_t v);
GgufWValue gv_u32(uint32_t v);
GgufWValue gv_i32(int32_t v);
GgufWValue gv_u64(uint64_t v);
GgufWValue gv_i64(int64_t v);
GgufWValue gv_f32(float v);
GgufWValue gv_f64(double v);
GgufWValue gv_bool(bool v);
GgufWValue gv_string(const std::string& v);
// Every element must have type `element_type` (the writer does not check, so malformed
// arrays can be built on purpose).
GgufWValue gv_array(uint32_t element_type, const std::vector<GgufWValue>& elements);
GgufWValue gv_string_array(const std::vector<std::string>& v);
GgufWValue gv_i32_array(const std::vector<int32_t>& v);
GgufWValue gv_f32_array(const std::vector<float>& v);

struct GgufWTensor {
  std::string name;
  std::vector<uint64_t> dims;               // ggml order: dims[0] is the row length
  uint32_t type_id = 0;                     // GgmlType value
  std::string data;                         // raw bytes as the type lays them out
  std::optional<uint64_t> offset_override;  // written instead of the computed offset
};

class GgufWriter {
 public:
  explicit GgufWriter(uint32_t version = 3) : m_version(version) {}

  void add(const std::string& key, GgufWValue value);
  void add_u32(const std::string& key, uint32_t v) { add(key, gv_u32(v)); }
  void add_f32(const std::string& key, float v) { add(key, gv_f32(v)); }
  void add_string(const std::string& key, const std::string& v) { add(key, gv_string(v)); }
  void add_bool(const std::string& key, bool v) { add(key, gv_bool(v)); }
  // Also writes general.alignment (uint32) so readers use it.
  void set_alignment(uint32_t alignment);

  void add_tensor(GgufWTensor tensor);
  void add_f32_tensor(const std::string& name, std::vector<uint64_t> dims,
                      const std::vector<float>& values);

  // Header overrides for malformed-file tests.
  std::optional<uint32_t> magic_override;
  std::optional<uint64_t> tensor_count_override;
  std::optional<uint64_t> kv_count_override;

  std::string bytes() const;
  void write(const std::filesystem::path& path) const;

 private:
  uint32_t m_version;
  uint32_t m_alignment = 32;
  std::vector<std::pair<std::string, GgufWValue>> m_kv;
  std::vector<GgufWTensor> m_tensors;
};

// Quantized data plus the values the format defines for it (computed from the stored
// scales and integer quants, not by the library's dequantizer).
struct Quantized {
  std::string bytes;
  std::vector<float> expected;
};

// x.size() must be a multiple of the block size (32 for Q4_0..Q8_0, 256 for K-quants).
Quantized quantize_f16(const std::vector<float>& x);
Quantized quantize_bf16(const std::vector<float>& x);
Quantized quantize_q4_0(const std::vector<float>& x);
Quantized quantize_q4_1(const std::vector<float>& x);
Quantized quantize_q5_0(const std::vector<float>& x);
Quantized quantize_q5_1(const std::vector<float>& x);
Quantized quantize_q8_0(const std::vector<float>& x);
Quantized quantize_q2_k(const std::vector<float>& x);
Quantized quantize_q3_k(const std::vector<float>& x);
Quantized quantize_q4_k(const std::vector<float>& x);
Quantized quantize_q5_k(const std::vector<float>& x);
Quantized quantize_q6_k(const std::vector<float>& x);
Quantized quantize_q8_k(const std::vector<float>& x);

}  // namespace attnscope::test
