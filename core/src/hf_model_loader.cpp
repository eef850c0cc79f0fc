// Loads a Hugging Face model directory (config.json + *.safetensors + tokenizer.json) of a
// llama-style decoder (llama, mistral, qwen2) into the same Model the GGUF loader produces.
// HF checkpoints already store Q/K rows in HF order, so no permutation is applied.
#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "attnscope/error.h"
#include "attnscope/file_util.h"
#include "attnscope/model.h"
#include "attnscope/safetensors_file.h"
#include "attnscope/tokenizer.h"

namespace attnscope {

namespace {

using nlohmann::json;

// Upper bounds on hyper-parameters: far above any model this tool targets, low enough that
// products such as vocab * n_embd cannot overflow and a corrupt config fails fast.
constexpr int64_t kMaxLayers = 4096;
constexpr int64_t kMaxHeads = 4096;
constexpr int64_t kMaxWidth = 1 << 20;  // n_embd, n_ff
constexpr int64_t kMaxVocab = 1 << 24;
constexpr int64_t kMaxContext = 1 << 24;

const char* json_type_name(const json& v) {
  return v.type_name();  // "number", "string", "null", ...
}

// Typed access to config.json fields; every error names the file and the field.
class ConfigReader {
 public:
  ConfigReader(std::string where, const json& root) : m_where(std::move(where)), m_root(root) {}

  const std::string& where() const { return m_where; }
  std::string field(const std::string& key) const { return m_where + ": field '" + key + "'"; }

  // Absent or null -> nullopt.
  const json* get(const std::string& key) const {
    const auto it = m_root.find(key);
    if (it == m_root.end() || it->is_null()) return nullptr;
    return &*it;
  }

  std::optional<int64_t> optional_int(const std::string& key, int64_t min, int64_t max) const {
    const json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_number_integer()) {
      throw_bad_input(field(key), std::string("expected an integer, got ") + json_type_name(*v) +
                                      " " + v->dump());
    }
    // Values beyond int64 only arrive as unsigned; compare them before narrowing.
    const bool too_big = v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(max);
    if (too_big || v->get<int64_t>() < min || v->get<int64_t>() > max) {
      throw_bad_input(field(key), "expected an integer in [" + std::to_string(min) + ", " +
                                      std::to_string(max) + "], got " + v->dump());
    }
    return v->get<int64_t>();
  }

  int require_int(const std::string& key, int64_t min, int64_t max) const {
    const auto v = optional_int(key, min, max);
    if (!v) throw_bad_input(field(key), "missing (expected an integer)");
    return static_cast<int>(*v);
  }

  std::optional<double> optional_number(const std::string& key) const {
    const json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_number()) {
      throw_bad_input(field(key), std::string("expected a number, got ") + json_type_name(*v) +
                                      " " + v->dump());
    }
    return v->get<double>();
  }

  std::optional<bool> optional_bool(const std::string& key) const {
    const json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) {
      throw_bad_input(field(key), std::string("expected true or false, got ") + json_type_name(*v) +
                                      " " + v->dump());
    }
    return v->get<bool>();
  }

  std::optional<std::string> optional_string(const std::string& key) const {
    const json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_string()) {
      throw_bad_input(field(key), std::string("expected a string, got ") + json_type_name(*v) +
                                      " " + v->dump());
    }
    return v->get<std::string>();
  }

 private:
  std::string m_where;
  const json& m_root;
};

// HF model_type or architectures[0] -> family ("llama", "mistral", "qwen2").
std::string read_family(const ConfigReader& cfg) {
  std::optional<std::string> from_arch;
  if (const json* archs = cfg.get("architectures")) {
    if (!archs->is_array() || archs->empty() || !(*archs)[0].is_string()) {
      throw_bad_input(cfg.field("architectures"), "expected an array of class names");
    }
    const std::string arch = (*archs)[0].get<std::string>();
    const std::string suffix = "ForCausalLM";
    if (arch.size() <= suffix.size() ||
        arch.compare(arch.size() - suffix.size(), suffix.size(), suffix) != 0) {
      throw_bad_input(cfg.field("architectures"),
                      "unsupported \"" + arch + "\" (expected a *ForCausalLM decoder)");
    }
    const std::string stem = arch.substr(0, arch.size() - suffix.size());
    if (stem == "Llama")
      from_arch = "llama";
    else if (stem == "Mistral")
      from_arch = "mistral";
    else if (stem == "Qwen2")
      from_arch = "qwen2";
    else
      from_arch = stem;
  }
  const auto model_type = cfg.optional_string("model_type");
  const std::string family = model_type ? *model_type : from_arch.value_or("");
  if (family.empty()) {
    throw_bad_input(cfg.field("model_type"), "missing (expected llama, mistral or qwen2)");
  }
  if (family != "llama" && family != "mistral" && family != "qwen2") {
    throw_bad_input(cfg.field(model_type ? "model_type" : "architectures"),
                    "unsupported model type \"" + family + "\" (expected llama, mistral or qwen2)");
  }
  return family;
}

