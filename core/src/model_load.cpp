// load_model dispatch (directory -> HF loader, file -> GGUF loader) and validate_model, the
// final consistency check every loader runs on the Model it built.
#include <cmath>

#include "attnscope/error.h"
#include "attnscope/model.h"

namespace attnscope {
namespace {

// Sanity limits: far above any model this tool targets, low enough to catch garbage.
constexpr int kMaxLayers = 1024;
constexpr int kMaxEmbd = 65536;
constexpr int kMaxVocab = 4 << 20;
constexpr int kMaxHeads = 4096;
constexpr int kMaxFf = 1 << 20;
constexpr int kMaxContext = 1 << 24;

void check_range(const std::string& where, const char* field, int value, int hi) {
  if (value < 1 || value > hi) {
    throw_bad_input(where + ": " + field,
                    std::to_string(value) + ", expected 1.." + std::to_string(hi));
  }
}

void check_size(const std::string& where, const std::string& field, const std::vector<float>& v,
                size_t expected) {
  if (v.size() != expected) {
    throw_bad_input(where + ": " + field, "has " + std::to_string(v.size()) + " values, expected " +
                                              std::to_string(expected));
  }
}

}  // namespace

std::shared_ptr<const Model> load_model(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return load_hf_model(path);
  return load_gguf_model(path);
}

void validate_model(const Model& model, const std::string& where) {
  const ModelConfig& c = model.config;
  check_range(where, "n_layer", c.n_layer, kMaxLayers);
  check_range(where, "n_embd", c.n_embd, kMaxEmbd);
  check_range(where, "n_head", c.n_head, kMaxHeads);
  check_range(where, "n_head_kv", c.n_head_kv, kMaxHeads);
  check_range(where, "head_dim", c.head_dim, kMaxEmbd);
  check_range(where, "n_ff", c.n_ff, kMaxFf);
  check_range(where, "vocab_size", c.vocab_size, kMaxVocab);
  check_range(where, "context_length", c.context_length, kMaxContext);
  if (c.n_head % c.n_head_kv != 0) {
    throw_bad_input(
        where + ": n_head_kv",
        std::to_string(c.n_head_kv) + " does not divide n_head " + std::to_string(c.n_head));
  }
  if (static_cast<int64_t>(c.n_head) * c.head_dim != c.n_embd) {
    throw_bad_input(where + ": head_dim", std::to_string(c.head_dim) + " x n_head " +
                                              std::to_string(c.n_head) + " != n_embd " +
                                              std::to_string(c.n_embd));
  }
  if (!(c.rope_theta > 0.0f) || !std::isfinite(c.rope_theta)) {
    throw_bad_input(where + ": rope_theta", "expected a positive finite number");
  }
  if (!(c.rms_norm_eps > 0.0f && c.rms_norm_eps < 1.0f)) {
    throw_bad_input(where + ": rms_norm_eps", "expected a number in (0, 1)");
  }
  if (static_cast<int>(model.layers.size()) != c.n_layer) {
    throw_bad_input(where + ": layers", std::to_string(model.layers.size()) +
                                            " layers, expected n_layer " +
                                            std::to_string(c.n_layer));
  }
  const size_t D = static_cast<size_t>(c.n_embd), F = static_cast<size_t>(c.n_ff);
  const size_t V = static_cast<size_t>(c.vocab_size);
  const size_t q = static_cast<size_t>(c.n_head) * static_cast<size_t>(c.head_dim);
  const size_t kv = static_cast<size_t>(c.n_head_kv) * static_cast<size_t>(c.head_dim);
  check_size(where, "token_embd", model.token_embd, V * D);
  check_size(where, "output_norm", model.output_norm, D);
  if (!c.tied_embeddings || !model.output.empty()) check_size(where, "output", model.output, V * D);
  for (size_t i = 0; i < model.layers.size(); ++i) {
    const LayerWeights& L = model.layers[i];
    const std::string p = "layer " + std::to_string(i) + " ";
    check_size(where, p + "attn_norm", L.attn_norm, D);
    check_size(where, p + "wq", L.wq, q * D);
    check_size(where, p + "wk", L.wk, kv * D);
    check_size(where, p + "wv", L.wv, kv * D);
    check_size(where, p + "wo", L.wo, D * q);
    check_size(where, p + "ffn_norm", L.ffn_norm, D);
    check_size(where, p + "w_gate", L.w_gate, F * D);
    check_size(where, p + "w_up", L.w_up, F * D);
    check_size(where, p + "w_down", L.w_down, D * F);
    if (c.qkv_bias) {
      check_size(where, p + "bq", L.bq, q);
      check_size(where, p + "bk", L.bk, kv);
      check_size(where, p + "bv", L.bv, kv);
    } else if (!L.bq.empty() || !L.bk.empty() || !L.bv.empty()) {
      throw_bad_input(where + ": " + p + "biases", "present but config.qkv_bias is false");
    }
  }
}

}  // namespace attnscope
