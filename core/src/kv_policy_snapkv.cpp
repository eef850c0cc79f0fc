// SnapKV-family KV policies: SnapKV, PyramidKV and CompressKV's online selection. All compress
// the prompt once after prefill: the last `window` prompt queries vote on the earlier
// positions (causal inside the window), votes are pooled (torch pool1d semantics), and the top
// (layer budget - window) positions are kept with the window. Decode appends (no eviction) as
// the papers do, except SnapKV with decode_evict, which re-applies the selection each step.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "attnscope/error.h"
#include "attnscope/kv_policies.h"
#include "kv_policy_common.h"

namespace attnscope {

std::vector<int> pyramidkv_layer_budgets(int budget, int window, int beta, int n_layer,
                                         int prompt_len, bool integer_steps) {
  if (n_layer <= 0 || budget <= window || window < 1 || beta < 1)
    throw_usage("kv.pyramidkv: expected n_layer > 0, budget > window >= 1, beta >= 1");
  std::vector<int> out(static_cast<size_t>(n_layer), budget);
  const int bw = budget - window;
  // KVCache-Factory: no compression below B tokens, uniform SnapKV below 2(B - w).
  if (prompt_len < budget || prompt_len < 2 * bw) return out;
  int min_num = bw / beta;
  int max_num = 2 * bw - min_num;
  if (max_num >= prompt_len - window) {
    max_num = prompt_len - window;
    min_num = 2 * bw - max_num;
  }
  for (int l = 0; l < n_layer; ++l) {
    int keep = max_num;
    if (n_layer > 1) {
      if (integer_steps) {
        const int steps = (max_num - min_num) / (n_layer - 1);  // Python // on non-negatives
        keep = max_num - l * steps;
      } else {
        const double step = static_cast<double>(max_num - min_num) / (n_layer - 1);
        keep = static_cast<int>(std::lround(max_num - l * step));
      }
    }
    out[static_cast<size_t>(l)] = std::clamp(keep, 0, prompt_len - window) + window;
  }
  return out;
}

std::vector<int> compresskv_layer_budgets(const std::vector<float>& layer_error, int budget) {
  const int L = static_cast<int>(layer_error.size());
  if (L == 0) return {};
  const int floor_b = std::min(32, budget);
  const long long total = static_cast<long long>(L) * budget;
  const double pool = static_cast<double>(total - static_cast<long long>(floor_b) * L);
  std::vector<int> b(static_cast<size_t>(L));
  long long sum = 0;
  for (int l = 0; l < L; ++l) {
    const long long v = floor_b + std::llround(layer_error[static_cast<size_t>(l)] * pool);
    b[static_cast<size_t>(l)] = static_cast<int>(std::clamp<long long>(v, floor_b, 3LL * budget));
    sum += b[static_cast<size_t>(l)];
  }
  // +-1 repair so the layers share exactly L*B: add to the largest-error layers first, take
  // from the smallest-error ones first, one token per layer per pass.
  std::vector<int> order(static_cast<size_t>(L));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int c) {
    return layer_error[static_cast<size_t>(a)] > layer_error[static_cast<size_t>(c)];
  });
  while (sum != total) {
    bool changed = false;
    if (sum < total) {
      for (int l : order)
        if (sum < total && b[static_cast<size_t>(l)] < 3 * budget) {
          ++b[static_cast<size_t>(l)], ++sum, changed = true;
        }
    } else {
      for (auto it = order.rbegin(); it != order.rend(); ++it)
        if (sum > total && b[static_cast<size_t>(*it)] > floor_b) {
          --b[static_cast<size_t>(*it)], --sum, changed = true;
        }
    }
    if (!changed) break;  // unreachable: floor*L <= L*B <= 3B*L
  }
  return b;
}

