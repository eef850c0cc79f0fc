// The CPU backend: projections through OpenBLAS sgemm/sgemv, causal GQA attention threaded
// over (row, head) pairs with the ops.h row function on packed keys, O(n_key) scratch per row.
#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "attnscope/backend.h"
#include "attnscope/error.h"
#include "attnscope/ops.h"
#include "simd_kernels.h"
#include "thread_pool.h"

namespace attnscope {
namespace {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int n_threads) : m_pool(n_threads) {}

  std::string name() const override { return "cpu"; }
  std::string device_name() const override {
    return "CPU (OpenBLAS, " + std::to_string(m_pool.size()) + " threads)";
  }

  void linear(const float* x, int n, int in, const float* w, int out, const float* bias,
              float* y) override {
    if (n <= 0 || in <= 0 || out <= 0) throw_usage("linear: sizes must be positive");
    if (n == 1) {
      // y: [out] = w: [out, in] · x: [in]; sgemv avoids sgemm's packing for one row.
      cblas_sgemv(CblasRowMajor, CblasNoTrans, out, in, 1.0f, w, in, x, 1, 0.0f, y, 1);
    } else {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, in, w, in, 0.0f, y,
                  out);
    }
    if (bias != nullptr) {
      for (int r = 0; r < n; ++r) {
        float* row = y + static_cast<size_t>(r) * out;
        for (int o = 0; o < out; ++o) row[o] += bias[o];
      }
    }
  }

  void attention(const AttentionShape& s, const float* q, const float* k, const float* v,
                 float* out) override {
    if (s.n_query <= 0 || s.pos0 < 0 || s.n_head <= 0 || s.n_head_kv <= 0 || s.head_dim <= 0 ||
        s.n_head % s.n_head_kv != 0) {
      throw_usage("attention: invalid shape (n_query " + std::to_string(s.n_query) + ", pos0 " +
                  std::to_string(s.pos0) + ", heads " + std::to_string(s.n_head) + "/" +
                  std::to_string(s.n_head_kv) + ")");
    }
    const int H = s.n_head, Hkv = s.n_head_kv, d = s.head_dim;
    const int group = H / Hkv;
    const int kv_stride = Hkv * d;
    const int n_key_all = s.n_key();
    // K packed once per call per KV head (simd_kernels.h layout) so every row's scores are one
    // streaming kernel; ops.h attention_row packs the same way, hence identical probabilities.
    const size_t packed_size = detail::packed_keys_size(n_key_all, d);
    m_packed.resize(static_cast<size_t>(Hkv) * packed_size);
    m_pool.parallel_for(0, Hkv, 1, [&](int lo, int hi) {
      for (int kvh = lo; kvh < hi; ++kvh) {
        detail::pack_keys(k + static_cast<size_t>(kvh) * d, n_key_all, kv_stride, d,
                          m_packed.data() + kvh * packed_size);
      }
    });
    const int n_items = s.n_query * H;
    // Items are (row, head) pairs, row-major; later rows cost more (longer causal span), so
    // chunks are small enough for the pool to balance them.
    const int grain = std::max(1, std::min(H, n_items / (8 * m_pool.size()) + 1));
    m_pool.parallel_for(0, n_items, grain, [&](int lo, int hi) {
      std::vector<float> probs(static_cast<size_t>(n_key_all));
      for (int item = lo; item < hi; ++item) {
        const int i = item / H;
        const int h = item % H;
        const int kvh = h / group;
        const int n_key = s.pos0 + i + 1;
        const float* qi = q + (static_cast<size_t>(i) * H + h) * d;
        detail::attention_row_packed(qi, m_packed.data() + kvh * packed_size, n_key, d,
                                     probs.data());
        float* o = out + (static_cast<size_t>(i) * H + h) * d;
        detail::weighted_sum_f32(probs.data(), v + static_cast<size_t>(kvh) * d, kv_stride, n_key,
                                 d, o);
      }
    });
  }

 private:
  ThreadPool m_pool;
  std::vector<float> m_packed;  // keys of the current call, packed per KV head
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int n_threads) {
  return std::make_unique<CpuBackend>(n_threads);
}

}  // namespace attnscope
