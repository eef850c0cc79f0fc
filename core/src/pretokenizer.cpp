// PCRE2-backed pre-tokenizer: HF "Isolated" regex splits and the ByteLevel step, with the
// split steps of GGUF `tokenizer.ggml.pre` names (as the models' own tokenizer.json define them).
#include "pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "attnscope/error.h"

namespace attnscope::detail {

const char* const kGpt2SplitPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Rust's char::is_numeric (which HF Digits uses) follows Unicode 17; PCRE2 10.42's \p{N} is
// Unicode 14, so the numerals added since (Kawi, Nag Mundari, Garay, Ol Onal, ... digits) are
// listed explicitly (a newer PCRE2 merely matches them twice). Found by comparing every code
// point under tokenizers 0.23 Digits and PCRE2 10.42 \p{N}; no code point is in PCRE2's only.
const char* const kNumericClass =
    R"([\p{N}\x{10D40}-\x{10D49}\x{116D0}-\x{116E3}\x{11BF0}-\x{11BF9}\x{11DE0}-\x{11DE9})"
    R"(\x{11F50}-\x{11F59}\x{16130}-\x{16139}\x{16D70}-\x{16D79}\x{16FF4}-\x{16FF6})"
    R"(\x{1CCF0}-\x{1CCF9}\x{1D2C0}-\x{1D2D3}\x{1E4F0}-\x{1E4F9}\x{1E5F1}-\x{1E5FA}])";

namespace {

// transformers integrations/gguf/gguf_tokenizer_mapping.py (_LLAMA3_SPLIT).
const char* const kLlama3SplitPattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3})"
    R"(| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// transformers models/qwen2/tokenization_qwen2.py (PRETOKENIZE_REGEX).
const char* const kQwen2SplitPattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N})"
    R"(| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

}  // namespace

class Regex {
 public:
  Regex(const std::string& pattern, const std::string& where) {
    int code = 0;
    PCRE2_SIZE offset = 0;
    const std::string translated = to_pcre2_pattern(pattern);
    m_code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                           PCRE2_UTF | PCRE2_UCP, &code, &offset, nullptr);
    if (!m_code) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(code, message, sizeof(message));
      throw_bad_input(where, "regex \"" + pattern + "\" rejected at offset " +
                                 std::to_string(offset) + " (" +
                                 reinterpret_cast<const char*>(message) + ")");
    }
    // JIT is an optimisation only; without it pcre2_match interprets the pattern.
    (void)pcre2_jit_compile(m_code, PCRE2_JIT_COMPLETE);
  }
  ~Regex() { pcre2_code_free(m_code); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Appends the HF "Isolated" split of `s` (matches and the gaps between them, empties
  // dropped). `s` must be valid UTF-8 (checked once by the caller, hence NO_UTF_CHECK).
  void split(std::string_view s, std::vector<std::string>& out) const {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(m_code, nullptr);
    if (!md) throw_runtime("tokenizer: out of memory for regex match data");
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
    size_t pos = 0;   // where the next search starts
    size_t last = 0;  // end of the previous emitted piece
    while (pos <= s.size()) {
      const int rc = pcre2_match(m_code, subject, s.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {
        pcre2_match_data_free(md);
        throw_runtime("tokenizer: regex match failed (PCRE2 error " + std::to_string(rc) + ")");
      }
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      const size_t start = ov[0];
      const size_t end = ov[1];
      if (end == start) {  // empty match: step over one whole code point
        pos = start + 1;
        while (pos < s.size() && (static_cast<unsigned char>(s[pos]) & 0xC0) == 0x80) ++pos;
        continue;
      }
      if (start > last) out.emplace_back(s.substr(last, start - last));
      out.emplace_back(s.substr(start, end - start));
      last = pos = end;
    }
    if (last < s.size()) out.emplace_back(s.substr(last));
    pcre2_match_data_free(md);
  }

 private:
  pcre2_code* m_code = nullptr;
};

std::string to_pcre2_pattern(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 32);
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\' && i + 1 < pattern.size()) {
      const char next = pattern[i + 1];
      if (next == 's') {
        out += "\\p{White_Space}";
      } else if (next == 'S') {
        out += "\\P{White_Space}";
      } else {
        out += pattern[i];
        out += next;
      }
      ++i;
    } else {
      out += pattern[i];
    }
  }
  return out;
}

