// Extras of the KV-cache policies beyond the KvPolicy interface (variant_parts.h): PyramidKV's
// per-layer budget rule and CompressKV's calibration (semantic retrieval heads and layer
// budgets), exposed so views can draw them and tests can inject a calibration.
//
// Semantics shared by every policy (make_kv_policy in variant_parts.h):
// - Decisions are per layer and KV head; a KV head's query group is the contiguous block
//   h / (H / Hkv) of ctx.shape (the engine's ectx). `reduce` (mean|max) aggregates the group.
// - after_prefill compresses the prompt to the budget (prefill attention is untouched).
// - before_decode admits the new key(s), then evicts down to the budget, so a decode row
//   attends exactly `budget` entries. TOVA and Keyformer score with the new row's own query
//   here (TOVA's reference attends budget+1 entries, then drops one); H2O accumulates the
//   probabilities actually used in after_decode and evicts at the next before_decode.
// - Selection only picks among positions still kept: an evicted position never returns.
// - Ties in any top-k go to the lower position.
// - SnapKV, PyramidKV and CompressKV compress once after prefill and append during decode
//   (their budgets then bound the prompt part only); SnapKV's decode_evict re-selects each step.
#pragma once

#include <memory>
#include <vector>

#include "attnscope/model.h"
#include "attnscope/variant_parts.h"

namespace attnscope {

// PyramidKV (KVCache-Factory rule): tokens kept per layer, window included, for a prompt of
// `prompt_len` tokens, average budget `budget`, window `window`, `beta` and `n_layer` layers.
// integer_steps = true follows the reference's integer (floor) arithmetic; false uses real
// steps rounded to nearest (the research note's worked example). Returns [n_layer].
std::vector<int> pyramidkv_layer_budgets(int budget, int window, int beta, int n_layer,
                                         int prompt_len, bool integer_steps);

// Result of CompressKV's offline calibration on one model.
struct CompressKvCalibration {
  int n_layer = 0, n_head = 0;
  // [n_layer * n_head] semantic-retrieval score per query head: mean attention mass the head's
  // query puts on the needle span at answer steps whose token is a needle token.
  std::vector<float> head_scores;
  // [n_layer] normalised SnapKV-eviction output error e_l (sums to 1), empty when uniform.
  std::vector<float> layer_error;
  int n_calibration_tokens = 0;  // tokens of the calibration text actually run
  int n_answer_steps = 0;        // answer steps scored
};

// Runs the model once on a deterministic needle-in-a-haystack text (seeded, <= n_tokens
// tokens, teacher-forced answer) and scores heads; also measures per-layer SnapKV eviction
// error (window, kernel, avg/max pool, average budget) for error-driven budgets.
// Results are cached per (model pointer, parameters). Throws Error(Runtime) when the model's
// tokenizer is missing or the text does not fit.
std::shared_ptr<const CompressKvCalibration> compresskv_calibrate(const Model& model, int n_tokens,
                                                                  int seed, int budget, int window,
                                                                  int kernel, bool max_pool);

// CompressKV layer budgets (window included) from normalised errors e_l:
// b_l = f + round(e_l * (L*B - f*L)), clipped to [f, 3B], then +-1 repair so the sum is L*B;
// f = min(32, B) (the reference's floor 32, lowered for budgets below 32). Returns [L].
std::vector<int> compresskv_layer_budgets(const std::vector<float>& layer_error, int budget);

// A CompressKV policy with a given calibration (tests, or a calibration computed elsewhere).
// `config` is a kv PartConfig named "compresskv" (missing parameters take their defaults).
std::unique_ptr<KvPolicy> make_compresskv_policy(const PartConfig& config,
                                                 std::shared_ptr<const CompressKvCalibration> cal);

}  // namespace attnscope
