// attnscope-cli shared helpers: model/backend/text loading under the CLI's error policy,
// UTF-8 handling for streamed and JSON output.
#include "cli_common.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>

#include "attnscope/error.h"
#include "attnscope/file_util.h"
#include "attnscope/gpu/cuda_backend.h"
#include "attnscope/paths.h"
#include "attnscope/tokenizer.h"

namespace attnscope::cli {

namespace fs = std::filesystem;

void add_model_option(CLI::App* app, std::string& model_path) {
  model_path = attnscope::default_model_path().string();
  app->add_option("-m,--model", model_path,
                  "Model: a .gguf file or an HF directory (config.json + safetensors)")
      ->capture_default_str();
}

void add_backend_options(CLI::App* app, std::string& backend, int& threads) {
  backend = "cpu";
  threads = 0;
  app->add_option("--backend", backend, "Compute backend")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  app->add_option("--threads", threads, "CPU threads (0 = all cores)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
}

std::shared_ptr<const Model> load_model_for_cli(const std::string& model_path) {
  if (model_path.empty()) throw_usage("--model: expected a path, got an empty string");
  const fs::path path(model_path);
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (!fs::exists(status)) {
    throw_bad_input(model_path,
                    "no such file or directory (expected a .gguf file or an HF "
                    "model directory; run scripts/setup.sh to fetch the default model)");
  }
  if (fs::is_directory(status) && !fs::exists(path / "config.json", ec)) {
    throw_bad_input((path / "config.json").string(),
                    "missing (a model directory needs config.json, *.safetensors and "
                    "tokenizer.json; or pass a .gguf file)");
  }
  return load_model(path);
}

std::shared_ptr<Backend> make_backend(const std::string& name, int threads) {
  if (name == "cpu") return make_cpu_backend(threads);
  if (name == "cuda") return gpu::make_cuda_backend();
  throw_usage("--backend: expected cpu or cuda, got '" + name + "'");
}

void require_utf8(std::string_view text, const std::string& where) {
  size_t bad = 0;
  if (!is_valid_utf8(text, &bad)) {
    throw_bad_input(where,
                    "invalid UTF-8 at byte " + std::to_string(bad) + " (expected UTF-8 text)");
  }
}

std::string read_utf8_file(const std::string& path) {
  std::string text = read_text_file(path);
  require_utf8(text, path);
  return text;
}

std::string text_from_options(const std::string& text, bool text_given, const std::string& file,
                              const std::string& text_option, const std::string& file_option) {
  const bool file_given = !file.empty();
  if (text_given == file_given) {
    throw_usage("expected exactly one of " + text_option + " and " + file_option);
  }
  if (file_given) return read_utf8_file(file);
  require_utf8(text, text_option);
  return text;
}

int resolve_context(const Model& model, int requested) {
  const int model_context = model.config.context_length;
  if (requested <= 0) return model_context;
  if (model_context > 0 && requested > model_context) {
    throw_usage("--context: expected at most the model's context length " +
                std::to_string(model_context) + ", got " + std::to_string(requested));
  }
  return requested;
}

std::vector<int32_t> tokenize_prompt(const Model& model, const std::string& text, int context,
                                     const std::string& where) {
  if (!model.tokenizer) throw_bad_input(model.source.path.string(), "model has no tokenizer");
  std::vector<int32_t> ids = model.tokenizer->encode(text, /*add_special=*/true);
  if (ids.empty()) throw_bad_input(where, "is empty (expected at least one token)");
  if (static_cast<int64_t>(ids.size()) > context) {
    throw_bad_input(where, std::to_string(ids.size()) + " tokens exceed the context of " +
                               std::to_string(context) + " tokens");
  }
  return ids;
}

std::string chat_wrap(const std::string& prompt, const std::string& system) {
  std::string out;
  if (!system.empty()) out += "<|im_start|>system\n" + system + "<|im_end|>\n";
  out += "<|im_start|>user\n" + prompt + "<|im_end|>\n<|im_start|>assistant\n";
  return out;
}

void print_json(const nlohmann::json& value) {
  std::cout << value.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  std::cout.flush();
}

void print_diagnostic(const std::string& kind, const std::string& message) {
  std::string line = message;
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  std::cerr << "attnscope-cli: " << kind << ": " << line << '\n';
  std::cerr.flush();
}

double now_seconds() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

std::function<void(double, const std::string&)> stderr_progress(const std::string& prefix) {
  struct State {
    std::string stage;
    int percent = -100;
  };
  auto state = std::make_shared<State>();
  return [prefix, state](double fraction, const std::string& stage) {
    const int percent = static_cast<int>(std::clamp(fraction, 0.0, 1.0) * 100.0);
    if (stage == state->stage && percent < state->percent + 5) return;
    state->stage = stage;
    state->percent = percent;
    char pct[16];
    std::snprintf(pct, sizeof pct, "[%3d%%]", percent);
    std::cerr << prefix << ' ' << pct << ' ' << sanitize_utf8(stage) << '\n';
    std::cerr.flush();
  };
}

}  // namespace attnscope::cli
