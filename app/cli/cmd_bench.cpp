// `attnscope-cli bench`: prefill and decode throughput of the forward pass for given prompt
// lengths, as JSON naming device, backend, model and length. Timings live here, not in tests.
#include <algorithm>
#include <iostream>
#include <memory>

#include "attnscope/error.h"
#include "attnscope/session.h"
#include "attnscope/tokenizer.h"
#include "cli_common.h"

namespace attnscope::cli {

namespace {

// Ordinary English prose, tiled to the requested length, so the prompt looks like real text.
constexpr const char* kBenchText =
    "Attention lets every token look back at the tokens before it. A small language model "
    "reads a prompt, builds keys and values for each position, and then writes one token at "
    "a time, reusing the cached keys and values. How fast this runs depends on the length of "
    "the prompt, the number of heads, and the device. ";

struct BenchOptions {
  std::string model;
  std::vector<int> lengths = {128, 512};
  int decode = 32;
  int repeat = 1;
  std::string backend;
  int threads = 0;
};

struct Timing {
  double prefill_seconds = 0;
  double decode_seconds = 0;
};

// One prefill of `prompt` ([L] ids) then `decode` greedy single-token steps.
Timing time_once(const std::shared_ptr<const Model>& model, const std::shared_ptr<Backend>& backend,
                 const std::vector<int32_t>& prompt, int decode) {
  InferenceSession session(model, backend, static_cast<int>(prompt.size()) + decode);
  Sampler sampler(SamplingOptions{});
  Timing t;
  double start = now_seconds();
  std::vector<float> logits = session.forward(prompt);
  t.prefill_seconds = now_seconds() - start;
  start = now_seconds();
  for (int i = 0; i < decode; ++i) {
    const int32_t id = sampler.sample(logits);
    logits = session.forward(std::span<const int32_t>(&id, 1));
  }
  t.decode_seconds = now_seconds() - start;
  return t;
}

double per_second(double count, double seconds) {
  return seconds > 0 ? count / seconds : 0.0;
}

int run_bench(const BenchOptions& o) {
  const auto model = load_model_for_cli(o.model);
  const int model_context = model->config.context_length;
  for (const int length : o.lengths) {
    if (model_context > 0 && length + o.decode > model_context) {
      throw_usage("--lengths: " + std::to_string(length) + " + --decode " +
                  std::to_string(o.decode) + " exceeds the model's context of " +
                  std::to_string(model_context) + " tokens");
    }
  }
  const std::vector<int32_t> base = model->tokenizer->encode(kBenchText, /*add_special=*/false);
  if (base.empty()) throw_runtime("bench: the built-in text tokenized to nothing");

  auto backend = make_backend(o.backend, o.threads);
  // Warm-up: first-touch of weights (and device uploads for CUDA) should not count.
  time_once(model, backend,
            std::vector<int32_t>(base.begin(), base.begin() + std::min<size_t>(base.size(), 16)),
            2);

  nlohmann::json results = nlohmann::json::array();
  for (const int length : o.lengths) {
    std::vector<int32_t> prompt(static_cast<size_t>(length));
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = base[i % base.size()];
    Timing best;
    for (int r = 0; r < o.repeat; ++r) {
      const Timing t = time_once(model, backend, prompt, o.decode);
      // Best of the repeats: the least disturbed by other load on the machine.
      if (r == 0 || t.prefill_seconds < best.prefill_seconds)
        best.prefill_seconds = t.prefill_seconds;
      if (r == 0 || t.decode_seconds < best.decode_seconds) best.decode_seconds = t.decode_seconds;
    }
    results.push_back({{"length", length},
                       {"prefill_seconds", best.prefill_seconds},
                       {"prefill_tokens_per_second", per_second(length, best.prefill_seconds)},
                       {"decode_tokens", o.decode},
                       {"decode_seconds", best.decode_seconds},
                       {"decode_tokens_per_second", per_second(o.decode, best.decode_seconds)}});
    std::cerr << "length " << length << ": prefill " << per_second(length, best.prefill_seconds)
              << " tok/s, decode " << per_second(o.decode, best.decode_seconds) << " tok/s\n";
  }
  print_json({{"device", backend->device_name()},
              {"backend", backend->name()},
              {"model", model->source.path.string()},
              {"model_name", model->config.name},
              {"version", ATTNSCOPE_VERSION},
              {"variant", "full"},
              {"repeat", o.repeat},
              {"results", results}});
  return 0;
}

}  // namespace

Command add_bench_command(CLI::App& parent) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* app = parent.add_subcommand(
      "bench", "Prefill/decode tokens per second for given prompt lengths, as JSON");
  add_model_option(app, o->model);
  app->add_option("--lengths", o->lengths, "Prompt lengths in tokens, e.g. 128,512")
      ->delimiter(',')
      ->check(CLI::Range(1, 1 << 24))
      ->capture_default_str();
  app->add_option("--decode", o->decode, "Decode steps after each prefill")
      ->check(CLI::Range(0, 1 << 20))
      ->capture_default_str();
  app->add_option("--repeat", o->repeat, "Runs per length; the best time is reported")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  add_backend_options(app, o->backend, o->threads);
  return {app, [o] { return run_bench(*o); }};
}

}  // namespace attnscope::cli
