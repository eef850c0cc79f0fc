// `attnscope-cli attention`: runs a prompt with a recording capture and exports one head's
// full causal attention probabilities [T, T] (rows = query positions) as NPY or CSV.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>

#include "attnscope/capture.h"
#include "attnscope/error.h"
#include "attnscope/file_util.h"
#include "attnscope/npy.h"
#include "attnscope/session.h"
#include "cli_common.h"

namespace attnscope::cli {

namespace {

struct AttentionOptions {
  std::string model;
  std::string prompt;
  std::string prompt_file;
  int layer = 0;
  int head = 0;
  std::string out;
  int context = 0;
  bool chat = false;
  std::string backend;
  int threads = 0;
};

enum class OutFormat { Npy, Csv };

OutFormat out_format(const std::string& out) {
  const std::string ext = std::filesystem::path(out).extension().string();
  if (ext == ".npy") return OutFormat::Npy;
  if (ext == ".csv") return OutFormat::Csv;
  throw_usage("--out: expected a file name ending in .npy or .csv, got '" + out + "'");
}

// Fails early (before the forward pass) when the output cannot possibly be written.
void check_out_directory(const std::string& out) {
  std::filesystem::path dir = std::filesystem::path(out).parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    throw_runtime(out + ": cannot write (" + dir.string() + " is not an existing directory)");
  }
}

// probs: [T, T] row-major. One line per query row, values separated by commas.
std::string to_csv(const std::vector<float>& probs, int64_t t) {
  std::string csv;
  csv.reserve(static_cast<size_t>(t * t) * 12);
  char cell[32];
  for (int64_t i = 0; i < t; ++i) {
    for (int64_t j = 0; j < t; ++j) {
      // %.9g round-trips a float exactly.
      const int n = std::snprintf(cell, sizeof cell, "%s%.9g", j ? "," : "",
                                  static_cast<double>(probs[static_cast<size_t>(i * t + j)]));
      csv.append(cell, static_cast<size_t>(n));
    }
    csv += '\n';
  }
  return csv;
}

// probs: [T, T]. One-line summary: mass on the first token (attention sink), on the
// diagonal (self), and mean row entropy.
std::string summarize(const std::vector<float>& probs, int64_t t) {
  double first = 0, diagonal = 0, entropy = 0;
  for (int64_t i = 0; i < t; ++i) {
    const float* row = probs.data() + i * t;
    first += row[0];
    diagonal += row[i];
    for (int64_t j = 0; j <= i; ++j) {
      if (row[j] > 0) entropy -= row[j] * std::log(static_cast<double>(row[j]));
    }
  }
  char line[256];
  std::snprintf(line, sizeof line,
                "mean attention on token 0: %.3f, on self: %.3f, mean row entropy: %.3f nats",
                first / static_cast<double>(t), diagonal / static_cast<double>(t),
                entropy / static_cast<double>(t));
  return line;
}

int run_attention(const AttentionOptions& o, bool prompt_given) {
  const OutFormat format = out_format(o.out);
  std::string text =
      text_from_options(o.prompt, prompt_given, o.prompt_file, "--prompt", "--prompt-file");
  const std::string where = o.prompt_file.empty() ? "--prompt" : o.prompt_file;
  if (o.chat) text = chat_wrap(text, "");
  check_out_directory(o.out);

  const auto model = load_model_for_cli(o.model);
  const ModelConfig& config = model->config;
  if (o.layer >= config.n_layer) {
    throw_usage("--layer: expected 0.." + std::to_string(config.n_layer - 1) + ", got " +
                std::to_string(o.layer));
  }
  if (o.head >= config.n_head) {
    throw_usage("--head: expected 0.." + std::to_string(config.n_head - 1) + ", got " +
                std::to_string(o.head));
  }
  const int context = resolve_context(*model, o.context);
  const std::vector<int32_t> ids = tokenize_prompt(*model, text, context, where);

  auto backend = make_backend(o.backend, o.threads);
  InferenceSession session(model, backend, static_cast<int>(ids.size()));
  RecordedCapture capture(config, /*all_logits=*/false);
  const double start = now_seconds();
  session.forward(ids, &capture);
  const double seconds = now_seconds() - start;

  const auto t = static_cast<int64_t>(ids.size());
  const std::vector<float> probs = capture.attention_probs(o.layer, o.head);
  if (static_cast<int64_t>(probs.size()) != t * t) {
    throw_runtime("attention_probs returned " + std::to_string(probs.size()) +
                  " values, expected " + std::to_string(t * t));
  }
  if (format == OutFormat::Npy) {
    write_npy(o.out, {t, t}, probs.data());
  } else {
    write_file_atomic(o.out, to_csv(probs, t));
  }
  std::cerr << "layer " << o.layer << " head " << o.head << ": " << t << " x " << t
            << " probabilities (rows = query positions) -> " << o.out << " (forward " << seconds
            << " s on " << backend->name() << "); " << summarize(probs, t) << '\n';
  return 0;
}

}  // namespace

Command add_attention_command(CLI::App& parent) {
  auto o = std::make_shared<AttentionOptions>();
  CLI::App* app = parent.add_subcommand(
      "attention", "Export one head's attention probabilities [T, T] as .npy or .csv");
  add_model_option(app, o->model);
  CLI::Option* prompt = app->add_option("-p,--prompt", o->prompt, "Prompt text (UTF-8)");
  app->add_option("--prompt-file", o->prompt_file, "File with the prompt (UTF-8)");
  app->add_option("-l,--layer", o->layer, "Layer (0-based)")
      ->required()
      ->check(CLI::Range(0, 1 << 20));
  app->add_option("--head", o->head, "Query head (0-based)")
      ->required()
      ->check(CLI::Range(0, 1 << 20));
  app->add_option("-o,--out", o->out, "Output file: .npy (float32 [T, T]) or .csv")->required();
  app->add_option("--context", o->context, "Maximum prompt length in tokens (0 = the model's)")
      ->check(CLI::Range(0, 1 << 24))
      ->capture_default_str();
  app->add_flag("--chat", o->chat, "Wrap the prompt in the chat template (no system turn)");
  add_backend_options(app, o->backend, o->threads);
  return {app, [o, prompt] { return run_attention(*o, prompt->count() > 0); }};
}

}  // namespace attnscope::cli
