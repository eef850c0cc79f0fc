// Grouping parts (which KV head each query head reads): native, MQA/GQA by mean-pooling, and the
// key-driven KDGQA / DGQA and perturbed PGQA rules of the reference repository
// (github.com/zohaib-khan5040/key-driven-gqa, modules/attention/*.py), quirks included; plus the
// registry entries of every grouping part. SQA and MLA simulations live in
// grouping_simulations.cpp.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "attnscope/error.h"
#include "attnscope/variant_parts.h"
#include "attnscope/variant_spec.h"
#include "grouping_parts_internal.h"

namespace attnscope {

namespace grouping_detail {

uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c) {
  SplitMix64 g(a ^ 0xA5A5A5A5DEADBEEFull);
  uint64_t s = g.next();
  SplitMix64 h(s ^ (b * 0x9E3779B97F4A7C15ull));
  s = h.next();
  SplitMix64 k(s ^ (c * 0xC2B2AE3D27D4EB4Full));
  return k.next();
}

double round_half_even(double x) {
  const double f = std::floor(x);
  const double diff = x - f;
  if (diff > 0.5) return f + 1.0;
  if (diff < 0.5) return f;
  return std::fmod(f, 2.0) == 0.0 ? f : f + 1.0;
}

std::vector<float> key_frobenius_norms(const float* k, int n_key, int n_kv, int head_dim) {
  std::vector<double> sq(static_cast<size_t>(n_kv), 0.0);
  for (int t = 0; t < n_key; ++t) {
    for (int j = 0; j < n_kv; ++j) {
      const float* row = k + (static_cast<size_t>(t) * n_kv + j) * head_dim;
      double s = 0.0;
      for (int c = 0; c < head_dim; ++c) s += static_cast<double>(row[c]) * row[c];
      sq[static_cast<size_t>(j)] += s;
    }
  }
  std::vector<float> out(sq.size());
  for (size_t j = 0; j < sq.size(); ++j) out[j] = static_cast<float>(std::sqrt(sq[j]));
  return out;
}

namespace {

std::vector<int> native_allocation(int n_kv, int n_head) {
  return std::vector<int>(static_cast<size_t>(n_kv), n_head / n_kv);
}

int sum_of(const std::vector<int>& a) {
  int s = 0;
  for (int x : a) s += x;
  return s;
}

}  // namespace

std::vector<int> kdgqa_allocation(const std::vector<float>& norms, int n_head) {
  const int n_kv = static_cast<int>(norms.size());
  if (n_kv <= 0 || n_head <= 0 || n_head % n_kv != 0) {
    throw_runtime("kdgqa: expected Hkv > 0 dividing H, got H=" + std::to_string(n_head) +
                  ", Hkv=" + std::to_string(n_kv));
  }
  const float mx = *std::max_element(norms.begin(), norms.end());
  const float mn = *std::min_element(norms.begin(), norms.end());
  // The reference divides by (max - min): equal norms (or a single KV head) give 0/0 = NaN,
  // which torch's .round().int() turns into INT_MIN, and the increment loop then runs ~2^32
  // times. We fall back to the native allocation instead, the only neutral choice.
  if (!(mx > mn) || !std::isfinite(mx) || !std::isfinite(mn))
    return native_allocation(n_kv, n_head);
  // float32 arithmetic in the reference's order, so exact .5 ties round as torch rounds them.
  std::vector<float> nhat(norms.size());
  float total = 0.0f;
  for (size_t j = 0; j < norms.size(); ++j) {
    nhat[j] = (norms[j] - mn) / (mx - mn);
    total += nhat[j];
  }
  std::vector<int> a(norms.size());
  for (size_t j = 0; j < norms.size(); ++j) {
    const float share = nhat[j] / total * static_cast<float>(n_head);
    a[j] = static_cast<int>(round_half_even(static_cast<double>(share)));
  }
  // Repair exactly as the reference: torch.argmax / argmin return the first extremum.
  while (sum_of(a) > n_head) --*std::max_element(a.begin(), a.end());
  while (sum_of(a) < n_head) ++*std::min_element(a.begin(), a.end());
  return a;
}

std::vector<int> dgqa_allocation(const std::vector<float>& weights, int n_head, SplitMix64& rng) {
  const int n_kv = static_cast<int>(weights.size());
  if (n_kv <= 0 || n_head <= 0 || n_head % n_kv != 0) {
    throw_runtime("dgqa: expected Hkv > 0 dividing H, got H=" + std::to_string(n_head) +
                  ", Hkv=" + std::to_string(n_kv));
  }
  float total = 0.0f;
  for (float w : weights) total += w;
  // Zero total (e.g. 'diff' on norms equal to the cache) is 0/0 in the reference: fall back.
  if (!(total > 0.0f) || !std::isfinite(total)) return native_allocation(n_kv, n_head);
  std::vector<int> a(weights.size());
  for (size_t j = 0; j < weights.size(); ++j) {
    const float share = weights[j] / total * static_cast<float>(n_head);
    a[j] = static_cast<int>(round_half_even(static_cast<double>(share)));
  }
  // Random-index repair of the reference; the decrement loop only touches positive entries, so
  // it terminates because the sum exceeds n_head > 0 (some entry is positive).
  while (sum_of(a) > n_head) {
    const int idx = rng.below(n_kv);
    if (a[static_cast<size_t>(idx)] > 0) --a[static_cast<size_t>(idx)];
  }
  while (sum_of(a) < n_head) ++a[static_cast<size_t>(rng.below(n_kv))];
  return a;
}

std::vector<int> contiguous_kv_of_query(const std::vector<int>& alloc, int n_head) {
  std::vector<int> out;
  out.reserve(static_cast<size_t>(n_head));
  for (size_t j = 0; j < alloc.size(); ++j) {
    for (int i = 0; i < alloc[j]; ++i) out.push_back(static_cast<int>(j));
  }
  if (static_cast<int>(out.size()) != n_head) {
    throw_runtime("grouping: allocation sums to " + std::to_string(out.size()) +
                  ", expected H=" + std::to_string(n_head));
  }
  return out;
}

std::vector<float> pool_kv_heads(const float* src, int n_key, int n_kv, int head_dim,
                                 int n_groups) {
  const int per = n_kv / n_groups;
  const float inv = 1.0f / static_cast<float>(per);
  std::vector<float> out(static_cast<size_t>(n_key) * n_groups * head_dim, 0.0f);
  for (int t = 0; t < n_key; ++t) {
    for (int g = 0; g < n_groups; ++g) {
      float* dst = out.data() + (static_cast<size_t>(t) * n_groups + g) * head_dim;
      for (int m = 0; m < per; ++m) {
        const float* s = src + (static_cast<size_t>(t) * n_kv + g * per + m) * head_dim;
        for (int c = 0; c < head_dim; ++c) dst[c] += s[c];
      }
      for (int c = 0; c < head_dim; ++c) dst[c] *= inv;
    }
  }
  return out;
}

std::vector<float> pgqa_noise(const float* o, int rows, int cols, SplitMix64& rng) {
  std::vector<float> noise(static_cast<size_t>(rows) * cols);
  for (auto& x : noise) x = rng.uniform();
  for (int i = 0; i < std::min(rows, cols); ++i) noise[static_cast<size_t>(i) * cols + i] = 0.0f;
  // Row statistics with torch.std's default unbiased estimator (n - 1); a single column has no
  // defined std (NaN in torch), we use 0 for the target and 1 for the draw instead.
  auto stats = [cols](const float* row, double& mean, double& sd) {
    double s = 0.0;
    for (int c = 0; c < cols; ++c) s += row[c];
    mean = s / cols;
    double v = 0.0;
    for (int c = 0; c < cols; ++c) v += (row[c] - mean) * (row[c] - mean);
    sd = cols > 1 ? std::sqrt(v / (cols - 1)) : 0.0;
  };
  for (int r = 0; r < rows; ++r) {
    float* nr = noise.data() + static_cast<size_t>(r) * cols;
    double o_mean = 0, o_sd = 0, n_mean = 0, n_sd = 0;
    stats(o + static_cast<size_t>(r) * cols, o_mean, o_sd);
    stats(nr, n_mean, n_sd);
    if (n_sd == 0.0) n_sd = 1.0;
    for (int c = 0; c < cols; ++c) {
      nr[c] = static_cast<float>((nr[c] - n_mean) / n_sd * o_sd + o_mean);
    }
  }
  return noise;
}

void check_context(const LayerContext& ctx, const char* part) {
  const std::string where = std::string("grouping ") + part;
  if (ctx.config == nullptr || ctx.q == nullptr || ctx.k == nullptr || ctx.v == nullptr) {
    throw_runtime(where + ": layer context without config or q/k/v");
  }
  const ModelConfig& c = *ctx.config;
  const AttentionShape& s = ctx.shape;
  if (s.n_head != c.n_head || s.n_head_kv != c.n_head_kv || s.head_dim != c.head_dim ||
      s.n_head_kv <= 0 || s.n_head % s.n_head_kv != 0 || s.head_dim <= 0 || s.n_query < 1 ||
      s.pos0 < 0 || ctx.layer < 0 || ctx.layer >= c.n_layer) {
    throw_runtime(where + ": layer context shape (layer " + std::to_string(ctx.layer) +
                  ", H=" + std::to_string(s.n_head) + ", Hkv=" + std::to_string(s.n_head_kv) +
                  ", d=" + std::to_string(s.head_dim) + ", rows=" + std::to_string(s.n_query) +
                  ") does not match the model");
  }
}

}  // namespace grouping_detail

