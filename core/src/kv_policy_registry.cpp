// The KV-cache policy part of the variant registry (names, parameters, defaults with their
// sources) and the make_kv_policy factory. Policies live in kv_policy_rolling.cpp (full,
// StreamingLLM, H2O, TOVA, Keyformer, key-norm), kv_policy_snapkv.cpp (SnapKV, PyramidKV,
// CompressKV online) and kv_policy_compresskv.cpp (CompressKV calibration).
#include <memory>

#include "attnscope/error.h"
#include "attnscope/kv_policies.h"
#include "attnscope/variant_parts.h"
#include "attnscope/variant_spec.h"
#include "kv_policy_common.h"

namespace attnscope {

namespace {

constexpr double kMaxTokens = 1048576;  // 2^20: far above any context we can run

ParamSpec reduce_param() {
  return choice_param("reduce", "mean", {"mean", "max"},
                      "how the query heads of a KV group are aggregated before selection; "
                      "mean as kvpress and KVCache-Factory");
}

ParamSpec budget_param(int def, const std::string& extra) {
  return int_param("budget", def, 1, kMaxTokens,
                   "tokens kept per layer and KV head, sinks/window included; " + extra);
}

PartSpec kv_part(const std::string& name, const std::string& title, const std::string& label,
                 const std::string& summary, std::vector<ParamSpec> params) {
  PartSpec s;
  s.kind = PartKind::Kv;
  s.name = name;
  s.title = title;
  s.label = label;
  s.summary = summary;
  s.params = std::move(params);
  return s;
}

}  // namespace

std::vector<PartSpec> kv_part_specs() {
  const std::string tf = "training-free";
  std::vector<PartSpec> out;
  out.push_back(kv_part("full", "Full KV cache", tf, "Keeps every position (identity).", {}));
  out.push_back(kv_part(
      "streamingllm", "StreamingLLM (attention sinks + recent window)", tf,
      "Keeps the first `sinks` tokens and the most recent budget-sinks tokens; evicts the oldest "
      "non-sink token. Original key rotations are kept (no pos-shift).",
      {budget_param(512, "recent window = budget - sinks (repo demo uses 4 + 2000)"),
       int_param("sinks", 4, 0, kMaxTokens, "attention-sink tokens always kept; 4 as the paper")}));
  out.push_back(kv_part(
      "h2o", "H2O (heavy hitters + recent)", tf,
      "Scores = causal attention column sums over the prompt, then the attention each decode "
      "step used; keeps the recent tokens plus the top-scored older ones; evicted scores are "
      "dropped.",
      {int_param("budget", 0, 0, kMaxTokens,
                 "total tokens kept; 0 = ratios of the prompt length (paper: 0.1 + 0.1)"),
       int_param("recent", 0, 0, kMaxTokens,
                 "recent tokens kept when budget > 0; 0 = half the budget (real-drop code "
                 "defaults are hh_size=4, recent_size=512)"),
       float_param("heavy_ratio", "0.1", 0, 1,
                   "heavy hitters = int(ratio * prompt) when "
                   "budget = 0; 0.1 per the paper/README"),
       float_param("recent_ratio", "0.1", 0, 1,
                   "recent = int(ratio * prompt) when budget = 0; "
                   "0.1 per the paper/README"),
       reduce_param()}));
  out.push_back(kv_part(
      "tova", "TOVA (token omission via attention)", tf,
      "Keeps the top-K positions by the current query's attention averaged over all heads of "
      "the layer, shared by all KV heads; the newest token is always kept (kvpress prefill "
      "form).",
      {budget_param(512, "TOVA's cache size K"),
       choice_param("reduce", "mean", {"mean", "max"},
                    "aggregation over ALL query heads of the layer; mean as TOVA")}));
  out.push_back(kv_part(
      "snapkv", "SnapKV (observation-window votes)", tf,
      "After prefill: the last `window` queries vote (causal inside the window), votes are "
      "pooled, and the top budget-window positions per KV head are kept plus the window. "
      "Decode appends without eviction (as the paper) unless decode_evict.",
      {budget_param(512,
                    "prompt budget B (repo example 2048; KVCache-Factory 128/2048); no "
                    "compression when the prompt is shorter than B"),
       int_param("window", 32, 1, 4096,
                 "observation window w; 32 per the SnapKV repo (KVCache-Factory 8, kvpress 64)"),
       int_param("kernel", 5, 1, 255, "pooling kernel (odd); 5 per the repo"),
       choice_param("pool", "avg", {"avg", "max"},
                    "avg_pool1d (zero padding counted) or max_pool1d; avg per the repo"),
       choice_param("vote", "sum", {"sum", "mean"},
                    "sum (repo) or mean (kvpress) of window attention; same ranking"),
       reduce_param(),
       bool_param("decode_evict", false,
                  "re-apply the selection at every decode step with the last `window` "
                  "queries (not in the paper)")}));
  out.push_back(kv_part(
      "pyramidkv", "PyramidKV (pyramidal layer budgets)", tf,
      "SnapKV selection with per-layer budgets falling linearly from the lowest to the highest "
      "layer (KVCache-Factory rule, beta); total = layers x budget.",
      {budget_param(128, "average budget B (paper budgets 128 and 2048)"),
       int_param("window", 8, 1, 4096, "window w; 8 per KVCache-Factory (kvpress 64)"),
       int_param("kernel", 7, 1, 255, "pooling kernel (odd); 7 per KVCache-Factory"),
       choice_param("pool", "max", {"avg", "max"}, "pooling; max per KVCache-Factory"),
       int_param("beta", 20, 1, 1000, "min budget = (B - w) / beta; 20 per KVCache-Factory"),
       choice_param("steps", "int", {"int", "real"},
                    "int: the reference's floor arithmetic; real: real-valued steps rounded "
                    "(the research note's worked example)"),
       reduce_param()}));
  out.push_back(kv_part(
      "compresskv", "CompressKV (semantic retrieval heads)", "training-free + calibration",
      "Identifies semantic retrieval heads on a built-in needle-in-a-haystack calibration text; "
      "online, SnapKV votes from the top first_k such heads of each layer (pooled, averaged) "
      "select one set shared by all KV heads; layer budgets from SnapKV eviction error.",
      {budget_param(128, "average budget B (paper 128-2048)"),
       int_param("window", 8, 1, 4096, "window w; 8 per the CompressKV repo"),
       int_param("kernel", 5, 1, 255, "pooling kernel (odd); 5 per the repo"),
       choice_param("pool", "avg", {"avg", "max"}, "pooling; avg per the repo"),
       int_param("first_k", 4, 1, 1024, "retrieval heads voting per layer; 4 per the repo"),
       choice_param("budgets", "error", {"error", "uniform"},
                    "error: b_l from measured SnapKV eviction error (the paper; uniform when the "
                    "calibration prompt is not longer than B); uniform: B for every layer"),
       int_param("calib_tokens", 384, 64, 2048, "length of the calibration text (tokens)"),
       int_param("calib_seed", 0, 0, 1000000,
                 "seed of the calibration text (filler, passkey, "
                 "depth)")}));
  out.push_back(kv_part(
      "keyformer", "Keyformer (Gumbel-noised scores)", tf,
      "Accumulated softmax((z + Gumbel) / tau) scores, tau rising by tau_delta per decode step; "
      "keeps the recent tokens plus the top-scored others; masks AND across steps.",
      {int_param("budget", 0, 0, kMaxTokens, "tokens kept; 0 = kv_ratio x prompt"),
       float_param("kv_ratio", "0.6", 0, 1, "kv cache fraction of the prompt; 60% per the repo"),
       float_param("recent_ratio", "0.3", 0, 1, "recent share of the budget; 30% per the repo"),
       float_param("tau_init", "1.0", 1e-3, 100, "initial temperature; 1.0 per the repo"),
       float_param("tau_delta", "0.01", 0, 10, "temperature increase per decode step; 0.01"),
       int_param("seed", 0, 0, 2147483647, "seed of the Gumbel noise"), reduce_param()}));
  out.push_back(kv_part(
      "knorm", "Key-norm (kvpress Knorm)", tf,
      "Keeps the tokens whose keys have the smallest L2 norm (score -||k||), per KV head, plus "
      "optional sinks and recent window.",
      {budget_param(512, "tokens kept"),
       int_param("sinks", 0, 0, kMaxTokens, "first tokens always kept; 0 as kvpress"),
       int_param("window", 0, 0, kMaxTokens, "recent tokens always kept; 0 as kvpress")}));
  return out;
}

std::unique_ptr<KvPolicy> make_kv_policy(const PartConfig& config, const Model& model) {
  const kvp::Params p(config);
  const std::string& n = config.name;
  if (n == "full") return kvp::make_full_policy(p);
  if (n == "streamingllm") return kvp::make_streaming_policy(p);
  if (n == "h2o") return kvp::make_h2o_policy(p);
  if (n == "tova") return kvp::make_tova_policy(p);
  if (n == "snapkv") return kvp::make_snapkv_policy(p);
  if (n == "pyramidkv") return kvp::make_pyramidkv_policy(p);
  if (n == "keyformer") return kvp::make_keyformer_policy(p);
  if (n == "knorm") return kvp::make_knorm_policy(p);
  if (n == "compresskv") {
    // Validate first so a bad parameter fails before the (seconds long) calibration.
    kvp::validate_compresskv(p);
    const int budget = p.get_int("budget");
    auto cal = compresskv_calibrate(model, p.get_int("calib_tokens"), p.get_int("calib_seed"),
                                    budget, p.get_int("window"), p.get_int("kernel"),
                                    p.get_choice("pool") == "max");
    return make_compresskv_policy(config, std::move(cal));
  }
  throw_usage("kv: unknown policy '" + n + "'");
}

}  // namespace attnscope