// Hyper-parameters from config.json. Also says whether the checkpoint has QKV biases.
ModelConfig read_config(const ConfigReader& cfg, const std::string& family) {
  ModelConfig c;
  // Mistral is a llama with a different name; the forward pass treats them alike.
  c.architecture = family == "qwen2" ? "qwen2" : "llama";
  c.n_embd = cfg.require_int("hidden_size", 1, kMaxWidth);
  c.n_ff = cfg.require_int("intermediate_size", 1, kMaxWidth);
  c.n_layer = cfg.require_int("num_hidden_layers", 1, kMaxLayers);
  c.n_head = cfg.require_int("num_attention_heads", 1, kMaxHeads);
  c.n_head_kv =
      static_cast<int>(cfg.optional_int("num_key_value_heads", 1, kMaxHeads).value_or(c.n_head));
  c.context_length = cfg.require_int("max_position_embeddings", 1, kMaxContext);
  c.vocab_size = cfg.require_int("vocab_size", 1, kMaxVocab);

  if (c.n_embd % c.n_head != 0) {
    throw_bad_input(
        cfg.field("num_attention_heads"),
        std::to_string(c.n_head) + " does not divide hidden_size " + std::to_string(c.n_embd));
  }
  c.head_dim = c.n_embd / c.n_head;
  if (const auto head_dim = cfg.optional_int("head_dim", 1, kMaxWidth)) {
    if (*head_dim != c.head_dim) {
      throw_bad_input(cfg.field("head_dim"), "unsupported " + std::to_string(*head_dim) +
                                                 " (expected hidden_size / num_attention_heads = " +
                                                 std::to_string(c.head_dim) + ")");
    }
  }
  if (c.n_head % c.n_head_kv != 0) {
    throw_bad_input(cfg.field("num_key_value_heads"), std::to_string(c.n_head_kv) +
                                                          " does not divide num_attention_heads " +
                                                          std::to_string(c.n_head));
  }

  // RoPE: plain (unscaled) rotary embeddings only. transformers 5 may nest the theta in
  // rope_parameters; older configs keep rope_theta at the top level.
  if (cfg.get("rope_scaling")) {
    throw_bad_input(cfg.field("rope_scaling"), "unsupported RoPE scaling " +
                                                   cfg.get("rope_scaling")->dump() +
                                                   " (expected null or absent)");
  }
  std::optional<double> theta = cfg.optional_number("rope_theta");
  if (const json* params = cfg.get("rope_parameters")) {
    if (!params->is_object()) throw_bad_input(cfg.field("rope_parameters"), "expected an object");
    const ConfigReader sub(cfg.field("rope_parameters"), *params);
    const auto type = sub.optional_string("rope_type");
    if (type && *type != "default") {
      throw_bad_input(cfg.field("rope_parameters"),
                      "unsupported rope_type \"" + *type + "\" (expected \"default\")");
    }
    if (!theta) theta = sub.optional_number("rope_theta");
  }
  if (const auto factor = cfg.optional_number("partial_rotary_factor"); factor && *factor != 1.0) {
    throw_bad_input(cfg.field("partial_rotary_factor"), "unsupported value (expected 1.0)");
  }
  c.rope_theta = static_cast<float>(theta.value_or(10000.0));  // HF default
  if (!(c.rope_theta > 0.0f) || !std::isfinite(c.rope_theta)) {
    throw_bad_input(cfg.field("rope_theta"), "expected a positive number");
  }
  c.rms_norm_eps = static_cast<float>(cfg.optional_number("rms_norm_eps").value_or(1e-6));
  if (!(c.rms_norm_eps > 0.0f) || !std::isfinite(c.rms_norm_eps)) {
    throw_bad_input(cfg.field("rms_norm_eps"), "expected a positive number");
  }

  if (const auto act = cfg.optional_string("hidden_act"); act && *act != "silu") {
    throw_bad_input(cfg.field("hidden_act"), "unsupported \"" + *act + "\" (expected \"silu\")");
  }
  if (cfg.optional_bool("mlp_bias").value_or(false)) {
    throw_bad_input(cfg.field("mlp_bias"), "unsupported true (expected false: no MLP bias)");
  }
  if (family == "qwen2") {
    // Qwen2's q/k/v projections always carry a bias, its o_proj never does.
    c.qkv_bias = true;
    if (cfg.optional_bool("use_sliding_window").value_or(false)) {
      throw_bad_input(cfg.field("use_sliding_window"), "unsupported true (expected false)");
    }
  } else {
    // In llama/mistral attention_bias also adds an o_proj bias, which Model cannot hold.
    if (cfg.optional_bool("attention_bias").value_or(false)) {
      throw_bad_input(cfg.field("attention_bias"),
                      "unsupported true (it adds an o_proj bias; expected false)");
    }
    if (family == "mistral") {
      // Sliding-window attention equals full attention for sequences within the window, so
      // limit the usable context to the window instead of computing something else silently.
      if (const auto window = cfg.optional_int("sliding_window", 1, kMaxContext)) {
        c.context_length = std::min<int>(c.context_length, static_cast<int>(*window));
      }
    }
  }
  // LlamaConfig, MistralConfig and Qwen2Config all default to untied embeddings.
  c.tied_embeddings = cfg.optional_bool("tie_word_embeddings").value_or(false);
  return c;
}

