// The four orthogonal parts a variant is made of, as interfaces the variant engine composes:
// grouping (which KV head each query head reads), pattern (which query/key pairs are computed),
// positions (how relative positions enter the scores) and KV policy (what the decode-time cache
// keeps under a budget). Each part records its decisions so views can draw them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attnscope/backend.h"
#include "attnscope/model.h"
#include "attnscope/variant_spec.h"

namespace attnscope {

// What a part sees of one layer during one forward call. Positions are absolute.
struct LayerContext {
  const ModelConfig* config = nullptr;
  int layer = 0;
  AttentionShape shape;        // n_query rows at pos0.., n_key = pos0 + n_query cached keys
  const float* q = nullptr;    // [n_query, H, d] post-RoPE (positions as trained)
  const float* k = nullptr;    // [n_key, Hkv, d] post-RoPE, the full (shadow) cache
  const float* v = nullptr;    // [n_key, Hkv, d]
  // [H] KV head read by each query head (the grouping's map, e.g. KDGQA/DGQA's uneven
  // allocation); null = contiguous groups, query head h reads KV head h / (H / Hkv).
  const std::vector<int>* kv_of_query = nullptr;
  bool is_prefill() const { return shape.pos0 == 0; }
};

// ---------------------------------------------------------------------------------------------
// Grouping

struct GroupingResult {
  int n_kv = 0;                  // KV heads attended after the part (pooled count, or Hkv)
  std::vector<float> k, v;       // [n_key, n_kv, d] when the part builds new KV heads (pooling);
                                 // empty = attend the native cache
  std::vector<int> kv_of_query;  // [H] KV head read by each query head
  std::vector<float> key_norms;  // [n_kv] norms the allocation used (KDGQA/DGQA), else empty
  // Query heads whose output is kept, ascending (SQA simulation: the others are zeroed in
  // perturb_output); empty = every query head is active.
  std::vector<int> active_query_heads;
};

class GroupingPart {
 public:
  virtual ~GroupingPart() = default;
  // Called once per layer per forward call. Stateful parts (DGQA) keep their history.
  virtual GroupingResult group(const LayerContext& ctx) = 0;
  // Post-processing of the attention output (PGQA noise). out: [n_query, H, d]. Default: none.
  virtual void perturb_output(const LayerContext& ctx, const GroupingResult& groups, float* out) {
    (void)ctx, (void)groups, (void)out;
  }
};

// ---------------------------------------------------------------------------------------------
// Pattern

// Visibility of keys for one query head. Key j is visible to query i (always with j <= i) iff
//   j < sink_tokens  ||  (window > 0 && i - j < window)  ||  block_on(i / block, j / block)
// where block_on reads `blocks` ([n_qblocks, n_kblocks], row = absolute query block index,
// 1 = computed). all_blocks = true means every block is on (full causal).
struct HeadMask {
  int sink_tokens = 0;
  int window = 0;
  int block = 64;
  bool all_blocks = true;
  int n_qblocks = 0, n_kblocks = 0;
  std::vector<uint8_t> blocks;
  bool visible(int i, int j) const {
    if (j > i) return false;
    if (all_blocks || j < sink_tokens || (window > 0 && i - j < window)) return true;
    const int qb = i / block, kb = j / block;
    return qb < n_qblocks && kb < n_kblocks &&
           blocks[static_cast<size_t>(qb) * n_kblocks + kb] != 0;
  }
};

struct PatternResult {
  std::vector<HeadMask> heads;  // [H]
  std::string note;             // e.g. FlexPrefill's per-head choice "query-aware D=0.03"
  std::vector<float> head_scores;  // [H] optional per-head statistic (FlexPrefill D), else empty
};

class PatternPart {
 public:
  virtual ~PatternPart() = default;
  virtual PatternResult mask(const LayerContext& ctx) = 0;
};

// Exact fraction of causal (i, j) pairs, i in [pos0, pos0 + n_query), that `mask` makes visible.
double mask_density(const HeadMask& mask, int pos0, int n_query);

// ---------------------------------------------------------------------------------------------
// Positions

class PositionPart {
 public:
  virtual ~PositionPart() = default;
  // Relative distance r = i - j (>= 0) as the scores should see it; identity for RoPE as trained.
  virtual int effective_distance(int r) const = 0;
  // STRING's shift S and local window W as resolved for the model (0 = positions as trained),
  // so the engine can fill VariantRowSpec and traces can record them.
  virtual int shift() const { return 0; }
  virtual int window() const { return 0; }
};

// ---------------------------------------------------------------------------------------------
// KV policy (decode-time cache under a budget), per layer and KV head.

enum class GroupReduce { Mean, Max };

// Why a position is in the cache; views colour by it.
enum class KeepReason : uint8_t { Evicted = 0, Sink = 1, Recent = 2, Scored = 3, Window = 4 };

struct KvDecision {
  // [Hkv][n_key] reason per cached position after this step (Evicted = dropped).
  std::vector<std::vector<KeepReason>> reasons;
  // [Hkv] budget applied to this layer (PyramidKV/CompressKV vary it per layer).
  std::vector<int> budgets;
};

class KvPolicy {
 public:
  virtual ~KvPolicy() = default;
  // After the prefill of a layer (ctx.is_prefill()); prefill attention itself is never changed.
  // Policies that score by attention (SnapKV window votes, H2O column sums) recompute the
  // probabilities they need from ctx.q / ctx.k with ops.h attention_row.
  virtual void after_prefill(const LayerContext& ctx) = 0;
  // Before the attention of decode rows (ctx.shape.n_query >= 1, pos0 > 0): the new keys are
  // admitted, then the policy evicts down to its budget.
  virtual void before_decode(const LayerContext& ctx) = 0;
  // After the attention of a decode step: probs: [H, n_key] the probabilities the variant
  // actually used for the last query row (0 on evicted keys), for policies that accumulate.
  virtual void after_decode(const LayerContext& ctx, const float* probs) { (void)ctx, (void)probs; }
  // Current decision for `layer` (reasons over all cached positions so far).
  virtual const KvDecision& decision(int layer) const = 0;
  bool kept(int layer, int kv_head, int pos) const {
    const auto& r = decision(layer).reasons[kv_head];
    return pos < static_cast<int>(r.size()) && r[pos] != KeepReason::Evicted;
  }
};

// ---------------------------------------------------------------------------------------------
// Factories (one per kind) from a validated PartConfig; throw Error(Usage) on an unknown name.
// `model` gives access to weights for parts that need them (MLA SVD, SQA head choice).
std::unique_ptr<GroupingPart> make_grouping_part(const PartConfig& config, const Model& model);
std::unique_ptr<PatternPart> make_pattern_part(const PartConfig& config, const Model& model);
std::unique_ptr<PositionPart> make_position_part(const PartConfig& config, const Model& model);
std::unique_ptr<KvPolicy> make_kv_policy(const PartConfig& config, const Model& model);

}  // namespace attnscope
