// Test helper: writes safetensors files (F32/F16/BF16 or any raw dtype bytes), optionally
// sharded with a model.safetensors.index.json, and raw files with a hand-made header.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace attnscope::test {

struct SafetensorsTensor {
  std::string name;
  std::string dtype;            // as written to the header: "F32", "F16", "BF16", "I64", ...
  std::vector<uint64_t> shape;  // row-major, outermost first
  std::string bytes;            // little-endian element data
};

// values: [product(shape)] fp32, stored as F32.
SafetensorsTensor f32_tensor(const std::string& name, std::vector<uint64_t> shape,
                             const std::vector<float>& values);
// bits: [product(shape)] raw 16-bit patterns stored as F16 or BF16 (dtype "F16" / "BF16").
SafetensorsTensor u16_tensor(const std::string& name, const std::string& dtype,
                             std::vector<uint64_t> shape, const std::vector<uint16_t>& bits);

// The whole file: 8-byte little-endian header length, JSON header (tensors laid out back to
// back in the given order, padded with spaces to a multiple of 8 as the reference writer
// does), data section.
std::string safetensors_bytes(const std::vector<SafetensorsTensor>& tensors,
                              const std::map<std::string, std::string>& metadata = {});
// A file with an arbitrary header text and data section (for malformed-file tests).
std::string raw_safetensors_bytes(const std::string& header_json, const std::string& data);

void write_binary_file(const std::filesystem::path& path, const std::string& bytes);
void write_safetensors(const std::filesystem::path& path,
                       const std::vector<SafetensorsTensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Splits `tensors` in order into n_shards files "model-0000i-of-0000n.safetensors" (contiguous
// runs of about equal count) in `dir` and writes model.safetensors.index.json mapping every
// tensor to its shard. Returns the shard file names.
std::vector<std::string> write_sharded_safetensors(const std::filesystem::path& dir,
                                                   const std::vector<SafetensorsTensor>& tensors,
                                                   int n_shards);

}  // namespace attnscope::test
