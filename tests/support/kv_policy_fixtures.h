// Fixtures shared by the KV-cache policy tests: hand-made Q/K of any head layout (contiguous
// groups or an explicit query-to-KV map), their double-precision reference attention, and small
// helpers on sets of kept positions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "attnscope/kv_policies.h"
#include "attnscope/model.h"
#include "attnscope/variant_parts.h"

namespace attnscope::test {

using PositionSet = std::set<int>;

// "{a,b,c,}" for failure messages.
std::string show(const PositionSet& s);

// Deterministic uniform values in [-scale, scale] (raw mt19937 output: portable).
std::vector<float> random_tensor(size_t n, uint32_t seed, float scale);

// {lo, ..., hi - 1}.
PositionSet range(int lo, int hi);
PositionSet unite(PositionSet a, const PositionSet& b);

// Top `k` of `cands` by score (larger first, ties to the lower position), by full sort.
PositionSet pick_top(const std::map<int, double>& score, const PositionSet& cands, int k);

// Positions of KV head `kv` in `layer` that the policy's current decision does not evict.
PositionSet kept_set(const KvPolicy& p, int layer, int kv);

// make_kv_policy over an empty model (the non-calibrated policies never read it).
std::unique_ptr<KvPolicy> make_policy(const std::string& name,
                                      std::map<std::string, std::string> params);

// Hand-made queries and keys for `n_total` positions: q: [n_total, n_head, head_dim] uniform in
// [-2, 2] from `seed`, k: [n_total, n_head_kv, head_dim] uniform in [-1.5, 1.5] from seed + 1000
// (k also serves as v). Query head h reads KV head (*kv_of_query)[h] when a map is given (it must
// outlive this object), else h / (n_head / n_head_kv). Not copyable: contexts point into it.
struct KvQk {
  KvQk(int n_total, uint32_t seed, int n_head, int n_head_kv, int head_dim, int n_layer,
       const std::vector<int>* kv_of_query = nullptr);
  KvQk(const KvQk&) = delete;
  KvQk& operator=(const KvQk&) = delete;

  int kv_of(int h) const;
  // Prefill of positions [0, T) of `layer`.
  LayerContext prefill(int T, int layer = 0) const;
  // One decode step at position `pos` of `layer`.
  LayerContext decode(int pos, int layer = 0) const;
  // Reference attention of query position `pos`, head h, over keys j <= pos of KV head kv_of(h)
  // that are in `keep` (null = all), in double. Returns [pos + 1], 0 on keys left out.
  std::vector<double> probs(int pos, int h, const PositionSet* keep) const;

  int n_total, n_head, n_head_kv, head_dim;
  const std::vector<int>* kv_of_query;
  std::vector<float> q, k;  // [n_total, n_head, head_dim], [n_total, n_head_kv, head_dim]
  ModelConfig cfg;
};

// Probabilities a variant would use at decode of position `pos` in `layer` (float, each head over
// its KV head's kept keys, 0 on evicted keys), for after_decode. Returns [n_head, pos + 1].
std::vector<float> used_probs(const KvQk& data, const KvPolicy& p, int pos, int layer = 0);

}  // namespace attnscope::test
