// attnscope-cli shared helpers: the subcommand registry, model/backend/text loading with the
// CLI's error policy (Error kinds -> exit codes), UTF-8 safe output and JSON printing.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "attnscope/backend.h"
#include "attnscope/model.h"
#include "attnscope/trace.h"
#include "attnscope/trace_export.h"
#include "attnscope/utf8_text.h"

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
// Attention variants (issue 3): registry, runs to trace directories, comparisons, maps,
// passkey retrieval and exports.
Command add_variants_command(CLI::App& parent);
Command add_run_command(CLI::App& parent);
Command add_compare_command(CLI::App& parent);
Command add_map_command(CLI::App& parent);
Command add_needle_command(CLI::App& parent);
Command add_export_command(CLI::App& parent);

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

// UTF-8 repair for streamed and printed text (core: attnscope/utf8_text.h).
using attnscope::complete_utf8_prefix;
using attnscope::sanitize_utf8;

// Prints JSON to stdout (2-space indent; invalid UTF-8 replaced), newline-terminated.
void print_json(const nlohmann::json& value);
// One line "attnscope-cli: <kind>: <message>" on stderr, with newlines folded to spaces.
void print_diagnostic(const std::string& kind, const std::string& message);

// Seconds from a steady clock, for throughput figures.
double now_seconds();

// A progress callback for long commands: one stderr line "<prefix> [ 42%] <stage>" whenever the
// stage text changes or the percentage moves by 5 points.
std::function<void(double, const std::string&)> stderr_progress(const std::string& prefix);

// Whole-trace figures and CSV matrices for `compare`, `map` and `export` (core:
// attnscope/trace_export.h).
using attnscope::csv_matrix;
using attnscope::trace_summary;
// Checks that `out` ends in one of `extensions` (".npy", ".csv", ...) and returns it:
// Error(Usage) "--out: expected ... got ...".
std::string out_extension(const std::string& out, const std::vector<std::string>& extensions);

}  // namespace attnscope::cli
