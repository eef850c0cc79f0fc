// attnscope-cli entry point: builds the subcommands, parses the command line and maps every
// failure to one stderr line and an exit code (0 ok, 2 usage, 3 bad input, 4 runtime).
#include <CLI/CLI.hpp>
#include <exception>
#include <iostream>
#include <new>
#include <vector>

#include "attnscope/error.h"
#include "cli_common.h"

namespace {

constexpr int kExitUsage = 2;
constexpr int kExitRuntime = 4;

int run(int argc, char** argv) {
  CLI::App app{"attnscope-cli: look inside the attention of small language models, headless.",
               "attnscope-cli"};
  app.set_version_flag("--version", std::string("attnscope-cli ") + ATTNSCOPE_VERSION);
  // At most one subcommand; "none" is reported after parsing so that an unknown word is named
  // ("arguments were not expected: frobnicate") rather than "a subcommand is required".
  app.require_subcommand(0, 1);
  app.footer(
      "Exit codes: 0 ok, 2 usage error (incl. an invalid variant spec), 3 bad input (model file, "
      "text, prompt too long, corrupt trace), 4 runtime failure.");

  using namespace attnscope::cli;
  const std::vector<Command> commands = {
      add_info_command(app), add_tokenize_command(app),  add_generate_command(app),
      add_eval_command(app), add_attention_command(app), add_bench_command(app),
      add_variants_command(app), add_run_command(app), add_compare_command(app),
      add_map_command(app), add_needle_command(app), add_export_command(app),
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    print_diagnostic("error", e.what());
    return kExitUsage;
  }

  for (const Command& command : commands) {
    if (command.app->parsed()) return command.run();
  }
  print_diagnostic("error",
                   "expected a subcommand: info, tokenize, generate, eval, attention, bench, "
                   "variants, run, compare, map, needle or export (run with --help)");
  return kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  using attnscope::cli::print_diagnostic;
  try {
    return run(argc, argv);
  } catch (const attnscope::Error& e) {
    print_diagnostic("error", e.what());
    return attnscope::exit_code_for(e.kind());
  } catch (const std::bad_alloc&) {
    print_diagnostic("error", "out of memory (try a shorter prompt or a smaller --context)");
    return kExitRuntime;
  } catch (const std::exception& e) {
    print_diagnostic("error", e.what());
    return kExitRuntime;
  } catch (...) {
    print_diagnostic("error", "unknown failure");
    return kExitRuntime;
  }
}
