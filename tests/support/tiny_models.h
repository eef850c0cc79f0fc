// Tiny in-memory models for tests that need a real forward pass (and a tokenizer) but not the
// default model: one parameterised random llama builder, a byte-level tokenizer and a random
// llama over its 256 tokens.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "attnscope/model.h"
#include "attnscope/tokenizer.h"

namespace attnscope::test {

// Shape, seed and weight scales of a tiny random llama. Defaults: 2 layers, 4 query heads over
// 2 KV heads, head_dim 8, embd 16, ff 24, context 64, vocab 32, tied embeddings, no bias.
struct TinyLlamaSpec {
  std::string name = "tiny";
  int layers = 2;
  int heads = 4;
  int kv_heads = 2;
  int head_dim = 8;
  int embd = 16;
  int ff = 24;
  int context = 64;
  int vocab = 32;
  bool qkv_bias = false;  // Qwen2-style Q/K/V biases (architecture "qwen2" instead of "llama")
  bool tied_embeddings = true;  // false: a separate output matrix is drawn
  uint64_t seed = 2024;
  // Standard deviation of the Q and K projections: larger gives sharper attention.
  float qk_scale = 0.4f;
};

// A random llama of `spec`'s shape, no tokenizer. Every weight is drawn from one
// std::mt19937_64(spec.seed) with std::normal_distribution<float>, in this order: token_embd
// N(0, 1); per layer attn_norm N(1, 0.1), wq and wk N(0, qk_scale), wv N(0, 0.3), bq, bk, bv
// N(0, 0.2) (with qkv_bias only), wo N(0, 0.2), ffn_norm N(1, 0.1), w_gate and w_up N(0, 0.3),
// w_down N(0, 0.2); output_norm N(1, 0.1); output N(0, 0.3) (untied only). rope_theta and
// rms_norm_eps keep ModelConfig's defaults (10000, 1e-5).
std::shared_ptr<Model> tiny_random_llama(const TinyLlamaSpec& spec);

// GPT-2 byte-level vocabulary with no merges: ids 0..255 are the bytes, one token per byte.
std::shared_ptr<const Tokenizer> byte_tokenizer();

// tiny_random_llama with the default spec (seed 2024) but vocab 256, name "tiny-bytes" and the
// given context length, carrying the byte tokenizer.
std::shared_ptr<Model> tiny_byte_model(int context);

}  // namespace attnscope::test
