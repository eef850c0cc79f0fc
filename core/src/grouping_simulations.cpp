// Grouping-kind simulations of variants that need training, labelled as such in the registry:
// SQA (fewer query heads: the dropped heads' outputs are zeroed) and MLA-style low-rank KV
// (pre-RoPE keys and values projected onto the top-r singular subspace of [W_K; W_V]). Also the
// symmetric eigen-solver the MLA subspace comes from (no LAPACK dependency).
#include <cblas.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "attnscope/error.h"
#include "attnscope/ops.h"
#include "attnscope/variant_parts.h"
#include "grouping_parts_internal.h"

namespace attnscope {

namespace grouping_detail {

namespace {

// Householder reduction of symmetric a (n x n, row-major, overwritten) to tridiagonal form
// T = Q^T A Q with Q = H_0 H_1 ... H_{n-3}: diag: [n], off: [n-1] (off[i] couples i, i+1).
// Householder vector k (H_k = I - beta_k v v^T acting on indices k+1..n-1) is kept in
// hv[k] (length n-k-1) with beta[k] (0 = identity).
void tridiagonalize(std::vector<double>& a, int n, std::vector<double>& diag,
                    std::vector<double>& off, std::vector<std::vector<double>>& hv,
                    std::vector<double>& beta) {
  const size_t N = static_cast<size_t>(n);
  diag.assign(N, 0.0);
  off.assign(N > 0 ? N - 1 : 0, 0.0);
  hv.assign(N, {});
  beta.assign(N, 0.0);
  std::vector<double> p(N), w(N);
  for (int k = 0; k + 2 < n; ++k) {
    const int m = n - k - 1;  // length of the column below the diagonal
    std::vector<double>& v = hv[static_cast<size_t>(k)];
    v.resize(static_cast<size_t>(m));
    double norm2 = 0.0;
    for (int i = 0; i < m; ++i) {
      v[i] = a[static_cast<size_t>(k + 1 + i) * N + k];
      norm2 += v[i] * v[i];
    }
    const double norm = std::sqrt(norm2);
    const double alpha = v[0] > 0 ? -norm : norm;
    v[0] -= alpha;
    double vtv = 0.0;  // |x - alpha e1|^2
    for (int i = 0; i < m; ++i) vtv += v[i] * v[i];
    diag[k] = a[static_cast<size_t>(k) * N + k];
    if (norm == 0.0 || vtv <= 0.0) {  // column already reduced
      off[k] = 0.0;
      continue;
    }
    off[k] = alpha;
    const double b = 2.0 / vtv;
    beta[static_cast<size_t>(k)] = b;
    // A22 <- H A22 H with H = I - b v v^T: p = b A22 v, w = p - (b/2)(p.v) v,
    // A22 -= v w^T + w v^T.
    double pv = 0.0;
    for (int i = 0; i < m; ++i) {
      const double* row = &a[static_cast<size_t>(k + 1 + i) * N + k + 1];
      double acc = 0.0;
      for (int j = 0; j < m; ++j) acc += row[j] * v[j];
      p[i] = b * acc;
      pv += p[i] * v[i];
    }
    for (int i = 0; i < m; ++i) w[i] = p[i] - 0.5 * b * pv * v[i];
    for (int i = 0; i < m; ++i) {
      double* row = &a[static_cast<size_t>(k + 1 + i) * N + k + 1];
      const double vi = v[i], wi = w[i];
      for (int j = 0; j < m; ++j) row[j] -= vi * w[j] + wi * v[j];
    }
  }
  if (n >= 2) {
    diag[N - 2] = a[(N - 2) * N + N - 2];
    off[N - 2] = a[(N - 1) * N + N - 2];
  }
  if (n >= 1) diag[N - 1] = a[(N - 1) * N + N - 1];
}

struct Rotation {
  int k;        // acts on indices k, k+1
  double c, s;  // G = [[c, s], [-s, c]] on (k, k+1)
};

}  // namespace

void symmetric_eigen(const std::vector<double>& a_in, int n, std::vector<double>& eigenvalues,
                     std::vector<double>& eigenvectors, int n_vectors) {
  const size_t N = static_cast<size_t>(n);
  if (n <= 0 || a_in.size() != N * N) throw_runtime("symmetric_eigen: expected an n x n matrix");
  if (n_vectors < 0 || n_vectors > n) n_vectors = n;
  std::vector<double> a = a_in, d, e, beta;
  std::vector<std::vector<double>> hv;
  tridiagonalize(a, n, d, e, hv, beta);
  // Implicit symmetric QR with Wilkinson shift on unreduced blocks [lo, hi] (Golub & Van Loan
  // 8.3.2): T_final = G^T T G with G = G_1 G_2 ... G_m. The rotations are logged instead of
  // accumulated into an n x n matrix, so only the wanted eigenvectors are formed afterwards
  // (O(r) per rotation instead of O(n)).
  std::vector<Rotation> rots;
  const int max_steps = 60 * n + 60;
  int steps = 0;
  int hi = n - 1;
  auto negligible = [&](int i) {
    return std::fabs(e[i]) <= DBL_EPSILON * (std::fabs(d[i]) + std::fabs(d[i + 1])) ||
           std::fabs(e[i]) < DBL_MIN;
  };
  while (hi > 0) {
    if (negligible(hi - 1)) {
      e[hi - 1] = 0.0;
      --hi;
      continue;
    }
    int lo = hi - 1;
    while (lo > 0 && !negligible(lo - 1)) --lo;
    if (++steps > max_steps) throw_runtime("symmetric_eigen: QR iteration did not converge");
    const double delta = 0.5 * (d[hi - 1] - d[hi]);
    const double eh = e[hi - 1];
    const double sgn = delta >= 0 ? 1.0 : -1.0;
    const double mu = d[hi] - eh * eh / (delta + sgn * std::hypot(delta, eh));
    double x = d[lo] - mu, z = e[lo];
    double bulge = 0.0;
    for (int k = lo; k < hi; ++k) {
      // Givens (c, s) with [c s; -s c]^T [x; z] = [r; 0].
      double c = 1.0, s = 0.0;
      if (z != 0.0) {
        if (std::fabs(z) > std::fabs(x)) {
          const double t = -x / z;
          s = 1.0 / std::sqrt(1.0 + t * t);
          c = s * t;
        } else {
          const double t = -z / x;
          c = 1.0 / std::sqrt(1.0 + t * t);
          s = c * t;
        }
      }
      if (k > lo) e[k - 1] = c * e[k - 1] - s * bulge;
      const double dk = d[k], dk1 = d[k + 1], ek = e[k];
      d[k] = c * c * dk - 2.0 * c * s * ek + s * s * dk1;
      d[k + 1] = s * s * dk + 2.0 * c * s * ek + c * c * dk1;
      e[k] = c * s * (dk - dk1) + (c * c - s * s) * ek;
      if (k + 1 < hi) {
        bulge = -s * e[k + 1];
        e[k + 1] = c * e[k + 1];
        x = e[k];
        z = bulge;
      }
      rots.push_back({k, c, s});
    }
  }
  std::vector<int> order(N);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return d[x] > d[y]; });
  eigenvalues.resize(N);
  for (size_t i = 0; i < N; ++i) eigenvalues[i] = d[static_cast<size_t>(order[i])];
  // Eigenvector i of A is Q G_1 ... G_m e_i; as a row y = e_i^T G_m^T ... G_1^T Q^T:
  // y <- y G_j^T for j = m..1, then y <- y H_k for k = n-3..0 (Q^T = H_{n-3} ... H_0).
  const size_t R = static_cast<size_t>(n_vectors);
  eigenvectors.assign(R * N, 0.0);
  for (size_t i = 0; i < R; ++i) eigenvectors[i * N + static_cast<size_t>(order[i])] = 1.0;
  // One vector at a time (it stays in L1) against the streamed rotation log.
  for (size_t i = 0; i < R; ++i) {
    double* y = &eigenvectors[i * N];
    for (auto it = rots.rbegin(); it != rots.rend(); ++it) {
      const size_t k = static_cast<size_t>(it->k);
      const double p = y[k], q = y[k + 1];
      y[k] = it->c * p + it->s * q;
      y[k + 1] = -it->s * p + it->c * q;
    }
  }
  for (int k = n - 3; k >= 0; --k) {
    const double b = beta[static_cast<size_t>(k)];
    if (b == 0.0) continue;
    const std::vector<double>& v = hv[static_cast<size_t>(k)];
    for (size_t i = 0; i < R; ++i) {
      double* y = &eigenvectors[i * N + static_cast<size_t>(k) + 1];
      double dot = 0.0;
      for (size_t j = 0; j < v.size(); ++j) dot += y[j] * v[j];
      const double f = b * dot;
      for (size_t j = 0; j < v.size(); ++j) y[j] -= f * v[j];
    }
  }
}

}  // namespace grouping_detail

