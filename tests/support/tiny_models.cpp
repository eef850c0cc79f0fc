// Tiny in-memory models for tests that need a real forward pass but not the default model.
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

// A tiny random llama over the 256 byte tokens: enough to run the whole loop quickly.
std::shared_ptr<Model> tiny_byte_model(int context) {
  auto m = std::make_shared<Model>();
  ModelConfig& c = m->config;
  c.architecture = "llama";
  c.name = "tiny-bytes";
  c.n_layer = 2;
  c.n_head = 4;
  c.n_head_kv = 2;
  c.head_dim = 8;
  c.n_embd = 16;
  c.n_ff = 24;
  c.context_length = context;
  c.vocab_size = 256;
  c.tied_embeddings = true;
  std::mt19937_64 rng(2024);
  auto fill = [&](std::vector<float>& w, size_t n, float scale, float mean = 0.0f) {
    std::normal_distribution<float> nd(mean, scale);
    w.resize(n);
    for (auto& x : w) x = nd(rng);
  };
  fill(m->token_embd, 256 * 16, 1.0f);
  m->layers.resize(2);
  for (auto& l : m->layers) {
    fill(l.attn_norm, 16, 0.1f, 1.0f);
    fill(l.wq, 32 * 16, 0.4f);
    fill(l.wk, 16 * 16, 0.4f);
    fill(l.wv, 16 * 16, 0.3f);
    fill(l.wo, 16 * 32, 0.2f);
    fill(l.ffn_norm, 16, 0.1f, 1.0f);
    fill(l.w_gate, 24 * 16, 0.3f);
    fill(l.w_up, 24 * 16, 0.3f);
    fill(l.w_down, 16 * 24, 0.2f);
  }
  fill(m->output_norm, 16, 0.1f, 1.0f);
  m->tokenizer = byte_tokenizer();
  return m;
}

}  // namespace attnscope::test
