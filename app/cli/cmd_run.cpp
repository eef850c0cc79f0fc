// `attnscope-cli run`: runs the baseline and one or more attention variants on a prompt
// (optionally decoding N tokens, fed identically to every variant) and saves them as a session
// directory (session_io.h): one trace folder per run plus DIR/index.json listing them.
#include <filesystem>
#include <iostream>
#include <memory>

#include "attnscope/error.h"
#include "attnscope/run.h"
#include "attnscope/session_io.h"
#include "attnscope/variant_spec.h"
#include "cli_common.h"

namespace attnscope::cli {

namespace {

struct RunCommandOptions {
  std::string model;
  std::string prompt;
  std::string prompt_file;
  std::vector<std::string> variants;
  int decode = 0;
  std::string out;
  int context = 0;
  bool chat = false;
  bool no_qk = false;
  std::string backend;
  int threads = 0;
};

int run_run(const RunCommandOptions& o, bool prompt_given) {
  // Specs first: a typo fails before the model is loaded.
  std::vector<VariantSpec> specs;
  for (const auto& text : o.variants) specs.push_back(VariantSpec::parse(text));
  if (o.decode < 0) throw_usage("--decode: expected >= 0");
  std::string text =
      text_from_options(o.prompt, prompt_given, o.prompt_file, "--prompt", "--prompt-file");
  const std::string where = o.prompt_file.empty() ? "--prompt" : o.prompt_file;
  if (o.chat) text = chat_wrap(text, "");

  // Checked before the model loads and the run starts, not after it: save_session never
  // replaces an unrelated folder.
  const std::filesystem::path out_dir(o.out);
  std::error_code ec;
  if (std::filesystem::exists(out_dir, ec) && !is_session_directory(out_dir) &&
      !(std::filesystem::is_directory(out_dir, ec) && std::filesystem::is_empty(out_dir, ec))) {
    throw_runtime(o.out + ": exists and is not a run directory (no index.json); not replacing it");
  }

  const auto model = load_model_for_cli(o.model);
  const int context = resolve_context(*model, o.context);
  const std::vector<int32_t> ids = tokenize_prompt(*model, text, context, where);
  if (static_cast<int>(ids.size()) + o.decode > context) {
    throw_bad_input(where, std::to_string(ids.size()) + " tokens + " + std::to_string(o.decode) +
                               " decode steps exceed the context of " + std::to_string(context));
  }
  RunOptions options;
  options.decode_steps = o.decode;
  options.backend = make_backend(o.backend, o.threads);
  options.store_qk = !o.no_qk;
  options.progress = stderr_progress("run");
  std::cerr << "run: " << ids.size() << " prompt tokens, " << o.decode << " decode steps, "
            << specs.size() << " variant(s) + baseline on " << options.backend->name() << '\n';
  const double start = now_seconds();
  std::vector<Trace> traces = run_variants(model, ids, specs, options);
  const double seconds = now_seconds() - start;
  if (traces.size() != specs.size() + 1) {
    throw_runtime("run_variants returned " + std::to_string(traces.size()) + " traces, expected " +
                  std::to_string(specs.size() + 1));
  }

  Session session;
  session.prompt = text;
  session.decode_steps = o.decode;
  session.run_seconds = seconds;
  for (Trace& t : traces) {  // moved, never copied: traces can be large
    session.traces.push_back(std::make_shared<const Trace>(std::move(t)));
  }
  save_session(session, out_dir);
  for (size_t i = 0; i < session.traces.size(); ++i) {
    const Trace& t = *session.traces[i];
    std::cout << session_trace_folder(i, t.variant) << '\t'
              << sanitize_utf8(t.variant.display_name());
    for (const char* key : {"kl_mean", "top1_agreement"}) {
      const auto it = t.metrics.find(key);
      if (it != t.metrics.end()) std::cout << '\t' << key << '=' << it->second;
    }
    std::cout << '\n';
  }
  std::cerr << "run: " << session.traces.size() << " traces in " << seconds << " s -> " << o.out
            << '\n';
  return 0;
}

}  // namespace

Command add_run_command(CLI::App& parent) {
  auto o = std::make_shared<RunCommandOptions>();
  CLI::App* app = parent.add_subcommand(
      "run", "Run the baseline and attention variants on a prompt; write one trace per run");
  add_model_option(app, o->model);
  CLI::Option* prompt = app->add_option("-p,--prompt", o->prompt, "Prompt text (UTF-8)");
  app->add_option("--prompt-file", o->prompt_file, "File with the prompt (UTF-8)");
  app->add_option("--variant", o->variants,
                  "Variant spec, e.g. 'grouping=kdgqa;kv=snapkv:budget=512' (repeatable; see "
                  "`variants`)")
      ->required();
  app->add_option("--decode", o->decode,
                  "Tokens to decode after the prompt (the baseline's greedy continuation, fed "
                  "to every variant)")
      ->check(CLI::Range(0, 1 << 20))
      ->capture_default_str();
  app->add_option("-o,--out", o->out,
                  "Output session directory: index.json, baseline/ and <i>_<name>/ trace folders "
                  "(an earlier run there is replaced; any other non-empty folder is refused)")
      ->required();
  app->add_option("--context", o->context, "Maximum prompt length in tokens (0 = the model's)")
      ->check(CLI::Range(0, 1 << 24))
      ->capture_default_str();
  app->add_flag("--chat", o->chat, "Wrap the prompt in the chat template (no system turn)");
  app->add_flag("--no-qk", o->no_qk, "Do not store per-layer Q/K (smaller traces, no maps)");
  add_backend_options(app, o->backend, o->threads);
  return {app, [o, prompt] { return run_run(*o, prompt->count() > 0); }};
}

}  // namespace attnscope::cli