namespace {

using namespace grouping_detail;

std::vector<int> native_map(int n_head, int n_kv) {
  std::vector<int> out(static_cast<size_t>(n_head));
  for (int h = 0; h < n_head; ++h) out[static_cast<size_t>(h)] = h / (n_head / n_kv);
  return out;
}

// The `keep` highest scores, ties to the lower head index; returned ascending.
std::vector<int> top_heads(const std::vector<double>& score, int keep) {
  std::vector<int> idx(score.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return score[a] > score[b]; });
  idx.resize(static_cast<size_t>(keep));
  std::sort(idx.begin(), idx.end());
  return idx;
}

void check_layer_weights(const Model& model, const char* part) {
  const ModelConfig& c = model.config;
  const size_t D = static_cast<size_t>(c.n_embd), d = static_cast<size_t>(c.head_dim);
  const size_t H = static_cast<size_t>(c.n_head), Hkv = static_cast<size_t>(c.n_head_kv);
  if (c.n_layer <= 0 || model.layers.size() != static_cast<size_t>(c.n_layer) || Hkv == 0 ||
      H % Hkv != 0) {
    throw_usage(std::string(part) + ": model has no valid layers");
  }
  for (const LayerWeights& w : model.layers) {
    if (w.wq.size() != H * d * D || w.wk.size() != Hkv * d * D || w.wv.size() != Hkv * d * D ||
        w.wo.size() != D * H * d) {
      throw_usage(std::string(part) + ": model layer weights have unexpected sizes");
    }
  }
}

