// Built instead of the CUDA sources when nvcc is absent: the probe says why, the factory throws.
#include "attnscope/error.h"
#include "attnscope/gpu/cuda_backend.h"

namespace attnscope::gpu {

bool cuda_available(std::string* why) {
  if (why != nullptr) *why = "attnscope was built without CUDA (nvcc not found at configure time)";
  return false;
}

std::unique_ptr<Backend> make_cuda_backend(int /*device*/) {
  throw_runtime("CUDA backend unavailable: attnscope was built without CUDA");
}

}  // namespace attnscope::gpu
