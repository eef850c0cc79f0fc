// Passkey retrieval: seeded filler haystack, needle at a controlled depth, prompts assembled
// token-accurately from separately tokenized pieces, free greedy decoding through the variant
// engine's attention hook, accuracy per (length, depth) cell.
#include "attnscope/needle.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <sstream>

#include "attnscope/error.h"
#include "attnscope/session.h"
#include "attnscope/trace.h"
#include "attnscope/variant_engine.h"

namespace attnscope {
namespace {

// splitmix64: a portable, fully specified generator, so haystacks are identical on every
// platform and standard library (std:: distributions are not).
uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

class FillerStream {
 public:
  explicit FillerStream(uint64_t seed) : m_state(seed ^ 0x6E65656431ull) {}
  // Next sentence. Blocks of five in the classic passkey shape: three "The X is Y." statements
  // (distinct within the block), one "Here we go."-style line and one "There and back again."
  // style line; the first block of every stream is exactly the classic one.
  std::string next() {
    if (m_in_block == 0) start_block();
    std::string s = m_block[m_in_block];
    m_in_block = (m_in_block + 1) % 5;
    return s;
  }

 private:
  void start_block() {
    static const char* const kStatements[] = {
        "The grass is green.", "The sky is blue.",   "The sun is yellow.",   "The sea is deep.",
        "The snow is white.",  "The night is dark.", "The rose is red.",     "The wind is cold.",
        "The road is long.",   "The river is wide.", "The forest is quiet.", "The sand is warm.",
        "The moon is bright.", "The hill is steep.", "The stone is grey.",   "The rain is soft.",
    };
    static const char* const kGo[] = {"Here we go.", "Off we go.", "On we go.", "Here we are."};
    static const char* const kBack[] = {"There and back again.", "Round and round again.",
                                        "Up and down again.", "Back and forth again."};
    constexpr int kNStatements = static_cast<int>(std::size(kStatements));
    if (m_first) {
      m_first = false;
      m_block = {kStatements[0], kStatements[1], kStatements[2], kGo[0], kBack[0]};
      return;
    }
    int picks[3];
    for (int i = 0; i < 3; ++i) {
      int p;
      do {
        p = static_cast<int>(splitmix64(m_state) % kNStatements);
      } while (std::find(picks, picks + i, p) != picks + i);
      picks[i] = p;
    }
    m_block = {kStatements[picks[0]], kStatements[picks[1]], kStatements[picks[2]],
               kGo[splitmix64(m_state) % std::size(kGo)],
               kBack[splitmix64(m_state) % std::size(kBack)]};
  }

