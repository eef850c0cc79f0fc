// KV policies that keep a fixed budget at every step (prefill and each decode step): full,
// StreamingLLM, H2O, TOVA, Keyformer and key-norm. Eviction happens in before_decode after the
// new keys are admitted, so the attention of a decode row always sees exactly the budget.
// Selection only ever picks among positions still kept, so an evicted position never returns.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "attnscope/error.h"
#include "kv_policy_common.h"
#include "simd_kernels.h"

namespace attnscope::kvp {

namespace {

struct Geo {
  int H, Hkv, d, g, n_key;
};
Geo geo(const LayerContext& ctx) {
  const AttentionShape& s = ctx.shape;
  return {s.n_head, s.n_head_kv, s.head_dim, s.n_head / s.n_head_kv, s.n_key()};
}

// Accumulates into score[h][j] the causal attention column sums over ctx's query rows
// (positions pos0..pos0+n_query-1) for every query head; `transform`, when set, rewrites the
// scaled logits of (head, query position) before the softmax (Keyformer's Gumbel noise).
// Heads run in parallel (each writes only its own score row); keys are packed once per KV head
// for the single-threaded SIMD score kernel, which avoids BLAS thread contention on small calls.
template <class Transform>
void accumulate_column_sums(const LayerContext& ctx, std::vector<std::vector<double>>& score,
                            Transform transform) {
  const Geo G = geo(ctx);
  const float scale = 1.0f / std::sqrt(static_cast<float>(G.d));
  std::vector<std::vector<float>> packed(static_cast<size_t>(G.Hkv));
  for (int kv = 0; kv < G.Hkv; ++kv) {
    packed[static_cast<size_t>(kv)].resize(detail::packed_keys_size(G.n_key, G.d));
    detail::pack_keys(ctx.k + static_cast<size_t>(kv) * G.d, G.n_key, G.Hkv * G.d, G.d,
                      packed[static_cast<size_t>(kv)].data());
  }
  parallel_for_heads(G.H, [&](int h) {
    const float* pk = packed[static_cast<size_t>(kv_of(ctx, h))].data();
    auto& s = score[static_cast<size_t>(h)];
    std::vector<float> row(static_cast<size_t>(G.n_key));
    for (int r = 0; r < ctx.shape.n_query; ++r) {
      const int pos = ctx.shape.pos0 + r, n = pos + 1;
      detail::scores_packed_f32(ctx.q + (static_cast<size_t>(r) * G.H + h) * G.d, pk, n, G.d,
                                row.data());
      for (int j = 0; j < n; ++j) row[static_cast<size_t>(j)] *= scale;
      transform(h, pos, row.data(), n);
      masked_softmax(row.data(), n, n, nullptr);
      for (int j = 0; j < n; ++j) s[static_cast<size_t>(j)] += row[static_cast<size_t>(j)];
    }
  });
}

// Keeps the last `recent` positions (Recent) plus the `heavy` kept older positions with the
// largest group-reduced score (Scored) per KV head, reduced over the query heads that read it
// (ctx's grouping map); drops the scores of evicted positions.
void select_recent_plus_top(KvDecision& d, std::vector<std::vector<double>>& score, int n,
                            int recent, int heavy, const LayerContext& ctx, GroupReduce reduce) {
  const int Hkv = static_cast<int>(d.reasons.size());
  for (int kv = 0; kv < Hkv; ++kv) {
    auto& r = d.reasons[static_cast<size_t>(kv)];
    const int recent_start = std::max(0, n - recent);
    std::vector<int> candidates;
    for (int j = 0; j < recent_start; ++j)
      if (r[static_cast<size_t>(j)] != KeepReason::Evicted) candidates.push_back(j);
    const std::vector<int> heads = heads_of(ctx, kv);
    const std::vector<double> red = reduce_heads(score, heads, n, reduce);
    const std::vector<int> chosen = top_k(red, candidates, heavy);
    for (int j : candidates) r[static_cast<size_t>(j)] = KeepReason::Evicted;
    for (int j : chosen) r[static_cast<size_t>(j)] = KeepReason::Scored;
    for (int j = recent_start; j < n; ++j) r[static_cast<size_t>(j)] = KeepReason::Recent;
    for (int j = 0; j < n; ++j)
      if (r[static_cast<size_t>(j)] == KeepReason::Evicted)
        for (int h : heads) score[static_cast<size_t>(h)][static_cast<size_t>(j)] = 0.0;
    d.budgets[static_cast<size_t>(kv)] = recent + heavy;
  }
}

// -------------------------------------------------------------------------------------------

class FullPolicy final : public PolicyBase {
 public:
  FullPolicy() : PolicyBase("full") {}
  void after_prefill(const LayerContext& ctx) override { update(checked_decision(ctx, true), ctx); }
  void before_decode(const LayerContext& ctx) override {
    update(checked_decision(ctx, false), ctx);
  }

