// `attnscope-cli needle`: passkey retrieval with a variant — accuracy per (context length,
// needle depth) over N trials, as a table or JSON with every trial.
#include <cstdio>
#include <iostream>
#include <memory>

#include "attnscope/error.h"
#include "attnscope/needle.h"
#include "attnscope/variant_spec.h"
#include "cli_common.h"

namespace attnscope::cli {

namespace {

struct NeedleCommandOptions {
  std::string model;
  std::string variant;
  std::vector<int> lengths;
  std::vector<double> depths;
  int trials = 1;
  uint64_t seed = 0;
  int decode_budget = 8;
  bool json = false;
  std::string backend;
  int threads = 0;
};

int run_needle_command(const NeedleCommandOptions& o) {
  const VariantSpec spec = VariantSpec::parse(o.variant);
  for (double d : o.depths) {
    if (!(d >= 0.0 && d <= 1.0))
      throw_usage("--depths: expected values in [0, 1], got " + std::to_string(d));
  }
  const auto model = load_model_for_cli(o.model);
  NeedleOptions options;
  options.lengths = o.lengths;
  options.depths = o.depths;
  options.trials = o.trials;
  options.seed = o.seed;
  options.decode_budget = o.decode_budget;
  options.backend = make_backend(o.backend, o.threads);
  options.progress = stderr_progress("needle");
  const double start = now_seconds();
  const NeedleResult result = run_needle(model, spec, options);
  const double seconds = now_seconds() - start;

  if (o.json) {
    nlohmann::json cells = nlohmann::json::array();
    for (const NeedleCell& c : result.cells) {
      cells.push_back({{"length", c.length},
                       {"depth", c.depth},
                       {"trials", c.trials},
                       {"successes", c.successes},
                       {"accuracy", c.accuracy()}});
    }
    nlohmann::json trials = nlohmann::json::array();
    for (const NeedleTrial& t : result.trials) {
      trials.push_back({{"length", t.length},
                        {"depth", t.depth},
                        {"trial", t.trial},
                        {"seed", t.seed},
                        {"passkey", t.passkey},
                        {"needle_token", t.needle_token},
                        {"actual_depth", t.actual_depth},
                        {"generated", sanitize_utf8(t.generated)},
                        {"success", t.success},
                        {"seconds", t.seconds}});
    }
    print_json({{"variant", result.variant},
                {"display_name", spec.display_name()},
                {"needs_training", spec.needs_training()},
                {"accuracy", result.accuracy()},
                {"seconds", seconds},
                {"cells", cells},
                {"trials", trials}});
    return 0;
  }
  std::cout << "variant: " << sanitize_utf8(spec.display_name())
            << (spec.needs_training() ? "  [simulation (needs training)]" : "") << '\n';
  char buf[64];
  std::cout << "depth \\ length";
  for (int len : o.lengths) {
    std::snprintf(buf, sizeof buf, " %9d", len);
    std::cout << buf;
  }
  std::cout << '\n';
  for (double d : o.depths) {
    std::snprintf(buf, sizeof buf, "%14.3f", d);
    std::cout << buf;
    for (int len : o.lengths) {
      const NeedleCell* c = result.cell(len, d);
      if (c) {
        std::snprintf(buf, sizeof buf, " %4d/%-4d", c->successes, c->trials);
      } else {
        std::snprintf(buf, sizeof buf, " %9s", "-");
      }
      std::cout << buf;
    }
    std::cout << '\n';
  }
  std::snprintf(buf, sizeof buf, "%.3f", result.accuracy());
  std::cout << "accuracy: " << buf << " over " << result.trials.size() << " trials (" << seconds
            << " s)\n";
  return 0;
}

}  // namespace

Command add_needle_command(CLI::App& parent) {
  auto o = std::make_shared<NeedleCommandOptions>();
  CLI::App* app = parent.add_subcommand(
      "needle", "Passkey retrieval accuracy of a variant per context length and needle depth");
  add_model_option(app, o->model);
  app->add_option("--variant", o->variant, "Variant spec (see `variants`)")->required();
  app->add_option("--lengths", o->lengths, "Prompt lengths in tokens, e.g. 1024,2048,4096")
      ->required()
      ->delimiter(',')
      ->check(CLI::Range(1, 1 << 24));
  app->add_option("--depths", o->depths, "Needle depths in [0, 1], e.g. 0.1,0.5,0.9")
      ->required()
      ->delimiter(',');
  app->add_option("--trials", o->trials, "Trials per (length, depth)")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app->add_option("--seed", o->seed, "Seed of fillers and pass keys")->capture_default_str();
  app->add_option("--decode-budget", o->decode_budget, "Tokens generated after the question")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app->add_flag("--json", o->json, "Print JSON with every trial");
  add_backend_options(app, o->backend, o->threads);
  return {app, [o] { return run_needle_command(*o); }};
}

}  // namespace attnscope::cli