namespace kvp {

namespace {

struct SnapConfig {
  int budget = 512, window = 32, kernel = 5;
  bool max_pool = false, vote_mean = false, decode_evict = false;
  GroupReduce reduce = GroupReduce::Mean;
};

SnapConfig read_snap(const Params& p, bool has_vote_and_evict) {
  SnapConfig c;
  c.budget = p.get_int("budget");
  c.window = p.get_int("window");
  c.kernel = p.get_int("kernel");
  c.max_pool = p.get_choice("pool") == "max";
  if (has_vote_and_evict) {
    c.vote_mean = p.get_choice("vote") == "mean";
    c.decode_evict = p.get_bool("decode_evict");
  }
  if (c.kernel % 2 == 0) p.fail("kernel", "expected an odd size (torch pool1d with padding k//2)");
  if (c.budget <= c.window)
    p.fail("budget", "expected more than the window (" + std::to_string(c.window) + "), got " +
                         std::to_string(c.budget));
  return c;
}

// Pooled window votes per query head. q_rows: [w, H*d] queries at absolute positions
// qpos0 .. qpos0+w-1; k: [n_key, Hkv, d]; keep: [Hkv][n_key] masks or null (all kept).
// Query head h reads KV head kv_of(ctx, h).
// Returns [H][n_vote] (heads outside `heads` stay empty) for positions j < n_vote.
std::vector<std::vector<double>> pooled_votes(const float* q_rows, int w, int qpos0, const float* k,
                                              int H, int Hkv, int d, int n_key, int n_vote,
                                              const std::vector<std::vector<uint8_t>>* keep,
                                              const std::vector<int>& heads, const SnapConfig& c,
                                              const LayerContext& ctx) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  std::vector<std::vector<double>> out(static_cast<size_t>(H));
  std::vector<float> buf(static_cast<size_t>(w) * n_key);
  std::vector<double> vote(static_cast<size_t>(n_vote));
  for (int h : heads) {
    const int kv = kv_of(ctx, h);
    dot_block(q_rows + static_cast<size_t>(h) * d, H * d, w, k + static_cast<size_t>(kv) * d,
              Hkv * d, n_key, d, scale, buf.data());
    std::fill(vote.begin(), vote.end(), 0.0);
    for (int i = 0; i < w; ++i) {
      float* row = buf.data() + static_cast<size_t>(i) * n_key;
      masked_softmax(row, n_key, qpos0 + i + 1,
                     keep ? (*keep)[static_cast<size_t>(kv)].data() : nullptr);
      for (int j = 0; j < n_vote; ++j) vote[static_cast<size_t>(j)] += row[j];
    }
    if (c.vote_mean)
      for (auto& v : vote) v /= w;
    auto& o = out[static_cast<size_t>(h)];
    o.resize(static_cast<size_t>(n_vote));
    pool1d(vote.data(), n_vote, c.kernel, c.max_pool, o.data());
  }
  return out;
}

// The shared SnapKV machinery; subclasses give the layer budget and how the per-query-head
// pooled votes become one score per KV head.
class SnapFamily : public PolicyBase {
 public:
  SnapFamily(std::string name, SnapConfig c) : PolicyBase(std::move(name)), m_c(c) {}

  void after_prefill(const LayerContext& ctx) override {
    KvDecision& d = checked_decision(ctx, true);
    const AttentionShape& s = ctx.shape;
    const int T = s.n_key(), w = m_c.window;
    check_model(ctx);
    const int b = layer_budget(ctx.layer, ctx.config->n_layer, T);
    admit(d, T, KeepReason::Scored);
    std::fill(d.budgets.begin(), d.budgets.end(), b);
    // Window positions are always kept; when nothing is compressed they still show as window.
    for (auto& r : d.reasons)
      for (int j = std::max(0, T - w); j < T; ++j) r[static_cast<size_t>(j)] = KeepReason::Window;
    if (m_c.decode_evict) {
      auto& qw = qwin(ctx.layer, ctx.config->n_layer);
      const int nw = std::min(w, T);
      qw.assign(ctx.q + static_cast<size_t>(T - nw) * s.n_head * s.head_dim,
                ctx.q + static_cast<size_t>(T) * s.n_head * s.head_dim);
    }
    if (!compresses(T)) return;
    select(d, ctx, ctx.q + static_cast<size_t>(T - w) * s.n_head * s.head_dim, T, b, false);
  }

  void before_decode(const LayerContext& ctx) override {
    KvDecision& d = checked_decision(ctx, false);
    const AttentionShape& s = ctx.shape;
    const int n = s.n_key(), w = m_c.window, row = s.n_head * s.head_dim;
    admit(d, n, KeepReason::Recent);
    if (!m_c.decode_evict) return;
    auto& qw = qwin(ctx.layer, ctx.config->n_layer);
    qw.insert(qw.end(), ctx.q, ctx.q + static_cast<size_t>(s.n_query) * row);
    if (static_cast<int>(qw.size()) > w * row)
      qw.erase(qw.begin(), qw.end() - static_cast<std::ptrdiff_t>(w) * row);
    const int b = d.budgets[0];
    // The last w positions form the window again (decoded tokens included).
    for (auto& r : d.reasons)
      for (int j = std::max(0, n - w); j < n; ++j)
        if (r[static_cast<size_t>(j)] != KeepReason::Evicted)
          r[static_cast<size_t>(j)] = KeepReason::Window;
    if (kept_count(d.reasons[0]) <= b || static_cast<int>(qw.size()) < w * row) return;
    select(d, ctx, qw.data(), n, b, true);
  }

