// Passkey retrieval ("needle in a haystack"): a deterministic haystack of filler sentences with a
// pass key sentence at a controlled depth, built to an exact token length, then greedy decoding
// with a variant; accuracy per (depth, length) cell plus a record of every trial.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "attnscope/backend.h"
#include "attnscope/model.h"
#include "attnscope/tokenizer.h"
#include "attnscope/variant_spec.h"

namespace attnscope {

struct NeedleOptions {
  std::vector<int> lengths;    // prompt lengths in tokens (BOS, instruction and question included)
  std::vector<double> depths;  // needle depth as a fraction of the haystack, each in [0, 1]
  int trials = 1;              // trials per (length, depth) cell, each with its own key and filler
  uint64_t seed = 0;
  int decode_budget = 8;             // tokens generated greedily after the question
  std::shared_ptr<Backend> backend;  // null = CPU
  // fraction in [0, 1] over the whole call, and a short stage text ("length 1024 depth 0.5 trial
  // 2/3").
  std::function<void(double fraction, const std::string& stage)> progress;
  const std::atomic<bool>* cancel = nullptr;  // Error(Runtime) "cancelled"
};

// One prompt. The prompt is assembled from separately tokenized pieces, so its length is exactly
// the requested one: [instruction (with BOS when the tokenizer adds it)] [filler up to the needle]
// [needle sentence] [rest of the filler, cut at a token] [question]. The needle starts at the
// filler sentence boundary at or before round(depth * filler_tokens), i.e. at most one sentence
// before the requested depth (the last filler sentence, cut to fit, is never split by the needle,
// so depth 1 puts the needle before that fragment).
struct NeedlePrompt {
  std::vector<int32_t> tokens;  // [length]
  std::string passkey;          // five digits, e.g. "71432"
  int needle_begin = 0;         // token index of the needle sentence's first token
  int needle_end = 0;           // one past its last token
  int haystack_begin = 0;       // first filler token (after the instruction)
  int haystack_tokens = 0;      // filler tokens around the needle (excludes the needle itself)
  double depth = 0;             // requested
  double actual_depth = 0;      // filler tokens before the needle / haystack_tokens
};

// The filler text: `n_sentences` sentences in the classic passkey style ("The grass is green.
// The sky is blue. ..."), varied deterministically by `seed`; never contains a digit.
std::vector<std::string> needle_filler_sentences(uint64_t seed, int n_sentences);

// A five-digit pass key (10000..99999) drawn from `seed`.
std::string needle_passkey(uint64_t seed);

// Builds the prompt for one trial. Throws Error(Usage) when `length` cannot hold the instruction,
// the needle and the question, or depth is outside [0, 1].
NeedlePrompt build_needle_prompt(const Tokenizer& tokenizer, int length, double depth,
                                 uint64_t seed);

struct NeedleTrial {
  int length = 0;
  double depth = 0;
  int trial = 0;
  uint64_t seed = 0;  // seed of this trial's filler and key
  std::string passkey;
  int needle_token = 0;  // NeedlePrompt::needle_begin
  double actual_depth = 0;
  std::vector<int32_t> generated_tokens;
  std::string generated;  // decoded text of generated_tokens
  bool success = false;   // generated contains the passkey digits
  double seconds = 0;
};

struct NeedleCell {
  int length = 0;
  double depth = 0;
  int trials = 0;
  int successes = 0;
  double accuracy() const { return trials > 0 ? static_cast<double>(successes) / trials : 0.0; }
};

struct NeedleResult {
  std::string variant;              // VariantSpec::to_string()
  std::vector<NeedleCell> cells;    // lengths x depths, length-major in the options' order
  std::vector<NeedleTrial> trials;  // every trial, in run order
  double accuracy() const;          // over all trials
  const NeedleCell* cell(int length, double depth) const;  // null if absent
};

// Seed of one trial, derived from the run seed and the cell/trial indices (splitmix64 mixing).
uint64_t needle_trial_seed(uint64_t seed, int length_index, int depth_index, int trial);

// Runs every (length, depth, trial) with the variant applied during prefill and free greedy
// decoding (each variant generates its own continuation). Throws Error(Usage) for empty
// lengths/depths, trials < 1, decode_budget < 1, or length + decode_budget beyond the model's
// context; Error(Usage) when the model has no tokenizer.
NeedleResult run_needle(std::shared_ptr<const Model> model, const VariantSpec& variant,
                        const NeedleOptions& options);

}  // namespace attnscope