// SQA simulation: keep `heads` query heads, zero the other heads' outputs (equivalent to
// removing their W_O columns). choose=output ranks heads by the mean ||W_O^h o_h|| of the plain
// causal attention output over the last calib_rows rows of the prefill (research notes 4.1);
// the choice holds for the decode steps that follow. choose=weights uses the static proxy
// ||W_O^h||_F * ||W_Q^h||_F from the layer weights.
class SqaGrouping : public GroupingPart {
 public:
  SqaGrouping(const Model& model, int heads, bool by_output, int calib_rows)
      : m_model(model), m_heads(heads), m_by_output(by_output), m_calib_rows(calib_rows) {
    const ModelConfig& c = model.config;
    m_active.resize(static_cast<size_t>(c.n_layer));
    if (m_by_output) return;
    const int D = c.n_embd, d = c.head_dim, H = c.n_head;
    for (int l = 0; l < c.n_layer; ++l) {
      const LayerWeights& w = model.layers[static_cast<size_t>(l)];
      std::vector<double> score(static_cast<size_t>(H));
      for (int h = 0; h < H; ++h) {
        double so = 0.0, sq = 0.0;
        for (int r = 0; r < D; ++r) {
          for (int cc = 0; cc < d; ++cc) {
            const double x = w.wo[static_cast<size_t>(r) * H * d + static_cast<size_t>(h) * d + cc];
            so += x * x;
          }
        }
        for (size_t i = static_cast<size_t>(h) * d * D; i < static_cast<size_t>(h + 1) * d * D;
             ++i) {
          sq += static_cast<double>(w.wq[i]) * w.wq[i];
        }
        score[static_cast<size_t>(h)] = std::sqrt(so) * std::sqrt(sq);
      }
      m_active[static_cast<size_t>(l)] = top_heads(score, m_heads);
    }
  }