 protected:
  virtual int layer_budget(int layer, int n_layer, int T) const = 0;
  virtual bool compresses(int T) const { return T >= m_c.budget; }
  // Pooled per-query-head votes -> [Hkv][n_vote] scores.
  virtual std::vector<std::vector<double>> kv_scores(
      const LayerContext& ctx, const float* q_rows, int n,
      const std::vector<std::vector<uint8_t>>* keep) const = 0;
  virtual void check_model(const LayerContext&) const {}

  std::vector<std::vector<double>> votes(const LayerContext& ctx, const float* q_rows, int n,
                                         const std::vector<std::vector<uint8_t>>* keep,
                                         const std::vector<int>& heads) const {
    const AttentionShape& s = ctx.shape;
    return pooled_votes(q_rows, m_c.window, n - m_c.window, ctx.k, s.n_head, s.n_head_kv,
                        s.head_dim, n, n - m_c.window, keep, heads, m_c, ctx);
  }

  SnapConfig m_c;

 private:
  // Keeps the top (b - w) kept positions before the window (per KV head) plus the window.
  void select(KvDecision& d, const LayerContext& ctx, const float* q_rows, int n, int b,
              bool masked) {
    const int Hkv = ctx.shape.n_head_kv, w = m_c.window, n_vote = n - w;
    std::vector<std::vector<uint8_t>> keep;
    if (masked)
      for (int kv = 0; kv < Hkv; ++kv) keep.push_back(keep_mask(d, kv, n));
    const auto score = kv_scores(ctx, q_rows, n, masked ? &keep : nullptr);
    for (int kv = 0; kv < Hkv; ++kv) {
      auto& r = d.reasons[static_cast<size_t>(kv)];
      std::vector<int> candidates;
      for (int j = 0; j < n_vote; ++j)
        if (r[static_cast<size_t>(j)] != KeepReason::Evicted) candidates.push_back(j);
      const auto chosen = top_k(score[static_cast<size_t>(kv)], candidates, b - w);
      for (int j : candidates) r[static_cast<size_t>(j)] = KeepReason::Evicted;
      for (int j : chosen) r[static_cast<size_t>(j)] = KeepReason::Scored;
      for (int j = n_vote; j < n; ++j) r[static_cast<size_t>(j)] = KeepReason::Window;
    }
  }
  std::vector<float>& qwin(int layer, int n_layer) {
    if (m_qwin.size() != static_cast<size_t>(n_layer)) m_qwin.resize(static_cast<size_t>(n_layer));
    return m_qwin[static_cast<size_t>(layer)];
  }
  std::vector<std::vector<float>> m_qwin;  // [n_layer][<= w rows, H*d] last queries
};

// Per-KV-head selection from group-reduced pooled votes (kvpress: pool, then mean over the
// group; the original SnapKV selects per query head, which a per-KV-head cache cannot hold).
class SnapKvPolicy : public SnapFamily {
 public:
  using SnapFamily::SnapFamily;

 protected:
  int layer_budget(int, int, int) const override { return m_c.budget; }
  std::vector<std::vector<double>> kv_scores(
      const LayerContext& ctx, const float* q_rows, int n,
      const std::vector<std::vector<uint8_t>>* keep) const override {
    const AttentionShape& s = ctx.shape;
    std::vector<int> heads(static_cast<size_t>(s.n_head));
    std::iota(heads.begin(), heads.end(), 0);
    const auto per_head = votes(ctx, q_rows, n, keep, heads);
    std::vector<std::vector<double>> out;
    for (int kv = 0; kv < s.n_head_kv; ++kv)
      out.push_back(reduce_heads(per_head, heads_of(ctx, kv), n - m_c.window, m_c.reduce));
    return out;
  }
};

class PyramidKvPolicy final : public SnapKvPolicy {
 public:
  PyramidKvPolicy(SnapConfig c, int beta, bool integer_steps)
      : SnapKvPolicy("pyramidkv", c), m_beta(beta), m_integer(integer_steps) {}

 protected:
  int layer_budget(int layer, int n_layer, int T) const override {
    return pyramidkv_layer_budgets(m_c.budget, m_c.window, m_beta, n_layer, T,
                                   m_integer)[static_cast<size_t>(layer)];
  }

 private:
  int m_beta;
  bool m_integer;
};

class CompressKvPolicy final : public SnapFamily {
 public:
  CompressKvPolicy(SnapConfig c, int first_k, bool error_budgets,
                   std::shared_ptr<const CompressKvCalibration> cal)
      : SnapFamily("compresskv", c), m_cal(std::move(cal)) {
    const int L = m_cal->n_layer, H = m_cal->n_head;
    const int k = std::min(first_k, H);
    for (int l = 0; l < L; ++l) {
      std::vector<int> all(static_cast<size_t>(H));
      std::iota(all.begin(), all.end(), 0);
      std::vector<double> sc(static_cast<size_t>(H));
      for (int h = 0; h < H; ++h)
        sc[static_cast<size_t>(h)] = m_cal->head_scores[static_cast<size_t>(l) * H + h];
      m_heads.push_back(top_k(sc, all, k));
    }
    if (error_budgets && static_cast<int>(m_cal->layer_error.size()) == L)
      m_budgets = compresskv_layer_budgets(m_cal->layer_error, c.budget);
    else
      m_budgets.assign(static_cast<size_t>(L), c.budget);
    for (int& b : m_budgets) b = std::max(b, c.window + 1);  // the window plus one scored slot
  }