 private:
  static void update(KvDecision& d, const LayerContext& ctx) {
    admit(d, ctx.shape.n_key(), KeepReason::Recent);
    std::fill(d.budgets.begin(), d.budgets.end(), ctx.shape.n_key());
  }
};

class StreamingPolicy final : public PolicyBase {
 public:
  StreamingPolicy(int budget, int sinks) : PolicyBase("streamingllm"), m_b(budget), m_s(sinks) {}
  void after_prefill(const LayerContext& ctx) override { update(checked_decision(ctx, true), ctx); }
  void before_decode(const LayerContext& ctx) override {
    update(checked_decision(ctx, false), ctx);
  }

 private:
  void update(KvDecision& d, const LayerContext& ctx) const {
    const int n = ctx.shape.n_key();
    const int window = m_b - m_s;
    for (auto& r : d.reasons) {
      r.resize(static_cast<size_t>(n));
      for (int j = 0; j < n; ++j)
        r[static_cast<size_t>(j)] = j < m_s           ? KeepReason::Sink
                                    : j >= n - window ? KeepReason::Recent
                                                      : KeepReason::Evicted;
    }
    std::fill(d.budgets.begin(), d.budgets.end(), m_b);
  }
  int m_b, m_s;
};

class H2oPolicy final : public PolicyBase {
 public:
  H2oPolicy(int budget, int recent, double heavy_ratio, double recent_ratio, GroupReduce reduce)
      : PolicyBase("h2o"),
        m_budget(budget),
        m_recent_param(recent),
        m_heavy_ratio(heavy_ratio),
        m_recent_ratio(recent_ratio),
        m_reduce(reduce) {}

  void after_prefill(const LayerContext& ctx) override {
    KvDecision& d = checked_decision(ctx, true);
    const Geo G = geo(ctx);
    State& st = state(ctx.layer, ctx.config->n_layer);
    if (m_budget > 0) {
      st.recent = m_recent_param > 0 ? std::min(m_recent_param, m_budget) : m_budget / 2;
      st.recent = std::max(1, st.recent);  // the newest token is always kept
      st.heavy = m_budget - st.recent;
    } else {
      // H2O's ratio form: int(ratio * prompt length) each (h2o_hf heavy/recent budgets).
      st.heavy = static_cast<int>(m_heavy_ratio * G.n_key);
      st.recent = std::max(1, static_cast<int>(m_recent_ratio * G.n_key));
    }
    st.score.assign(static_cast<size_t>(G.H), std::vector<double>(static_cast<size_t>(G.n_key)));
    accumulate_column_sums(ctx, st.score, [](int, int, float*, int) {});
    admit(d, G.n_key, KeepReason::Recent);
    select_recent_plus_top(d, st.score, G.n_key, st.recent, st.heavy, ctx, m_reduce);
  }

  void before_decode(const LayerContext& ctx) override {
    KvDecision& d = checked_decision(ctx, false);
    const Geo G = geo(ctx);
    State& st = state(ctx.layer, ctx.config->n_layer);
    for (auto& s : st.score) s.resize(static_cast<size_t>(G.n_key), 0.0);
    admit(d, G.n_key, KeepReason::Recent);
    select_recent_plus_top(d, st.score, G.n_key, st.recent, st.heavy, ctx, m_reduce);
  }

