// FlexPrefill (bytedance/FlexPrefill, get_active_blocks) as a block mask, per query head:
// the last B queries' attention gives vertical and slash sums; sqrt(JSD) between the pooled
// estimate softmax(mean(Q_last) . avgpool(K)) and the block-summed vertical decides between a
// query-aware pattern (blocks of the pooled block attention covering gamma * nB of mass, plus
// min-budget vertical/slash) and a vertical-slash pattern (budgets covering gamma). Reference
// quirks are kept: the covering token count is divided by 128 (budget_div), the slash index
// runs from the last diagonal, and the query-aware cover is taken over the flattened nB x nB
// matrix keeping blocks while the cumulative sum is <= gamma * nB.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>

#include "attnscope/error.h"
#include "pattern_internal.h"
#include "simd_kernels.h"

namespace attnscope {
namespace pattern_detail {

int score_cover_topk(const std::vector<double>& x, double score) {
  std::vector<double> sorted = x;
  std::sort(sorted.begin(), sorted.end(), std::greater<double>());
  double cum = 0;
  int count = 0;
  for (double v : sorted) {
    cum += v;
    if (cum <= score) ++count;
  }
  return count + 1;
}

std::vector<int> score_cover_idx(const std::vector<double>& x, double score) {
  const std::vector<int> order = topk_indices(x, static_cast<int>(x.size()));
  std::vector<int> out;
  double cum = 0;
  for (int i : order) {
    cum += x[i];
    if (cum <= score) out.push_back(i);
  }
  return out;
}

double sqrt_js_divergence(const std::vector<double>& p, const std::vector<double>& q) {
  if (p.size() != q.size()) throw_runtime("sqrt_js_divergence: p and q differ in length");
  double a = 0, b = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double m = 0.5 * (p[i] + q[i]);
    if (p[i] > 0) a += p[i] * std::log(p[i] / m);
    if (q[i] > 0) b += q[i] * std::log(q[i] / m);
  }
  return std::sqrt(std::max(0.0, 0.5 * a + 0.5 * b));
}

namespace {

// In-place softmax of v[0..n), double precision.
void softmax(double* v, int n) {
  double mx = -std::numeric_limits<double>::infinity();
  for (int i = 0; i < n; ++i) mx = std::max(mx, v[i]);
  double sum = 0;
  for (int i = 0; i < n; ++i)
    sum += (v[i] = std::isinf(v[i]) && v[i] < 0 ? 0.0 : std::exp(v[i] - mx));
  for (int i = 0; i < n; ++i) v[i] /= sum;
}

class FlexPrefillPattern final : public PatternPart {
 public:
  explicit FlexPrefillPattern(const FlexPrefillParams& p) : m_p(p) {}

