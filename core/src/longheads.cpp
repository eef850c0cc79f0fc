// LongHeads chunk selection (LuLuLuyi/LongHeads modeling_llama.py) as a block mask whose block
// size is the chunk size w. Per layer and query head: chunk c's representation r_c comes from a
// non-causal attention inside the chunk with RoPE at local positions (t mod w): m_c = mean of
// the outputs, r_c = softmax(m_c . K_c^T / sqrt(d)) . K_c. Queries at positions >= atten_length
// (prefill) pick n = atten_length / w chunks: the first, the previous and their own, plus the
// top n - 3 others by the un-rotated query . r_c; decode rows (position + 1 >= atten_length)
// pick the first, the last full chunk and the current partial chunk plus the top n - 3 chunks
// in between. Earlier queries attend fully. Known deviations: picked chunks keep their original
// positions (the reference re-positions them contiguously), a query chunk shares one choice
// (mean score or union of its tokens' picks), and a query sees itself in its own chunk.
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "attnscope/error.h"
#include "attnscope/ops.h"
#include "pattern_internal.h"
#include "simd_kernels.h"

namespace attnscope {
namespace pattern_detail {
namespace {

class LongHeadsPattern final : public PatternPart {
 public:
  LongHeadsPattern(int chunk, int atten_length, LongHeadsMerge merge, float theta)
      : m_w(chunk),
        m_n(atten_length / chunk),
        m_len(atten_length),
        m_merge(merge),
        m_theta(theta) {}