  // probs: [H, n_key] used by the last decode row; accumulated on kept positions.
  void after_decode(const LayerContext& ctx, const float* probs) override {
    const KvDecision& d = decision(ctx.layer);
    const Geo G = geo(ctx);
    State& st = state(ctx.layer, ctx.config->n_layer);
    if (!probs || static_cast<int>(d.reasons[0].size()) != G.n_key ||
        static_cast<int>(st.score.size()) != G.H)
      throw_usage("kv.h2o: after_decode: probabilities do not match the cache");
    for (int h = 0; h < G.H; ++h) {
      const auto& r = d.reasons[static_cast<size_t>(kv_of(ctx, h))];
      auto& s = st.score[static_cast<size_t>(h)];
      for (int j = 0; j < G.n_key; ++j)
        if (r[static_cast<size_t>(j)] != KeepReason::Evicted)
          s[static_cast<size_t>(j)] += probs[static_cast<size_t>(h) * G.n_key + j];
    }
  }

 private:
  struct State {
    std::vector<std::vector<double>> score;  // [H][n_key] accumulated attention
    int heavy = 0, recent = 1;
  };
  State& state(int layer, int n_layer) {
    if (m_state.size() != static_cast<size_t>(n_layer))
      m_state.resize(static_cast<size_t>(n_layer));
    return m_state[static_cast<size_t>(layer)];
  }
  int m_budget, m_recent_param;
  double m_heavy_ratio, m_recent_ratio;
  GroupReduce m_reduce;
  std::vector<State> m_state;
};

class TovaPolicy final : public PolicyBase {
 public:
  TovaPolicy(int budget, GroupReduce reduce) : PolicyBase("tova"), m_k(budget), m_reduce(reduce) {}

  void after_prefill(const LayerContext& ctx) override {
    KvDecision& d = checked_decision(ctx, true);
    admit(d, ctx.shape.n_key(), KeepReason::Scored);
    evict_with_row(d, ctx, ctx.shape.n_query - 1);
  }

  void before_decode(const LayerContext& ctx) override {
    KvDecision& d = checked_decision(ctx, false);
    // Rows one at a time: admit the row's key, then score with the row's query.
    for (int r = 0; r < ctx.shape.n_query; ++r) {
      const int p = ctx.shape.pos0 + r;
      for (auto& rs : d.reasons)
        if (p > 0 && rs[static_cast<size_t>(p - 1)] == KeepReason::Recent)
          rs[static_cast<size_t>(p - 1)] = KeepReason::Scored;
      admit(d, p + 1, KeepReason::Scored);
      evict_with_row(d, ctx, r);
    }
  }

 private:
  // Query row `r` of ctx (absolute position p = pos0 + r) scores every kept key <= p; the key at
  // p is force-kept and the top K-1 others survive, the same set for every KV head.
  void evict_with_row(KvDecision& d, const LayerContext& ctx, int r) const {
    const Geo G = geo(ctx);
    const int p = ctx.shape.pos0 + r, n = p + 1;
    for (auto& rs : d.reasons) rs[static_cast<size_t>(p)] = KeepReason::Recent;
    std::fill(d.budgets.begin(), d.budgets.end(), m_k);
    if (kept_count(d.reasons[0]) <= m_k) return;
    const std::vector<uint8_t> keep = keep_mask(d, 0, n);
    const float scale = 1.0f / std::sqrt(static_cast<float>(G.d));
    std::vector<float> row(static_cast<size_t>(n));
    std::vector<double> score(static_cast<size_t>(n), m_reduce == GroupReduce::Max ? -1.0 : 0.0);
    for (int h = 0; h < G.H; ++h) {
      const size_t kv = static_cast<size_t>(kv_of(ctx, h));
      dot_block(ctx.q + (static_cast<size_t>(r) * G.H + h) * G.d, G.H * G.d, 1, ctx.k + kv * G.d,
                G.Hkv * G.d, n, G.d, scale, row.data());
      masked_softmax(row.data(), n, n, keep.data());
      for (int j = 0; j < n; ++j) {
        auto& s = score[static_cast<size_t>(j)];
        s = m_reduce == GroupReduce::Max ? std::max(s, static_cast<double>(row[j]))
                                         : s + row[j] / G.H;
      }
    }
    std::vector<int> candidates;
    for (int j = 0; j < p; ++j)
      if (keep[static_cast<size_t>(j)]) candidates.push_back(j);
    const std::vector<int> chosen = top_k(score, candidates, m_k - 1);
    for (auto& rs : d.reasons) {
      for (int j : candidates) rs[static_cast<size_t>(j)] = KeepReason::Evicted;
      for (int j : chosen) rs[static_cast<size_t>(j)] = KeepReason::Scored;
    }
  }
  int m_k;
  GroupReduce m_reduce;
};

class KeyformerPolicy final : public PolicyBase {
 public:
  KeyformerPolicy(int budget, double kv_ratio, double recent_ratio, double tau_init,
                  double tau_delta, uint64_t seed, GroupReduce reduce)
      : PolicyBase("keyformer"),
        m_budget(budget),
        m_kv_ratio(kv_ratio),
        m_recent_ratio(recent_ratio),
        m_tau_init(tau_init),
        m_tau_delta(tau_delta),
        m_seed(seed),
        m_reduce(reduce) {}

