// Pattern parts: the registry entries of every pattern (full, window, sinks, hybrid, blocktopk,
// flexprefill, longheads), the simple token-rule parts (full, window, sinks, hybrid), the
// parameter readers shared by all pattern parts, and make_pattern_part. The data-dependent
// parts live in blocktopk.cpp, flexprefill.cpp and longheads.cpp.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>

#include "attnscope/error.h"
#include "attnscope/variant_parts.h"
#include "pattern_internal.h"

namespace attnscope {

namespace pattern_detail {
namespace {

const std::string* find_param(const PartConfig& config, const char* key) {
  auto it = config.params.find(key);
  return it == config.params.end() ? nullptr : &it->second;
}

std::string where(const char* kind, const PartConfig& config, const char* key) {
  return std::string(kind) + " " + config.name + "." + key;
}

bool parse_int(const std::string& text, long long& out) {
  const char* b = text.data();
  const char* e = b + text.size();
  auto [p, ec] = std::from_chars(b, e, out);
  return ec == std::errc() && p == e && !text.empty();
}

}  // namespace

int param_int(const PartConfig& config, const char* kind, const char* key, int fallback, int lo,
              int hi) {
  const std::string* text = find_param(config, key);
  long long v = fallback;
  if (text != nullptr && !parse_int(*text, v)) {
    throw_usage(where(kind, config, key) + ": expected an integer in [" + std::to_string(lo) +
                ", " + std::to_string(hi) + "], got '" + *text + "'");
  }
  if (v < lo || v > hi) {
    throw_usage(where(kind, config, key) + ": expected an integer in [" + std::to_string(lo) +
                ", " + std::to_string(hi) + "], got " + std::to_string(v));
  }
  return static_cast<int>(v);
}

double param_double(const PartConfig& config, const char* kind, const char* key, double fallback,
                    double lo, double hi) {
  const std::string* text = find_param(config, key);
  double v = fallback;
  if (text != nullptr) {
    std::istringstream in(*text);
    in.imbue(std::locale::classic());
    char extra = 0;
    if (!(in >> v) || (in >> extra)) {
      throw_usage(where(kind, config, key) + ": expected a number, got '" + *text + "'");
    }
  }
  if (!std::isfinite(v) || v < lo || v > hi) {
    std::ostringstream msg;
    msg << where(kind, config, key) << ": expected a number in [" << lo << ", " << hi << "], got "
        << v;
    throw_usage(msg.str());
  }
  return v;
}

std::string param_choice(const PartConfig& config, const char* kind, const char* key,
                         const std::string& fallback, const std::vector<std::string>& choices) {
  const std::string* text = find_param(config, key);
  const std::string v = text != nullptr ? *text : fallback;
  if (std::find(choices.begin(), choices.end(), v) == choices.end()) {
    std::string list;
    for (const auto& c : choices) list += (list.empty() ? "" : "|") + c;
    throw_usage(where(kind, config, key) + ": expected one of " + list + ", got '" + v + "'");
  }
  return v;
}

std::vector<int> param_int_list(const PartConfig& config, const char* kind, const char* key, int lo,
                                int hi) {
  std::vector<int> out;
  const std::string* text = find_param(config, key);
  if (text == nullptr || text->empty()) return out;
  // Items separated by '+' (canonical spec text) or ',' (registry defaults).
  size_t start = 0;
  while (true) {
    const size_t at = text->find_first_of("+,", start);
    const std::string item =
        text->substr(start, at == std::string::npos ? std::string::npos : at - start);
    long long v = 0;
    if (!parse_int(item, v) || v < lo || v > hi) {
      throw_usage(where(kind, config, key) + ": expected integers in [" + std::to_string(lo) +
                  ", " + std::to_string(hi) + "] separated by '+', got '" + *text + "'");
    }
    out.push_back(static_cast<int>(v));
    if (at == std::string::npos) break;
    start = at + 1;
  }
  return out;
}

}  // namespace pattern_detail

namespace {

using namespace pattern_detail;

constexpr const char* kKind = "pattern";
const char* const kTrainingFree = "training-free";
const char* const kSimulation = "simulation (needs training)";

// HeadMask helpers -------------------------------------------------------------------------

HeadMask full_mask() {
  return HeadMask{};
}

HeadMask token_rule_mask(int sinks, int window) {
  HeadMask m;
  m.all_blocks = false;
  m.sink_tokens = sinks;
  m.window = window;
  return m;
}

PatternResult same_for_all_heads(const LayerContext& ctx, const HeadMask& mask) {
  PatternResult r;
  r.heads.assign(static_cast<size_t>(std::max(ctx.shape.n_head, 0)), mask);
  return r;
}

class FullPattern final : public PatternPart {
 public:
  PatternResult mask(const LayerContext& ctx) override {
    return same_for_all_heads(ctx, full_mask());
  }
};

// Sliding window (sinks = 0) and StreamingLLM-style sinks + window.
class TokenRulePattern final : public PatternPart {
 public:
  TokenRulePattern(int sinks, int window) : m_sinks(sinks), m_window(window) {}
  PatternResult mask(const LayerContext& ctx) override {
    return same_for_all_heads(ctx, token_rule_mask(m_sinks, m_window));
  }

