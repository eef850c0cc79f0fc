// The in-memory model: llama-family hyper-parameters plus fp32 weights in HF layout
// (row-major [out_features, in_features]), whatever file they came from.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "attnscope/tokenizer.h"

namespace attnscope {

struct ModelConfig {
  std::string architecture;  // "llama", "qwen2", ...
  std::string name;          // general.name or directory name
  int n_layer = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;
  int n_embd = 0;
  int n_ff = 0;
  int context_length = 0;
  int vocab_size = 0;
  float rope_theta = 10000.0f;
  float rms_norm_eps = 1e-5f;
  bool tied_embeddings = false;
  bool qkv_bias = false;
  int group_size() const { return n_head_kv > 0 ? n_head / n_head_kv : 0; }
};

// One decoder layer. Shapes use H = n_head, Hkv = n_head_kv, d = head_dim, D = n_embd, F = n_ff.
// Q/K rows are in HF order: within each head, RoPE pairs dims (i, i + d/2) ("half split").
struct LayerWeights {
  std::vector<float> attn_norm;  // [D]
  std::vector<float> wq;         // [H*d, D]
  std::vector<float> wk;         // [Hkv*d, D]
  std::vector<float> wv;         // [Hkv*d, D]
  std::vector<float> bq, bk, bv; // [H*d], [Hkv*d], [Hkv*d] or empty (no bias)
  std::vector<float> wo;         // [D, H*d]
  std::vector<float> ffn_norm;   // [D]
  std::vector<float> w_gate;     // [F, D]
  std::vector<float> w_up;       // [F, D]
  std::vector<float> w_down;     // [D, F]
};

struct ModelSource {
  std::filesystem::path path;  // file (GGUF) or directory (HF)
  std::string format;          // "gguf" or "safetensors"
  uint64_t file_size = 0;      // bytes of all weight files
  std::map<std::string, int> tensor_type_counts;  // "Q4_1" -> count, as stored
  std::string file_type;       // e.g. "MOSTLY_Q4_1" when the file says
};

struct Model {
  ModelConfig config;
  ModelSource source;
  std::vector<float> token_embd;   // [vocab, D]
  std::vector<LayerWeights> layers;
  std::vector<float> output_norm;  // [D]
  std::vector<float> output;       // [vocab, D]; empty when tied to token_embd
  std::shared_ptr<const Tokenizer> tokenizer;

  const std::vector<float>& output_weights() const {
    return config.tied_embeddings || output.empty() ? token_embd : output;
  }
};

// Opens a GGUF file or an HF directory (config.json + *.safetensors + tokenizer.json).
// Throws Error(BadInput) naming the file and field on anything malformed or unsupported.
std::shared_ptr<const Model> load_model(const std::filesystem::path& path);
std::shared_ptr<const Model> load_gguf_model(const std::filesystem::path& path);
std::shared_ptr<const Model> load_hf_model(const std::filesystem::path& directory);

// Checks the config (positive sizes, n_head % n_head_kv == 0, sizes within sane limits) and
// that every weight vector has exactly the size its shape requires. `where` names the source.
void validate_model(const Model& model, const std::string& where);

}  // namespace attnscope
