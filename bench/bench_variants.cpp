// bench_variants: cost of attention variants against the baseline forward on the default model
// (or a given one): prefill time with a VariantAttention hook installed, its ratio to the plain
// prefill, and decode throughput after it; optionally the on-disk size and peak memory of a
// saved N-token baseline trace. Prints device, model and length with every number; never a test.
//
// usage: bench_variants [--model PATH] [--n TOKENS] [--repeat N] [--decode D]
//                       [--variant SPEC]... [--text PATH] [--threads N] [--record-k]
//                       [--json PATH|-] [--trace-size [--keep-trace]]
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "attnscope/error.h"
#include "attnscope/model.h"
#include "attnscope/paths.h"
#include "attnscope/run.h"
#include "attnscope/session.h"
#include "attnscope/sys_info.h"
#include "attnscope/trace.h"
#include "attnscope/trace_io.h"
#include "attnscope/variant_engine.h"
#include "attnscope/variant_spec.h"

namespace fs = std::filesystem;

namespace {

// A representative set: one of each pattern family, both grouping rewrites, STRING positions
// and the three KV policies at the same budget.
const char* const kDefaultVariants[] = {
    "pattern=window:w=256",  "pattern=sinks",        "pattern=blocktopk",
    "pattern=flexprefill",   "grouping=kdgqa",       "grouping=mqa",
    "positions=string",      "kv=snapkv:budget=256", "kv=h2o:budget=256",
    "kv=streamingllm:budget=256"};

// Used only when the prose file cannot be read (the binary moved away from its source tree).
const char* const kFallbackParagraph =
    "The lighthouse keeper climbed the spiral stairs every evening at dusk, carrying a tin of "
    "oil and a cloth for the great lens. From the gallery he could see the fishing boats "
    "returning along the coast, their lanterns swaying with the swell, and beyond them the dark "
    "line where the sea met the sky. He kept a log of the weather, the ships that passed and "
    "the birds that rested on the rail, and in winter he read old letters by the light of the "
    "lamp while the wind pressed against the glass. ";

struct Options {
  std::string model;
  int n = 2048;
  int repeat = 1;
  int decode = 16;
  std::vector<std::string> variants;
  std::string text;
  int threads = 0;
  bool record_k = false;
  std::string json;
  bool trace_size = false;
  bool keep_trace = false;
};

const char* const kUsage =
    "usage: [--model PATH] [--n TOKENS] [--repeat N] [--decode D] [--variant SPEC]... "
    "[--text PATH] [--threads N] [--record-k] [--json PATH|-] [--trace-size [--keep-trace]]";

int positive_int(const std::string& flag, const char* text, int min_value) {
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || v < min_value || v > 1000000) {
    attnscope::throw_usage(flag + ": expected an integer >= " + std::to_string(min_value) +
                           ", got '" + text + "'");
  }
  return static_cast<int>(v);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--model" && has_value) {
      o.model = argv[++i];
    } else if (arg == "--n" && has_value) {
      o.n = positive_int(arg, argv[++i], 1);
    } else if (arg == "--repeat" && has_value) {
      o.repeat = positive_int(arg, argv[++i], 1);
    } else if (arg == "--decode" && has_value) {
      o.decode = positive_int(arg, argv[++i], 0);
    } else if (arg == "--variant" && has_value) {
      o.variants.push_back(argv[++i]);
    } else if (arg == "--text" && has_value) {
      o.text = argv[++i];
    } else if (arg == "--threads" && has_value) {
      o.threads = positive_int(arg, argv[++i], 0);
    } else if (arg == "--json" && has_value) {
      o.json = argv[++i];
    } else if (arg == "--record-k") {
      o.record_k = true;
    } else if (arg == "--trace-size") {
      o.trace_size = true;
    } else if (arg == "--keep-trace") {
      o.keep_trace = true;
    } else {
      attnscope::throw_usage("unknown or incomplete argument '" + arg + "' (" + kUsage + ")");
    }
  }
  if (o.variants.empty()) o.variants.assign(std::begin(kDefaultVariants), std::end(kDefaultVariants));
  return o;
}

double seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The prose file next to this source (resources/texts/), found through __FILE__ so the bench
// runs from any build directory of this checkout.
fs::path default_text_path() {
  return fs::path(__FILE__).parent_path().parent_path() / "resources" / "texts" /
         "prose_lighthouse.txt";
}

std::string read_text(const std::string& given, std::string* source) {
  const fs::path path = given.empty() ? default_text_path() : fs::path(given);
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (!given.empty()) throw attnscope::Error(attnscope::ErrorKind::BadInput, given + ": cannot be read");
    *source = "built-in paragraph";
    return kFallbackParagraph;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (text.empty()) throw attnscope::Error(attnscope::ErrorKind::BadInput, path.string() + ": empty text");
  *source = path.string();
  return text;
}

// Deterministic prompt of exactly n tokens: the text repeated (separated by a blank line) until
// it tokenizes to at least n ids, then cut to n. BOS is kept when the tokenizer adds it.
std::vector<int32_t> build_prompt(const attnscope::Model& model, const std::string& text, int n) {
  if (!model.tokenizer) throw attnscope::Error(attnscope::ErrorKind::BadInput, "model: has no tokenizer");
  const std::string unit = text + "\n\n";
  int copies = 1;
  for (;;) {
    std::string all;
    all.reserve(unit.size() * static_cast<size_t>(copies));
    for (int c = 0; c < copies; ++c) all += unit;
    std::vector<int32_t> ids = model.tokenizer->encode(all, true);
    if (static_cast<int>(ids.size()) >= n) {
      ids.resize(static_cast<size_t>(n));
      return ids;
    }
    if (ids.size() <= 1) throw attnscope::Error(attnscope::ErrorKind::BadInput, "text: tokenizes to nothing");
    // Grow by the observed tokens per copy, with a margin so one more pass suffices.
    const double per_copy = static_cast<double>(ids.size()) / copies;
    copies = std::max(copies + 1, static_cast<int>(n / per_copy * 1.1) + 1);
  }
}

int32_t argmax(const std::vector<float>& logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

struct Timing {
  std::string spec;
  std::string display;
  double prefill_s = 0;  // best of repeat
  double decode_s = 0;   // the decode steps after the best prefill's run (last run)
  int decode_steps = 0;
};

// One variant (or the baseline when spec is null): `repeat` prefills, each on a fresh hook and
// an emptied cache, then `decode` greedy steps with the hook still installed.
Timing time_variant(std::shared_ptr<const attnscope::Model> model,
                    attnscope::InferenceSession& session, const attnscope::VariantSpec* spec,
                    const std::vector<int32_t>& prompt, const Options& o) {
  Timing t;
  t.prefill_s = 1e300;
  for (int r = 0; r < o.repeat; ++r) {
    attnscope::Trace scratch;  // decisions recorded by the hook; discarded
    std::shared_ptr<attnscope::VariantAttention> hook;
    if (spec != nullptr && !spec->is_baseline()) {
      attnscope::VariantEngineOptions eo;
      eo.record_k = o.record_k;
      eo.reserve_tokens = static_cast<int>(prompt.size()) + o.decode;
      eo.n_threads = o.threads;
      hook = std::make_shared<attnscope::VariantAttention>(*spec, model, &scratch, eo);
    }
    session.reset();
    session.set_attention_hook(hook);
    try {
      auto t0 = std::chrono::steady_clock::now();
      auto logits = session.forward(prompt);
      t.prefill_s = std::min(t.prefill_s, seconds(t0));
      if (r + 1 == o.repeat) {
        t0 = std::chrono::steady_clock::now();
        for (int s = 0; s < o.decode; ++s) {
          const int32_t one[1] = {argmax(logits)};
          logits = session.forward(one);
        }
        t.decode_s = seconds(t0);
        t.decode_steps = o.decode;
      }
    } catch (...) {
      session.set_attention_hook(nullptr);
      throw;
    }
    session.set_attention_hook(nullptr);
  }
  return t;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(ch)));
      out += buf;
    } else {
      out += ch;
    }
  }
  return out;
}

