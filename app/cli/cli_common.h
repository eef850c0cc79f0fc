// attnscope-cli shared helpers: the subcommand registry, model/backend/text loading with the
// CLI's error policy (Error kinds -> exit codes), UTF-8 safe output and JSON printing.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "attnscope/backend.h"
#include "attnscope/model.h"

namespace attnscope::cli {

// A subcommand: its CLI11 node and what to run once the command line parsed. run() returns the
// exit status; errors are thrown as attnscope::Error and mapped to exit codes in main.
struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

Command add_info_command(CLI::App& parent);
Command add_tokenize_command(CLI::App& parent);
Command add_generate_command(CLI::App& parent);
Command add_eval_command(CLI::App& parent);
Command add_attention_command(CLI::App& parent);
Command add_bench_command(CLI::App& parent);

// Adds `--model PATH` (default: attnscope::default_model_path()) to a subcommand.
void add_model_option(CLI::App* app, std::string& model_path);
// Adds `--backend cpu|cuda` and `--threads N` (CPU threads, 0 = all cores).
void add_backend_options(CLI::App* app, std::string& backend, int& threads);

// Loads a model after checking the path exists and, for a directory, holds config.json.
// Throws Error(BadInput) naming the path otherwise (and whatever load_model throws).
std::shared_ptr<const Model> load_model_for_cli(const std::string& model_path);
// "cpu" -> make_cpu_backend(threads); "cuda" -> gpu::make_cuda_backend() (Error(Runtime) when
// no usable GPU). Anything else -> Error(Usage).
std::shared_ptr<Backend> make_backend(const std::string& name, int threads);

// Reads a text file and checks it is UTF-8: Error(BadInput) "<path>: invalid UTF-8 at byte N".
std::string read_utf8_file(const std::string& path);
// Checks that `text` (from option `where`, e.g. "--prompt") is UTF-8, else Error(BadInput).
void require_utf8(std::string_view text, const std::string& where);
// The text given by `--X TEXT` or `--X-file F` (exactly one must be set): Error(Usage) if
// neither or both were given.
std::string text_from_options(const std::string& text, bool text_given, const std::string& file,
                              const std::string& text_option, const std::string& file_option);

// Tokenizes `text` for a forward pass and checks 1 <= count <= context:
// Error(BadInput) "<where>: N tokens exceed the context of C tokens" or "... is empty".
std::vector<int32_t> tokenize_prompt(const Model& model, const std::string& text, int context,
                                     const std::string& where);
// The context to allow: `requested` (> 0) or the model's context length, checked against it.
int resolve_context(const Model& model, int requested);

// SmolLM2/ChatML form: optional system turn, the user turn, then the assistant header.
std::string chat_wrap(const std::string& prompt, const std::string& system);

// Length of the longest prefix of `bytes` that does not end inside a UTF-8 sequence that
// could still be completed by more bytes (so streaming can hold back only that tail).
size_t complete_utf8_prefix(std::string_view bytes);
// `bytes` with every invalid UTF-8 byte replaced by U+FFFD, so terminals and JSON get valid text.
std::string sanitize_utf8(std::string_view bytes);

// Prints JSON to stdout (2-space indent; invalid UTF-8 replaced), newline-terminated.
void print_json(const nlohmann::json& value);
// One line "attnscope-cli: <kind>: <message>" on stderr, with newlines folded to spaces.
void print_diagnostic(const std::string& kind, const std::string& message);

// Seconds from a steady clock, for throughput figures.
double now_seconds();

}  // namespace attnscope::cli
