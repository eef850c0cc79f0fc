// bench_backends: times Backend::linear and Backend::attention on the CPU backend and (when a
// device is usable) the CUDA backend, for SmolLM2-135M shapes at several sequence lengths.
// Timings go through the public Backend interface, so CUDA numbers include the host<->device
// copies of activations (weights are cached on the device after the warm-up call).
//
// usage: bench_backends [--t 128,512,2048,8192] [--reps N] [--cpu-max-t T]
//   --cpu-max-t skips CPU attention prefill above T (it is quadratic and slow on small hosts).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "attnscope/backend.h"
#include "attnscope/error.h"
#include "attnscope/gpu/cuda_backend.h"

namespace {

using attnscope::AttentionShape;
using attnscope::Backend;

// SmolLM2-135M hyper-parameters.
constexpr int kEmbd = 576;
constexpr int kFf = 1536;
constexpr int kHeads = 9;
constexpr int kKvHeads = 3;
constexpr int kHeadDim = 64;
constexpr int kVocab = 49152;

struct Options {
  std::vector<int> lengths{128, 512, 2048, 8192};
  int reps = 3;
  int cpu_max_t = 2048;
};

Options parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--t" && has_value) {
      options.lengths.clear();
      std::stringstream list(argv[++i]);
      std::string item;
      while (std::getline(list, item, ',')) options.lengths.push_back(std::atoi(item.c_str()));
    } else if (arg == "--reps" && has_value) {
      options.reps = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--cpu-max-t" && has_value) {
      options.cpu_max_t = std::atoi(argv[++i]);
    } else {
      attnscope::throw_usage("unknown or incomplete argument '" + arg +
                             "' (usage: [--t 128,512] [--reps N] [--cpu-max-t T])");
    }
  }
  for (const int t : options.lengths) {
    if (t <= 0) attnscope::throw_usage("--t lengths must be positive");
  }
  return options;
}

std::vector<float> random_vector(std::size_t count, float scale, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> values(count);
  for (float& value : values) value = dist(rng);
  return values;
}

// Median wall time in ms of `reps` runs after one untimed warm-up (which also fills the CUDA
// weight cache and grows its scratch buffers).
double time_ms(int reps, const std::function<void()>& work) {
  work();
  std::vector<double> times;
  for (int r = 0; r < reps; ++r) {
    const auto start = std::chrono::steady_clock::now();
    work();
    const auto stop = std::chrono::steady_clock::now();
    times.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

void report(const char* op, const std::string& shape, int t, const Backend& backend, double ms,
            double flops) {
  std::printf("%-10s %-28s T=%-5d %-5s %10.3f ms %9.2f GFLOP/s\n", op, shape.c_str(), t,
              backend.name().c_str(), ms, flops / (ms * 1e6));
  std::fflush(stdout);
}

void bench_linear(Backend& backend, int t, int reps) {
  struct Projection {
    const char* name;
    int in, out, n;
  };
  // q/o: 576->576, k/v: 576->192, gate/up: 576->1536, down: 1536->576 over T rows; the LM head
  // runs on the last row only during generation.
  const Projection projections[] = {
      {"q_proj", kEmbd, kHeads * kHeadDim, t},
      {"k_proj", kEmbd, kKvHeads * kHeadDim, t},
      {"up_proj", kEmbd, kFf, t},
      {"down_proj", kFf, kEmbd, t},
      {"lm_head", kEmbd, kVocab, 1},
  };
  std::mt19937 rng(7);
  for (const Projection& p : projections) {
    const std::vector<float> x = random_vector(static_cast<std::size_t>(p.n) * p.in, 1.0f, rng);
    const std::vector<float> w = random_vector(static_cast<std::size_t>(p.out) * p.in, 0.05f, rng);
    std::vector<float> y(static_cast<std::size_t>(p.n) * p.out);
    const double ms = time_ms(
        reps, [&] { backend.linear(x.data(), p.n, p.in, w.data(), p.out, nullptr, y.data()); });
    const std::string shape = std::string(p.name) + " " + std::to_string(p.n) + "x" +
                              std::to_string(p.in) + "->" + std::to_string(p.out);
    report("linear", shape, t, backend, ms, 2.0 * p.n * p.in * p.out);
  }
}

void bench_attention(Backend& backend, int t, int reps, bool prefill) {
  AttentionShape s;
  s.n_query = prefill ? t : 1;
  s.pos0 = prefill ? 0 : t - 1;
  s.n_head = kHeads;
  s.n_head_kv = kKvHeads;
  s.head_dim = kHeadDim;
  std::mt19937 rng(11);
  const std::size_t kv_count = static_cast<std::size_t>(s.n_key()) * kKvHeads * kHeadDim;
  const std::vector<float> q =
      random_vector(static_cast<std::size_t>(s.n_query) * kHeads * kHeadDim, 1.0f, rng);
  const std::vector<float> k = random_vector(kv_count, 1.0f, rng);
  const std::vector<float> v = random_vector(kv_count, 1.0f, rng);
  std::vector<float> out(q.size());
  const double ms =
      time_ms(reps, [&] { backend.attention(s, q.data(), k.data(), v.data(), out.data()); });
  // QK^T and PV over the causal triangle (prefill) or one row (decode).
  const double pairs = prefill ? 0.5 * t * (t + 1.0) : static_cast<double>(t);
  const std::string shape = std::string(prefill ? "prefill" : "decode") + " H9/Hkv3 d64";
  report("attention", shape, t, backend, ms, 4.0 * pairs * kHeads * kHeadDim);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options options = parse(argc, argv);
    std::unique_ptr<Backend> cpu = attnscope::make_cpu_backend();
    std::unique_ptr<Backend> cuda;
    std::string why;
    if (attnscope::gpu::cuda_available(&why)) {
      cuda = attnscope::gpu::make_cuda_backend(0);
    }
    std::printf("bench_backends: SmolLM2-135M shapes (n_embd %d, n_ff %d, %d/%d heads, d %d)\n",
                kEmbd, kFf, kHeads, kKvHeads, kHeadDim);
    std::printf("cpu : %s\n", cpu->device_name().c_str());
    if (cuda) {
      std::printf("cuda: %s (times include host<->device copies of activations)\n",
                  cuda->device_name().c_str());
    } else {
      std::printf("cuda: skipped (%s)\n", why.c_str());
    }
    std::printf("median of %d runs after 1 warm-up\n\n", options.reps);
    std::vector<Backend*> backends{cpu.get()};
    if (cuda) backends.push_back(cuda.get());
    for (const int t : options.lengths) {
      for (Backend* backend : backends) {
        bench_linear(*backend, t, options.reps);
        bench_attention(*backend, t, options.reps, /*prefill=*/false);
        if (backend == cpu.get() && t > options.cpu_max_t) {
          std::printf(
              "attention  prefill H9/Hkv3 d64           T=%-5d cpu   skipped "
              "(T > --cpu-max-t %d)\n",
              t, options.cpu_max_t);
        } else {
          bench_attention(*backend, t, options.reps, /*prefill=*/true);
        }
      }
      std::printf("\n");
    }
    return 0;
  } catch (const attnscope::Error& e) {
    std::fprintf(stderr, "bench_backends: %s\n", e.what());
    return attnscope::exit_code_for(e.kind());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_backends: %s\n", e.what());
    return 4;
  }
}
