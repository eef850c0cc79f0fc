// Dense projection on the GPU: y = x·Wᵀ + b with cuBLAS SGEMM (fp32) plus a bias-add kernel.
// CUDA types appear here, so this header is private to gpu/src.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

namespace attnscope::gpu {

// Sets the math mode used for SGEMM on `handle`. TF32 is OFF by default: attnscope compares
// variants at the level of attention probabilities and next-token distributions, and TF32's
// 10-bit mantissa (~1e-3 relative error per product) would show up as differences from the CPU
// reference that have nothing to do with the variant under study. allow_tf32 = true trades that
// fidelity for tensor-core speed on large prefills.
void set_linear_math_mode(cublasHandle_t handle, bool allow_tf32);

// y: [n, out] = x: [n, in] · w: [out, in]^T (+ bias: [out] when non-null); all row-major device
// pointers; `handle` must already be bound to `stream`. Requires n, out >= 1 and in >= 0
// (in == 0 gives y = bias or 0). Asynchronous on `stream`; errors throw Error(Runtime).
void linear_cublas(cublasHandle_t handle, cudaStream_t stream, const float* x, int n, int in,
                   const float* w, int out, const float* bias, float* y);

}  // namespace attnscope::gpu
