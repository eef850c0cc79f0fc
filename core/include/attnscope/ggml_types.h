// GGML tensor element types as numbered by the GGUF format, their block layouts, and
// dequantization of any supported type to fp32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace attnscope {

enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
};

struct GgmlTypeTraits {
  const char* name;     // "Q4_1"
  size_t block_elems;   // elements per block (1 for plain types)
  size_t block_bytes;   // bytes per block
  bool dequantizable;   // dequantize() supports it
};

// Traits of a type id read from a file; nullopt for ids this build does not know.
std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t type_id);
std::string ggml_type_name(uint32_t type_id);

// Bytes needed for n_elements of `type`; nullopt if n_elements is not a multiple of the block
// size or the byte count overflows.
std::optional<uint64_t> ggml_tensor_bytes(GgmlType type, uint64_t n_elements);

// dst[n_elements] <- src (n_elements of `type`, laid out in blocks as the format defines).
// n_elements must be a multiple of the block size (checked by the caller via ggml_tensor_bytes).
void dequantize(GgmlType type, const void* src, float* dst, size_t n_elements);

// IEEE half and bfloat16 conversions used by the dequantizers and the safetensors loader.
float fp16_to_fp32(uint16_t h);
float bf16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);  // round-to-nearest-even, used by tests and writers

}  // namespace attnscope