  void after_prefill(const LayerContext& ctx) override {
    KvDecision& d = checked_decision(ctx, true);
    const Geo G = geo(ctx);
    State& st = state(ctx.layer, ctx.config->n_layer);
    // Budget k = kv% of the prompt, recent w = recent% of k (at least the newest token).
    const int k = m_budget > 0 ? m_budget : std::max(1, static_cast<int>(m_kv_ratio * G.n_key));
    st.recent = std::min(k, std::max(1, static_cast<int>(m_recent_ratio * k)));
    st.heavy = k - st.recent;
    st.step = 0;
    st.score.assign(static_cast<size_t>(G.H), std::vector<double>(static_cast<size_t>(G.n_key)));
    const int layer = ctx.layer;
    const double tau = m_tau_init;
    const float tau_f = static_cast<float>(tau);
    accumulate_column_sums(ctx, st.score, [&](int h, int pos, float* row, int n) {
      // One noise buffer per thread: rows are drawn whole by the vector kernel.
      thread_local std::vector<float> noise;
      noise.resize(static_cast<size_t>(n));
      detail::gumbel_row_f32(gumbel_row_key(m_seed, layer, h, pos), 0, n, noise.data());
      for (int j = 0; j < n; ++j) row[j] = (row[j] + noise[static_cast<size_t>(j)]) / tau_f;
    });
    admit(d, G.n_key, KeepReason::Recent);
    select_recent_plus_top(d, st.score, G.n_key, st.recent, st.heavy, ctx, m_reduce);
  }

  void before_decode(const LayerContext& ctx) override {
    KvDecision& d = checked_decision(ctx, false);
    const Geo G = geo(ctx);
    State& st = state(ctx.layer, ctx.config->n_layer);
    const float scale = 1.0f / std::sqrt(static_cast<float>(G.d));
    for (int r = 0; r < ctx.shape.n_query; ++r) {
      const int p = ctx.shape.pos0 + r, n = p + 1;
      ++st.step;
      const double tau = m_tau_init + st.step * m_tau_delta;
      for (auto& s : st.score) s.resize(static_cast<size_t>(n), 0.0);
      admit(d, n, KeepReason::Recent);
      std::vector<float> row(static_cast<size_t>(n)), noise(static_cast<size_t>(n));
      const float tau_f = static_cast<float>(tau);
      for (int h = 0; h < G.H; ++h) {
        const int kv = kv_of(ctx, h);
        const std::vector<uint8_t> keep = keep_mask(d, kv, n);
        dot_block(ctx.q + (static_cast<size_t>(r) * G.H + h) * G.d, G.H * G.d, 1,
                  ctx.k + static_cast<size_t>(kv) * G.d, G.Hkv * G.d, n, G.d, scale, row.data());
        detail::gumbel_row_f32(gumbel_row_key(m_seed, ctx.layer, h, p), 0, n, noise.data());
        for (int j = 0; j < n; ++j) row[j] = (row[j] + noise[static_cast<size_t>(j)]) / tau_f;
        masked_softmax(row.data(), n, n, keep.data());
        auto& s = st.score[static_cast<size_t>(h)];
        for (int j = 0; j < n; ++j) s[static_cast<size_t>(j)] += row[j];
      }
      select_recent_plus_top(d, st.score, n, st.recent, st.heavy, ctx, m_reduce);
    }
  }

