// Byte-level BPE tokenizer (GPT-2 style byte mapping, ranked merges, PCRE2 pre-tokenizer
// regexes, special/added tokens), built from GGUF `tokenizer.ggml.*` metadata or an HF
// `tokenizer.json`. Ids match HF `tokenizers` for the supported pre-tokenizers.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace attnscope {

// Token types as GGUF numbers them (tokenizer.ggml.token_type).
enum class TokenType : int32_t {
  Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6,
};

struct TokenizerSpec {
  std::string model = "gpt2";          // only byte-level BPE ("gpt2") is supported
  std::string pre = "default";         // pre-tokenizer name, e.g. "smollm", "llama-bpe", "gpt2"
  std::vector<std::string> tokens;     // id -> token text in byte-level (GPT-2 unicode) form
  std::vector<TokenType> token_types;  // empty or one per token
  std::vector<std::string> merges;     // "a b", rank = index
  int32_t bos_id = -1;
  int32_t eos_id = -1;
  int32_t unk_id = -1;
  int32_t pad_id = -1;
  bool add_bos = false;
  bool add_eos = false;
  std::string source;  // file name used in error messages
};

class Tokenizer {
 public:
  // Validates the spec (merges refer to known tokens, ids in range); throws Error(BadInput)
  // naming spec.source and the field.
  static std::shared_ptr<const Tokenizer> from_spec(TokenizerSpec spec);
  // Reads an HF tokenizer.json (model.type BPE, byte-level) and optionally the sibling
  // tokenizer_config.json for add_bos/eos.
  static std::shared_ptr<const Tokenizer> from_tokenizer_json(const std::filesystem::path& path);

  virtual ~Tokenizer() = default;

  // text must be valid UTF-8 (else Error(BadInput) "text: invalid UTF-8 at byte N").
  // add_special adds BOS/EOS when the model's metadata asks for them. Special/added tokens
  // written in the text are matched as single tokens.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special = true) const = 0;
  // Concatenated UTF-8 bytes of the tokens (special tokens included as their text).
  virtual std::string decode(std::span<const int32_t> ids) const = 0;
  // Decoded text of one token (may be a partial UTF-8 sequence).
  virtual std::string token_bytes(int32_t id) const = 0;
  // The token as stored in the vocabulary (byte-level form, e.g. "Ġthe").
  virtual const std::string& token_text(int32_t id) const = 0;
  virtual int32_t vocab_size() const = 0;
  virtual int32_t bos_id() const = 0;
  virtual int32_t eos_id() const = 0;
  virtual const TokenizerSpec& spec() const = 0;
};

}  // namespace attnscope