namespace {

using namespace grouping_detail;

std::vector<int> native_kv_of_query(int n_head, int n_kv) {
  std::vector<int> out(static_cast<size_t>(n_head));
  const int g = n_head / n_kv;
  for (int h = 0; h < n_head; ++h) out[static_cast<size_t>(h)] = h / g;
  return out;
}

class NativeGrouping : public GroupingPart {
 public:
  GroupingResult group(const LayerContext& ctx) override {
    check_context(ctx, "native");
    GroupingResult r;
    r.n_kv = ctx.shape.n_head_kv;
    r.kv_of_query = native_kv_of_query(ctx.shape.n_head, ctx.shape.n_head_kv);
    return r;
  }
};

// MQA (groups = 1) and GQA-k. Mean-pooling the K/V projection rows (weights and biases) of a
// group gives keys equal to the mean of the group's key activations (the projection is linear).
// The cache holds post-RoPE keys; RoPE is a linear map that depends only on the position, the
// same for every head, so the mean of rotated keys is the rotation of the mean: pooling the
// post-RoPE cache equals pooling the weights and then rotating.
class PooledGrouping : public GroupingPart {
 public:
  PooledGrouping(int groups, const char* name) : m_groups(groups), m_name(name) {}
  GroupingResult group(const LayerContext& ctx) override {
    check_context(ctx, m_name);
    const AttentionShape& s = ctx.shape;
    GroupingResult r;
    r.n_kv = m_groups;
    r.k = pool_kv_heads(ctx.k, s.n_key(), s.n_head_kv, s.head_dim, m_groups);
    r.v = pool_kv_heads(ctx.v, s.n_key(), s.n_head_kv, s.head_dim, m_groups);
    const int g = s.n_head / s.n_head_kv, per = s.n_head_kv / m_groups;
    r.kv_of_query.resize(static_cast<size_t>(s.n_head));
    for (int h = 0; h < s.n_head; ++h) r.kv_of_query[static_cast<size_t>(h)] = (h / g) / per;
    return r;
  }

