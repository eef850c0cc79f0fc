// Public face of the CUDA backend: a probe and a factory returning core's Backend.
// CUDA types never appear here, so core and app compile without CUDA headers.
#pragma once

#include <memory>
#include <string>

#include "attnscope/backend.h"

namespace attnscope::gpu {

// True when the CUDA backend is compiled in and a usable device exists; otherwise false with
// the reason in *why (e.g. "no CUDA device: CUDA driver version is insufficient").
bool cuda_available(std::string* why = nullptr);

// Throws Error(Runtime) naming the reason when cuda_available() is false.
std::unique_ptr<Backend> make_cuda_backend(int device = 0);

}  // namespace attnscope::gpu
