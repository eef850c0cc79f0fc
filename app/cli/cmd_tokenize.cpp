// `attnscope-cli tokenize`: token ids and the text of each token as JSON.
#include <memory>

#include "attnscope/error.h"
#include "attnscope/file_util.h"
#include "attnscope/tokenizer.h"
#include "cli_common.h"

namespace attnscope::cli {

namespace {

struct TokenizeOptions {
  std::string model;
  std::string text;
  std::string text_file;
  bool no_special = false;
};

int run_tokenize(const TokenizeOptions& o, bool text_given) {
  const std::string text =
      text_from_options(o.text, text_given, o.text_file, "--text", "--text-file");
  const auto model = load_model_for_cli(o.model);
  if (!model->tokenizer) throw_bad_input(o.model, "model has no tokenizer");
  const Tokenizer& tokenizer = *model->tokenizer;
  const std::vector<int32_t> ids = tokenizer.encode(text, !o.no_special);

  nlohmann::json tokens = nlohmann::json::array();
  nlohmann::json pieces = nlohmann::json::array();
  for (const int32_t id : ids) {
    // A token may hold part of a multi-byte character; then its decoded bytes are not text,
    // so show the vocabulary's byte-level form (always valid UTF-8) instead.
    const std::string bytes = tokenizer.token_bytes(id);
    tokens.push_back(is_valid_utf8(bytes) ? bytes : tokenizer.token_text(id));
    pieces.push_back(tokenizer.token_text(id));
  }
  print_json({{"count", ids.size()},
              {"ids", ids},
              {"tokens", tokens},
              {"pieces", pieces},
              {"decoded", tokenizer.decode(ids)}});
  return 0;
}

}  // namespace

Command add_tokenize_command(CLI::App& parent) {
  auto options = std::make_shared<TokenizeOptions>();
  CLI::App* app = parent.add_subcommand(
      "tokenize", "Tokenize a text; JSON with ids, decoded token strings and count");
  add_model_option(app, options->model);
  CLI::Option* text = app->add_option("-t,--text", options->text, "Text to tokenize (UTF-8)");
  app->add_option("-f,--text-file", options->text_file, "File with the text (UTF-8)");
  app->add_flag("--no-special", options->no_special,
                "Do not add BOS/EOS even if the model's metadata asks for them");
  return {app, [options, text] { return run_tokenize(*options, text->count() > 0); }};
}

}  // namespace attnscope::cli