 private:
  int m_groups;
  const char* m_name;
};

class KdgqaGrouping : public GroupingPart {
 public:
  GroupingResult group(const LayerContext& ctx) override {
    check_context(ctx, "kdgqa");
    const AttentionShape& s = ctx.shape;
    GroupingResult r;
    r.n_kv = s.n_head_kv;
    r.key_norms = key_frobenius_norms(ctx.k, s.n_key(), s.n_head_kv, s.head_dim);
    r.kv_of_query = contiguous_kv_of_query(kdgqa_allocation(r.key_norms, s.n_head), s.n_head);
    return r;
  }
};

// DGQA with per-layer state. The reference's cache buffer starts at zeros, so the first call
// weighs 'diff' by |0 - n| = n and 'ema' by beta * n; we keep that. State restarts at every
// prefill (pos0 == 0) so a run does not depend on what the part saw before.
class DgqaGrouping : public GroupingPart {
 public:
  DgqaGrouping(bool ema, double beta, int window, int every, uint64_t seed)
      : m_ema(ema),
        m_beta(static_cast<float>(beta)),
        m_window(window),
        m_every(every),
        m_seed(seed) {}

  GroupingResult group(const LayerContext& ctx) override {
    check_context(ctx, "dgqa");
    const AttentionShape& s = ctx.shape;
    if (m_layers.size() < static_cast<size_t>(ctx.config->n_layer)) {
      m_layers.resize(static_cast<size_t>(ctx.config->n_layer));
    }
    State& st = m_layers[static_cast<size_t>(ctx.layer)];
    if (ctx.is_prefill() || st.cache.size() != static_cast<size_t>(s.n_head_kv)) {
      st = State{};
      st.cache.assign(static_cast<size_t>(s.n_head_kv), 0.0f);
      st.alloc.assign(static_cast<size_t>(s.n_head_kv), s.n_head / s.n_head_kv);
      st.rng = SplitMix64(mix_seed(m_seed, static_cast<uint64_t>(ctx.layer), 0));
    }
    if (st.calls % m_every == 0) {
      const std::vector<float> n = key_frobenius_norms(ctx.k, s.n_key(), s.n_head_kv, s.head_dim);
      std::vector<float> w(n.size());
      for (size_t j = 0; j < n.size(); ++j) {
        w[j] =
            m_ema ? m_beta * n[j] + (1.0f - m_beta) * st.cache[j] : std::fabs(st.cache[j] - n[j]);
      }
      st.alloc = dgqa_allocation(w, s.n_head, st.rng);
      st.norms = n;
      for (size_t j = 0; j < n.size(); ++j) {
        // Eval (every forward call): cache = current norms. Training-style schedule (every > 1):
        // the reference's update (cache + n) / window_size, which is not an average (quirk kept).
        st.cache[j] = m_every == 1 ? n[j] : (st.cache[j] + n[j]) / static_cast<float>(m_window);
      }
    }
    ++st.calls;
    GroupingResult r;
    r.n_kv = s.n_head_kv;
    r.kv_of_query = contiguous_kv_of_query(st.alloc, s.n_head);
    r.key_norms = st.norms;
    return r;
  }

