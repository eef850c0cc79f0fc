// Tiny in-memory models for tests that need a real forward pass but not the default model: the
// parameterised random llama builder and the byte-level tokenizer.
#include "tiny_models.h"

#include <random>

namespace attnscope::test {

namespace {

std::string utf8(char32_t c) {
  std::string s;
  if (c < 0x80) {
    s += static_cast<char>(c);
  } else {
    s += static_cast<char>(0xC0 | (c >> 6));
    s += static_cast<char>(0x80 | (c & 0x3F));
  }
  return s;
}

}  // namespace

// GPT-2 bytes_to_unicode: printable bytes map to themselves, the rest to U+0100.. in order.
// Ids 0..255 are the byte tokens, id == byte value; no merges, so every byte is one token.
std::shared_ptr<const Tokenizer> byte_tokenizer() {
  TokenizerSpec spec;
  spec.pre = "gpt2";
  char32_t next = 0x100;
  for (int b = 0; b < 256; ++b) {
    const bool keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    spec.tokens.push_back(utf8(keep ? static_cast<char32_t>(b) : next++));
  }
  spec.source = "bytes";
  return Tokenizer::from_spec(spec);
}

std::shared_ptr<Model> tiny_random_llama(const TinyLlamaSpec& spec) {
  auto m = std::make_shared<Model>();
  ModelConfig& c = m->config;
  c.architecture = spec.qkv_bias ? "qwen2" : "llama";
  c.name = spec.name;
  c.n_layer = spec.layers;
  c.n_head = spec.heads;
  c.n_head_kv = spec.kv_heads;
  c.head_dim = spec.head_dim;
  c.n_embd = spec.embd;
  c.n_ff = spec.ff;
  c.context_length = spec.context;
  c.vocab_size = spec.vocab;
  c.tied_embeddings = spec.tied_embeddings;
  c.qkv_bias = spec.qkv_bias;
  std::mt19937_64 rng(spec.seed);
  auto fill = [&](std::vector<float>& w, size_t n, float scale, float mean = 0.0f) {
    std::normal_distribution<float> nd(mean, scale);
    w.resize(n);
    for (auto& x : w) x = nd(rng);
  };
  const size_t D = static_cast<size_t>(spec.embd), F = static_cast<size_t>(spec.ff),
               V = static_cast<size_t>(spec.vocab);
  const size_t qd = static_cast<size_t>(spec.heads) * static_cast<size_t>(spec.head_dim);
  const size_t kvd = static_cast<size_t>(spec.kv_heads) * static_cast<size_t>(spec.head_dim);
  fill(m->token_embd, V * D, 1.0f);
  m->layers.resize(static_cast<size_t>(spec.layers));
  for (auto& l : m->layers) {
    fill(l.attn_norm, D, 0.1f, 1.0f);
    fill(l.wq, qd * D, spec.qk_scale);
    fill(l.wk, kvd * D, spec.qk_scale);
    fill(l.wv, kvd * D, 0.3f);
    if (spec.qkv_bias) {
      fill(l.bq, qd, 0.2f);
      fill(l.bk, kvd, 0.2f);
      fill(l.bv, kvd, 0.2f);
    }
    fill(l.wo, D * qd, 0.2f);
    fill(l.ffn_norm, D, 0.1f, 1.0f);
    fill(l.w_gate, F * D, 0.3f);
    fill(l.w_up, F * D, 0.3f);
    fill(l.w_down, D * F, 0.2f);
  }
  fill(m->output_norm, D, 0.1f, 1.0f);
  if (!spec.tied_embeddings) fill(m->output, V * D, 0.3f);
  return m;
}

// The default tiny llama widened to the 256 byte tokens: enough to run the whole loop quickly.
std::shared_ptr<Model> tiny_byte_model(int context) {
  TinyLlamaSpec spec;
  spec.name = "tiny-bytes";
  spec.vocab = 256;
  spec.context = context;
  auto m = tiny_random_llama(spec);
  m->tokenizer = byte_tokenizer();
  return m;
}

}  // namespace attnscope::test
