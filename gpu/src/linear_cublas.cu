// y = x·Wᵀ + b in row-major terms via column-major cuBLAS SGEMM, and the bias-add kernel.
#include <cstddef>

#include "cuda_check.h"
#include "linear_cublas.h"

namespace attnscope::gpu {

namespace {

constexpr int kBiasThreads = 256;
// Grid-stride loop: this many blocks keep every SM busy without one block per element.
constexpr int kBiasMaxBlocks = 4096;

// y: [rows, cols] += bias: [cols] broadcast over rows.
__global__ void add_bias_kernel(float* __restrict__ y, const float* __restrict__ bias,
                                std::size_t rows, std::size_t cols) {
  const std::size_t total = rows * cols;
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += stride) {
    y[i] += bias[i % cols];
  }
}

}  // namespace

void set_linear_math_mode(cublasHandle_t handle, bool allow_tf32) {
  // CUBLAS_DEFAULT_MATH maps SGEMM to CUBLAS_COMPUTE_32F: true fp32 products and sums, no TF32
  // tensor cores (and no BF16x9 emulation, which needs its own math mode). Only the explicit
  // opt-in enables TF32.
  ATTNSCOPE_CUBLAS_CHECK(
      cublasSetMathMode(handle, allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
}

void linear_cublas(cublasHandle_t handle, cudaStream_t stream, const float* x, int n, int in,
                   const float* w, int out, const float* bias, float* y) {
  const std::size_t rows = static_cast<std::size_t>(n);
  const std::size_t cols = static_cast<std::size_t>(out);
  if (in == 0) {
    // Empty reduction: cuBLAS would reject lda = 0, and the answer is just the bias.
    ATTNSCOPE_CUDA_CHECK(cudaMemsetAsync(y, 0, rows * cols * sizeof(float), stream));
  } else {
    // cuBLAS is column-major. Row-major y[n, out] is column-major Yc[out, n] (ld = out), and
    // Yc = W_rm · x_rmᵀ where row-major w[out, in] read column-major is Wᵀ ([in, out], ld = in)
    // and row-major x[n, in] read column-major is xᵀ ([in, n], ld = in). Hence
    // C[out, n] = op_T(A = w, lda = in) · op_N(B = x, ldb = in).
    const float alpha = 1.0f;
    const float beta = 0.0f;
    ATTNSCOPE_CUBLAS_CHECK(cublasSgemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, &alpha, w, in,
                                       x, in, &beta, y, out));
  }
  if (bias != nullptr) {
    const std::size_t total = rows * cols;
    std::size_t blocks = (total + kBiasThreads - 1) / kBiasThreads;
    if (blocks > static_cast<std::size_t>(kBiasMaxBlocks)) blocks = kBiasMaxBlocks;
    add_bias_kernel<<<static_cast<unsigned>(blocks), kBiasThreads, 0, stream>>>(y, bias, rows,
                                                                                cols);
    ATTNSCOPE_CUDA_CHECK_LAUNCH();
  }
}

}  // namespace attnscope::gpu
