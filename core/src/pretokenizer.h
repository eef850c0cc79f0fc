// Pre-tokenizer for byte-level BPE: a sequence of regex "Isolated" splits (PCRE2 with Unicode
// properties) ending in HF's ByteLevel step, plus the named regex sets GGUF files refer to.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace attnscope::detail {

class Regex;  // compiled PCRE2 pattern (pretokenizer.cpp)

// The GPT-2 split pattern HF's ByteLevel pre-tokenizer uses when use_regex is true.
extern const char* const kGpt2SplitPattern;

struct PreTokenizerStep {
  enum class Kind { Split, ByteLevel };
  Kind kind = Kind::Split;
  std::string pattern;            // Split: the regex (Oniguruma/HF syntax)
  bool add_prefix_space = false;  // ByteLevel: prepend " " to a piece not starting with one
  bool use_regex = true;          // ByteLevel: split with kGpt2SplitPattern
};

class PreTokenizer {
 public:
  // Compiles every pattern; throws Error(BadInput) "<where>: ..." on a pattern PCRE2 rejects.
  // The last step must be ByteLevel (it is what makes the pieces byte-level strings).
  PreTokenizer(std::vector<PreTokenizerStep> steps, const std::string& where);
  ~PreTokenizer();
  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;

  // Splits valid UTF-8 `text` into pieces (raw bytes, not yet byte-level spelled), appended to
  // `pieces` in order; their concatenation is `text` plus any prefix spaces.
  void split(std::string_view text, std::vector<std::string>& pieces) const;

  const std::vector<PreTokenizerStep>& steps() const { return m_steps; }

 private:
  std::vector<PreTokenizerStep> m_steps;
  std::vector<std::unique_ptr<Regex>> m_regex;  // one per step; null when the step has none
};

// Class matching what HF's Digits pre-tokenizer treats as a digit (Rust char::is_numeric:
// general categories Nd, Nl, No), i.e. \p{N} plus the numerals newer than PCRE2's tables.
extern const char* const kNumericClass;

// Steps for a GGUF `tokenizer.ggml.pre` name, as the model's own tokenizer.json / llama.cpp
// define them: llama3-family names and qwen2-family names get their Split regex +
// ByteLevel(no regex); "smollm" isolates every numeric code point (Digits, individual) before
// the GPT-2 regex; every other name (gpt2, default, ...) gets plain ByteLevel with the GPT-2
// regex.
std::vector<PreTokenizerStep> steps_for_pre_name(const std::string& name);

// Rewrites an HF/Oniguruma pattern for PCRE2: \s and \S become \p{White_Space} and its
// negation, since PCRE2's UCP \s also matches U+180E, which Oniguruma's does not.
std::string to_pcre2_pattern(std::string_view pattern);

}  // namespace attnscope::detail
