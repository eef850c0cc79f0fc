// Private pieces shared by the KV-cache policies (kv_policy_*.cpp): parameter access with the
// registry's defaults, the per-layer decision bookkeeping base class, and the small numeric
// kernels the scorers use (attention logits by BLAS, masked softmax, torch-style pool1d,
// deterministic top-k).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "attnscope/variant_parts.h"
#include "attnscope/variant_spec.h"

namespace attnscope::kvp {

// Reads a kv part's parameters: the value in `config.params` when present, else the default
// from kv_part_specs(). Malformed text or a value outside the spec's range throws Error(Usage)
// "kv.<part>.<param>: expected ...".
class Params {
 public:
  explicit Params(const PartConfig& config);
  int get_int(const std::string& key) const;
  double get_double(const std::string& key) const;
  bool get_bool(const std::string& key) const;
  std::string get_choice(const std::string& key) const;
  const std::string& part() const { return m_part; }
  [[noreturn]] void fail(const std::string& key, const std::string& what) const;

 private:
  std::string text(const std::string& key) const;
  const ParamSpec& spec(const std::string& key) const;
  std::string m_part;
  const PartSpec* m_spec = nullptr;
  std::map<std::string, std::string> m_values;
};

GroupReduce parse_reduce(const Params& params);

// Per-layer decisions and the shape checks every policy needs.
class PolicyBase : public KvPolicy {
 public:
  explicit PolicyBase(std::string name) : m_name(std::move(name)) {}
  const KvDecision& decision(int layer) const override;

 protected:
  // Validates ctx (config, layer, shape, pointers, and for decode that pos0 continues the
  // cache this policy has seen) and returns the layer's decision, resized to n_layer layers.
  KvDecision& checked_decision(const LayerContext& ctx, bool prefill);
  // Appends positions up to n_key to every KV head with `reason`.
  static void admit(KvDecision& d, int n_key, KeepReason reason);
  static int kept_count(const std::vector<KeepReason>& reasons);
  const std::string& name() const { return m_name; }

  std::string m_name;
  std::vector<KvDecision> m_layers;  // [n_layer]
};

// out: [n_rows, n_key] = (q row r · key j) * scale. q_rows: [n_rows, q_stride] with the head's
// vector at offset 0 of each row; keys: [n_key, k_stride] likewise; d = head_dim. BLAS sgemm.
void dot_block(const float* q_rows, int q_stride, int n_rows, const float* keys, int k_stride,
               int n_key, int d, float scale, float* out);

// row: [n] logits replaced by probabilities over entries j < n_visible with keep[j] != 0
// (keep may be null = all); every other entry becomes 0. Double-accumulated normaliser.
// A row with no visible entry becomes all zeros.
void masked_softmax(float* row, int n, int n_visible, const uint8_t* keep);

// torch pool1d with stride 1 and padding kernel/2 on an odd kernel: avg counts the zero
// padding in the denominator (count_include_pad=True); max ignores the padding.
// in, out: [n] (out must not alias in).
void pool1d(const double* in, int n, int kernel, bool max_pool, double* out);

// The `k` candidates with the largest score, ties to the lower position; returned ascending.
// score: indexed by position; candidates: positions.
std::vector<int> top_k(const std::vector<double>& score, const std::vector<int>& candidates, int k);

// Reduce [H][n] per-query-head scores over the query heads of KV head `kv` (group size g):
// mean or max. Returns [n].
std::vector<double> reduce_group(const std::vector<std::vector<double>>& per_head, int kv, int g,
                                 int n, GroupReduce reduce);
// The same over an explicit list of query heads (those reading the KV head, see heads_of).
// A KV head that no query head reads gets score j at position j, so a top-k over it keeps the
// most recent candidates (nothing attends it, so recency is the only signal left).
std::vector<double> reduce_heads(const std::vector<std::vector<double>>& per_head,
                                 const std::vector<int>& heads, int n, GroupReduce reduce);

// KV head read by query head h: (*ctx.kv_of_query)[h] when the engine set a grouping map,
// else contiguous groups h / (H / Hkv).
int kv_of(const LayerContext& ctx, int h);
// Query heads reading KV head `kv` (ascending; may be empty under a non-contiguous map).
std::vector<int> heads_of(const LayerContext& ctx, int kv);

// The keep mask [n] of KV head `kv` (1 = kept).
std::vector<uint8_t> keep_mask(const KvDecision& d, int kv, int n);

// Runs fn(h) for h in [0, n) on a shared worker pool (the caller takes part). fn must not call
// parallel_for_heads itself.
void parallel_for_heads(int n, const std::function<void(int)>& fn);

// Deterministic Gumbel(0,1) draw for (seed, layer, head, query position, key position):
// -log(-log(U)) with U from a counter-based hash, so results do not depend on call order.
double gumbel_noise(uint64_t seed, int layer, int head, int query_pos, int key_pos);
// The same draw in two parts, so a row of keys hashes its (seed, layer, head, query) once:
// gumbel_noise(...) == gumbel_at(gumbel_row_key(seed, layer, head, query_pos), key_pos).
uint64_t gumbel_row_key(uint64_t seed, int layer, int head, int query_pos);
double gumbel_at(uint64_t row_key, int key_pos);

}  // namespace attnscope::kvp

namespace attnscope::kvp {

// Family constructors (defined in kv_policy_rolling.cpp and kv_policy_snapkv.cpp).
std::unique_ptr<KvPolicy> make_full_policy(const Params& p);
std::unique_ptr<KvPolicy> make_streaming_policy(const Params& p);
std::unique_ptr<KvPolicy> make_h2o_policy(const Params& p);
std::unique_ptr<KvPolicy> make_tova_policy(const Params& p);
std::unique_ptr<KvPolicy> make_keyformer_policy(const Params& p);
std::unique_ptr<KvPolicy> make_knorm_policy(const Params& p);
std::unique_ptr<KvPolicy> make_snapkv_policy(const Params& p);
std::unique_ptr<KvPolicy> make_pyramidkv_policy(const Params& p);
// Throws Error(Usage) on an inconsistent compresskv parameter set (before calibrating).
void validate_compresskv(const Params& p);

}  // namespace attnscope::kvp
