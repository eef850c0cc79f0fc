// Error checking for CUDA runtime and cuBLAS calls: every failure becomes
// attnscope::Error(Runtime) naming the call site and CUDA's own description. Private to gpu/src.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstring>
#include <string>

#include "attnscope/error.h"

namespace attnscope::gpu {

// "GPU 0 (NVIDIA H100 80GB HBM3)" for the calling thread's current device; never throws.
inline std::string current_device_label() {
  int device = -1;
  if (cudaGetDevice(&device) != cudaSuccess) {
    cudaGetLastError();
    return "the current GPU";
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
    cudaGetLastError();
    return "GPU " + std::to_string(device);
  }
  return "GPU " + std::to_string(device) + " (" + prop.name + ")";
}

// "cuda_backend.cpp:42" from __FILE__/__LINE__ (the directory part is noise in a message).
inline std::string call_site(const char* file, int line) {
  const char* slash = std::strrchr(file, '/');
  return std::string(slash != nullptr ? slash + 1 : file) + ":" + std::to_string(line);
}

// Thrown when an allocation of `bytes` fails; the message format is part of the error policy:
// "GPU out of memory: needed N bytes on <device>" plus what is free, so the user can act.
[[noreturn]] inline void throw_out_of_memory(std::size_t bytes, const char* what) {
  cudaGetLastError();  // allocation failures are not sticky; clear so later calls work
  std::string message = "GPU out of memory: needed " + std::to_string(bytes) + " bytes on " +
                        current_device_label() + " for " + what;
  std::size_t free_bytes = 0;
  std::size_t total_bytes = 0;
  if (cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess) {
    message +=
        " (" + std::to_string(free_bytes) + " of " + std::to_string(total_bytes) + " bytes free)";
  } else {
    cudaGetLastError();
  }
  throw Error(ErrorKind::Runtime, message);
}

[[noreturn]] inline void throw_cuda_error(cudaError_t err, const char* expr, const char* file,
                                          int line) {
  cudaGetLastError();  // clear a non-sticky error so the backend stays usable afterwards
  if (err == cudaErrorMemoryAllocation) {
    throw Error(ErrorKind::Runtime, "GPU out of memory: needed more memory on " +
                                        current_device_label() + " in " + expr + " at " +
                                        call_site(file, line));
  }
  throw Error(ErrorKind::Runtime, "CUDA error at " + call_site(file, line) + " in " + expr + ": " +
                                      cudaGetErrorString(err) + " (" + cudaGetErrorName(err) + ")");
}

[[noreturn]] inline void throw_cublas_error(cublasStatus_t status, const char* expr,
                                            const char* file, int line) {
  if (status == CUBLAS_STATUS_ALLOC_FAILED) {
    throw Error(ErrorKind::Runtime, "GPU out of memory: needed cuBLAS workspace on " +
                                        current_device_label() + " in " + expr + " at " +
                                        call_site(file, line));
  }
  throw Error(ErrorKind::Runtime, "cuBLAS error at " + call_site(file, line) + " in " + expr +
                                      ": " + cublasGetStatusString(status) + " (" +
                                      cublasGetStatusName(status) + ")");
}

inline void check_cuda(cudaError_t err, const char* expr, const char* file, int line) {
  if (err != cudaSuccess) throw_cuda_error(err, expr, file, line);
}

inline void check_cublas(cublasStatus_t status, const char* expr, const char* file, int line) {
  if (status != CUBLAS_STATUS_SUCCESS) throw_cublas_error(status, expr, file, line);
}

}  // namespace attnscope::gpu

// Wrap every CUDA runtime call: ATTNSCOPE_CUDA_CHECK(cudaMemcpyAsync(...));
#define ATTNSCOPE_CUDA_CHECK(expr) ::attnscope::gpu::check_cuda((expr), #expr, __FILE__, __LINE__)
// Wrap every cuBLAS call: ATTNSCOPE_CUBLAS_CHECK(cublasSgemm(...));
#define ATTNSCOPE_CUBLAS_CHECK(expr) \
  ::attnscope::gpu::check_cublas((expr), #expr, __FILE__, __LINE__)
// After a kernel launch: catches bad launch configurations (asynchronous faults surface at the
// next synchronisation, which is checked too).
#define ATTNSCOPE_CUDA_CHECK_LAUNCH() \
  ::attnscope::gpu::check_cuda(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)
