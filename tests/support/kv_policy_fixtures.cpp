// Fixtures shared by the KV-cache policy tests: hand-made Q/K, reference attention, set helpers.
#include "kv_policy_fixtures.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>

#include "attnscope/variant_spec.h"

namespace attnscope::test {

std::string show(const PositionSet& s) {
  std::string out = "{";
  for (int j : s) out += std::to_string(j) + ",";
  return out + "}";
}

std::vector<float> random_tensor(size_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>((rng() / 4294967296.0 * 2.0 - 1.0) * scale);
  return v;
}

PositionSet range(int lo, int hi) {
  PositionSet s;
  for (int j = lo; j < hi; ++j) s.insert(j);
  return s;
}

PositionSet unite(PositionSet a, const PositionSet& b) {
  a.insert(b.begin(), b.end());
  return a;
}

PositionSet pick_top(const std::map<int, double>& score, const PositionSet& cands, int k) {
  std::vector<int> v(cands.begin(), cands.end());
  std::sort(v.begin(), v.end(), [&](int a, int b) {
    const double sa = score.at(a), sb = score.at(b);
    return sa != sb ? sa > sb : a < b;
  });
  if (k < static_cast<int>(v.size())) v.resize(static_cast<size_t>(std::max(0, k)));
  return PositionSet(v.begin(), v.end());
}

PositionSet kept_set(const KvPolicy& p, int layer, int kv) {
  PositionSet s;
  const auto& r = p.decision(layer).reasons[static_cast<size_t>(kv)];
  for (size_t j = 0; j < r.size(); ++j)
    if (r[j] != KeepReason::Evicted) s.insert(static_cast<int>(j));
  return s;
}

std::unique_ptr<KvPolicy> make_policy(const std::string& name,
                                      std::map<std::string, std::string> params) {
  static const Model dummy{};  // the non-calibrated policies never read the model
  PartConfig c;
  c.name = name;
  c.params = std::move(params);
  return make_kv_policy(c, dummy);
}

KvQk::KvQk(int n, uint32_t seed, int heads, int kv_heads, int dim, int n_layer,
           const std::vector<int>* map)
    : n_total(n), n_head(heads), n_head_kv(kv_heads), head_dim(dim), kv_of_query(map) {
  q = random_tensor(static_cast<size_t>(n_total) * n_head * head_dim, seed, 2.0f);
  k = random_tensor(static_cast<size_t>(n_total) * n_head_kv * head_dim, seed + 1000, 1.5f);
  cfg.n_layer = n_layer;
  cfg.n_head = n_head;
  cfg.n_head_kv = n_head_kv;
  cfg.head_dim = head_dim;
}

int KvQk::kv_of(int h) const {
  return kv_of_query ? (*kv_of_query)[static_cast<size_t>(h)] : h / (n_head / n_head_kv);
}

LayerContext KvQk::prefill(int T, int layer) const {
  LayerContext c;
  c.config = &cfg;
  c.layer = layer;
  c.shape = {T, 0, n_head, n_head_kv, head_dim};
  c.q = q.data();
  c.k = k.data();
  c.v = k.data();
  c.kv_of_query = kv_of_query;
  return c;
}

LayerContext KvQk::decode(int pos, int layer) const {
  LayerContext c = prefill(1, layer);
  c.shape.pos0 = pos;
  c.q = q.data() + static_cast<size_t>(pos) * n_head * head_dim;
  return c;
}

std::vector<double> KvQk::probs(int pos, int h, const PositionSet* keep) const {
  const int kv = kv_of(h);
  std::vector<double> logit(static_cast<size_t>(pos) + 1, -INFINITY), p(logit.size(), 0.0);
  double mx = -INFINITY;
  for (int j = 0; j <= pos; ++j) {
    if (keep && !keep->count(j)) continue;
    double s = 0;
    for (int c = 0; c < head_dim; ++c)
      s += static_cast<double>(q[(static_cast<size_t>(pos) * n_head + h) * head_dim + c]) *
           k[(static_cast<size_t>(j) * n_head_kv + kv) * head_dim + c];
    logit[static_cast<size_t>(j)] = s / std::sqrt(static_cast<double>(head_dim));
    mx = std::max(mx, logit[static_cast<size_t>(j)]);
  }
  double z = 0;
  for (int j = 0; j <= pos; ++j)
    if (std::isfinite(logit[static_cast<size_t>(j)]))
      z += std::exp(logit[static_cast<size_t>(j)] - mx);
  for (int j = 0; j <= pos; ++j)
    if (std::isfinite(logit[static_cast<size_t>(j)]))
      p[static_cast<size_t>(j)] = std::exp(logit[static_cast<size_t>(j)] - mx) / z;
  return p;
}

std::vector<float> used_probs(const KvQk& data, const KvPolicy& p, int pos, int layer) {
  std::vector<float> out(static_cast<size_t>(data.n_head) * (pos + 1));
  for (int h = 0; h < data.n_head; ++h) {
    const PositionSet keep = kept_set(p, layer, data.kv_of(h));
    const auto pr = data.probs(pos, h, &keep);
    for (int j = 0; j <= pos; ++j)
      out[static_cast<size_t>(h) * (pos + 1) + j] = static_cast<float>(pr[static_cast<size_t>(j)]);
  }
  return out;
}

}  // namespace attnscope::test