  PatternResult mask(const LayerContext& ctx) override {
    const AttentionShape& s = ctx.shape;
    const int H = s.n_head, Hkv = s.n_head_kv, d = s.head_dim;
    if (H <= 0 || Hkv <= 0 || d <= 0 || d % 2 != 0 || H % Hkv != 0 || s.n_query < 0 || s.pos0 < 0 ||
        ctx.q == nullptr || ctx.k == nullptr || ctx.v == nullptr) {
      throw_runtime("longheads: layer context has an invalid shape or no Q/K/V");
    }
    const int w = m_w, n_key = s.n_key();
    LayerState& st = m_state[ctx.layer];
    if (s.pos0 == 0) st = LayerState{};
    if (s.pos0 > st.next_pos) {
      throw_runtime("longheads: layer " + std::to_string(ctx.layer) + " got rows at position " +
                    std::to_string(s.pos0) + " but has seen rows up to " +
                    std::to_string(st.next_pos) + "; run the prefill first");
    }
    // Un-rotated queries of this call; new ones join the rows not yet in a full chunk.
    std::vector<float> q_raw(ctx.q, ctx.q + static_cast<size_t>(s.n_query) * H * d);
    {
      std::vector<int32_t> neg(static_cast<size_t>(s.n_query));
      for (int r = 0; r < s.n_query; ++r) neg[r] = -(s.pos0 + r);
      rope_half_split(q_raw.data(), s.n_query, H, d, neg.data(), m_theta);
    }
    // Rows already seen (a repeated call for the same step) are not appended twice.
    if (n_key > st.next_pos) {
      const size_t first = static_cast<size_t>(st.next_pos - s.pos0) * H * d;
      st.pending_q.insert(st.pending_q.end(), q_raw.begin() + static_cast<ptrdiff_t>(first),
                          q_raw.end());
      st.next_pos = n_key;
    }
    const int n_full = n_key / w;
    while (st.n_chunks() < n_full) {
      add_chunk_rep(ctx, st);
    }

    const int nb = (n_key + w - 1) / w;
    PatternResult result;
    result.heads.resize(static_cast<size_t>(H));
    result.note = "longheads w=" + std::to_string(w) + " n=" + std::to_string(m_n) +
                  ": chunks keep original positions (no re-positioning)";
    const bool prefill = s.pos0 == 0;
    std::vector<float> packed_reps(detail::packed_keys_size(n_full, d)), dots(n_full + 1);
    for (int h = 0; h < H; ++h) {
      if (n_full > 0)
        detail::pack_keys(&st.reps[static_cast<size_t>(h) * d], n_full, H * d, d,
                          packed_reps.data());
      HeadMask m;
      m.all_blocks = false;
      m.block = w;
      m.n_qblocks = nb;
      m.n_kblocks = nb;
      m.blocks.assign(static_cast<size_t>(nb) * nb, 0);
      bool any_selective = false;
      // Group this call's rows by query block.
      for (int r = 0; r < s.n_query;) {
        const int qb = (s.pos0 + r) / w;
        int r_end = r;
        while (r_end < s.n_query && (s.pos0 + r_end) / w == qb) ++r_end;
        std::vector<uint8_t> on(static_cast<size_t>(qb) + 1, 0);
        std::vector<double> sum_sc(static_cast<size_t>(qb) + 1, 0.0);
        std::vector<int> n_sc(static_cast<size_t>(qb) + 1, 0);
        bool full_row = false;
        for (int rr = r; rr < r_end; ++rr) {
          const int p = s.pos0 + rr;
          std::vector<int> forced, cand;
          if (prefill ? p < m_len : p + 1 < m_len) {
            full_row = true;  // before the selective length: plain causal attention
            continue;
          }
          if (prefill) {
            forced = {0, qb - 1, qb};
            for (int c = 1; c <= qb - 2; ++c) cand.push_back(c);
          } else {
            const int G = (p + 1) / w;  // full chunks, the current token included
            forced = {0, G - 1};
            if ((p + 1) % w != 0) forced.push_back(G);
            for (int c = 1; c <= G - 2; ++c) cand.push_back(c);
          }
          for (int c : forced) {
            if (c >= 0 && c <= qb) on[c] = 1;
          }
          const float* qr = &q_raw[(static_cast<size_t>(rr) * H + h) * d];
          if (n_full > 0) detail::scores_packed_f32(qr, packed_reps.data(), n_full, d, dots.data());
          std::vector<double> cs(cand.size());
          for (size_t i = 0; i < cand.size(); ++i) {
            const double dot = dots[cand[i]];  // un-rotated q . r_c
            cs[i] = dot;
            sum_sc[cand[i]] += dot;
            ++n_sc[cand[i]];
          }
          if (m_merge == LongHeadsMerge::Union) {
            for (int i : topk_indices(cs, m_n - 3)) on[cand[i]] = 1;
          }
          any_selective = true;
        }
        if (m_merge == LongHeadsMerge::Mean) {
          // One choice for the query chunk: top n - 3 chunks by the rows' mean score among the
          // chunks scored for them and not forced (prefill rows of a chunk share candidates).
          std::vector<int> cand;
          std::vector<double> cs;
          for (int c = 0; c <= qb; ++c) {
            if (n_sc[c] > 0 && !on[c]) {
              cand.push_back(c);
              cs.push_back(sum_sc[c] / n_sc[c]);
            }
          }
          for (int i : topk_indices(cs, m_n - 3)) on[cand[i]] = 1;
        }
        if (full_row) std::fill(on.begin(), on.end(), 1);
        for (int c = 0; c <= qb; ++c) m.blocks[static_cast<size_t>(qb) * nb + c] = on[c];
        r = r_end;
      }
      if (!any_selective) m = HeadMask{};
      result.heads[h] = std::move(m);
    }
    return result;
  }

 private:
  struct LayerState {
    int next_pos = 0;
    std::vector<float> reps;       // [n_chunks, H, d] r_c of every full chunk
    std::vector<float> pending_q;  // [rows, H, d] un-rotated queries from n_chunks * w on
    int chunks = 0;                // full chunks with a representation
    int n_chunks() const { return chunks; }
  };

