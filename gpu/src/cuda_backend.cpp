// CudaBackend: core's Backend on one CUDA device. Host pointers in, host pointers out: each op
// uploads its activations into grow-only scratch buffers, serves weights from a device cache,
// runs cuBLAS / our kernels on a private stream and copies the result back before returning.
#include "attnscope/gpu/cuda_backend.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <climits>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "attention_kernel.cuh"
#include "attnscope/error.h"
#include "cuda_check.h"
#include "device_buffer.h"
#include "linear_cublas.h"
#include "weight_cache.h"

namespace attnscope::gpu {

namespace {

// "CUDA 13.0" from cudaRuntimeGetVersion's 1000 * major + 10 * minor encoding.
std::string runtime_version_string() {
  int version = 0;
  if (cudaRuntimeGetVersion(&version) != cudaSuccess) {
    cudaGetLastError();
    return "CUDA ?";
  }
  return "CUDA " + std::to_string(version / 1000) + "." + std::to_string((version % 1000) / 10);
}

// Checks that `device` can run our kernels; on failure returns false with the reason. Makes
// `device` current on the calling thread (this creates its context).
bool device_usable(int device, std::string* why) {
  cudaDeviceProp prop{};
  cudaError_t err = cudaGetDeviceProperties(&prop, device);
  if (err == cudaSuccess) err = cudaSetDevice(device);
  if (err == cudaSuccess) err = attention_kernel_loadable();
  if (err != cudaSuccess) {
    cudaGetLastError();
    const bool no_image = err == cudaErrorNoKernelImageForDevice;
    *why = "CUDA device " + std::to_string(device) +
           (prop.name[0] != '\0' ? std::string(" (") + prop.name + ")" : std::string()) +
           " is not usable: " + cudaGetErrorString(err) + " (" + cudaGetErrorName(err) + ")";
    if (no_image) {
      *why +=
          "; attnscope's kernels are built for compute capability 8.0 and newer, this "
          "device is " +
          std::to_string(prop.major) + "." + std::to_string(prop.minor);
    }
    return false;
  }
  return true;
}

struct ProbeResult {
  bool ok = false;
  std::string why;
};

ProbeResult run_probe() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return {false, std::string("no CUDA device: ") + cudaGetErrorString(err) + " (" +
                       cudaGetErrorName(err) + ")"};
  }
  if (count <= 0) return {false, "no CUDA device: the driver reports 0 devices"};
  ProbeResult result;
  result.ok = device_usable(0, &result.why);
  return result;
}

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device) : m_device(device) {
    ATTNSCOPE_CUDA_CHECK(cudaSetDevice(m_device));
    cudaDeviceProp prop{};
    ATTNSCOPE_CUDA_CHECK(cudaGetDeviceProperties(&prop, m_device));
    m_device_name = std::string(prop.name) + " (" + runtime_version_string() + ", cc " +
                    std::to_string(prop.major) + "." + std::to_string(prop.minor) + ")";
    try {
      ATTNSCOPE_CUDA_CHECK(cudaStreamCreateWithFlags(&m_stream, cudaStreamNonBlocking));
      ATTNSCOPE_CUBLAS_CHECK(cublasCreate(&m_cublas));
      ATTNSCOPE_CUBLAS_CHECK(cublasSetStream(m_cublas, m_stream));
      set_linear_math_mode(m_cublas, /*allow_tf32=*/false);
    } catch (...) {
      destroy_handles();
      throw;
    }
  }

  ~CudaBackend() override {
    cudaSetDevice(m_device);
    // Buffers first (cudaFree synchronises the device), then the handles they were used with.
    m_weights.clear();
    m_x.release();
    m_y.release();
    m_q.release();
    m_k.release();
    m_v.release();
    m_out.release();
    destroy_handles();
    cudaGetLastError();
  }

  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  std::string name() const override { return "cuda"; }
  std::string device_name() const override { return m_device_name; }

  // y: [n, out] = x: [n, in] · w: [out, in]^T (+ bias: [out]); host pointers.
  void linear(const float* x, int n, int in, const float* w, int out, const float* bias,
              float* y) override {
    // Same contract as the CPU backend: empty shapes are a caller error, not a no-op.
    if (n <= 0 || in <= 0 || out <= 0) {
      throw_usage("CUDA linear: expected n, in, out >= 1, got n=" + std::to_string(n) +
                  " in=" + std::to_string(in) + " out=" + std::to_string(out));
    }
    if (x == nullptr || w == nullptr || y == nullptr) {
      throw_usage("CUDA linear: x, w and y must be non-null");
    }
    const std::size_t x_count = static_cast<std::size_t>(n) * static_cast<std::size_t>(in);
    const std::size_t y_count = static_cast<std::size_t>(n) * static_cast<std::size_t>(out);
    const std::size_t w_count = static_cast<std::size_t>(out) * static_cast<std::size_t>(in);

    const std::lock_guard<std::mutex> lock(m_mutex);
    ATTNSCOPE_CUDA_CHECK(cudaSetDevice(m_device));
    m_weights.begin_op();
    const float* d_w = m_weights.get(w, w_count, m_stream);
    const float* d_bias = bias != nullptr ? m_weights.get(bias, out, m_stream) : nullptr;
    reserve_scratch(m_x, x_count, "linear input x");
    reserve_scratch(m_y, y_count, "linear output y");
    ATTNSCOPE_CUDA_CHECK(
        cudaMemcpyAsync(m_x.data(), x, x_count * sizeof(float), cudaMemcpyHostToDevice, m_stream));
    linear_cublas(m_cublas, m_stream, m_x.data(), n, in, d_w, out, d_bias, m_y.data());
    ATTNSCOPE_CUDA_CHECK(
        cudaMemcpyAsync(y, m_y.data(), y_count * sizeof(float), cudaMemcpyDeviceToHost, m_stream));
    ATTNSCOPE_CUDA_CHECK(cudaStreamSynchronize(m_stream));
  }

  // q: [n_query, H, d]; k, v: [n_key, Hkv, d]; out: [n_query, H, d]; host pointers.
  void attention(const AttentionShape& shape, const float* q, const float* k, const float* v,
                 float* out) override {
    validate(shape);
    if (q == nullptr || k == nullptr || v == nullptr || out == nullptr) {
      throw_usage("CUDA attention: q, k, v and out must be non-null");
    }
    const std::size_t d = static_cast<std::size_t>(shape.head_dim);
    const std::size_t q_count =
        static_cast<std::size_t>(shape.n_query) * static_cast<std::size_t>(shape.n_head) * d;
    const std::size_t kv_count =
        static_cast<std::size_t>(shape.n_key()) * static_cast<std::size_t>(shape.n_head_kv) * d;

    const std::lock_guard<std::mutex> lock(m_mutex);
    ATTNSCOPE_CUDA_CHECK(cudaSetDevice(m_device));
    m_weights.begin_op();  // attention uses no weights: all of them may be evicted for scratch
    reserve_scratch(m_q, q_count, "attention q");
    reserve_scratch(m_k, kv_count, "attention k");
    reserve_scratch(m_v, kv_count, "attention v");
    reserve_scratch(m_out, q_count, "attention out");
    ATTNSCOPE_CUDA_CHECK(
        cudaMemcpyAsync(m_q.data(), q, q_count * sizeof(float), cudaMemcpyHostToDevice, m_stream));
    ATTNSCOPE_CUDA_CHECK(
        cudaMemcpyAsync(m_k.data(), k, kv_count * sizeof(float), cudaMemcpyHostToDevice, m_stream));
    ATTNSCOPE_CUDA_CHECK(
        cudaMemcpyAsync(m_v.data(), v, kv_count * sizeof(float), cudaMemcpyHostToDevice, m_stream));
    attention_causal_gqa(m_stream, shape, m_q.data(), m_k.data(), m_v.data(), m_out.data());
    ATTNSCOPE_CUDA_CHECK(cudaMemcpyAsync(out, m_out.data(), q_count * sizeof(float),
                                         cudaMemcpyDeviceToHost, m_stream));
    ATTNSCOPE_CUDA_CHECK(cudaStreamSynchronize(m_stream));
  }

 private:
  static void validate(const AttentionShape& s) {
    const auto describe = [&s] {
      return " (n_query=" + std::to_string(s.n_query) + " pos0=" + std::to_string(s.pos0) +
             " H=" + std::to_string(s.n_head) + " Hkv=" + std::to_string(s.n_head_kv) +
             " d=" + std::to_string(s.head_dim) + ")";
    };
    if (s.n_query <= 0 || s.pos0 < 0) {
      throw_usage("CUDA attention: expected n_query >= 1 and pos0 >= 0" + describe());
    }
    if (s.n_head <= 0 || s.n_head_kv <= 0 || s.n_head % s.n_head_kv != 0) {
      throw_usage("CUDA attention: expected H >= 1, Hkv >= 1 and H a multiple of Hkv" + describe());
    }
    if (s.head_dim <= 0 || s.head_dim > kMaxAttentionHeadDim) {
      throw_usage("CUDA attention: expected 1 <= head_dim <= " +
                  std::to_string(kMaxAttentionHeadDim) + describe());
    }
    if (s.pos0 > INT_MAX - s.n_query) {
      throw_usage("CUDA attention: pos0 + n_query overflows int" + describe());
    }
  }

  // Grows a scratch buffer; on out-of-memory first frees cached weights this op does not use
  // (they are re-uploaded when next needed), then gives up with the OOM message.
  void reserve_scratch(DeviceBuffer<float>& buffer, std::size_t count, const char* what) {
    if (buffer.try_reserve(count)) return;
    m_weights.evict_unused();
    buffer.reserve(count, what);
  }

  void destroy_handles() noexcept {
    if (m_cublas != nullptr) cublasDestroy(m_cublas);
    if (m_stream != nullptr) cudaStreamDestroy(m_stream);
    m_cublas = nullptr;
    m_stream = nullptr;
  }

  int m_device;
  std::string m_device_name;
  cudaStream_t m_stream = nullptr;
  cublasHandle_t m_cublas = nullptr;
  WeightCache m_weights;
  // Grow-only scratch, reused between calls.
  DeviceBuffer<float> m_x, m_y, m_q, m_k, m_v, m_out;
  std::mutex m_mutex;  // one op at a time: the scratch buffers and stream are shared
};

}  // namespace

bool cuda_available(std::string* why) {
  // The device set does not change while we run; probing once also avoids re-creating contexts.
  static const ProbeResult probe = run_probe();
  if (why != nullptr) *why = probe.ok ? std::string() : probe.why;
  return probe.ok;
}

std::unique_ptr<Backend> make_cuda_backend(int device) {
  std::string why;
  if (!cuda_available(&why)) throw_runtime("CUDA backend unavailable: " + why);
  int count = 0;
  ATTNSCOPE_CUDA_CHECK(cudaGetDeviceCount(&count));
  if (device < 0 || device >= count) {
    throw_runtime("CUDA backend unavailable: device " + std::to_string(device) +
                  " does not exist (" + std::to_string(count) + " CUDA device(s) found)");
  }
  if (!device_usable(device, &why)) throw_runtime("CUDA backend unavailable: " + why);
  return std::make_unique<CudaBackend>(device);
}

}  // namespace attnscope::gpu