  GroupingResult group(const LayerContext& ctx) override {
    check_context(ctx, "sqa");
    const AttentionShape& s = ctx.shape;
    std::vector<int>& active = m_active[static_cast<size_t>(ctx.layer)];
    if (m_by_output && (ctx.is_prefill() || active.empty())) active = choose_by_output(ctx);
    GroupingResult r;
    r.n_kv = s.n_head_kv;
    r.kv_of_query = native_map(s.n_head, s.n_head_kv);
    r.active_query_heads = active;
    return r;
  }

  // out: [n_query, H, d]; rows of dropped heads set to 0.
  void perturb_output(const LayerContext& ctx, const GroupingResult& groups, float* out) override {
    check_context(ctx, "sqa");
    if (out == nullptr) return;
    const AttentionShape& s = ctx.shape;
    std::vector<uint8_t> keep(static_cast<size_t>(s.n_head), 0);
    for (int h : groups.active_query_heads) {
      if (h >= 0 && h < s.n_head) keep[static_cast<size_t>(h)] = 1;
    }
    for (int i = 0; i < s.n_query; ++i) {
      for (int h = 0; h < s.n_head; ++h) {
        if (!keep[static_cast<size_t>(h)]) {
          std::fill_n(out + (static_cast<size_t>(i) * s.n_head + h) * s.head_dim, s.head_dim, 0.0f);
        }
      }
    }
  }

 private:
  // Plain causal attention of the last `rows` query rows, per head with BLAS:
  // S = Q_h K_kv^T / sqrt(d) [rows, n_key] (causal -inf), P = softmax(S), O = P V_kv [rows, d],
  // Y = O (W_O^h)^T [rows, D]; score_h = mean over rows of ||Y_row||.
  std::vector<int> choose_by_output(const LayerContext& ctx) const {
    const AttentionShape& s = ctx.shape;
    const int H = s.n_head, Hkv = s.n_head_kv, d = s.head_dim, D = ctx.config->n_embd;
    const int n_key = s.n_key();
    const LayerWeights& w = m_model.layers[static_cast<size_t>(ctx.layer)];
    const int rows = std::min(m_calib_rows, s.n_query);
    const int first = s.n_query - rows;
    const float scale = 1.0f / std::sqrt(static_cast<float>(d));
    std::vector<float> sc(static_cast<size_t>(rows) * n_key), o(static_cast<size_t>(rows) * d),
        y(static_cast<size_t>(rows) * D);
    std::vector<double> score(static_cast<size_t>(H), 0.0);
    for (int h = 0; h < H; ++h) {
      const int kv = h / (H / Hkv);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, n_key, d, scale,
                  ctx.q + (static_cast<size_t>(first) * H + h) * d, H * d,
                  ctx.k + static_cast<size_t>(kv) * d, Hkv * d, 0.0f, sc.data(), n_key);
      for (int i = 0; i < rows; ++i) {
        float* row = sc.data() + static_cast<size_t>(i) * n_key;
        const int pos = s.pos0 + first + i;
        std::fill(row + pos + 1, row + n_key, -std::numeric_limits<float>::infinity());
        softmax_inplace(row, n_key);
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, d, n_key, 1.0f, sc.data(), n_key,
                  ctx.v + static_cast<size_t>(kv) * d, Hkv * d, 0.0f, o.data(), d);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, D, d, 1.0f, o.data(), d,
                  w.wo.data() + static_cast<size_t>(h) * d, H * d, 0.0f, y.data(), D);
      for (int i = 0; i < rows; ++i) {
        double y2 = 0.0;
        for (int r = 0; r < D; ++r) {
          const double v = y[static_cast<size_t>(i) * D + r];
          y2 += v * v;
        }
        score[static_cast<size_t>(h)] += std::sqrt(y2) / rows;
      }
    }
    return top_heads(score, m_heads);
  }

  const Model& m_model;
  int m_heads;
  bool m_by_output;
  int m_calib_rows;
  std::vector<std::vector<int>> m_active;  // [layer] kept heads, ascending
};