 private:
  struct State {
    std::vector<float> cache;  // [Hkv]
    std::vector<int> alloc;    // [Hkv]
    std::vector<float> norms;  // [Hkv] of the last recompute
    long long calls = 0;
    SplitMix64 rng{0};
  };
  bool m_ema;
  float m_beta;
  int m_window, m_every;
  uint64_t m_seed;
  std::vector<State> m_layers;
};

// PGQA: native groups; the attention output of each group, flattened to (g, P*d) over the rows
// of this forward call (the whole prompt at prefill, one row per decode step), loses
// sigma * noise. The reference perturbs outputs although the paper text speaks of maps.
class PgqaGrouping : public GroupingPart {
 public:
  PgqaGrouping(double sigma, uint64_t seed) : m_sigma(static_cast<float>(sigma)), m_seed(seed) {}

  GroupingResult group(const LayerContext& ctx) override {
    check_context(ctx, "pgqa");
    GroupingResult r;
    r.n_kv = ctx.shape.n_head_kv;
    r.kv_of_query = native_kv_of_query(ctx.shape.n_head, ctx.shape.n_head_kv);
    return r;
  }

  // out: [n_query, H, d]
  void perturb_output(const LayerContext& ctx, const GroupingResult& groups, float* out) override {
    (void)groups;
    check_context(ctx, "pgqa");
    if (out == nullptr || m_sigma == 0.0f) return;
    const AttentionShape& s = ctx.shape;
    const int g = s.n_head / s.n_head_kv, d = s.head_dim, P = s.n_query, H = s.n_head;
    const int cols = P * d;
    // One stream per (seed, layer, call position): reproducible whatever ran before.
    SplitMix64 rng(
        mix_seed(m_seed, static_cast<uint64_t>(ctx.layer), static_cast<uint64_t>(s.pos0) + 1));
    std::vector<float> o(static_cast<size_t>(g) * cols);
    for (int grp = 0; grp < s.n_head_kv; ++grp) {
      for (int r = 0; r < g; ++r) {
        const int h = grp * g + r;
        for (int p = 0; p < P; ++p) {
          std::copy_n(out + (static_cast<size_t>(p) * H + h) * d, d,
                      o.data() + static_cast<size_t>(r) * cols + static_cast<size_t>(p) * d);
        }
      }
      const std::vector<float> noise = pgqa_noise(o.data(), g, cols, rng);
      for (int r = 0; r < g; ++r) {
        const int h = grp * g + r;
        for (int p = 0; p < P; ++p) {
          float* dst = out + (static_cast<size_t>(p) * H + h) * d;
          const float* nz =
              noise.data() + static_cast<size_t>(r) * cols + static_cast<size_t>(p) * d;
          for (int c = 0; c < d; ++c) dst[c] -= m_sigma * nz[c];
        }
      }
    }
  }

