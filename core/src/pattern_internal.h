// Private pieces of the pattern parts (pattern_parts.cpp, blocktopk.cpp, flexprefill.cpp,
// longheads.cpp): parameter defaults shared by the registry and the factories, parameter
// readers with range checks, the concrete part constructors, and the selection rules exposed
// so unit tests can check them against hand computations.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attnscope/variant_parts.h"
#include "attnscope/variant_spec.h"

namespace attnscope::pattern_detail {

// ---- defaults (the registry's default_value strings are built from these) ----
inline constexpr int kWindowDefault = 256;          // sliding window w (SmolLM2-sized runs)
inline constexpr int kSinkTokensDefault = 4;        // StreamingLLM: 4 attention sinks
inline constexpr int kHybridEveryDefault = 4;       // RNoPE-SWA 3:1 -> layers 3, 7, 11, ...
inline constexpr int kBlockTopkBlockDefault = 64;   // NSA selection block l'
inline constexpr int kBlockTopkKDefault = 16;       // NSA n = 16 selected blocks
inline constexpr int kBlockTopkInitDefault = 1;     // NSA: 1 initial block
inline constexpr int kBlockTopkLocalDefault = 2;    // NSA: 2 local blocks
inline constexpr int kFlexBlockDefault = 64;        // notes: B = 32 or 64 for SmolLM2 prompts
inline constexpr double kFlexGammaDefault = 0.9;    // FlexPrefill README example
inline constexpr double kFlexTauDefault = 0.1;      // README and eval scripts
inline constexpr int kFlexMinBudgetDefault = 512;   // README example
inline constexpr int kFlexBudgetDivDefault = 128;   // reference code: token count // 128
inline constexpr int kLongHeadsChunkDefault = 64;   // notes: w = 64-128 for SmolLM2
inline constexpr int kLongHeadsAttenDefault = 512;  // <= SmolLM2 trained length
inline constexpr int kMaxTokens = 1048576;          // upper bound of token-count parameters

// ---- parameter readers: value from config.params, else `fallback`; throw Error(Usage)
// "pattern <part>.<key>: expected ..." when out of range or malformed ----
int param_int(const PartConfig& config, const char* kind, const char* key, int fallback, int lo,
              int hi);
double param_double(const PartConfig& config, const char* kind, const char* key, double fallback,
                    double lo, double hi);
std::string param_choice(const PartConfig& config, const char* kind, const char* key,
                         const std::string& fallback, const std::vector<std::string>& choices);
// Integers separated by '+' or ','; empty text = empty list.
std::vector<int> param_int_list(const PartConfig& config, const char* kind, const char* key, int lo,
                                int hi);

// ---- concrete parts ----
std::unique_ptr<PatternPart> make_blocktopk(int block, int k, int init, int local, int window);
struct FlexPrefillParams {
  double gamma = kFlexGammaDefault;
  double tau = kFlexTauDefault;
  int block = kFlexBlockDefault;
  int min_budget = kFlexMinBudgetDefault;  // tokens; 0 = none (reference: None -> 1 token)
  int max_budget = 0;                      // tokens; 0 = none
  int budget_div = kFlexBudgetDivDefault;  // vertical/slash token count -> blocks divisor; 0 = B
};
std::unique_ptr<PatternPart> make_flexprefill(const FlexPrefillParams& params);
enum class LongHeadsMerge { Mean, Union };
std::unique_ptr<PatternPart> make_longheads(int chunk, int atten_length, LongHeadsMerge merge,
                                            float rope_theta);

// ---- selection rules (exposed for tests) ----

// NSA-style selection for query block `qb`: blocks 0..init-1 and qb-local+1..qb are forced
// (clipped to [0, qb]); the remaining k - |forced| slots take the highest `scores` among the
// other blocks 0..qb (ties: lower index first). Forced blocks are kept even beyond k.
// scores: [qb + 1]. Returns ascending block indices.
std::vector<int> blocktopk_select(const std::vector<double>& scores, int qb, int k, int init,
                                  int local);

// FlexPrefill score_cover_topk: with x sorted descending and cumulative sums c, the number of
// entries with c <= score, plus one (the reference's count, not clipped to x.size()).
int score_cover_topk(const std::vector<double>& x, double score);
// FlexPrefill score_cover_idx: indices of x in descending order (ties: lower index first)
// whose cumulative sum is still <= score; the entry that crosses `score` is not taken.
std::vector<int> score_cover_idx(const std::vector<double>& x, double score);
// sqrt(JSD(p, q)) with natural logs; 0 * log 0 counts as 0. p, q: [n].
double sqrt_js_divergence(const std::vector<double>& p, const std::vector<double>& q);

// Top `count` indices of x by value (descending; ties: lower index first). count is clipped.
std::vector<int> topk_indices(const std::vector<double>& x, int count);

}  // namespace attnscope::pattern_detail
