// Builds a TokenizerSpec from a GGUF file's `tokenizer.ggml.*` metadata (tokens, types,
// merges, special ids, add_bos/add_eos); Tokenizer::from_spec validates and builds it.
#pragma once

#include "attnscope/gguf_file.h"
#include "attnscope/tokenizer.h"

namespace attnscope {

// Throws Error(BadInput) "<file>: metadata '<key>': ..." for missing or mistyped keys.
TokenizerSpec tokenizer_spec_from_gguf(const GgufFile& file);

}  // namespace attnscope