  // Computes r_c for chunk c = st.n_chunks() (full: its w keys are cached and its w queries
  // are the first pending rows), appends it and drops those queries.
  void add_chunk_rep(const LayerContext& ctx, LayerState& st) {
    const AttentionShape& s = ctx.shape;
    const int H = s.n_head, Hkv = s.n_head_kv, d = s.head_dim, w = m_w, g = H / Hkv;
    const int c = st.n_chunks();
    const size_t qrow = static_cast<size_t>(H) * d;
    if (st.pending_q.size() < static_cast<size_t>(w) * qrow) {
      throw_runtime("longheads: missing queries of chunk " + std::to_string(c));
    }
    std::vector<int32_t> local(static_cast<size_t>(w)), neg(static_cast<size_t>(w));
    for (int t = 0; t < w; ++t) {
      local[t] = t;
      neg[t] = -(c * w + t);
    }
    // Keys of the chunk: un-rotate at their absolute positions, re-rotate at t mod w.
    std::vector<float> kl(static_cast<size_t>(w) * Hkv * d);
    std::copy(ctx.k + static_cast<size_t>(c) * w * Hkv * d,
              ctx.k + static_cast<size_t>(c + 1) * w * Hkv * d, kl.begin());
    rope_half_split(kl.data(), w, Hkv, d, neg.data(), m_theta);
    rope_half_split(kl.data(), w, Hkv, d, local.data(), m_theta);
    std::vector<float> ql(st.pending_q.begin(),
                          st.pending_q.begin() + static_cast<ptrdiff_t>(w * qrow));
    rope_half_split(ql.data(), w, H, d, local.data(), m_theta);
    const float scale = 1.0f / std::sqrt(static_cast<float>(d));
    std::vector<float> p(static_cast<size_t>(w)), o(static_cast<size_t>(d)),
        mc(static_cast<size_t>(d)), packed(detail::packed_keys_size(w, d));
    // p = softmax(q . K_loc^T / sqrt(d)) over the chunk's w keys (packed).
    auto softmax_row = [&](const float* q) {
      detail::scores_packed_f32(q, packed.data(), w, d, p.data());
      float mx = -std::numeric_limits<float>::infinity();
      for (int t = 0; t < w; ++t) mx = std::max(mx, p[t] *= scale);
      double sum = 0;
      for (int t = 0; t < w; ++t) sum += (p[t] = std::exp(p[t] - mx));
      for (int t = 0; t < w; ++t) p[t] = static_cast<float>(p[t] / sum);
    };
    const size_t base = st.reps.size();
    st.reps.resize(base + qrow, 0.0f);
    int packed_kv = -1;
    for (int h = 0; h < H; ++h) {
      const int kv = h / g;
      const float* k0 = &kl[static_cast<size_t>(kv) * d];  // key t at k0 + t * Hkv * d
      if (packed_kv != kv) {
        detail::pack_keys(k0, w, Hkv * d, d, packed.data());
        packed_kv = kv;
      }
      std::fill(mc.begin(), mc.end(), 0.0f);
      const float* v0 = ctx.v + (static_cast<size_t>(c) * w * Hkv + kv) * d;
      for (int t = 0; t < w; ++t) {
        softmax_row(&ql[(static_cast<size_t>(t) * H + h) * d]);  // non-causal, as the reference
        detail::weighted_sum_f32(p.data(), v0, Hkv * d, w, d, o.data());
        for (int e = 0; e < d; ++e) mc[e] += o[e] / static_cast<float>(w);
      }
      softmax_row(mc.data());
      detail::weighted_sum_f32(p.data(), k0, Hkv * d, w, d,
                               &st.reps[base + static_cast<size_t>(h) * d]);
    }
    st.pending_q.erase(st.pending_q.begin(),
                       st.pending_q.begin() + static_cast<ptrdiff_t>(w * qrow));
    ++st.chunks;
  }

  int m_w, m_n, m_len;
  LongHeadsMerge m_merge;
  float m_theta;
  std::map<int, LayerState> m_state;  // per layer
};

}  // namespace

std::unique_ptr<PatternPart> make_longheads(int chunk, int atten_length, LongHeadsMerge merge,
                                            float rope_theta) {
  if (chunk < 1 || atten_length % chunk != 0 || atten_length / chunk < 3) {
    throw_usage("pattern longheads: expected atten_length a multiple of w with >= 3 chunks");
  }
  return std::make_unique<LongHeadsPattern>(chunk, atten_length, merge, rope_theta);
}

}  // namespace pattern_detail
}  // namespace attnscope