std::string shape_text(const std::vector<uint64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// A tensor with exactly the expected shape, as fp32 in its row-major order.
// `what` names the expected shape in model terms, e.g. "[n_head*head_dim, hidden_size]".
std::vector<float> load_tensor(const SafetensorsModelFiles& files, const std::string& name,
                               const std::vector<uint64_t>& shape, const std::string& what) {
  const auto entry = files.require(name);
  if (entry.info->shape != shape) {
    throw_bad_input(
        entry.file->path().string() + ": tensor '" + name + "'",
        "shape " + shape_text(entry.info->shape) + ", expected " + shape_text(shape) + " " + what);
  }
  return entry.file->to_fp32(*entry.info);
}

std::string directory_name(const std::filesystem::path& dir) {
  auto p = dir;
  if (p.filename().empty()) p = p.parent_path();  // "models/x/" -> "models/x"
  return p.filename().string();
}

}  // namespace

std::shared_ptr<const Model> load_hf_model(const std::filesystem::path& directory) {
  std::error_code ec;
  if (!std::filesystem::is_directory(directory, ec)) {
    throw_bad_input(directory.string(),
                    "not a directory (expected a Hugging Face model directory)");
  }
  const auto config_path = directory / "config.json";
  if (!std::filesystem::exists(config_path, ec)) {
    throw_bad_input(directory.string(), "no config.json (expected a Hugging Face model directory)");
  }
  json root;
  try {
    root = json::parse(read_text_file(config_path));
  } catch (const json::exception& e) {
    throw_bad_input(config_path.string(), std::string("invalid JSON (") + e.what() + ")");
  }
  if (!root.is_object()) throw_bad_input(config_path.string(), "expected a JSON object");
  const ConfigReader cfg(config_path.string(), root);
  const std::string family = read_family(cfg);

  auto model = std::make_shared<Model>();
  model->config = read_config(cfg, family);
  ModelConfig& c = model->config;
  c.name = directory_name(directory);

  const auto files = SafetensorsModelFiles::open_directory(directory);
  const auto D = static_cast<uint64_t>(c.n_embd);
  const auto F = static_cast<uint64_t>(c.n_ff);
  const auto V = static_cast<uint64_t>(c.vocab_size);
  const auto q_rows = static_cast<uint64_t>(c.n_head) * static_cast<uint64_t>(c.head_dim);
  const auto kv_rows = static_cast<uint64_t>(c.n_head_kv) * static_cast<uint64_t>(c.head_dim);

  model->token_embd =
      load_tensor(files, "model.embed_tokens.weight", {V, D}, "[vocab_size, hidden_size]");
  model->output_norm = load_tensor(files, "model.norm.weight", {D}, "[hidden_size]");
  // A missing lm_head means the checkpoint relies on tying, whatever the config says.
  if (!c.tied_embeddings && files.find("lm_head.weight")) {
    model->output = load_tensor(files, "lm_head.weight", {V, D}, "[vocab_size, hidden_size]");
  } else {
    c.tied_embeddings = true;
  }

  model->layers.resize(static_cast<size_t>(c.n_layer));
  for (int il = 0; il < c.n_layer; ++il) {
    const std::string p = "model.layers." + std::to_string(il) + ".";
    LayerWeights& l = model->layers[static_cast<size_t>(il)];
    l.attn_norm = load_tensor(files, p + "input_layernorm.weight", {D}, "[hidden_size]");
    l.wq = load_tensor(files, p + "self_attn.q_proj.weight", {q_rows, D},
                       "[num_attention_heads*head_dim, hidden_size]");
    l.wk = load_tensor(files, p + "self_attn.k_proj.weight", {kv_rows, D},
                       "[num_key_value_heads*head_dim, hidden_size]");
    l.wv = load_tensor(files, p + "self_attn.v_proj.weight", {kv_rows, D},
                       "[num_key_value_heads*head_dim, hidden_size]");
    l.wo = load_tensor(files, p + "self_attn.o_proj.weight", {D, q_rows},
                       "[hidden_size, num_attention_heads*head_dim]");
    if (c.qkv_bias) {
      l.bq = load_tensor(files, p + "self_attn.q_proj.bias", {q_rows},
                         "[num_attention_heads*head_dim]");
      l.bk = load_tensor(files, p + "self_attn.k_proj.bias", {kv_rows},
                         "[num_key_value_heads*head_dim]");
      l.bv = load_tensor(files, p + "self_attn.v_proj.bias", {kv_rows},
                         "[num_key_value_heads*head_dim]");
    } else {
      for (const char* b : {"q_proj.bias", "k_proj.bias", "v_proj.bias"}) {
        if (files.find(p + "self_attn." + b)) {
          throw_bad_input(directory.string() + ": tensor '" + p + "self_attn." + b + "'",
                          "unexpected bias (config.json says the attention has no bias)");
        }
      }
    }
    if (files.find(p + "self_attn.o_proj.bias")) {
      throw_bad_input(directory.string() + ": tensor '" + p + "self_attn.o_proj.bias'",
                      "unsupported o_proj bias (expected none)");
    }
    l.ffn_norm = load_tensor(files, p + "post_attention_layernorm.weight", {D}, "[hidden_size]");
    l.w_gate =
        load_tensor(files, p + "mlp.gate_proj.weight", {F, D}, "[intermediate_size, hidden_size]");
    l.w_up =
        load_tensor(files, p + "mlp.up_proj.weight", {F, D}, "[intermediate_size, hidden_size]");
    l.w_down =
        load_tensor(files, p + "mlp.down_proj.weight", {D, F}, "[hidden_size, intermediate_size]");
  }
  const std::string extra_layer =
      "model.layers." + std::to_string(c.n_layer) + ".input_layernorm.weight";
  if (files.find(extra_layer)) {
    throw_bad_input(
        cfg.field("num_hidden_layers"),
        std::to_string(c.n_layer) + " layers, but the weights have tensor '" + extra_layer + "'");
  }

  const auto tokenizer_path = directory / "tokenizer.json";
  if (!std::filesystem::exists(tokenizer_path, ec)) {
    throw_bad_input(directory.string(),
                    "no tokenizer.json (expected the HF tokenizer next to config.json)");
  }
  model->tokenizer = Tokenizer::from_tokenizer_json(tokenizer_path);
  if (model->tokenizer->vocab_size() > c.vocab_size) {
    throw_bad_input(tokenizer_path.string(), std::to_string(model->tokenizer->vocab_size()) +
                                                 " tokens, more than config.json vocab_size " +
                                                 std::to_string(c.vocab_size));
  }

  ModelSource& src = model->source;
  src.path = directory;
  src.format = "safetensors";
  src.file_size = files.total_file_size();
  src.tensor_type_counts = files.dtype_counts();
  src.file_type = src.tensor_type_counts.size() == 1 ? src.tensor_type_counts.begin()->first
                                                     : std::string("mixed");

  validate_model(*model, directory.string());
  return model;
}

}  // namespace attnscope
