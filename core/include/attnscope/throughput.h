// Throughput harness: prefill and decode speed of the full-attention baseline and of attention
// variants over a sweep of prompt lengths on one backend. What `attnscope-cli bench`, the
// bench/ programs and the GUI's Throughput view report; timings never come from tests.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "attnscope/backend.h"
#include "attnscope/model.h"
#include "attnscope/variant_spec.h"

namespace attnscope {

// One (variant, prompt length) measurement: the best (fastest prefill) of `repeat` runs.
struct ThroughputPoint {
  std::string spec;          // VariantSpec::to_string() (the baseline's canonical text too)
  std::string display_name;  // VariantSpec::display_name(), "baseline" for the baseline
  bool baseline = false;
  int length = 0;        // prompt tokens
  int decode_steps = 0;  // greedy single-token steps after the prompt
  double prefill_seconds = 0;
  double decode_seconds = 0;
  double prefill_tokens_per_second = 0;
  double decode_tokens_per_second = 0;
  // Wall time spent inside attention (between Q/K/V and the attention output, all layers,
  // prefill and decode) in the same run: the part a variant changes.
  double attention_seconds = 0;
  // KV-cache bytes the variant keeps after the last step (kept entries x K and V x d x 4 bytes,
  // summed over layers and attended KV heads); the baseline keeps every entry.
  double kv_cache_bytes = 0;
};

// One sweep on one device. Sweeps of several backends/devices sit side by side in a session.
struct ThroughputResult {
  std::string device;   // Backend::device_name(), e.g. "CPU (OpenBLAS, 2 threads)"
  std::string backend;  // Backend::name(): "cpu" or "cuda"
  std::string model_name;
  std::string model_sha256;
  std::string created_at;  // ISO 8601 UTC
  std::string attnscope_version;
  int repeat = 1;
  std::vector<int> lengths;
  std::vector<ThroughputPoint> points;  // length-major: for each length, baseline then variants
  // The first point of (spec, length), or null. A variant equal to the baseline shares its spec
  // text, so the baseline's point is the one found.
  const ThroughputPoint* point(const std::string& spec, int length) const;
};

struct ThroughputOptions {
  std::vector<int> lengths = {128, 512, 2048};  // each >= 1; length + decode within context
  int decode_steps = 16;
  int repeat = 1;                    // >= 1; the fastest prefill of the repeats is kept
  std::shared_ptr<Backend> backend;  // null = CPU
  // Prompt text tiled to every length (tokenized once with the model's tokenizer); empty = a
  // built-in English prose paragraph.
  std::string text;
  // fraction in [0, 1] over the whole sweep and a stage text ("length 512: kdgqa 2/3").
  std::function<void(double fraction, const std::string& stage)> progress;
  const std::atomic<bool>* cancel = nullptr;  // Error(Runtime) "cancelled" within a layer
};

// Measures the baseline and every variant at every length after one short warm-up run (first
// touch of weights, device uploads). Each run is a fresh InferenceSession (the variant's
// VariantAttention hook installed, recording into a scratch trace without K): prefill of the
// tiled prompt (no BOS), then greedy single-token decode steps. Variants equal to the baseline
// are measured again (without a hook, as run_variants does).
// Throws Error(Usage) for empty/invalid lengths, decode < 0, repeat < 1, a length + decode
// beyond the model's context, a model without a tokenizer, or a variant the model cannot run
// (checked before any timing); Error(Runtime) "cancelled" when *cancel is set (checked between
// runs and within a layer).
ThroughputResult measure_throughput(std::shared_ptr<const Model> model,
                                    const std::vector<VariantSpec>& variants,
                                    const ThroughputOptions& options);

// JSON text of one sweep ({"format": "attnscope-throughput", "schema_version", identities,
// "repeat", "lengths", "points": [...]} with the fields above; numbers round-trip exactly), and
// back. from_json validates every field and throws Error(BadInput) "<where>: <field>: ...".
std::string throughput_to_json(const ThroughputResult& result);
ThroughputResult throughput_from_json(const std::string& json_text, const std::string& where);

}  // namespace attnscope
