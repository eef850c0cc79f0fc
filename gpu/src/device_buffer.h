// RAII owner of one device allocation of T that only grows: scratch buffers keep their memory
// between calls so steady-state decoding allocates nothing. Private to gpu/src.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <limits>
#include <string>
#include <utility>

#include "cuda_check.h"

namespace attnscope::gpu {

template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() { release(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : m_ptr(std::exchange(other.m_ptr, nullptr)),
        m_capacity(std::exchange(other.m_capacity, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      release();
      m_ptr = std::exchange(other.m_ptr, nullptr);
      m_capacity = std::exchange(other.m_capacity, 0);
    }
    return *this;
  }

  // Ensures room for `count` elements. Contents are NOT preserved when the buffer grows.
  // Returns false (and leaves the buffer empty) when the device is out of memory; any other
  // CUDA failure throws Error(Runtime).
  bool try_reserve(std::size_t count) {
    if (count <= m_capacity) return true;
    if (count > std::numeric_limits<std::size_t>::max() / sizeof(T)) return false;
    release();
    void* ptr = nullptr;
    const cudaError_t err = cudaMalloc(&ptr, count * sizeof(T));
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // not sticky; clear it
      return false;
    }
    ATTNSCOPE_CUDA_CHECK(err);
    m_ptr = static_cast<T*>(ptr);
    m_capacity = count;
    return true;
  }

  // As try_reserve, but out of memory throws "GPU out of memory: needed N bytes on <device>".
  // `what` names the buffer in that message.
  void reserve(std::size_t count, const char* what) {
    if (count > std::numeric_limits<std::size_t>::max() / sizeof(T)) {
      throw Error(ErrorKind::Runtime, std::string("GPU out of memory: ") + what + " needs " +
                                          std::to_string(count) + " elements, beyond size_t");
    }
    if (!try_reserve(count)) throw_out_of_memory(count * sizeof(T), what);
  }

  // Frees the memory; errors are ignored because this runs in destructors, possibly after
  // the CUDA runtime has begun shutting down at process exit.
  void release() noexcept {
    if (m_ptr != nullptr) {
      cudaFree(m_ptr);
      cudaGetLastError();
    }
    m_ptr = nullptr;
    m_capacity = 0;
  }

  T* data() { return m_ptr; }
  const T* data() const { return m_ptr; }
  std::size_t capacity() const { return m_capacity; }
  std::size_t bytes() const { return m_capacity * sizeof(T); }

 private:
  T* m_ptr = nullptr;
  std::size_t m_capacity = 0;
};

}  // namespace attnscope::gpu
