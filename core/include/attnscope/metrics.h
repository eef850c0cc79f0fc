// Quality and head metrics. Quality: next-token distributions of a variant against the
// full-attention baseline. Head metrics: how each head spends its attention (entropy, sinks,
// locality, retrieval), computed from a trace's maps.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "attnscope/trace.h"

namespace attnscope {

// logits: [vocab]. KL(softmax(p) || softmax(q)) in nats, computed in double with log-sum-exp.
double kl_divergence_from_logits(std::span<const float> p_logits, std::span<const float> q_logits);
// Index of the largest logit (lowest id on ties).
int32_t argmax(std::span<const float> logits);
// log softmax(logits)[id].
double log_prob_of(std::span<const float> logits, int32_t id);
// Top-k ids with log-probabilities, descending.
TopKDistribution top_k_distribution(std::span<const float> logits, int k);

struct HeadMetrics {
  int layer = 0, head = 0;
  double entropy = 0;    // mean over query rows of the row entropy (nats)
  double sink_mass = 0;  // mean mass on the first `sink_tokens` keys
  double locality = 0;   // mean mass within distance <= window of the query
  // Induction (prefix-matching) score: for query row i, the mass on keys j (1 <= j <= i) with
  // tokens[j-1] == tokens[i], i.e. on the token that followed each earlier occurrence of the
  // current token; averaged over the sampled rows that have at least one such key (0 if none).
  double retrieval_score = 0;
};

struct HeadMetricOptions {
  int sink_tokens = 4;
  int locality_window = 8;
  // Rows used: all when T <= max_rows, else rows floor(r * (T-1) / (max_rows-1)), r < max_rows
  // (evenly spread, first and last included, deterministic). Decode rows (i >= n_prompt) use
  // their step's grouping (group_steps) and keep set (kv_steps) when the trace records them.
  int max_rows = 512;
};

// One entry per (layer, head) of the trace, computed from its Q/K through the variant's
// attention (variant_attention_row).
std::vector<HeadMetrics> compute_head_metrics(const Trace& trace, const HeadMetricOptions& options);

// Sorts by a metric name ("entropy", "sink_mass", "locality", "retrieval_score"), descending;
// Error(Usage) for an unknown name.
void rank_heads(std::vector<HeadMetrics>& metrics, const std::string& by);

}  // namespace attnscope
