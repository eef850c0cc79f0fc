// `attnscope-cli eval`: perplexity of a text file under the model (non-overlapping windows of
// --context tokens), with throughput, as JSON.
#include <algorithm>
#include <cmath>
#include <memory>

#include "attnscope/error.h"
#include "attnscope/session.h"
#include "attnscope/tokenizer.h"
#include "cli_common.h"

namespace attnscope::cli {

namespace {

struct EvalOptions {
  std::string model;
  std::string text_file;
  int max_tokens = 0;
  int context = 0;
  std::string backend;
  int threads = 0;
};

int run_eval(const EvalOptions& o) {
  const std::string text = read_utf8_file(o.text_file);
  const auto model = load_model_for_cli(o.model);
  int context = resolve_context(*model, o.context);

  std::vector<int32_t> ids = model->tokenizer->encode(text, /*add_special=*/true);
  if (o.max_tokens > 0 && static_cast<int>(ids.size()) > o.max_tokens) {
    ids.resize(static_cast<size_t>(o.max_tokens));
  }
  if (ids.size() < 2) {
    throw_bad_input(o.text_file, std::to_string(ids.size()) +
                                     " tokens (expected at least 2 to score a prediction)");
  }
  // A window longer than the text only costs KV-cache memory, so shrink it to the text.
  context = std::min(context, static_cast<int>(ids.size()));
  if (context < 2) throw_usage("--context: expected at least 2 tokens");

  auto backend = make_backend(o.backend, o.threads);
  InferenceSession session(model, backend, context);
  const PerplexityResult r = evaluate_perplexity(session, ids);
  if (!std::isfinite(r.perplexity)) {
    throw_runtime("perplexity is not finite (mean NLL " + std::to_string(r.mean_nll) + ")");
  }
  print_json({{"text_file", o.text_file},
              {"n_tokens", ids.size()},
              {"n_predicted", r.n_predicted},
              {"context", context},
              {"perplexity", r.perplexity},
              {"mean_nll", r.mean_nll},
              {"seconds", r.seconds},
              {"tokens_per_second", r.tokens_per_second()},
              {"backend", backend->name()},
              {"device", backend->device_name()},
              {"model", model->source.path.string()}});
  return 0;
}

}  // namespace

Command add_eval_command(CLI::App& parent) {
  auto o = std::make_shared<EvalOptions>();
  CLI::App* app = parent.add_subcommand("eval", "Perplexity of a text file, as JSON");
  add_model_option(app, o->model);
  app->add_option("-f,--text-file", o->text_file, "UTF-8 text to score")->required();
  app->add_option("-n,--max-tokens", o->max_tokens, "Score only the first N tokens (0 = all)")
      ->check(CLI::Range(0, 1 << 30))
      ->capture_default_str();
  app->add_option("--context", o->context,
                  "Window length in tokens (0 = the model's context, capped to the text)")
      ->check(CLI::Range(0, 1 << 24))
      ->capture_default_str();
  add_backend_options(app, o->backend, o->threads);
  return {app, [o] { return run_eval(*o); }};
}

}  // namespace attnscope::cli
