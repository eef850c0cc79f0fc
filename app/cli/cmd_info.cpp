// `attnscope-cli info`: the model's hyper-parameters, tensor types and source as JSON.
#include <memory>

#include "attnscope/tokenizer.h"
#include "cli_common.h"

namespace attnscope::cli {

namespace {

struct InfoOptions {
  std::string model;
};

nlohmann::json model_info_json(const Model& model) {
  const ModelConfig& c = model.config;
  nlohmann::json tensor_types = nlohmann::json::object();
  for (const auto& [type, count] : model.source.tensor_type_counts) tensor_types[type] = count;
  nlohmann::json info = {
      {"architecture", c.architecture},
      {"name", c.name},
      {"n_layer", c.n_layer},
      {"n_head", c.n_head},
      {"n_head_kv", c.n_head_kv},
      {"head_dim", c.head_dim},
      {"n_embd", c.n_embd},
      {"n_ff", c.n_ff},
      {"context_length", c.context_length},
      {"vocab_size", c.vocab_size},
      // Q/K rows are in HF order, so RoPE pairs dims (i, i + d/2) over the whole head.
      {"rope", {{"theta", c.rope_theta}, {"dimension_count", c.head_dim}, {"type", "half-split"}}},
      {"rms_norm_eps", c.rms_norm_eps},
      {"tied_embeddings", c.tied_embeddings},
      {"qkv_bias", c.qkv_bias},
      {"tensor_types", tensor_types},
      {"file_size", model.source.file_size},
      {"file_type", model.source.file_type},
      {"format", model.source.format},
      {"path", model.source.path.string()},
  };
  if (model.tokenizer) {
    const TokenizerSpec& spec = model.tokenizer->spec();
    info["tokenizer"] = {{"model", spec.model},
                         {"pre", spec.pre},
                         {"vocab_size", model.tokenizer->vocab_size()},
                         {"bos_id", spec.bos_id},
                         {"eos_id", spec.eos_id},
                         {"add_bos", spec.add_bos},
                         {"add_eos", spec.add_eos}};
  }
  return info;
}

}  // namespace

Command add_info_command(CLI::App& parent) {
  auto options = std::make_shared<InfoOptions>();
  CLI::App* app = parent.add_subcommand("info", "Print the model's hyper-parameters as JSON");
  add_model_option(app, options->model);
  return {app, [options] {
            const auto model = load_model_for_cli(options->model);
            print_json(model_info_json(*model));
            return 0;
          }};
}

}  // namespace attnscope::cli