  PatternResult mask(const LayerContext& ctx) override {
    const AttentionShape& s = ctx.shape;
    const int H = s.n_head, Hkv = s.n_head_kv, d = s.head_dim, B = m_p.block;
    if (H <= 0 || Hkv <= 0 || d <= 0 || H % Hkv != 0 || s.n_query < 0 || s.pos0 < 0 ||
        ctx.q == nullptr || ctx.k == nullptr) {
      throw_runtime("flexprefill: layer context has an invalid shape or no Q/K");
    }
    PatternResult result;
    result.heads.assign(static_cast<size_t>(H), HeadMask{});
    // The pattern is a prefill method; decode rows (and chunked continuations) see every key.
    if (s.pos0 != 0) {
      result.note = "decode rows: full attention";
      return result;
    }
    const int T = s.n_query;
    const long long min_tokens = m_p.min_budget == 0 ? 1 : m_p.min_budget;
    const long long fallback = std::max<long long>(2LL * B, (min_tokens + B - 1) / B * B);
    if (T <= fallback) {
      result.note =
          "dense fallback (T=" + std::to_string(T) + " <= " + std::to_string(fallback) + ")";
      return result;
    }
    const int g = H / Hkv;
    const int nb = (T + B - 1) / B;
    const int min_b = static_cast<int>((min_tokens + B - 1) / B);
    const int max_b = m_p.max_budget == 0 ? nb : std::min(nb, (m_p.max_budget + B - 1) / B);
    const int div = m_p.budget_div == 0 ? B : m_p.budget_div;
    const double scale = 1.0 / std::sqrt(static_cast<double>(d));

    // avg_k[kv][b][d]: mean of the keys in block b (a short last block averages its keys).
    std::vector<double> avg_k(static_cast<size_t>(Hkv) * nb * d, 0.0);
    for (int j = 0; j < T; ++j) {
      for (int kv = 0; kv < Hkv; ++kv) {
        const float* kr = ctx.k + (static_cast<size_t>(j) * Hkv + kv) * d;
        double* a = &avg_k[(static_cast<size_t>(kv) * nb + j / B) * d];
        for (int t = 0; t < d; ++t) a[t] += kr[t];
      }
    }
    for (int kv = 0; kv < Hkv; ++kv) {
      for (int b = 0; b < nb; ++b) {
        double* a = &avg_k[(static_cast<size_t>(kv) * nb + b) * d];
        for (int t = 0; t < d; ++t) a[t] /= std::min(B, T - b * B);
      }
    }

    result.head_scores.assign(static_cast<size_t>(H), 0.0f);
    std::string note;
    std::vector<double> att(static_cast<size_t>(B) * T);
    std::vector<float> packed(detail::packed_keys_size(T, d)), dots(static_cast<size_t>(T));
    int packed_kv = -1;
    for (int h = 0; h < H; ++h) {
      const int kv = h / g;
      if (packed_kv != kv) {
        detail::pack_keys(ctx.k + static_cast<size_t>(kv) * d, T, Hkv * d, d, packed.data());
        packed_kv = kv;
      }
      const int r0 = T - B;  // first of the last B query rows
      // 1. A^ = softmax(Q^ K^T / sqrt(d)), causal inside the last B keys.
      for (int r = 0; r < B; ++r) {
        const float* qr = ctx.q + (static_cast<size_t>(r0 + r) * H + h) * d;
        double* row = &att[static_cast<size_t>(r) * T];
        detail::scores_packed_f32(qr, packed.data(), T, d, dots.data());
        for (int j = 0; j < T; ++j) {
          row[j] = j > r0 + r ? -std::numeric_limits<double>::infinity() : dots[j] * scale;
        }
        softmax(row, T);
      }
      // 2. vertical[j] = mean_r A[r][j]; slash[s] = (sum of diagonal T-1-s) / B.
      std::vector<double> vertical(T, 0.0), slash(T, 0.0);
      for (int r = 0; r < B; ++r) {
        const double* row = &att[static_cast<size_t>(r) * T];
        for (int j = 0; j <= r0 + r; ++j) {
          vertical[j] += row[j];
          const int dist = r0 + r - j;
          slash[T - 1 - dist] += row[j];
        }
      }
      for (int j = 0; j < T; ++j) {
        vertical[j] /= B;
        slash[j] /= B;
      }
      // The reference raises to min first, then lowers to max (max wins when min > max).
      auto budget = [&](int c) { return std::min(std::max(c / div + 1, min_b), max_b); };
      int nv = budget(score_cover_topk(vertical, m_p.gamma));
      int ns = budget(score_cover_topk(slash, m_p.gamma));
      // Sum-pool to blocks.
      std::vector<double> vpool(nb, 0.0), spool(nb, 0.0);
      for (int j = 0; j < T; ++j) {
        vpool[j / B] += vertical[j];
        spool[j / B] += slash[j];
      }
      // 3. a_bar = softmax(mean(Q^/sqrt(d)) . avg_k), D = sqrt(JSD(a_bar, v_bar)).
      std::vector<double> mean_q(d, 0.0), abar(nb, 0.0);
      for (int r = 0; r < B; ++r) {
        const float* qr = ctx.q + (static_cast<size_t>(r0 + r) * H + h) * d;
        for (int t = 0; t < d; ++t) mean_q[t] += qr[t] * scale / B;
      }
      for (int b = 0; b < nb; ++b) {
        const double* a = &avg_k[(static_cast<size_t>(kv) * nb + b) * d];
        double dot = 0;
        for (int t = 0; t < d; ++t) dot += mean_q[t] * a[t];
        abar[b] = dot;
      }
      softmax(abar.data(), nb);
      const double D = sqrt_js_divergence(abar, vpool);
      const bool query_aware = D < m_p.tau;
      if (query_aware) nv = ns = min_b;
      result.head_scores[h] = static_cast<float>(D);

      HeadMask m;
      m.all_blocks = false;
      m.block = B;
      m.n_qblocks = nb;
      m.n_kblocks = nb;
      m.blocks.assign(static_cast<size_t>(nb) * nb, 0);
      m.blocks[0] = 1;  // the reference's padding index 0 is block (0, 0)
      // 5. Vertical-slash: first column and the diagonal forced.
      vpool[0] = std::numeric_limits<double>::infinity();
      spool[nb - 1] = std::numeric_limits<double>::infinity();
      for (int v : topk_indices(vpool, std::min(nv, nb))) {
        for (int r = v; r < nb; ++r) m.blocks[static_cast<size_t>(r) * nb + v] = 1;
      }
      for (int idx : topk_indices(spool, std::min(ns, nb))) {
        const int off = (nb - 1) - idx;
        for (int r = 0; r + off < nb; ++r) m.blocks[static_cast<size_t>(r + off) * nb + r] = 1;
      }
      int n_qa = 0;
      if (query_aware) {
        // 4. Causal block attention from pooled Q/K, flattened, cover gamma * nB.
        std::vector<double> avg_q(static_cast<size_t>(nb) * d, 0.0);
        for (int i = 0; i < T; ++i) {
          const float* qr = ctx.q + (static_cast<size_t>(i) * H + h) * d;
          double* a = &avg_q[static_cast<size_t>(i / B) * d];
          for (int t = 0; t < d; ++t) a[t] += qr[t];
        }
        std::vector<double> flat(static_cast<size_t>(nb) * nb, 0.0);
        for (int r = 0; r < nb; ++r) {
          const double cnt = std::min(B, T - r * B);
          const double* aq = &avg_q[static_cast<size_t>(r) * d];
          double* row = &flat[static_cast<size_t>(r) * nb];
          for (int c = 0; c < nb; ++c) {
            if (c > r) {
              row[c] = -std::numeric_limits<double>::infinity();
              continue;
            }
            const double* ak = &avg_k[(static_cast<size_t>(kv) * nb + c) * d];
            double dot = 0;
            for (int t = 0; t < d; ++t) dot += aq[t] / cnt * ak[t];
            row[c] = dot * scale;
          }
          softmax(row, nb);
        }
        for (int idx : score_cover_idx(flat, m_p.gamma * nb)) {
          m.blocks[static_cast<size_t>(idx)] = 1;
          ++n_qa;
        }
      }
      char buf[160];
      std::snprintf(buf, sizeof buf, "%sh%d %s D=%.3f v=%d s=%d%s", note.empty() ? "" : "; ", h,
                    query_aware ? "query-aware" : "vertical-slash", D, std::min(nv, nb),
                    std::min(ns, nb), query_aware ? (" qa=" + std::to_string(n_qa)).c_str() : "");
      note += buf;
      result.heads[h] = std::move(m);
    }
    result.note = note;
    return result;
  }

 private:
  FlexPrefillParams m_p;
};

}  // namespace

std::unique_ptr<PatternPart> make_flexprefill(const FlexPrefillParams& params) {
  const int b = params.block;
  if (b != 16 && b != 32 && b != 64 && b != 128) {
    throw_usage("pattern flexprefill.block: expected one of 16|32|64|128, got " +
                std::to_string(b));
  }
  if (!(params.gamma >= 0 && params.gamma <= 1) || !(params.tau >= 0 && params.tau <= 1) ||
      params.min_budget < 0 || params.max_budget < 0 || params.budget_div < 0) {
    throw_usage("pattern flexprefill: expected gamma, tau in [0, 1] and budgets >= 0");
  }
  return std::make_unique<FlexPrefillPattern>(params);
}

}  // namespace pattern_detail
}  // namespace attnscope
