// The compute backend interface the forward pass runs on. The CPU backend (OpenBLAS + threads)
// is the reference and is always present; gpu/ implements the same interface with CUDA.
#pragma once

#include <memory>
#include <string>

namespace attnscope {

struct AttentionShape {
  int n_query = 0;    // rows of q computed in this call
  int pos0 = 0;       // absolute position of q row 0; keys cover positions 0 .. pos0+n_query-1
  int n_head = 0;     // H
  int n_head_kv = 0;  // Hkv; query head h reads KV head h / (H / Hkv)
  int head_dim = 0;   // d
  int n_key() const { return pos0 + n_query; }
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;         // "cpu" or "cuda"
  virtual std::string device_name() const = 0;  // human readable, e.g. "CPU (OpenBLAS, 2 threads)"

  // y: [n, out] = x: [n, in] · w: [out, in]^T (+ bias: [out] when non-null).
  // w is a model weight whose address is stable for the model's lifetime, so a device backend
  // may keep its own copy keyed by the pointer.
  virtual void linear(const float* x, int n, int in, const float* w, int out, const float* bias,
                      float* y) = 0;

  // Causal grouped-query attention with scale 1/sqrt(d).
  // q: [n_query, H, d]; k, v: [n_key, Hkv, d] (all cached positions); out: [n_query, H, d].
  virtual void attention(const AttentionShape& shape, const float* q, const float* k,
                         const float* v, float* out) = 0;
};

// n_threads <= 0 uses the hardware concurrency.
std::unique_ptr<Backend> make_cpu_backend(int n_threads = 0);

}  // namespace attnscope
