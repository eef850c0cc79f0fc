// Minimal NPY (format 1.0) writer and reader for float32/float64/int32/uint8 arrays, C order, so
// exported data loads with numpy.load and traces can be read back.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

namespace attnscope {

template <typename T>
struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<T> data;
};

// Writes atomically (temp file + rename); throws Error(Runtime) naming the path on failure.
void write_npy(const std::filesystem::path& path, const std::vector<int64_t>& shape,
               const float* data);
void write_npy(const std::filesystem::path& path, const std::vector<int64_t>& shape,
               const int32_t* data);
// float64 ('<f8'), e.g. exported tables (write_table).
void write_npy(const std::filesystem::path& path, const std::vector<int64_t>& shape,
               const double* data);
// uint8 ('|u1'), e.g. KV keep reasons in traces.
void write_npy(const std::filesystem::path& path, const std::vector<int64_t>& shape,
               const uint8_t* data);
// Throws Error(BadInput) naming the file and what was expected (dtype '<f4'/'<f8'/'<i4'/'|u1',
// C order, data length matching the shape).
NpyArray<float> read_npy_f32(const std::filesystem::path& path);
NpyArray<double> read_npy_f64(const std::filesystem::path& path);
NpyArray<int32_t> read_npy_i32(const std::filesystem::path& path);
NpyArray<uint8_t> read_npy_u8(const std::filesystem::path& path);

}  // namespace attnscope
