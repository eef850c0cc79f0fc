// Tiny HF model directory for tests: see tiny_hf_model.h.
#include "tiny_hf_model.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "safetensors_writer.h"

namespace attnscope::test {

using json = nlohmann::json;

std::string byte_token(int b) {
  const auto printable = [](int x) {
    return (x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255);
  };
  int cp = b;
  if (!printable(b)) {
    int n = 0;
    for (int x = 0; x < b; ++x) {
      if (!printable(x)) ++n;
    }
    cp = 256 + n;
  }
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

void write_tiny_tokenizer(const std::filesystem::path& path) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_token(b)] = b;
  vocab["he"] = 256;
  vocab["ll"] = 257;
  vocab["hell"] = 258;
  vocab["<|endoftext|>"] = 259;
  const json tok = {{"version", "1.0"},
                    {"truncation", nullptr},
                    {"padding", nullptr},
                    {"added_tokens",
                     {{{"id", 259},
                       {"content", "<|endoftext|>"},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", false},
                       {"special", true}}}},
                    {"normalizer", nullptr},
                    {"pre_tokenizer",
                     {{"type", "ByteLevel"},
                      {"add_prefix_space", false},
                      {"trim_offsets", true},
                      {"use_regex", true}}},
                    {"post_processor", nullptr},
                    {"decoder",
                     {{"type", "ByteLevel"},
                      {"add_prefix_space", true},
                      {"trim_offsets", true},
                      {"use_regex", true}}},
                    {"model",
                     {{"type", "BPE"},
                      {"dropout", nullptr},
                      {"unk_token", nullptr},
                      {"continuing_subword_prefix", nullptr},
                      {"end_of_word_suffix", nullptr},
                      {"fuse_unk", false},
                      {"byte_fallback", false},
                      {"vocab", vocab},
                      {"merges", {"h e", "l l", "he ll"}}}}};
  write_binary_file(path, tok.dump());
}

void write_tiny_hf_model(const std::filesystem::path& dir, const TinyHfSpec& s) {
  std::filesystem::create_directories(dir);
  const json config = {{"architectures", {"LlamaForCausalLM"}},
                       {"model_type", "llama"},
                       {"hidden_size", s.n_embd},
                       {"intermediate_size", s.n_ff},
                       {"num_hidden_layers", s.n_layer},
                       {"num_attention_heads", s.n_head},
                       {"num_key_value_heads", s.n_head_kv},
                       {"head_dim", s.head_dim},
                       {"max_position_embeddings", s.context},
                       {"rope_theta", 10000.0},
                       {"rms_norm_eps", 1e-5},
                       {"vocab_size", kTinyTokenizerVocab},
                       {"tie_word_embeddings", true},
                       {"rope_scaling", nullptr},
                       {"hidden_act", "silu"},
                       {"torch_dtype", "float32"}};
  write_binary_file(dir / "config.json", config.dump(2));
  write_tiny_tokenizer(dir / "tokenizer.json");

  std::mt19937 rng(s.seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<SafetensorsTensor> tensors;
  // Weights ~ N(0, scale^2): scaled so activations stay O(1) and attention is peaked enough
  // for its maps to show structure.
  auto add = [&](const std::string& name, std::vector<uint64_t> shape, float scale, float mean) {
    uint64_t n = 1;
    for (auto d : shape) n *= d;
    std::vector<float> v(n);
    for (auto& x : v) x = mean + scale * normal(rng);
    tensors.push_back(f32_tensor(name, std::move(shape), v));
  };
  const uint64_t D = s.n_embd, F = s.n_ff, V = kTinyTokenizerVocab;
  const uint64_t q = static_cast<uint64_t>(s.n_head) * s.head_dim;
  const uint64_t kv = static_cast<uint64_t>(s.n_head_kv) * s.head_dim;
  const float in = 1.0f / std::sqrt(static_cast<float>(D));
  add("model.embed_tokens.weight", {V, D}, 1.0f, 0.0f);
  add("model.norm.weight", {D}, 0.05f, 1.0f);
  for (int l = 0; l < s.n_layer; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {D}, 0.05f, 1.0f);
    add(p + "self_attn.q_proj.weight", {q, D}, 2.0f * in, 0.0f);
    add(p + "self_attn.k_proj.weight", {kv, D}, 2.0f * in, 0.0f);
    add(p + "self_attn.v_proj.weight", {kv, D}, in, 0.0f);
    add(p + "self_attn.o_proj.weight", {D, q}, in, 0.0f);
    add(p + "post_attention_layernorm.weight", {D}, 0.05f, 1.0f);
    add(p + "mlp.gate_proj.weight", {F, D}, in, 0.0f);
    add(p + "mlp.up_proj.weight", {F, D}, in, 0.0f);
    add(p + "mlp.down_proj.weight", {D, F}, 1.0f / std::sqrt(static_cast<float>(F)), 0.0f);
  }
  write_safetensors(dir / "model.safetensors", tensors, {{"format", "pt"}});
}

}  // namespace attnscope::test