PreTokenizer::PreTokenizer(std::vector<PreTokenizerStep> steps, const std::string& where)
    : m_steps(std::move(steps)) {
  if (m_steps.empty() || m_steps.back().kind != PreTokenizerStep::Kind::ByteLevel) {
    throw_bad_input(where, "expected a ByteLevel pre-tokenizer as the last step");
  }
  for (size_t i = 0; i < m_steps.size(); ++i) {
    const auto& step = m_steps[i];
    if (step.kind == PreTokenizerStep::Kind::ByteLevel && i + 1 != m_steps.size()) {
      throw_bad_input(where, "ByteLevel must be the last pre-tokenizer step");
    }
    if (step.kind == PreTokenizerStep::Kind::Split) {
      m_regex.push_back(std::make_unique<Regex>(step.pattern, where));
    } else if (step.use_regex) {
      m_regex.push_back(std::make_unique<Regex>(kGpt2SplitPattern, where));
    } else {
      m_regex.push_back(nullptr);
    }
  }
}

PreTokenizer::~PreTokenizer() = default;
PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;

void PreTokenizer::split(std::string_view text, std::vector<std::string>& pieces) const {
  std::vector<std::string> current;
  current.emplace_back(text);
  std::vector<std::string> next;
  for (size_t i = 0; i < m_steps.size(); ++i) {
    next.clear();
    for (auto& piece : current) {
      if (m_steps[i].kind == PreTokenizerStep::Kind::ByteLevel && m_steps[i].add_prefix_space &&
          (piece.empty() || piece.front() != ' ')) {
        piece.insert(piece.begin(), ' ');
      }
      if (m_regex[i]) {
        m_regex[i]->split(piece, next);
      } else if (!piece.empty()) {
        next.push_back(std::move(piece));
      }
    }
    current.swap(next);
  }
  for (auto& piece : current) pieces.push_back(std::move(piece));
}

std::vector<PreTokenizerStep> steps_for_pre_name(const std::string& name) {
  using Kind = PreTokenizerStep::Kind;
  static const char* const llama3_names[] = {"llama3",    "llama-v3",  "llama-bpe",   "falcon3",
                                             "falcon-h1", "pixtral",   "midm-2.0",    "lfm2",
                                             "dbrx",      "smaug-bpe", "jina-v5-nano"};
  static const char* const qwen2_names[] = {"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2",
                                            "megrez"};
  const char* split = nullptr;
  for (const char* n : llama3_names) {
    if (name == n) split = kLlama3SplitPattern;
  }
  for (const char* n : qwen2_names) {
    if (name == n) split = kQwen2SplitPattern;
  }
  if (split) {
    return {PreTokenizerStep{Kind::Split, split, false, false},
            PreTokenizerStep{Kind::ByteLevel, "", false, false}};
  }
  if (name == "smollm") {
    // SmolLM2's tokenizer.json: Sequence[Digits(individual_digits=true), ByteLevel(use_regex)];
    // llama.cpp's LLAMA_VOCAB_PRE_TYPE_SMOLLM does the same. (transformers' GGUF conversion
    // drops the Digits step, so it is not the reference here.) So " 12" is " ", "1", "2".
    return {PreTokenizerStep{Kind::Split, kNumericClass, false, false},
            PreTokenizerStep{Kind::ByteLevel, "", false, true}};
  }
  // "gpt2", "default" and any other name: transformers' GPT2Tokenizer default.
  return {PreTokenizerStep{Kind::ByteLevel, "", false, true}};
}

}  // namespace attnscope::detail