 private:
  int m_sinks, m_window;
};

// Local/global layer schedule: global layers attend fully, the others through a window.
class HybridPattern final : public PatternPart {
 public:
  HybridPattern(int window, int every, std::vector<int> global_layers)
      : m_window(window), m_every(every), m_global(std::move(global_layers)) {}
  bool is_global(int layer) const {
    if (!m_global.empty())
      return std::find(m_global.begin(), m_global.end(), layer) != m_global.end();
    return m_every > 0 && (layer + 1) % m_every == 0;
  }
  PatternResult mask(const LayerContext& ctx) override {
    const bool global = is_global(ctx.layer);
    PatternResult r = same_for_all_heads(ctx, global ? full_mask() : token_rule_mask(0, m_window));
    r.note = global ? "global layer (full attention, RoPE kept)"
                    : "local layer (window " + std::to_string(m_window) + ")";
    return r;
  }

 private:
  int m_window, m_every;
  std::vector<int> m_global;
};

}  // namespace

std::vector<PartSpec> pattern_part_specs() {
  std::vector<PartSpec> specs;
  {
    PartSpec s;
    s.kind = PartKind::Pattern;
    s.name = "full";
    s.title = "Full causal attention";
    s.label = kTrainingFree;
    s.summary = "Every query attends every earlier key, as the model was trained (identity).";
    specs.push_back(s);
  }
  {
    PartSpec s;
    s.kind = PartKind::Pattern;
    s.name = "window";
    s.title = "Sliding window";
    s.label = kTrainingFree;
    s.summary =
        "Each query attends only its last w keys (itself included). Applied to a "
        "full-attention model without training; w >= prompt length is the identity.";
    s.params = {int_param("w", kWindowDefault, 1, kMaxTokens,
                          "window in tokens: key j visible to query i iff i - j < w "
                          "(default 256, a SmolLM2-sized choice)")};
    specs.push_back(s);
  }
  {
    PartSpec s;
    s.kind = PartKind::Pattern;
    s.name = "sinks";
    s.title = "Attention sinks + window (StreamingLLM prefill)";
    s.label = kTrainingFree;
    s.summary =
        "Each query attends the first sink_tokens keys plus its last w keys, the "
        "StreamingLLM pattern applied at prefill.";
    s.params = {int_param("sink_tokens", kSinkTokensDefault, 0, kMaxTokens,
                          "initial tokens always visible (StreamingLLM default 4)"),
                int_param("w", kWindowDefault, 1, kMaxTokens,
                          "recent window in tokens (default 256, a SmolLM2-sized choice)")};
    specs.push_back(s);
  }
  {
    PartSpec s;
    s.kind = PartKind::Pattern;
    s.name = "hybrid";
    s.title = "Local/global hybrid (RNoPE-SWA window schedule)";
    s.label = kSimulation;
    s.summary =
        "Simulation of Cohere's RNoPE-SWA: global layers attend fully, the others "
        "through a sliding window. Window schedule only: RoPE is kept on every layer "
        "(removing it needs training), so this is not the trained design.";
    s.params = {
        int_param("w", kWindowDefault, 1, kMaxTokens,
                  "window of the local layers in tokens (notes: 256-1024 on SmolLM2; Cohere2 "
                  "uses 4096)"),
        int_param("every", kHybridEveryDefault, 0, 1024,
                  "layer l is global when (l + 1) % every == 0 (3:1 local:global as in "
                  "RNoPE-SWA/Cohere2 -> 3, 7, ..., 27 on 30 layers); 0 = no global layers"),
    };
    ParamSpec g;
    g.name = "global_layers";
    g.type = ParamType::IntList;
    g.default_value = "";
    g.min = 0;
    g.max = 1023;
    g.help =
        "explicit global layers, e.g. 3+7+11+29; when given, overrides `every` "
        "(default empty = use `every`)";
    s.params.push_back(g);
    specs.push_back(s);
  }
  {
    PartSpec s;
    s.kind = PartKind::Pattern;
    s.name = "blocktopk";
    s.title = "Block top-k selection (NSA/FSA style)";
    s.label = kSimulation;
    s.summary =
        "Training-free simulation of NSA's selection branch: keys mean-pooled per block "
        "(phi = mean, stride = block), p_cmp = softmax(q.K~/sqrt(d)) per query row over causal "
        "blocks, summed over the rows of a query block and the query heads of a GQA group "
        "(one shared selection per group); keeps the top k blocks incl. init and local ones. "
        "No learned compression, gates or compressed branch.";
    s.params = {
        int_param("block", kBlockTopkBlockDefault, 1, 4096, "selection block size l' (NSA 64)"),
        int_param("k", kBlockTopkKDefault, 1, kMaxTokens,
                  "selected blocks per query block, forced ones included (NSA n = 16)"),
        int_param("init", kBlockTopkInitDefault, 0, kMaxTokens,
                  "initial blocks always selected (NSA 1)"),
        int_param("local", kBlockTopkLocalDefault, 0, kMaxTokens,
                  "local blocks always selected, the query's own included (NSA 2)"),
        int_param("w", 0, 0, kMaxTokens,
                  "extra sliding window in tokens; 0 = off (NSA's window branch uses 512)"),
    };
    specs.push_back(s);
  }
  {
    PartSpec s;
    s.kind = PartKind::Pattern;
    s.name = "flexprefill";
    s.title = "FlexPrefill (query-aware / vertical-slash)";
    s.label = kTrainingFree;
    s.summary =
        "Per head: a sqrt-JS-divergence test between pooled-Q/K block attention and the last "
        "block's vertical sums chooses query-aware blocks (cumulative mass gamma) or a "
        "vertical-slash pattern; rules as in bytedance/FlexPrefill get_active_blocks. Applies "
        "to the prefill; decode rows see every key.";
    s.params = {
        float_param("gamma", "0.9", 0.0, 1.0,
                    "attention coverage (README example 0.9; eval scripts use 0.95)"),
        float_param("tau", "0.1", 0.0, 1.0,
                    "query-aware if sqrt(JSD) < tau (README and eval scripts 0.1)"),
        choice_param("block", std::to_string(kFlexBlockDefault), {"16", "32", "64", "128"},
                     "block size B (kernel supports 16-128; reference default 128, notes: "
                     "32 or 64 for SmolLM2 prompts -> 64)"),
        int_param("min_budget", kFlexMinBudgetDefault, 0, kMaxTokens,
                  "minimum tokens per vertical/slash budget, also the dense fallback length "
                  "(README 512, eval 1024; 0 = none, i.e. the reference's 1 token)"),
        int_param("max_budget", 0, 0, kMaxTokens,
                  "maximum tokens per vertical/slash budget (0 = none, as in the eval scripts)"),
        int_param("budget_div", kFlexBudgetDivDefault, 0, 4096,
                  "vertical/slash blocks = covering token count // budget_div + 1; the "
                  "reference code divides by 128 whatever B is, the notes say B (0 = B)"),
    };
    specs.push_back(s);
  }
  {
    PartSpec s;
    s.kind = PartKind::Pattern;
    s.name = "longheads";
    s.title = "LongHeads chunk selection";
    s.label = kTrainingFree;
    s.summary =
        "Per head, queries beyond atten_length attend atten_length/w chunks: forced first, "
        "previous and own chunk (decode: first, last full, current) plus the top others by "
        "un-rotated q . r_c. Known deviation: picked chunks keep their original positions "
        "(LongHeads re-positions them contiguously, which a mask cannot express), and the "
        "choice is made per query chunk, not per query token.";
    s.params = {
        int_param("w", kLongHeadsChunkDefault, 1, 4096,
                  "chunk size in tokens (reference 256 for Llama-2; notes: 64-128 for SmolLM2)"),
        int_param("atten_length", kLongHeadsAttenDefault, 3, kMaxTokens,
                  "tokens each query attends, a multiple of w with >= 3 chunks, <= the trained "
                  "length (reference 4096 for Llama-2; 512 here); shorter prompts are unchanged"),
        choice_param("merge", "mean", {"mean", "union"},
                     "how the per-token chunk choices of one query chunk become one mask row: "
                     "mean = top chunks by the mean score (keeps the atten_length budget), "
                     "union = union of every token's picks (superset)"),
    };
    specs.push_back(s);
  }
  return specs;
}

std::unique_ptr<PatternPart> make_pattern_part(const PartConfig& config, const Model& model) {
  const std::string& name = config.name;
  if (name == "full") return std::make_unique<FullPattern>();
  if (name == "window") {
    return std::make_unique<TokenRulePattern>(
        0, param_int(config, kKind, "w", kWindowDefault, 1, kMaxTokens));
  }
  if (name == "sinks") {
    return std::make_unique<TokenRulePattern>(
        param_int(config, kKind, "sink_tokens", kSinkTokensDefault, 0, kMaxTokens),
        param_int(config, kKind, "w", kWindowDefault, 1, kMaxTokens));
  }
  if (name == "hybrid") {
    return std::make_unique<HybridPattern>(
        param_int(config, kKind, "w", kWindowDefault, 1, kMaxTokens),
        param_int(config, kKind, "every", kHybridEveryDefault, 0, 1024),
        param_int_list(config, kKind, "global_layers", 0, 1023));
  }
  if (name == "blocktopk") {
    return make_blocktopk(param_int(config, kKind, "block", kBlockTopkBlockDefault, 1, 4096),
                          param_int(config, kKind, "k", kBlockTopkKDefault, 1, kMaxTokens),
                          param_int(config, kKind, "init", kBlockTopkInitDefault, 0, kMaxTokens),
                          param_int(config, kKind, "local", kBlockTopkLocalDefault, 0, kMaxTokens),
                          param_int(config, kKind, "w", 0, 0, kMaxTokens));
  }
  if (name == "flexprefill") {
    FlexPrefillParams p;
    p.gamma = param_double(config, kKind, "gamma", kFlexGammaDefault, 0.0, 1.0);
    p.tau = param_double(config, kKind, "tau", kFlexTauDefault, 0.0, 1.0);
    p.block = std::stoi(param_choice(config, kKind, "block", std::to_string(kFlexBlockDefault),
                                     {"16", "32", "64", "128"}));
    p.min_budget = param_int(config, kKind, "min_budget", kFlexMinBudgetDefault, 0, kMaxTokens);
    p.max_budget = param_int(config, kKind, "max_budget", 0, 0, kMaxTokens);
    p.budget_div = param_int(config, kKind, "budget_div", kFlexBudgetDivDefault, 0, 4096);
    return make_flexprefill(p);
  }
  if (name == "longheads") {
    const int w = param_int(config, kKind, "w", kLongHeadsChunkDefault, 1, 4096);
    const int len = param_int(config, kKind, "atten_length", kLongHeadsAttenDefault, 3, kMaxTokens);
    if (len % w != 0 || len / w < 3) {
      throw_usage("pattern longheads.atten_length: expected a multiple of w = " +
                  std::to_string(w) + " with at least 3 chunks, got " + std::to_string(len));
    }
    const std::string merge = param_choice(config, kKind, "merge", "mean", {"mean", "union"});
    return make_longheads(w, len, merge == "mean" ? LongHeadsMerge::Mean : LongHeadsMerge::Union,
                          model.config.rope_theta);
  }
  throw_usage("pattern '" + name +
              "': unknown pattern (expected full, window, sinks, hybrid, blocktopk, "
              "flexprefill or longheads)");
}

}  // namespace attnscope