 protected:
  int layer_budget(int layer, int, int) const override {
    return m_budgets[static_cast<size_t>(layer)];
  }
  bool compresses(int) const override { return true; }  // budget check per layer below
  void check_model(const LayerContext& ctx) const override {
    if (ctx.config->n_layer != m_cal->n_layer || ctx.shape.n_head != m_cal->n_head)
      throw_usage("kv.compresskv: the calibration is for " + std::to_string(m_cal->n_layer) +
                  " layers x " + std::to_string(m_cal->n_head) + " heads, the model has " +
                  std::to_string(ctx.config->n_layer) + " x " + std::to_string(ctx.shape.n_head));
  }
  // Mean of the pooled votes of the layer's retrieval heads, shared by every KV head.
  std::vector<std::vector<double>> kv_scores(
      const LayerContext& ctx, const float* q_rows, int n,
      const std::vector<std::vector<uint8_t>>* keep) const override {
    const auto& heads = m_heads[static_cast<size_t>(ctx.layer)];
    const auto per_head = votes(ctx, q_rows, n, keep, heads);
    std::vector<double> mean(static_cast<size_t>(n - m_c.window), 0.0);
    for (int h : heads)
      for (size_t j = 0; j < mean.size(); ++j)
        mean[j] += per_head[static_cast<size_t>(h)][j] / static_cast<double>(heads.size());
    return std::vector<std::vector<double>>(static_cast<size_t>(ctx.shape.n_head_kv), mean);
  }

 public:
  void after_prefill(const LayerContext& ctx) override {
    check_model(ctx);
    const int T = ctx.shape.n_key();
    const int b = m_budgets[static_cast<size_t>(ctx.layer)];
    if (T >= b) {
      SnapFamily::after_prefill(ctx);
      return;
    }
    // Short prompt for this layer's budget: keep everything (as the reference's early return).
    KvDecision& d = checked_decision(ctx, true);
    admit(d, T, KeepReason::Scored);
    std::fill(d.budgets.begin(), d.budgets.end(), b);
    for (auto& r : d.reasons)
      for (int j = std::max(0, T - m_c.window); j < T; ++j)
        r[static_cast<size_t>(j)] = KeepReason::Window;
  }

 private:
  std::shared_ptr<const CompressKvCalibration> m_cal;
  std::vector<std::vector<int>> m_heads;  // [L] retrieval heads voting in each layer
  std::vector<int> m_budgets;             // [L] window included
};

}  // namespace

std::unique_ptr<KvPolicy> make_snapkv_policy(const Params& p) {
  SnapConfig c = read_snap(p, true);
  c.reduce = parse_reduce(p);
  return std::make_unique<SnapKvPolicy>("snapkv", c);
}

std::unique_ptr<KvPolicy> make_pyramidkv_policy(const Params& p) {
  SnapConfig c = read_snap(p, false);
  c.reduce = parse_reduce(p);
  return std::make_unique<PyramidKvPolicy>(c, p.get_int("beta"), p.get_choice("steps") == "int");
}

void validate_compresskv(const Params& p) {
  (void)read_snap(p, false);
  (void)p.get_int("first_k");
  (void)p.get_choice("budgets");
  (void)p.get_int("calib_tokens");
  (void)p.get_int("calib_seed");
}

}  // namespace kvp

std::unique_ptr<KvPolicy> make_compresskv_policy(const PartConfig& config,
                                                 std::shared_ptr<const CompressKvCalibration> cal) {
  const kvp::Params p(config);
  if (config.name != "compresskv") p.fail("name", "expected compresskv");
  kvp::validate_compresskv(p);
  if (!cal || cal->n_layer <= 0 || cal->n_head <= 0 ||
      cal->head_scores.size() != static_cast<size_t>(cal->n_layer) * cal->n_head)
    throw_usage("kv.compresskv: missing or malformed calibration");
  const kvp::SnapConfig c = kvp::read_snap(p, false);
  return std::make_unique<kvp::CompressKvPolicy>(
      c, p.get_int("first_k"), p.get_choice("budgets") == "error", std::move(cal));
}

}  // namespace attnscope