  uint64_t m_state;
  bool m_first = true;
  int m_in_block = 0;
  std::vector<std::string> m_block;
};

const char* const kInstruction =
    "There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. "
    "I will quiz you about the important information there.";
const char* const kQuestion = " What is the pass key? The pass key is";

std::string needle_sentence(const std::string& key) {
  return " The pass key is " + key + ". Remember it. " + key + " is the pass key.";
}

std::vector<int32_t> concat_ids(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Greedy generation of one prompt under a variant: a fresh VariantAttention hook per prompt
// (its decisions go to a scratch trace), so prefill and every decode step run through the
// variant and the variant decodes its own continuation. The baseline runs the plain session.
class VariantGenerator {
 public:
  VariantGenerator(std::shared_ptr<const Model> model, const VariantSpec& variant,
                   InferenceSession& session)
      : m_model(std::move(model)), m_variant(variant), m_session(session) {
    // Build one hook up front so an unusable spec fails before any work.
    if (!m_variant.is_baseline()) {
      Trace scratch;
      VariantAttention probe(m_variant, m_model, &scratch, engine_options(nullptr));
    }
  }
  // Prefills `prompt` then decodes up to `budget` tokens greedily, stopping after EOS.
  std::vector<int32_t> generate(const std::vector<int32_t>& prompt, int budget,
                                const std::atomic<bool>* cancel) {
    Trace scratch;
    std::shared_ptr<VariantAttention> hook;
    if (!m_variant.is_baseline()) {
      hook =
          std::make_shared<VariantAttention>(m_variant, m_model, &scratch, engine_options(cancel));
    }
    m_session.reset();
    m_session.set_attention_hook(hook);
    GenerationResult r;
    try {
      r = attnscope::generate(m_session, prompt, budget, SamplingOptions{}, {}, cancel);
    } catch (...) {
      m_session.set_attention_hook(nullptr);
      throw;
    }
    m_session.set_attention_hook(nullptr);
    return r.tokens;
  }

 private:
  static VariantEngineOptions engine_options(const std::atomic<bool>* cancel) {
    VariantEngineOptions eo;
    eo.record_k = false;  // needle keeps no maps
    eo.cancel = cancel;
    return eo;
  }

  std::shared_ptr<const Model> m_model;
  VariantSpec m_variant;
  InferenceSession& m_session;
};

std::string format_depth(double d) {
  std::ostringstream os;
  os << d;
  return os.str();
}

}  // namespace

std::vector<std::string> needle_filler_sentences(uint64_t seed, int n_sentences) {
  if (n_sentences < 0) throw_usage("needle: n_sentences must be >= 0");
  FillerStream stream(seed);
  std::vector<std::string> out;
  out.reserve(n_sentences);
  for (int i = 0; i < n_sentences; ++i) out.push_back(stream.next());
  return out;
}

std::string needle_passkey(uint64_t seed) {
  uint64_t state = seed ^ 0x7061737325ull;
  return std::to_string(10000 + splitmix64(state) % 90000);
}

uint64_t needle_trial_seed(uint64_t seed, int length_index, int depth_index, int trial) {
  uint64_t state = seed;
  uint64_t h = splitmix64(state);
  for (int v : {length_index, depth_index, trial}) {
    state = h ^ static_cast<uint64_t>(static_cast<uint32_t>(v));
    h = splitmix64(state);
  }
  return h;
}

NeedlePrompt build_needle_prompt(const Tokenizer& tokenizer, int length, double depth,
                                 uint64_t seed) {
  if (!(depth >= 0.0 && depth <= 1.0)) {
    throw_usage("needle: depth " + format_depth(depth) + " outside [0, 1]");
  }
  NeedlePrompt p;
  p.passkey = needle_passkey(seed);
  p.depth = depth;
  const std::vector<int32_t> head = tokenizer.encode(kInstruction, /*add_special=*/true);
  const std::vector<int32_t> needle = tokenizer.encode(needle_sentence(p.passkey), false);
  const std::vector<int32_t> question = tokenizer.encode(kQuestion, false);
  const int64_t fixed = static_cast<int64_t>(head.size() + needle.size() + question.size());
  if (length < fixed) {
    throw_usage("needle: length " + std::to_string(length) + " is too short, the instruction, " +
                "pass key and question alone take " + std::to_string(fixed) + " tokens");
  }
  const int budget = static_cast<int>(length - fixed);

  // Filler tokens and the offsets where each sentence starts; the stream is cut at `budget`.
  std::vector<int32_t> filler;
  std::vector<int> starts;
  FillerStream stream(seed);
  while (static_cast<int>(filler.size()) < budget) {
    starts.push_back(static_cast<int>(filler.size()));
    // Appending (not " " + s) sidesteps a GCC 12 -Wrestrict false positive on operator+.
    std::string sentence(1, ' ');
    sentence += stream.next();
    const std::vector<int32_t> ids = tokenizer.encode(sentence, false);
    if (ids.empty()) throw_runtime("needle: the tokenizer produced no tokens for the filler");
    filler.insert(filler.end(), ids.begin(), ids.end());
  }
  // The end of the haystack is a boundary (depth 1) only when no sentence was cut there, so
  // the needle always follows a complete sentence (or the instruction).
  if (static_cast<int>(filler.size()) == budget) starts.push_back(budget);
  filler.resize(budget);

  // Needle at the last sentence boundary at or before the requested depth.
  const int target = static_cast<int>(std::llround(depth * budget));
  int at = 0;
  for (int s : starts) {
    if (s <= target) at = std::max(at, s);
  }
  p.tokens.reserve(length);
  p.tokens = head;
  p.haystack_begin = static_cast<int>(head.size());
  p.tokens.insert(p.tokens.end(), filler.begin(), filler.begin() + at);
  p.needle_begin = static_cast<int>(p.tokens.size());
  p.tokens = concat_ids(std::move(p.tokens), needle);
  p.needle_end = static_cast<int>(p.tokens.size());
  p.tokens.insert(p.tokens.end(), filler.begin() + at, filler.end());
  p.tokens = concat_ids(std::move(p.tokens), question);
  p.haystack_tokens = budget;
  p.actual_depth = budget > 0 ? static_cast<double>(at) / budget : 0.0;
  return p;
}

double NeedleResult::accuracy() const {
  if (trials.empty()) return 0.0;
  int ok = 0;
  for (const NeedleTrial& t : trials) ok += t.success ? 1 : 0;
  return static_cast<double>(ok) / static_cast<double>(trials.size());
}

const NeedleCell* NeedleResult::cell(int length, double depth) const {
  for (const NeedleCell& c : cells) {
    if (c.length == length && c.depth == depth) return &c;
  }
  return nullptr;
}

NeedleResult run_needle(std::shared_ptr<const Model> model, const VariantSpec& variant,
                        const NeedleOptions& options) {
  if (!model) throw_usage("needle: no model");
  if (!model->tokenizer) throw_usage("needle: the model has no tokenizer");
  if (options.lengths.empty()) throw_usage("needle: --lengths is empty");
  if (options.depths.empty()) throw_usage("needle: --depths is empty");
  if (options.trials < 1) throw_usage("needle: trials must be >= 1");
  if (options.decode_budget < 1) throw_usage("needle: decode budget must be >= 1");
  for (double d : options.depths) {
    if (!(d >= 0.0 && d <= 1.0))
      throw_usage("needle: depth " + format_depth(d) + " outside [0, 1]");
  }
  InferenceSession session(model, options.backend);
  const int context = session.max_context();
  for (int len : options.lengths) {
    if (len < 1) throw_usage("needle: length " + std::to_string(len) + " must be positive");
    if (static_cast<int64_t>(len) + options.decode_budget > context) {
      throw_usage("needle: length " + std::to_string(len) + " + " +
                  std::to_string(options.decode_budget) + " generated tokens exceeds the model's " +
                  "context of " + std::to_string(context) + " tokens");
    }
  }
  VariantGenerator generator(model, variant, session);

  const Tokenizer& tok = *model->tokenizer;
  NeedleResult result;
  result.variant = variant.to_string();
  const int n_len = static_cast<int>(options.lengths.size());
  const int n_dep = static_cast<int>(options.depths.size());
  const int total = n_len * n_dep * options.trials;
  int done = 0;
  for (int li = 0; li < n_len; ++li) {
    for (int di = 0; di < n_dep; ++di) {
      NeedleCell cell;
      cell.length = options.lengths[li];
      cell.depth = options.depths[di];
      for (int t = 0; t < options.trials; ++t) {
        if (options.cancel != nullptr && options.cancel->load()) throw_runtime("cancelled");
        if (options.progress) {
          options.progress(static_cast<double>(done) / total,
                           "length " + std::to_string(cell.length) + " depth " +
                               format_depth(cell.depth) + " trial " + std::to_string(t + 1) + "/" +
                               std::to_string(options.trials));
        }
        NeedleTrial rec;
        rec.length = cell.length;
        rec.depth = cell.depth;
        rec.trial = t;
        rec.seed = needle_trial_seed(options.seed, li, di, t);
        const NeedlePrompt prompt = build_needle_prompt(tok, cell.length, cell.depth, rec.seed);
        rec.passkey = prompt.passkey;
        rec.needle_token = prompt.needle_begin;
        rec.actual_depth = prompt.actual_depth;
        const auto t0 = std::chrono::steady_clock::now();
        session.reset();
        rec.generated_tokens =
            generator.generate(prompt.tokens, options.decode_budget, options.cancel);
        rec.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        rec.generated = tok.decode(rec.generated_tokens);
        rec.success = rec.generated.find(rec.passkey) != std::string::npos;
        cell.trials += 1;
        cell.successes += rec.success ? 1 : 0;
        result.trials.push_back(std::move(rec));
        ++done;
      }
      result.cells.push_back(cell);
    }
  }
  if (options.progress) options.progress(1.0, "done");
  return result;
}

}  // namespace attnscope
