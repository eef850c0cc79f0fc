// Shared machinery of the KV-cache policies: parameter access, decision bookkeeping and the
// numeric kernels (see kv_policy_common.h).
#include "kv_policy_common.h"

#include <cblas.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "attnscope/error.h"
#include "simd_kernels.h"
#include "thread_pool.h"

namespace attnscope::kvp {

namespace {

const PartSpec* find_kv_spec(const std::string& name) {
  static const std::vector<PartSpec> specs = kv_part_specs();
  for (const auto& s : specs)
    if (s.name == name) return &s;
  return nullptr;
}

}  // namespace

Params::Params(const PartConfig& config) : m_part(config.name), m_values(config.params) {
  m_spec = find_kv_spec(config.name);
  if (!m_spec) throw_usage("kv: unknown policy '" + config.name + "'");
  for (const auto& [key, value] : m_values) {
    (void)value;
    bool known = false;
    for (const auto& p : m_spec->params) known = known || p.name == key;
    if (!known) fail(key, "unknown parameter");
  }
}

void Params::fail(const std::string& key, const std::string& what) const {
  throw_usage("kv." + m_part + "." + key + ": " + what);
}

const ParamSpec& Params::spec(const std::string& key) const {
  for (const auto& p : m_spec->params)
    if (p.name == key) return p;
  fail(key, "no such parameter (internal)");
}

std::string Params::text(const std::string& key) const {
  const auto it = m_values.find(key);
  return it != m_values.end() ? it->second : spec(key).default_value;
}

int Params::get_int(const std::string& key) const {
  const ParamSpec& p = spec(key);
  const std::string t = text(key);
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(t.c_str(), &end, 10);
  if (t.empty() || *end != '\0' || errno != 0 || v < p.min || v > p.max)
    fail(key, "expected an integer in [" + std::to_string(static_cast<long long>(p.min)) + ", " +
                  std::to_string(static_cast<long long>(p.max)) + "], got '" + t + "'");
  return static_cast<int>(v);
}

double Params::get_double(const std::string& key) const {
  const ParamSpec& p = spec(key);
  const std::string t = text(key);
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(t.c_str(), &end);
  if (t.empty() || *end != '\0' || errno != 0 || !std::isfinite(v) || v < p.min || v > p.max)
    fail(key, "expected a number in [" + std::to_string(p.min) + ", " + std::to_string(p.max) +
                  "], got '" + t + "'");
  return v;
}

bool Params::get_bool(const std::string& key) const {
  const std::string t = text(key);
  if (t == "true" || t == "1") return true;
  if (t == "false" || t == "0") return false;
  fail(key, "expected true or false, got '" + t + "'");
}

std::string Params::get_choice(const std::string& key) const {
  const ParamSpec& p = spec(key);
  const std::string t = text(key);
  if (std::find(p.choices.begin(), p.choices.end(), t) == p.choices.end()) {
    std::string list;
    for (const auto& c : p.choices) list += (list.empty() ? "" : "|") + c;
    fail(key, "expected one of " + list + ", got '" + t + "'");
  }
  return t;
}

GroupReduce parse_reduce(const Params& params) {
  return params.get_choice("reduce") == "max" ? GroupReduce::Max : GroupReduce::Mean;
}

// ---------------------------------------------------------------------------------------------

const KvDecision& PolicyBase::decision(int layer) const {
  if (layer < 0 || layer >= static_cast<int>(m_layers.size()) ||
      m_layers[static_cast<size_t>(layer)].reasons.empty())
    throw_usage("kv." + m_name + ": no decision for layer " + std::to_string(layer) +
                " (prefill not run)");
  return m_layers[static_cast<size_t>(layer)];
}

KvDecision& PolicyBase::checked_decision(const LayerContext& ctx, bool prefill) {
  const std::string where = "kv." + m_name + ": layer " + std::to_string(ctx.layer);
  if (!ctx.config || ctx.config->n_layer <= 0) throw_usage(where + ": missing model config");
  const AttentionShape& s = ctx.shape;
  if (ctx.layer < 0 || ctx.layer >= ctx.config->n_layer)
    throw_usage(where + ": layer outside [0, " + std::to_string(ctx.config->n_layer) + ")");
  if (s.n_head <= 0 || s.n_head_kv <= 0 || s.head_dim <= 0 || s.n_query <= 0 || s.pos0 < 0 ||
      (!ctx.kv_of_query && s.n_head % s.n_head_kv != 0))
    throw_usage(where + ": invalid attention shape");
  if (ctx.kv_of_query) {
    if (static_cast<int>(ctx.kv_of_query->size()) != s.n_head)
      throw_usage(where + ": kv_of_query has " + std::to_string(ctx.kv_of_query->size()) +
                  " entries, expected " + std::to_string(s.n_head));
    for (int kv : *ctx.kv_of_query)
      if (kv < 0 || kv >= s.n_head_kv)
        throw_usage(where + ": kv_of_query maps to KV head " + std::to_string(kv) +
                    " outside [0, " + std::to_string(s.n_head_kv) + ")");
  }
  if (!ctx.q || !ctx.k) throw_usage(where + ": missing q/k");
  if (prefill != ctx.is_prefill())
    throw_usage(where +
                (prefill ? ": after_prefill needs pos0 == 0" : ": before_decode needs pos0 > 0"));
  if (m_layers.size() != static_cast<size_t>(ctx.config->n_layer))
    m_layers.resize(static_cast<size_t>(ctx.config->n_layer));
  KvDecision& d = m_layers[static_cast<size_t>(ctx.layer)];
  if (prefill) {
    d.reasons.assign(static_cast<size_t>(s.n_head_kv), {});
    d.budgets.assign(static_cast<size_t>(s.n_head_kv), 0);
  } else {
    if (d.reasons.size() != static_cast<size_t>(s.n_head_kv))
      throw_usage(where + ": decode before prefill");
    if (static_cast<int>(d.reasons[0].size()) != s.pos0)
      throw_usage(where + ": decode at position " + std::to_string(s.pos0) +
                  " but the cache holds " + std::to_string(d.reasons[0].size()) + " positions");
  }
  return d;
}

void PolicyBase::admit(KvDecision& d, int n_key, KeepReason reason) {
  for (auto& r : d.reasons)
    if (static_cast<int>(r.size()) < n_key) r.resize(static_cast<size_t>(n_key), reason);
}

int PolicyBase::kept_count(const std::vector<KeepReason>& reasons) {
  int n = 0;
  for (KeepReason r : reasons) n += r != KeepReason::Evicted;
  return n;
}

// ---------------------------------------------------------------------------------------------

void dot_block(const float* q_rows, int q_stride, int n_rows, const float* keys, int k_stride,
               int n_key, int d, float scale, float* out) {
  if (n_rows <= 0 || n_key <= 0) return;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n_rows, n_key, d, scale, q_rows, q_stride,
              keys, k_stride, 0.0f, out, n_key);
}

