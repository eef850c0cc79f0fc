// `attnscope-cli bench`: prefill and decode throughput of the baseline and of attention variants
// for given prompt lengths (measure_throughput, throughput.h), as JSON naming device, backend,
// model, variant and length. Timings live here, not in tests.
#include <iostream>
#include <memory>

#include "attnscope/error.h"
#include "attnscope/throughput.h"
#include "cli_common.h"

namespace attnscope::cli {

namespace {

struct BenchOptions {
  std::string model;
  std::vector<int> lengths = {128, 512};
  int decode = 32;
  int repeat = 1;
  std::vector<std::string> variants;
  std::string backend;
  int threads = 0;
};

// One length's figures, as `bench` has always printed them (plus attention time and KV bytes).
nlohmann::json point_json(const ThroughputPoint& p) {
  return {{"length", p.length},
          {"prefill_seconds", p.prefill_seconds},
          {"prefill_tokens_per_second", p.prefill_tokens_per_second},
          {"decode_tokens", p.decode_steps},
          {"decode_seconds", p.decode_seconds},
          {"decode_tokens_per_second", p.decode_tokens_per_second},
          {"attention_seconds", p.attention_seconds},
          {"kv_cache_bytes", p.kv_cache_bytes}};
}

int run_bench(const BenchOptions& o) {
  // Specs first: a typo fails before the model is loaded.
  std::vector<VariantSpec> specs;
  for (const auto& text : o.variants) specs.push_back(VariantSpec::parse(text));
  const auto model = load_model_for_cli(o.model);
  const int model_context = model->config.context_length;
  for (const int length : o.lengths) {
    if (model_context > 0 && length + o.decode > model_context) {
      throw_usage("--lengths: " + std::to_string(length) + " + --decode " +
                  std::to_string(o.decode) + " exceeds the model's context of " +
                  std::to_string(model_context) + " tokens");
    }
  }

  ThroughputOptions options;
  options.lengths = o.lengths;
  options.decode_steps = o.decode;
  options.repeat = o.repeat;
  options.backend = make_backend(o.backend, o.threads);
  options.progress = stderr_progress("bench");
  const ThroughputResult result = measure_throughput(model, specs, options);

  // results: the baseline per length (the fields bench always had); variants: every measured
  // configuration, the baseline first, each with its per-length results.
  nlohmann::json results = nlohmann::json::array();
  nlohmann::json variants = nlohmann::json::array();
  const size_t n_configs = specs.size() + 1;
  for (size_t v = 0; v < n_configs; ++v) {
    nlohmann::json entry;
    nlohmann::json per_length = nlohmann::json::array();
    for (size_t li = 0; li < result.lengths.size(); ++li) {
      const ThroughputPoint& p = result.points.at(li * n_configs + v);
      if (per_length.empty()) {
        entry = {{"spec", p.spec}, {"display_name", p.display_name}, {"baseline", p.baseline}};
      }
      per_length.push_back(point_json(p));
      if (v == 0) results.push_back(point_json(p));
      std::cerr << "length " << p.length << " " << sanitize_utf8(p.display_name) << ": prefill "
                << p.prefill_tokens_per_second << " tok/s, decode " << p.decode_tokens_per_second
                << " tok/s, attention " << p.attention_seconds << " s\n";
    }
    entry["results"] = per_length;
    variants.push_back(entry);
  }
  print_json({{"device", result.device},
              {"backend", result.backend},
              {"model", model->source.path.string()},
              {"model_name", model->config.name},
              {"model_sha256", result.model_sha256},
              {"version", result.attnscope_version},
              {"created_at", result.created_at},
              {"variant", "full"},
              {"repeat", result.repeat},
              {"decode_steps", o.decode},
              {"results", results},
              {"variants", variants}});
  return 0;
}

}  // namespace

Command add_bench_command(CLI::App& parent) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* app = parent.add_subcommand(
      "bench",
      "Prefill/decode tokens per second of the baseline and variants for given prompt lengths, "
      "as JSON");
  add_model_option(app, o->model);
  app->add_option("--lengths", o->lengths, "Prompt lengths in tokens, e.g. 128,512")
      ->delimiter(',')
      ->check(CLI::Range(1, 1 << 24))
      ->capture_default_str();
  app->add_option("--decode", o->decode, "Decode steps after each prefill")
      ->check(CLI::Range(0, 1 << 20))
      ->capture_default_str();
  app->add_option("--repeat", o->repeat,
                  "Runs per length and variant; the one with the fastest prefill is reported")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app->add_option("--variant", o->variants,
                  "Variant spec to time against the baseline, e.g. 'kv=snapkv:budget=512' "
                  "(repeatable; the baseline is always measured)");
  add_backend_options(app, o->backend, o->threads);
  return {app, [o] { return run_bench(*o); }};
}

}  // namespace attnscope::cli