 private:
  float m_sigma;
  uint64_t m_seed;
};

constexpr double kMaxSeed = 2147483647.0;
constexpr const char* kSimulation = "simulation (needs training)";

}  // namespace

std::vector<PartSpec> grouping_part_specs() {
  std::vector<PartSpec> specs;
  specs.push_back({PartKind::Grouping,
                   "native",
                   "Native grouping (as trained)",
                   "training-free",
                   "Each query head h reads its trained KV head h / (H / Hkv); the identity.",
                   {}});
  specs.push_back(
      {PartKind::Grouping,
       "mqa",
       "Multi-query attention by mean-pooling (MQA)",
       kSimulation,
       "All KV heads mean-pooled into one (Ainslie et al. 2023 conversion: exact and training-free "
       "as a structure; the paper's quality needs uptraining, so this shows the raw damage).",
       {}});
  specs.push_back(
      {PartKind::Grouping,
       "gqa",
       "GQA-k by mean-pooling KV heads",
       kSimulation,
       "Contiguous groups of KV heads mean-pooled into `groups` heads; each query head reads the "
       "pooled head of its trained KV head (conversion exact; quality needs uptraining).",
       {int_param("groups", 1, 1, 1024,
                  "pooled KV heads; must divide n_head_kv (SmolLM2: 1 or 3); default 1 (always "
                  "valid, = mqa)")}});
  specs.push_back(
      {PartKind::Grouping,
       "kdgqa",
       "Key-driven GQA (KDGQA)",
       kSimulation,
       "Each forward call, KV heads get query heads in proportion to their min-max normalised key "
       "norms (Frobenius over cached tokens x d), rounding repaired at argmax/argmin, split "
       "contiguously in head order (reference kdgqa.py); equal norms fall back to native. The "
       "allocation is exact; the paper's quality needs training.",
       {}});
  specs.push_back(
      {PartKind::Grouping,
       "dgqa",
       "Dynamic key-driven GQA (DGQA)",
       kSimulation,
       "Allocation from key norms against a per-layer cache of earlier norms ('diff' |cache - n| "
       "or 'ema'), rounding repaired at seeded random indices, contiguous split (reference "
       "dgqa.py; cache starts at zeros as its buffer does, reset at each prefill).",
       {choice_param("kind", "diff", {"diff", "ema"},
                     "weights: diff = |cache - n| (reference default), ema = beta*n + "
                     "(1-beta)*cache"),
        float_param("beta", "0.9", 0.0, 1.0,
                    "ema weight of the current norms (reference get_ratios_ema beta=0.9)"),
        int_param("window", 300, 1, 1000000,
                  "reference training window_size (README example 300); only divides the cache "
                  "update (cache + n) / window when every > 1"),
        int_param("every", 1, 1, 1000000,
                  "recompute the allocation every N forward calls per layer; 1 = the reference's "
                  "eval mode (every call, cache = n)"),
        int_param("seed", 0, 0, kMaxSeed,
                  "seed of the random rounding repair (torch's RNG stream is not reproduced)")}});
  specs.push_back(
      {PartKind::Grouping,
       "pgqa",
       "Perturbed GQA (PGQA)",
       kSimulation,
       "Native groups; each group's attention output, flattened to (g, P*d) over the call's rows, "
       "has uniform noise (diagonal zeroed, standardised, rescaled to each row's mean and std) "
       "subtracted. Quirk kept: the reference code perturbs outputs, the paper text says maps.",
       {float_param("sigma", "1.0", 0.0, 100.0,
                    "scale of the subtracted noise; 1.0 = the reference (pgqa.py), 0 = native"),
        int_param("seed", 0, 0, kMaxSeed, "noise seed (per layer and call position)")}});
  specs.push_back(
      {PartKind::Grouping,
       "sqa",
       "Sparse query attention (SQA), simulated",
       kSimulation,
       "Keeps `heads` query heads and zeroes the others' outputs (as if removed from W_O); SQA "
       "itself is trained with fewer heads, recovery after training is not shown.",
       {int_param("heads", 6, 1, 1024,
                  "query heads kept, 1..H (research notes: SmolLM2 Hq' in {6, 3}); default 6"),
        choice_param("choose", "output", {"output", "weights"},
                     "output = largest mean ||W_O^h o_h|| over the last `calib_rows` prefill rows "
                     "(research notes 4.1); weights = largest ||W_O^h||_F * ||W_Q^h||_F (static "
                     "proxy)"),
        int_param("calib_rows", 64, 1, 1048576,
                  "prefill rows (from the end) whose outputs rank the heads for choose=output")}});
  specs.push_back(
      {PartKind::Grouping,
       "mla",
       "MLA-style low-rank KV (SVD), simulated",
       kSimulation,
       "Pre-RoPE keys and values of each token are projected onto the top-`rank` left singular "
       "subspace of the stacked [W_K; W_V] (2*Hkv*d x D); keys are re-rotated after. Shows the "
       "latent bottleneck only: decoupled RoPE and MLA training are not simulated.",
       {int_param("rank", 64, 1, 65536, "latent rank r, 1..2*Hkv*d (SmolLM2: 384); default 64")}});
  return specs;
}