void masked_softmax(float* row, int n, int n_visible, const uint8_t* keep) {
  const int lim = std::min(n, std::max(0, n_visible));
  float mx = -std::numeric_limits<float>::infinity();
  for (int j = 0; j < lim; ++j)
    if (!keep || keep[j]) mx = std::max(mx, row[j]);
  if (!std::isfinite(mx)) {
    std::fill(row, row + n, 0.0f);
    return;
  }
  double sum = 0.0;
  for (int j = 0; j < lim; ++j) {
    if (keep && !keep[j]) {
      row[j] = 0.0f;
      continue;
    }
    const float e = std::exp(row[j] - mx);
    row[j] = e;
    sum += e;
  }
  std::fill(row + lim, row + n, 0.0f);
  const double inv = 1.0 / sum;
  for (int j = 0; j < lim; ++j) row[j] = static_cast<float>(row[j] * inv);
}

void pool1d(const double* in, int n, int kernel, bool max_pool, double* out) {
  const int half = kernel / 2;
  for (int i = 0; i < n; ++i) {
    const int lo = std::max(0, i - half), hi = std::min(n - 1, i + half);
    if (max_pool) {
      double m = -std::numeric_limits<double>::infinity();
      for (int j = lo; j <= hi; ++j) m = std::max(m, in[j]);
      out[i] = m;
    } else {
      double s = 0.0;
      for (int j = lo; j <= hi; ++j) s += in[j];
      out[i] = s / kernel;  // padded zeros count in the denominator, as torch avg_pool1d
    }
  }
}

