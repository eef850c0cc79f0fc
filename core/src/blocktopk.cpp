// Block top-k pattern in the style of NSA/FSA's selection branch, as a training-free
// simulation: block keys are mean-pooled (phi = mean, stride = block), each query row's
// compressed attention p_cmp = softmax(q . K~ / sqrt(d)) over its causal blocks is summed over
// the rows of its query block and the query heads of its GQA group, and every query block
// keeps the top k blocks including the forced initial and local ones (one selection per group).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "attnscope/error.h"
#include "pattern_internal.h"
#include "simd_kernels.h"

namespace attnscope {
namespace pattern_detail {

std::vector<int> topk_indices(const std::vector<double>& x, int count) {
  std::vector<int> idx(x.size());
  std::iota(idx.begin(), idx.end(), 0);
  const size_t n = std::min(idx.size(), static_cast<size_t>(std::max(count, 0)));
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return x[a] > x[b]; });
  idx.resize(n);
  return idx;
}

std::vector<int> blocktopk_select(const std::vector<double>& scores, int qb, int k, int init,
                                  int local) {
  if (qb < 0 || static_cast<int>(scores.size()) < qb + 1) {
    throw_runtime("blocktopk: scores for query block " + std::to_string(qb) + " need " +
                  std::to_string(qb + 1) + " entries, got " + std::to_string(scores.size()));
  }
  std::vector<uint8_t> chosen(static_cast<size_t>(qb) + 1, 0);
  int n_chosen = 0;
  auto take = [&](int b) {
    if (b >= 0 && b <= qb && !chosen[b]) {
      chosen[b] = 1;
      ++n_chosen;
    }
  };
  for (int b = 0; b < std::min(init, qb + 1); ++b) take(b);
  for (int b = std::max(0, qb - local + 1); b <= qb && local > 0; ++b) take(b);
  std::vector<int> rest;
  for (int b = 0; b <= qb; ++b) {
    if (!chosen[b]) rest.push_back(b);
  }
  // Highest score first, lower index on ties, so the choice is deterministic.
  std::stable_sort(rest.begin(), rest.end(), [&](int a, int b) { return scores[a] > scores[b]; });
  for (size_t r = 0; r < rest.size() && n_chosen < k; ++r) take(rest[r]);
  std::vector<int> out;
  for (int b = 0; b <= qb; ++b) {
    if (chosen[b]) out.push_back(b);
  }
  return out;
}

namespace {

class BlockTopkPattern final : public PatternPart {
 public:
  BlockTopkPattern(int block, int k, int init, int local, int window)
      : m_block(block), m_k(k), m_init(init), m_local(local), m_window(window) {}

