// `attnscope-cli run`: runs the baseline and one or more attention variants on a prompt
// (optionally decoding N tokens, fed identically to every variant) and writes one trace
// directory per run plus DIR/index.json listing them.
#include <cctype>
#include <cmath>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "attnscope/error.h"
#include "attnscope/file_util.h"
#include "attnscope/run.h"
#include "attnscope/trace_io.h"
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

constexpr size_t kMaxDirName = 80;  // keeps paths short on every file system

// A display name as a folder name: [A-Za-z0-9._-] kept, runs of anything else become one '_'.
std::string sanitize_dir_name(const std::string& name) {
  std::string out;
  for (const char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '.' || c == '-') {
      out += c;
    } else if (out.empty() || out.back() != '_') {
      out += '_';
    }
  }
  while (!out.empty() && (out.back() == '_' || out.back() == '.')) out.pop_back();
  while (!out.empty() && (out.front() == '_' || out.front() == '.')) out.erase(out.begin());
  if (out.size() > kMaxDirName) out.resize(kMaxDirName);
  return out.empty() ? "variant" : out;
}

nlohmann::json number_map(const std::map<std::string, double>& values) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : values) {
    if (std::isfinite(v)) {
      j[k] = v;
    } else {
      j[k] = nullptr;
    }
  }
  return j;
}

int run_run(const RunCommandOptions& o, bool prompt_given) {
  // Specs first: a typo fails before the model is loaded.
  std::vector<VariantSpec> specs;
  for (const auto& text : o.variants) specs.push_back(VariantSpec::parse(text));
  if (o.decode < 0) throw_usage("--decode: expected >= 0");
  std::string text =
      text_from_options(o.prompt, prompt_given, o.prompt_file, "--prompt", "--prompt-file");
  const std::string where = o.prompt_file.empty() ? "--prompt" : o.prompt_file;
  if (o.chat) text = chat_wrap(text, "");

  const auto model = load_model_for_cli(o.model);
  const int context = resolve_context(*model, o.context);
  const std::vector<int32_t> ids = tokenize_prompt(*model, text, context, where);
  if (static_cast<int>(ids.size()) + o.decode > context) {
    throw_bad_input(where, std::to_string(ids.size()) + " tokens + " + std::to_string(o.decode) +
                               " decode steps exceed the context of " + std::to_string(context));
  }
  const std::filesystem::path out_dir(o.out);
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (!std::filesystem::is_directory(out_dir, ec)) {
    throw_runtime(o.out + ": cannot create the output directory");
  }

  RunOptions options;
  options.decode_steps = o.decode;
  options.backend = make_backend(o.backend, o.threads);
  options.store_qk = !o.no_qk;
  options.progress = stderr_progress("run");
  std::cerr << "run: " << ids.size() << " prompt tokens, " << o.decode << " decode steps, "
            << specs.size() << " variant(s) + baseline on " << options.backend->name() << '\n';
  const double start = now_seconds();
  const std::vector<Trace> traces = run_variants(model, ids, specs, options);
  const double seconds = now_seconds() - start;
  if (traces.size() != specs.size() + 1) {
    throw_runtime("run_variants returned " + std::to_string(traces.size()) + " traces, expected " +
                  std::to_string(specs.size() + 1));
  }

  nlohmann::json index;
  index["schema_version"] = kTraceSchemaVersion;
  index["model"] = {{"path", traces[0].model.path},
                    {"sha256", traces[0].model.sha256},
                    {"architecture", traces[0].model.architecture}};
  index["n_prompt"] = ids.size();
  index["decode_steps"] = o.decode;
  index["seconds"] = seconds;
  nlohmann::json list = nlohmann::json::array();
  for (size_t i = 0; i < traces.size(); ++i) {
    const Trace& t = traces[i];
    const std::string dir =
        i == 0 ? "baseline" : std::to_string(i) + "_" + sanitize_dir_name(t.variant.display_name());
    save_trace(t, out_dir / dir);
    list.push_back({{"dir", dir},
                    {"baseline", i == 0},
                    {"spec", t.variant.to_string()},
                    {"display_name", t.variant.display_name()},
                    {"needs_training", t.variant.needs_training()},
                    {"metrics", number_map(t.metrics)},
                    {"timings", number_map(t.timings)}});
    std::cout << dir << '\t' << sanitize_utf8(t.variant.display_name());
    for (const char* key : {"kl_mean", "top1_agreement"}) {
      const auto it = t.metrics.find(key);
      if (it != t.metrics.end()) std::cout << '\t' << key << '=' << it->second;
    }
    std::cout << '\n';
  }
  index["traces"] = list;
  write_file_atomic(out_dir / "index.json",
                    index.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  std::cerr << "run: " << traces.size() << " traces in " << seconds << " s -> " << o.out << '\n';
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
                  "Output directory: baseline/, <i>_<name>/ trace folders and index.json")
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
