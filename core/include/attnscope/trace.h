// Trace: everything a view needs from one Run (model + prompt + variant + backend), without
// the model: tokens, per-layer post-RoPE Q/K to recompute any head's map, what each part
// decided (group allocations, masks, KV keep/evict per decode step with lost attention mass),
// next-token distributions, quality metrics against the baseline, timings and identities.
// Saved as a directory: trace.json (versioned schema) + .npy arrays (trace_io.h).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "attnscope/variant_parts.h"
#include "attnscope/variant_spec.h"

namespace attnscope {

inline constexpr int kTraceSchemaVersion = 1;
inline constexpr int kTraceTopK = 20;  // next-token candidates kept per position

struct ModelIdentity {
  std::string path;
  std::string sha256;        // of the model file (GGUF) or of config.json + shards (HF)
  std::string architecture;
  std::string name;
  int n_layer = 0, n_head = 0, n_head_kv = 0, head_dim = 0, vocab_size = 0;
  float rope_theta = 0;
};

// Next-token distribution at one position: the top kTraceTopK ids with log-probabilities.
struct TopKDistribution {
  std::vector<int32_t> ids;
  std::vector<float> logprobs;
};

// Grouping decision of one layer at one forward call.
struct GroupStep {
  int n_kv = 0;
  std::vector<int> kv_of_query;  // [H]
  std::vector<float> key_norms;  // [n_kv] or empty
  // Query heads whose output was kept, ascending (SQA: the others were zeroed after attention;
  // their maps are still computed, since their attention exists). Empty = every head active.
  std::vector<int> active_query_heads;
};

// KV decision of one layer at one decode step.
struct KvStep {
  int position = 0;                     // absolute position of the decoded token
  std::vector<int> budgets;             // [Hkv]
  std::vector<std::vector<uint8_t>> reasons;  // [Hkv][position + 1], KeepReason values
  std::vector<float> lost_mass;         // [Hkv] full-cache probability on evicted entries,
                                        // averaged over the group's query heads (GroupReduce)
};

// The full-form mask of query position `pos` from a mask_steps entry (its single stored block
// row placed at row pos / block; other rows off, which `pos` never reads).
inline HeadMask step_mask_for_row(const HeadMask& stored, int pos) {
  HeadMask m = stored;
  if (m.all_blocks || m.n_qblocks == 0 || m.block <= 0 || pos < 0) return m;
  const int qb = pos / m.block;
  const size_t nk = static_cast<size_t>(m.n_kblocks);
  m.n_qblocks = qb + 1;
  m.blocks.assign(static_cast<size_t>(qb + 1) * nk, 0);
  for (size_t b = 0; b < nk && b < stored.blocks.size(); ++b)
    m.blocks[static_cast<size_t>(qb) * nk + b] = stored.blocks[b];
  return m;
}

struct Trace {
  int schema_version = kTraceSchemaVersion;
  std::string attnscope_version;
  std::string created_at;  // ISO 8601 UTC
  std::string backend;     // device name
  ModelIdentity model;
  VariantSpec variant;

  std::vector<int32_t> tokens;            // prompt + decoded tokens, [T]
  std::vector<std::string> token_texts;   // [T] decoded text of each token
  int n_prompt = 0;                       // tokens[0 .. n_prompt) were prefilled

  // Per layer, post-RoPE Q [T, H, d] and the K the variant attended [T, n_kv, d] (after grouping:
  // pooled heads for MQA/GQA-k, reconstructed for MLA; else the native cache). Stored float32.
  std::vector<std::vector<float>> q;      // [n_layer]
  std::vector<std::vector<float>> k;      // [n_layer]
  std::vector<int> k_heads;               // [n_layer] n_kv of each layer's k
  // Per layer, the query->KV map used at prefill (DGQA changes over steps: see group_steps).
  std::vector<GroupStep> groups;          // [n_layer]
  std::vector<std::vector<GroupStep>> group_steps;  // [decode step][n_layer], may be empty
  std::vector<std::vector<HeadMask>> masks;          // [n_layer][H] prefill masks
  // Per decode step, the masks the pattern returned for the decoded row (the engine asks the
  // pattern afresh at every step, and blocktopk/longheads choose decode blocks the prefill
  // masks do not hold). To stay O(n_kblocks) per head, only the decoded query's block row is
  // kept: n_qblocks is 0 or 1 and row 0 stands for block position / block (expand with
  // step_mask_for_row). Empty when the pattern is the identity (full causal).
  std::vector<std::vector<std::vector<HeadMask>>> mask_steps;  // [decode step][n_layer][H]
  std::vector<std::vector<float>> mask_density;     // [n_layer][H]
  std::vector<std::string> pattern_notes;           // [n_layer]
  std::vector<std::vector<float>> pattern_scores;   // [n_layer][H] or empty
  int string_shift = 0, string_window = 0;          // STRING S and W (0 = positions as trained)
  std::vector<std::vector<KvStep>> kv_steps;        // [decode step][n_layer], empty without decode

  std::vector<TopKDistribution> next_token;  // [T] distribution after each position

  // Quality against the baseline (empty for the baseline itself).
  std::vector<float> kl_per_position;        // [T] KL(p_full || p_variant), nats
  std::vector<uint8_t> top1_agree;           // [T]
  std::vector<float> layer_rel_error;        // [n_layer] ||o - o_full|| / ||o_full||
  std::map<std::string, double> metrics;     // "kl_mean", "top1_agreement", "perplexity",
                                             // "perplexity_baseline", ...
  std::map<std::string, double> timings;     // "prefill_seconds", "decode_seconds",
                                             // "attention_seconds", "kv_cache_bytes", ...

  int n_layer() const { return static_cast<int>(q.size()); }
  int n_tokens() const { return static_cast<int>(tokens.size()); }
};

}  // namespace attnscope