std::vector<int> top_k(const std::vector<double>& score, const std::vector<int>& candidates,
                       int k) {
  std::vector<int> c = candidates;
  if (k <= 0) return {};
  if (k < static_cast<int>(c.size())) {
    auto better = [&](int a, int b) {
      const double sa = score[static_cast<size_t>(a)], sb = score[static_cast<size_t>(b)];
      return sa != sb ? sa > sb : a < b;
    };
    std::nth_element(c.begin(), c.begin() + (k - 1), c.end(), better);
    c.resize(static_cast<size_t>(k));
  }
  std::sort(c.begin(), c.end());
  return c;
}

std::vector<double> reduce_group(const std::vector<std::vector<double>>& per_head, int kv, int g,
                                 int n, GroupReduce reduce) {
  std::vector<double> out(static_cast<size_t>(n), reduce == GroupReduce::Max
                                                      ? -std::numeric_limits<double>::infinity()
                                                      : 0.0);
  for (int h = kv * g; h < (kv + 1) * g; ++h) {
    const auto& s = per_head[static_cast<size_t>(h)];
    for (int j = 0; j < n; ++j) {
      const double v = j < static_cast<int>(s.size()) ? s[static_cast<size_t>(j)] : 0.0;
      if (reduce == GroupReduce::Max)
        out[static_cast<size_t>(j)] = std::max(out[static_cast<size_t>(j)], v);
      else
        out[static_cast<size_t>(j)] += v / g;
    }
  }
  return out;
}

std::vector<double> reduce_heads(const std::vector<std::vector<double>>& per_head,
                                 const std::vector<int>& heads, int n, GroupReduce reduce) {
  std::vector<double> out(static_cast<size_t>(n), 0.0);
  if (heads.empty()) {
    for (int j = 0; j < n; ++j) out[static_cast<size_t>(j)] = j;  // recency (see header)
    return out;
  }
  if (reduce == GroupReduce::Max)
    std::fill(out.begin(), out.end(), -std::numeric_limits<double>::infinity());
  const double g = static_cast<double>(heads.size());
  for (int h : heads) {
    const auto& s = per_head[static_cast<size_t>(h)];
    for (int j = 0; j < n; ++j) {
      const double v = j < static_cast<int>(s.size()) ? s[static_cast<size_t>(j)] : 0.0;
      if (reduce == GroupReduce::Max)
        out[static_cast<size_t>(j)] = std::max(out[static_cast<size_t>(j)], v);
      else
        out[static_cast<size_t>(j)] += v / g;
    }
  }
  return out;
}

int kv_of(const LayerContext& ctx, int h) {
  if (ctx.kv_of_query) return (*ctx.kv_of_query)[static_cast<size_t>(h)];
  return h / (ctx.shape.n_head / ctx.shape.n_head_kv);
}

std::vector<int> heads_of(const LayerContext& ctx, int kv) {
  std::vector<int> heads;
  for (int h = 0; h < ctx.shape.n_head; ++h)
    if (kv_of(ctx, h) == kv) heads.push_back(h);
  return heads;
}

std::vector<uint8_t> keep_mask(const KvDecision& d, int kv, int n) {
  std::vector<uint8_t> m(static_cast<size_t>(n), 0);
  const auto& r = d.reasons[static_cast<size_t>(kv)];
  for (int j = 0; j < n && j < static_cast<int>(r.size()); ++j)
    m[static_cast<size_t>(j)] = r[static_cast<size_t>(j)] != KeepReason::Evicted;
  return m;
}

void parallel_for_heads(int n, const std::function<void(int)>& fn) {
  static ThreadPool pool;  // hardware concurrency, shared by every policy
  pool.parallel_for(0, n, 1, [&](int lo, int hi) {
    for (int h = lo; h < hi; ++h) fn(h);
  });
}

namespace {
uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
}  // namespace

uint64_t gumbel_row_key(uint64_t seed, int layer, int head, int query_pos) {
  uint64_t h = splitmix64(seed);
  h = splitmix64(h ^ (static_cast<uint64_t>(static_cast<uint32_t>(layer)) << 32 |
                      static_cast<uint32_t>(head)));
  return splitmix64(h ^ static_cast<uint32_t>(query_pos));
}

double gumbel_at(uint64_t row_key, int key_pos) {
  // The row kernel itself, for one key: every caller sees the bits Keyformer's rows use.
  float g = 0.0f;
  detail::gumbel_row_f32(row_key, key_pos, 1, &g);
  return g;
}

double gumbel_noise(uint64_t seed, int layer, int head, int query_pos, int key_pos) {
  return gumbel_at(gumbel_row_key(seed, layer, head, query_pos), key_pos);
}

}  // namespace attnscope::kvp