// MLA simulation. Per layer, the top-`rank` eigenvectors of G = W W^T with W = [W_K; W_V]
// ([2*Hkv*d, D]) span the rank-r left singular subspace. Each token's joint pre-RoPE
// [k; v] (2*Hkv*d, bias included as the activation carries it) is projected onto it: x^ = U U^T x.
// The cache holds post-RoPE keys, so keys are un-rotated (RoPE at the negative position is the
// inverse rotation), projected, then re-rotated at their position. Decoupled RoPE (MLA's small
// shared RoPE key) is not simulated: it needs training. Reconstructions are kept per layer and
// extended by the new positions of each call, so decode does not re-project the whole cache.
class MlaGrouping : public GroupingPart {
 public:
  MlaGrouping(const Model& model, int rank) : m_rank(rank) {
    const ModelConfig& c = model.config;
    const int n = 2 * c.n_head_kv * c.head_dim, D = c.n_embd;
    m_n = n;
    m_basis.resize(static_cast<size_t>(c.n_layer));
    m_state.resize(static_cast<size_t>(c.n_layer));
    // One eigen-decomposition per layer (O(n^3), n = 384 for SmolLM2), spread over threads.
    auto work = [&](int l) {
      const LayerWeights& w = model.layers[static_cast<size_t>(l)];
      std::vector<double> wd(static_cast<size_t>(n) * D);
      std::copy(w.wk.begin(), w.wk.end(), wd.begin());
      std::copy(w.wv.begin(), w.wv.end(), wd.begin() + static_cast<long>(w.wk.size()));
      std::vector<double> g(static_cast<size_t>(n) * n, 0.0);
      cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, n, D, 1.0, wd.data(), D, 0.0, g.data(),
                  n);
      for (int i = 0; i < n; ++i) {
        for (int j = 0; j < i; ++j)
          g[static_cast<size_t>(i) * n + j] = g[static_cast<size_t>(j) * n + i];
      }
      std::vector<double> vals, vecs;
      symmetric_eigen(g, n, vals, vecs, m_rank);
      std::vector<float>& u = m_basis[static_cast<size_t>(l)];
      u.resize(static_cast<size_t>(m_rank) * n);
      for (size_t i = 0; i < u.size(); ++i) u[i] = static_cast<float>(vecs[i]);
    };
    const int n_threads = std::max(
        1, std::min<int>(static_cast<int>(std::thread::hardware_concurrency()), c.n_layer));
    std::vector<std::thread> threads;
    std::vector<std::exception_ptr> errors(static_cast<size_t>(n_threads));
    for (int t = 0; t < n_threads; ++t) {
      threads.emplace_back([&, t] {
        try {
          for (int l = t; l < c.n_layer; l += n_threads) work(l);
        } catch (...) {
          errors[static_cast<size_t>(t)] = std::current_exception();
        }
      });
    }
    for (auto& th : threads) th.join();
    for (auto& e : errors) {
      if (e) std::rethrow_exception(e);
    }
  }

  GroupingResult group(const LayerContext& ctx) override {
    check_context(ctx, "mla");
    const AttentionShape& s = ctx.shape;
    const int Hkv = s.n_head_kv, d = s.head_dim, hd = Hkv * d, n_key = s.n_key();
    State& st = m_state[static_cast<size_t>(ctx.layer)];
    // Reuse the reconstruction of positions < pos0 only if it continues the same sequence.
    const bool same = s.pos0 > 0 && st.n_done == s.pos0 &&
                      st.last_key.size() == static_cast<size_t>(hd) &&
                      std::equal(st.last_key.begin(), st.last_key.end(),
                                 ctx.k + static_cast<size_t>(s.pos0 - 1) * hd);
    if (!same) st = State{};
    const int m = n_key - st.n_done;
    st.k.resize(static_cast<size_t>(n_key) * hd);
    st.v.resize(static_cast<size_t>(n_key) * hd);
    if (m > 0) {
      std::vector<float> x(static_cast<size_t>(m) * m_n), keys(static_cast<size_t>(m) * hd);
      std::vector<int32_t> pos(static_cast<size_t>(m));
      for (int i = 0; i < m; ++i) pos[static_cast<size_t>(i)] = -(st.n_done + i);
      std::copy_n(ctx.k + static_cast<size_t>(st.n_done) * hd, keys.size(), keys.data());
      rope_half_split(keys.data(), m, Hkv, d, pos.data(), ctx.config->rope_theta);
      for (int i = 0; i < m; ++i) {
        std::copy_n(keys.data() + static_cast<size_t>(i) * hd, hd,
                    x.data() + static_cast<size_t>(i) * m_n);
        std::copy_n(ctx.v + static_cast<size_t>(st.n_done + i) * hd, hd,
                    x.data() + static_cast<size_t>(i) * m_n + hd);
      }
      project(ctx.layer, x.data(), m);
      for (int i = 0; i < m; ++i) {
        std::copy_n(x.data() + static_cast<size_t>(i) * m_n, hd,
                    keys.data() + static_cast<size_t>(i) * hd);
        std::copy_n(x.data() + static_cast<size_t>(i) * m_n + hd, hd,
                    st.v.data() + static_cast<size_t>(st.n_done + i) * hd);
        pos[static_cast<size_t>(i)] = st.n_done + i;
      }
      rope_half_split(keys.data(), m, Hkv, d, pos.data(), ctx.config->rope_theta);
      std::copy(keys.begin(), keys.end(), st.k.begin() + static_cast<long>(st.n_done) * hd);
      st.n_done = n_key;
      st.last_key.assign(ctx.k + static_cast<size_t>(n_key - 1) * hd,
                         ctx.k + static_cast<size_t>(n_key) * hd);
    }
    GroupingResult r;
    r.n_kv = Hkv;
    r.kv_of_query = native_map(s.n_head, Hkv);
    r.k = st.k;
    r.v = st.v;
    return r;
  }

 private:
  // x: [m, n] rows replaced by U^T U x (U: [rank, n] orthonormal rows).
  void project(int layer, float* x, int m) const {
    const std::vector<float>& u = m_basis[static_cast<size_t>(layer)];
    std::vector<float> c(static_cast<size_t>(m) * m_rank);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, m_rank, m_n, 1.0f, x, m_n, u.data(),
                m_n, 0.0f, c.data(), m_rank);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, m_n, m_rank, 1.0f, c.data(), m_rank,
                u.data(), m_n, 0.0f, x, m_n);
  }

  struct State {
    int n_done = 0;
    std::vector<float> k, v;      // [n_done, Hkv, d] reconstructed (k post-RoPE)
    std::vector<float> last_key;  // [Hkv * d] original key at n_done - 1 (sequence check)
  };
  int m_rank;
  int m_n = 0;
  std::vector<std::vector<float>> m_basis;  // [layer] [rank, n]
  std::vector<State> m_state;               // [layer]
};

}  // namespace

