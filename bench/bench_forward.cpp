// bench_forward: prefill and decode throughput of InferenceSession on the default model (or a
// given one), on the CPU backend or the CUDA backend. Prints device, model and length with
// every number; never used as a test.
//
// usage: bench_forward [--model PATH] [--t 128,512,2048] [--decode N] [--reps N]
//                      [--backend cpu|cuda] [--threads N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "attnscope/error.h"
#include "attnscope/gpu/cuda_backend.h"
#include "attnscope/model.h"
#include "attnscope/paths.h"
#include "attnscope/session.h"

namespace {

struct Options {
  std::string model;
  std::vector<int> lengths{128, 512, 2048};
  int decode = 32;
  int reps = 2;
  std::string backend = "cpu";
  int threads = 0;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--model" && has_value) {
      o.model = argv[++i];
    } else if (arg == "--t" && has_value) {
      o.lengths.clear();
      std::stringstream list(argv[++i]);
      std::string item;
      while (std::getline(list, item, ',')) o.lengths.push_back(std::atoi(item.c_str()));
    } else if (arg == "--decode" && has_value) {
      o.decode = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--reps" && has_value) {
      o.reps = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--backend" && has_value) {
      o.backend = argv[++i];
    } else if (arg == "--threads" && has_value) {
      o.threads = std::atoi(argv[++i]);
    } else {
      attnscope::throw_usage("unknown or incomplete argument '" + arg +
                             "' (usage: [--model PATH] [--t 128,512] [--decode N] [--reps N] "
                             "[--backend cpu|cuda] [--threads N])");
    }
  }
  for (int t : o.lengths) {
    if (t <= 0) attnscope::throw_usage("--t: lengths must be positive");
  }
  return o;
}

double seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Deterministic pseudo-random token ids (fixed seed): throughput does not depend on content.
std::vector<int32_t> tokens(int n, int vocab) {
  std::mt19937_64 rng(12345);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab));
  return t;
}

int run(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const std::string path = o.model.empty() ? attnscope::default_model_path().string() : o.model;
  const auto t_load = std::chrono::steady_clock::now();
  auto model = attnscope::load_model(path);
  const double load_s = seconds(t_load);
  std::shared_ptr<attnscope::Backend> backend;
  if (o.backend == "cuda") {
    backend = attnscope::gpu::make_cuda_backend();
  } else if (o.backend == "cpu") {
    backend = attnscope::make_cpu_backend(o.threads);
  } else {
    attnscope::throw_usage("--backend: expected cpu or cuda, got " + o.backend);
  }
  const int max_t = *std::max_element(o.lengths.begin(), o.lengths.end());
  const int ctx = std::max(max_t, 128) + o.decode;
  attnscope::InferenceSession session(model, backend, ctx);
  std::printf("device: %s\nmodel: %s (%s, %d layers, %d/%d heads)  load %.2f s\nversion: %s\n",
              backend->device_name().c_str(), path.c_str(), model->config.name.c_str(),
              model->config.n_layer, model->config.n_head, model->config.n_head_kv, load_s,
              ATTNSCOPE_VERSION);
  const int vocab = model->config.vocab_size;
  // Warm-up (thread start-up, BLAS buffers, device weight upload).
  session.forward(tokens(16, vocab));
  for (int t : o.lengths) {
    const auto ids = tokens(t, vocab);
    double best = 1e300;
    for (int r = 0; r < o.reps; ++r) {
      session.reset();
      const auto t0 = std::chrono::steady_clock::now();
      session.forward(ids);
      best = std::min(best, seconds(t0));
    }
    std::printf("prefill  length %5d: %8.3f s  %9.1f tokens/s (best of %d)\n", t, best, t / best,
                o.reps);
  }
  // Decode: greedy steps after a 128-token prompt.
  session.reset();
  auto logits = session.forward(tokens(128, vocab));
  attnscope::Sampler greedy({});
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < o.decode; ++i) {
    const int32_t one[1] = {greedy.sample(logits)};
    logits = session.forward(one);
  }
  const double dt = seconds(t0);
  std::printf("decode   context %4d+%d: %8.3f s  %9.1f tokens/s\n", 128, o.decode, dt,
              o.decode / dt);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const attnscope::Error& e) {
    std::fprintf(stderr, "bench_forward: %s\n", e.what());
    return attnscope::exit_code_for(e.kind());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_forward: %s\n", e.what());
    return 4;
  }
}