 private:
  struct State {
    std::vector<std::vector<double>> score;  // [H][n_key] accumulated Gumbel-softmax scores
    int heavy = 0, recent = 1, step = 0;
  };
  State& state(int layer, int n_layer) {
    if (m_state.size() != static_cast<size_t>(n_layer))
      m_state.resize(static_cast<size_t>(n_layer));
    return m_state[static_cast<size_t>(layer)];
  }
  int m_budget;
  double m_kv_ratio, m_recent_ratio, m_tau_init, m_tau_delta;
  uint64_t m_seed;
  GroupReduce m_reduce;
  std::vector<State> m_state;
};

class KnormPolicy final : public PolicyBase {
 public:
  KnormPolicy(int budget, int sinks, int window)
      : PolicyBase("knorm"), m_b(budget), m_s(sinks), m_w(window) {}
  void after_prefill(const LayerContext& ctx) override { update(checked_decision(ctx, true), ctx); }
  void before_decode(const LayerContext& ctx) override {
    update(checked_decision(ctx, false), ctx);
  }

 private:
  void update(KvDecision& d, const LayerContext& ctx) const {
    const Geo G = geo(ctx);
    const int n = G.n_key;
    admit(d, n, KeepReason::Scored);
    std::vector<double> score(static_cast<size_t>(n));
    for (int kv = 0; kv < G.Hkv; ++kv) {
      auto& r = d.reasons[static_cast<size_t>(kv)];
      std::vector<int> candidates;
      int fixed = 0;
      for (int j = 0; j < n; ++j) {
        if (j < m_s) {
          r[static_cast<size_t>(j)] = KeepReason::Sink;
          ++fixed;
        } else if (j >= n - m_w) {
          r[static_cast<size_t>(j)] = KeepReason::Recent;
          ++fixed;
        } else if (r[static_cast<size_t>(j)] != KeepReason::Evicted) {
          const float* kj = ctx.k + (static_cast<size_t>(j) * G.Hkv + kv) * G.d;
          double ss = 0.0;
          for (int c = 0; c < G.d; ++c) ss += static_cast<double>(kj[c]) * kj[c];
          score[static_cast<size_t>(j)] = -std::sqrt(ss);  // kvpress Knorm: -||k||
          candidates.push_back(j);
        }
      }
      const std::vector<int> chosen = top_k(score, candidates, m_b - fixed);
      for (int j : candidates) r[static_cast<size_t>(j)] = KeepReason::Evicted;
      for (int j : chosen) r[static_cast<size_t>(j)] = KeepReason::Scored;
      d.budgets[static_cast<size_t>(kv)] = m_b;
    }
  }
  int m_b, m_s, m_w;
};

}  // namespace

std::unique_ptr<KvPolicy> make_full_policy(const Params&) {
  return std::make_unique<FullPolicy>();
}

std::unique_ptr<KvPolicy> make_streaming_policy(const Params& p) {
  const int b = p.get_int("budget"), s = p.get_int("sinks");
  if (b <= s)
    p.fail("budget", "expected more than sinks (" + std::to_string(s) +
                         ") so the newest token stays in the cache, got " + std::to_string(b));
  return std::make_unique<StreamingPolicy>(b, s);
}

std::unique_ptr<KvPolicy> make_h2o_policy(const Params& p) {
  const int b = p.get_int("budget"), r = p.get_int("recent");
  if (b > 0 && r > b) p.fail("recent", "expected at most the budget (" + std::to_string(b) + ")");
  return std::make_unique<H2oPolicy>(b, r, p.get_double("heavy_ratio"),
                                     p.get_double("recent_ratio"), parse_reduce(p));
}

std::unique_ptr<KvPolicy> make_tova_policy(const Params& p) {
  return std::make_unique<TovaPolicy>(p.get_int("budget"), parse_reduce(p));
}

std::unique_ptr<KvPolicy> make_keyformer_policy(const Params& p) {
  return std::make_unique<KeyformerPolicy>(
      p.get_int("budget"), p.get_double("kv_ratio"), p.get_double("recent_ratio"),
      p.get_double("tau_init"), p.get_double("tau_delta"), static_cast<uint64_t>(p.get_int("seed")),
      parse_reduce(p));
}

std::unique_ptr<KvPolicy> make_knorm_policy(const Params& p) {
  const int b = p.get_int("budget"), s = p.get_int("sinks"), w = p.get_int("window");
  if (static_cast<long long>(s) + w > b)
    p.fail("budget", "expected at least sinks + window (" + std::to_string(s + w) + "), got " +
                         std::to_string(b));
  return std::make_unique<KnormPolicy>(b, s, w);
}

}  // namespace attnscope::kvp
