// Runs: the baseline (full attention) and any number of variants on the same tokens, each
// producing a Trace, with quality measured against the baseline position by position.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "attnscope/backend.h"
#include "attnscope/model.h"
#include "attnscope/trace.h"
#include "attnscope/variant_spec.h"

namespace attnscope {

struct RunOptions {
  // Decode steps after the prompt. The tokens decoded are the baseline's greedy continuation,
  // fed identically to every variant (teacher forcing), so distributions compare per position.
  int decode_steps = 0;
  std::shared_ptr<Backend> backend;  // null = CPU
  bool store_qk = true;              // keep per-layer Q/K in traces (needed for maps)
  // fraction in [0, 1] over the whole call, and a short stage text ("variant 2/3: layer 7").
  std::function<void(double fraction, const std::string& stage)> progress;
  const std::atomic<bool>* cancel = nullptr;  // Error(Runtime) "cancelled" within a layer
};

// Returns [baseline, variants...]. Variants equal to the baseline are still run (and must then
// reproduce it exactly). Throws Error(BadInput) for a prompt that does not fit the context.
std::vector<Trace> run_variants(std::shared_ptr<const Model> model,
                                const std::vector<int32_t>& prompt,
                                const std::vector<VariantSpec>& variants,
                                const RunOptions& options);

// Identity of a model for traces (sha256 of its file(s) computed once and cached per path).
ModelIdentity model_identity(const Model& model);

}  // namespace attnscope