void write_json(const std::string& where, const std::string& body) {
  if (where == "-") {
    std::fputs(body.c_str(), stdout);
    return;
  }
  std::ofstream out(where, std::ios::binary);
  out << body;
  if (!out) throw attnscope::Error(attnscope::ErrorKind::Runtime, where + ": cannot be written");
}

long peak_rss_kib() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;  // KiB on Linux
}

uintmax_t dir_bytes(const fs::path& dir) {
  uintmax_t total = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) total += e.file_size();
  }
  return total;
}

// Baseline-only run_variants at N tokens (Q/K stored, as the app does), saved to a temp dir.
int trace_size(std::shared_ptr<const attnscope::Model> model, const std::vector<int32_t>& prompt,
               const std::string& device, const std::string& path, const Options& o) {
  attnscope::RunOptions ro;
  ro.decode_steps = o.decode;
  ro.store_qk = true;
  ro.backend = attnscope::make_cpu_backend(o.threads);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<attnscope::Trace> traces = run_variants(model, prompt, {}, ro);
  const double run_s = seconds(t0);
  const fs::path dir =
      fs::temp_directory_path() / ("attnscope_bench_trace_" + std::to_string(::getpid()));
  const auto t1 = std::chrono::steady_clock::now();
  attnscope::save_trace(traces.at(0), dir);
  const double save_s = seconds(t1);
  const uintmax_t bytes = dir_bytes(dir);
  size_t n_files = 0;
  for (const auto& e : fs::directory_iterator(dir)) n_files += e.is_regular_file() ? 1 : 0;
  const long rss = peak_rss_kib();
  const size_t run_trace_bytes = attnscope::trace_memory_bytes(traces.at(0));
  // What reopening the trace without the model costs (as the GUI's session open does): the
  // run's traces are dropped first, so the RSS growth is the loaded trace's own.
  traces.clear();
  traces.shrink_to_fit();
  const uint64_t rss_before_load = attnscope::current_rss_bytes();
  const auto t2 = std::chrono::steady_clock::now();
  const attnscope::Trace loaded = attnscope::load_trace(dir);
  const double load_s = seconds(t2);
  const uint64_t rss_after_load = attnscope::current_rss_bytes();
  const size_t loaded_bytes = attnscope::trace_memory_bytes(loaded);
  std::printf("trace in memory: %zu bytes (%.1f MiB) after the run; reloaded in %.2f s: %zu bytes "
              "(%.1f MiB) payload, RSS +%.1f MiB\n",
              run_trace_bytes, run_trace_bytes / 1048576.0, load_s, loaded_bytes,
              loaded_bytes / 1048576.0,
              (static_cast<double>(rss_after_load) - static_cast<double>(rss_before_load)) /
                  1048576.0);
  std::printf("trace size: device %s | model %s | length %d (+%d decode) | run_variants %.2f s"
              " | save %.2f s | %zu files, %ju bytes (%.1f MiB) on disk | peak RSS %ld KiB "
              "(%.1f MiB)\n",
              device.c_str(), model->config.name.c_str(), static_cast<int>(prompt.size()),
              o.decode, run_s, save_s, n_files, bytes, static_cast<double>(bytes) / 1048576.0,
              rss, static_cast<double>(rss) / 1024.0);
  if (o.keep_trace) {
    std::printf("trace kept at %s\n", dir.string().c_str());
  } else {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  if (!o.json.empty()) {
    std::ostringstream js;
    js << "{\"device\": \"" << json_escape(device) << "\", \"model\": \""
       << json_escape(model->config.name) << "\", \"model_path\": \"" << json_escape(path)
       << "\", \"length\": " << prompt.size() << ", \"decode_steps\": " << o.decode
       << ", \"run_seconds\": " << run_s << ", \"save_seconds\": " << save_s
       << ", \"files\": " << n_files << ", \"trace_bytes\": " << bytes
       << ", \"peak_rss_kib\": " << rss << ", \"trace_memory_bytes\": " << loaded_bytes
       << ", \"load_seconds\": " << load_s << ", \"load_rss_growth_bytes\": "
       << (static_cast<double>(rss_after_load) - static_cast<double>(rss_before_load)) << "}\n";
    write_json(o.json, js.str());
  }
  return 0;
}

int run(int argc, char** argv) {
  const Options o = parse(argc, argv);
  std::vector<attnscope::VariantSpec> specs;
  if (!o.trace_size) {
    for (const auto& v : o.variants) specs.push_back(attnscope::VariantSpec::parse(v));
  }
  const std::string path = o.model.empty() ? attnscope::default_model_path().string() : o.model;
  auto model = attnscope::load_model(path);
  std::string text_source;
  const std::string text = read_text(o.text, &text_source);
  const std::vector<int32_t> prompt = build_prompt(*model, text, o.n);
  std::shared_ptr<attnscope::Backend> backend = attnscope::make_cpu_backend(o.threads);
  const std::string device = backend->device_name();
  std::printf("device: %s\nmodel: %s (%s)\nprompt: %d tokens from %s\n", device.c_str(),
              model->config.name.c_str(), path.c_str(), o.n, text_source.c_str());
  std::fflush(stdout);
  if (o.trace_size) return trace_size(model, prompt, device, path, o);

  attnscope::InferenceSession session(model, backend, o.n + o.decode + 1);
  session.forward(std::vector<int32_t>(prompt.begin(), prompt.begin() + std::min(o.n, 16)));
  const Timing base = time_variant(model, session, nullptr, prompt, o);
  std::vector<Timing> rows;
  auto print = [&](const Timing& t, const std::string& name) {
    const double tps = t.decode_s > 0 ? t.decode_steps / t.decode_s : 0.0;
    std::printf("%s | %s | length %d | %-48s | prefill %8.3f s | x%5.2f | decode %7.2f tok/s\n",
                device.c_str(), model->config.name.c_str(), o.n, name.c_str(), t.prefill_s,
                t.prefill_s / base.prefill_s, tps);
    std::fflush(stdout);
  };
  print(base, "baseline");
  for (size_t i = 0; i < specs.size(); ++i) {
    Timing t = time_variant(model, session, &specs[i], prompt, o);
    t.spec = o.variants[i];
    t.display = specs[i].display_name();
    print(t, t.display == t.spec ? t.display : t.display + " [" + t.spec + "]");
    rows.push_back(std::move(t));
  }
  if (!o.json.empty()) {
    std::ostringstream js;
    auto row = [&](const Timing& t, const std::string& spec, const std::string& name) {
      js << "{\"spec\": \"" << json_escape(spec) << "\", \"name\": \"" << json_escape(name)
         << "\", \"prefill_seconds\": " << t.prefill_s
         << ", \"ratio\": " << t.prefill_s / base.prefill_s
         << ", \"decode_seconds\": " << t.decode_s << ", \"decode_steps\": " << t.decode_steps
         << ", \"decode_tokens_per_second\": "
         << (t.decode_s > 0 ? t.decode_steps / t.decode_s : 0.0) << "}";
    };
    js << "{\"device\": \"" << json_escape(device) << "\", \"model\": \""
       << json_escape(model->config.name) << "\", \"model_path\": \"" << json_escape(path)
       << "\", \"length\": " << o.n << ", \"repeat\": " << o.repeat
       << ", \"record_k\": " << (o.record_k ? "true" : "false") << ", \"rows\": [";
    row(base, "", "baseline");
    for (const auto& t : rows) {
      js << ", ";
      row(t, t.spec, t.display);
    }
    js << "]}\n";
    write_json(o.json, js.str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const attnscope::Error& e) {
    std::fprintf(stderr, "bench_variants: %s\n", e.what());
    return attnscope::exit_code_for(e.kind());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_variants: %s\n", e.what());
    return 4;
  }
}