std::unique_ptr<GroupingPart> make_grouping_part(const PartConfig& config, const Model& model) {
  const ModelConfig& mc = model.config;
  const std::string& name = config.name;
  if (name == "native") return std::make_unique<NativeGrouping>();
  if (name == "mqa") return std::make_unique<PooledGrouping>(1, "mqa");
  if (name == "gqa") {
    const int groups = config.get_int("groups");
    if (groups < 1 || mc.n_head_kv % groups != 0) {
      throw_usage("gqa.groups: expected a divisor of n_head_kv (" + std::to_string(mc.n_head_kv) +
                  "), got " + std::to_string(groups));
    }
    return std::make_unique<PooledGrouping>(groups, "gqa");
  }
  if (name == "kdgqa") return std::make_unique<KdgqaGrouping>();
  if (name == "dgqa") {
    const std::string& kind = config.get_choice("kind");
    if (kind != "diff" && kind != "ema") {
      throw_usage("dgqa.kind: expected diff or ema, got " + kind);
    }
    const int window = config.get_int("window"), every = config.get_int("every");
    if (window < 1 || every < 1) throw_usage("dgqa.window/every: expected integers >= 1");
    return std::make_unique<DgqaGrouping>(kind == "ema", config.get_double("beta"), window, every,
                                          static_cast<uint64_t>(config.get_int("seed")));
  }
  if (name == "pgqa") {
    return std::make_unique<PgqaGrouping>(config.get_double("sigma"),
                                          static_cast<uint64_t>(config.get_int("seed")));
  }
  if (name == "sqa") return make_sqa_part(config, model);
  if (name == "mla") return make_mla_part(config, model);
  throw_usage("grouping '" + name +
              "': unknown part (expected native, mqa, gqa, kdgqa, dgqa, "
              "pgqa, sqa or mla)");
}

}  // namespace attnscope