  // ctx.q: [n_query, H, d] rows at pos0..; ctx.k: [n_key, Hkv, d]. Returns [H] masks whose
  // block rows are filled for the query blocks that hold rows of this call.
  PatternResult mask(const LayerContext& ctx) override {
    const AttentionShape& s = ctx.shape;
    const int H = s.n_head, Hkv = s.n_head_kv, d = s.head_dim, B = m_block;
    if (H <= 0 || Hkv <= 0 || d <= 0 || H % Hkv != 0 || s.n_query < 0 || s.pos0 < 0 ||
        ctx.q == nullptr || ctx.k == nullptr) {
      throw_runtime("blocktopk: layer context has an invalid shape or no Q/K");
    }
    const int g = H / Hkv;
    const int n_key = s.n_key();
    const int nb = (n_key + B - 1) / B;
    const double scale = 1.0 / std::sqrt(static_cast<double>(d));

    // pooled[kv][b][d]: mean of the keys of block b (complete blocks only are used as
    // scored blocks; a query's own block is pooled over its keys up to the query).
    std::vector<double> pooled(static_cast<size_t>(Hkv) * nb * d, 0.0);
    for (int j = 0; j < n_key; ++j) {
      const int b = j / B;
      for (int kv = 0; kv < Hkv; ++kv) {
        const float* kr = ctx.k + (static_cast<size_t>(j) * Hkv + kv) * d;
        double* pr = &pooled[(static_cast<size_t>(kv) * nb + b) * d];
        for (int t = 0; t < d; ++t) pr[t] += kr[t];
      }
    }
    for (int kv = 0; kv < Hkv; ++kv) {
      for (int b = 0; b < nb; ++b) {
        const int cnt = std::min(B, n_key - b * B);
        double* pr = &pooled[(static_cast<size_t>(kv) * nb + b) * d];
        for (int t = 0; t < d; ++t) pr[t] /= cnt;
      }
    }

    PatternResult result;
    result.heads.resize(static_cast<size_t>(H));
    std::vector<double> logits, own(d), score_row;
    std::vector<float> pooled_f(static_cast<size_t>(nb) * d),
        packed(detail::packed_keys_size(nb, d));
    std::vector<float> dots(static_cast<size_t>(nb) + 1), own_f(d);
    for (int kv = 0; kv < Hkv; ++kv) {
      // Complete blocks' pooled keys, packed for the SIMD score kernel.
      for (size_t x = 0; x < pooled_f.size(); ++x) {
        pooled_f[x] = static_cast<float>(pooled[static_cast<size_t>(kv) * nb * d + x]);
      }
      detail::pack_keys(pooled_f.data(), nb, d, d, packed.data());
      // scores[qb][b] summed over rows and over the group's query heads.
      std::vector<double> scores(static_cast<size_t>(nb) * nb, 0.0);
      for (int r = 0; r < s.n_query; ++r) {
        const int i = s.pos0 + r;
        const int qb = i / B;
        // Own block pooled over keys qb*B .. i (causal), as a running sum.
        if (r == 0 || i % B == 0) {
          std::fill(own.begin(), own.end(), 0.0);
          for (int j = qb * B; j < i; ++j) {
            const float* kr = ctx.k + (static_cast<size_t>(j) * Hkv + kv) * d;
            for (int t = 0; t < d; ++t) own[t] += kr[t];
          }
        }
        {
          const float* kr = ctx.k + (static_cast<size_t>(i) * Hkv + kv) * d;
          for (int t = 0; t < d; ++t) own[t] += kr[t];
        }
        const double cnt = i - qb * B + 1;
        for (int t = 0; t < d; ++t) own_f[t] = static_cast<float>(own[t] / cnt);
        for (int h = kv * g; h < (kv + 1) * g; ++h) {
          const float* qr = ctx.q + (static_cast<size_t>(r) * H + h) * d;
          logits.assign(static_cast<size_t>(qb) + 1, 0.0);
          if (qb > 0) detail::scores_packed_f32(qr, packed.data(), qb, d, dots.data());
          for (int b = 0; b < qb; ++b) logits[b] = dots[b] * scale;
          double dot = 0;
          for (int t = 0; t < d; ++t) dot += qr[t] * own_f[t];
          logits[qb] = dot * scale;
          const double mx = *std::max_element(logits.begin(), logits.end());
          double sum = 0;
          for (double& l : logits) sum += (l = std::exp(l - mx));
          double* row = &scores[static_cast<size_t>(qb) * nb];
          for (int b = 0; b <= qb; ++b) row[b] += logits[b] / sum;
        }
      }
      HeadMask m;
      m.all_blocks = false;
      m.block = B;
      m.window = m_window;
      m.n_qblocks = nb;
      m.n_kblocks = nb;
      m.blocks.assign(static_cast<size_t>(nb) * nb, 0);
      const int qb_first = s.pos0 / B;
      const int qb_last = s.n_query > 0 ? (n_key - 1) / B : qb_first - 1;
      for (int qb = qb_first; qb <= qb_last; ++qb) {
        score_row.assign(scores.begin() + static_cast<ptrdiff_t>(qb) * nb,
                         scores.begin() + static_cast<ptrdiff_t>(qb) * nb + qb + 1);
        for (int b : blocktopk_select(score_row, qb, m_k, m_init, m_local)) {
          m.blocks[static_cast<size_t>(qb) * nb + b] = 1;
        }
      }
      for (int h = kv * g; h < (kv + 1) * g; ++h) result.heads[h] = m;
    }
    return result;
  }

 private:
  int m_block, m_k, m_init, m_local, m_window;
};

}  // namespace

std::unique_ptr<PatternPart> make_blocktopk(int block, int k, int init, int local, int window) {
  if (block < 1 || k < 1 || init < 0 || local < 0 || window < 0) {
    throw_usage("pattern blocktopk: expected block >= 1, k >= 1, init >= 0, local >= 0, w >= 0");
  }
  return std::make_unique<BlockTopkPattern>(block, k, init, local, window);
}

}  // namespace pattern_detail
}  // namespace attnscope
