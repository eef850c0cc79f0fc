// Quality and head metrics. Quality: next-token distributions of a variant against the
// full-attention baseline. Head metrics: how each head spends its attention (entropy, sinks,
// locality, retrieval), computed from a trace's maps.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
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
  // Optional: polled between heads and rows; when set, Error(Runtime) "cancelled" is thrown.
  const std::atomic<bool>* cancel = nullptr;
  // Optional: fraction of (layer, head) pairs done, called from worker threads, one call at a
  // time and in increasing order.
  std::function<void(double)> progress;
};

// One entry per (layer, head) of the trace, computed from its Q/K through the variant's
// attention (variant_attention_row).
std::vector<HeadMetrics> compute_head_metrics(const Trace& trace, const HeadMetricOptions& options);

// Head-grid badges: which kinds of behaviour a head shows strongly enough to mark; a head may
// carry several. The defaults suit the default HeadMetricOptions (4 sink tokens, window 8) and
// flag a minority of heads per badge on SmolLM2-135M (30 x 9 heads; default model, CPU): on
// resources/texts/prose_lighthouse.txt (421 prompt + 8 decoded tokens) 51 sink, 47 local and 1
// retrieval head (L17H3, score 0.33; the median head scores 0.02, the 90th percentile 0.05); on
// that text repeated twice, where induction heads fire, 35 sink, 40 local and 8 retrieval heads
// (layers 17-23, scores 0.22-0.57).
struct HeadBadgeThresholds {
  double sink_mass = 0.6;        // >= 60% of the mass on the first sink_tokens keys
  double locality = 0.5;         // >= half the mass within locality_window of the query
  double retrieval_score = 0.2;  // >= 0.2 on the tokens after earlier occurrences (4x p90)
};
enum HeadBadge : uint8_t { kBadgeSink = 1, kBadgeLocal = 2, kBadgeRetrieval = 4 };
// Bitwise OR of the HeadBadge values whose metric is >= its threshold (NaN never qualifies).
uint8_t head_badges(const HeadMetrics& metrics, const HeadBadgeThresholds& thresholds = {});

// Sorts by a metric name ("entropy", "sink_mass", "locality", "retrieval_score"), descending;
// Error(Usage) for an unknown name.
void rank_heads(std::vector<HeadMetrics>& metrics, const std::string& by);

}  // namespace attnscope