namespace grouping_detail {

std::unique_ptr<GroupingPart> make_sqa_part(const PartConfig& config, const Model& model) {
  check_layer_weights(model, "sqa");
  const int heads = config.get_int("heads");
  if (heads < 1 || heads > model.config.n_head) {
    throw_usage("sqa.heads: expected an integer in [1, " + std::to_string(model.config.n_head) +
                "] (query heads of the model), got " + std::to_string(heads));
  }
  const std::string& choose = config.get_choice("choose");
  if (choose != "output" && choose != "weights") {
    throw_usage("sqa.choose: expected output or weights, got " + choose);
  }
  const int rows = config.get_int("calib_rows");
  if (rows < 1)
    throw_usage("sqa.calib_rows: expected an integer >= 1, got " + std::to_string(rows));
  return std::make_unique<SqaGrouping>(model, heads, choose == "output", rows);
}

std::unique_ptr<GroupingPart> make_mla_part(const PartConfig& config, const Model& model) {
  check_layer_weights(model, "mla");
  const int rank = config.get_int("rank");
  const int full = 2 * model.config.n_head_kv * model.config.head_dim;
  if (rank < 1 || rank > full) {
    throw_usage("mla.rank: expected an integer in [1, " + std::to_string(full) +
                "] (2 * n_head_kv * head_dim), got " + std::to_string(rank));
  }
  return std::make_unique<MlaGrouping>(model, rank);
}

}  // namespace grouping_detail

}  // namespace attnscope
