// Tiny in-memory models for tests that need a real forward pass (and a tokenizer) but not the
// default model: a byte-level tokenizer and a random llama over its 256 tokens.
#pragma once

#include <memory>

#include "attnscope/model.h"
#include "attnscope/tokenizer.h"

namespace attnscope::test {

// GPT-2 byte-level vocabulary with no merges: ids 0..255 are the bytes, one token per byte.
std::shared_ptr<const Tokenizer> byte_tokenizer();

// A random llama (2 layers, 4 query heads over 2 KV heads, head_dim 8, fixed seed) over the
// byte tokenizer, with the given context length.
std::shared_ptr<Model> tiny_byte_model(int context);

}  // namespace attnscope::test
