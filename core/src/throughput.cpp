// Throughput harness: times prefill, greedy decode and the attention inside them for the
// baseline and each variant over prompt lengths (best of `repeat` by prefill), and the sweep's
// JSON form (format kThroughputFormat, schema kThroughputSchemaVersion).
#include "attnscope/throughput.h"

#include <algorithm>
#include <chrono>
#include <set>
#include <span>

#include "attnscope/error.h"
#include "attnscope/run.h"
#include "attnscope/session.h"
#include "attnscope/tokenizer.h"
#include "attnscope/variant_engine.h"
#include "throughput_json.h"
#include "trace_limits.h"

namespace attnscope {

using json = nlohmann::json;

namespace {

// Ordinary English prose, tiled to each length, so the prompt looks like real text.
constexpr const char* kDefaultText =
    "Attention lets every token look back at the tokens before it. A small language model "
    "reads a prompt, builds keys and values for each position, and then writes one token at "
    "a time, reusing the cached keys and values. How fast this runs depends on the length of "
    "the prompt, the number of heads, and the device. ";

// Warm-up run: long enough to touch every weight and kernel, short enough to cost nothing.
constexpr int kWarmupTokens = 16;
constexpr int kWarmupDecode = 2;

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double per_second(double count, double seconds) {
  return seconds > 0 ? count / seconds : 0.0;
}

// Wall time between each layer's Q/K/V and its attention output: the attention itself,
// whoever computes it (backend or variant hook). Asks for no logits beyond the last row.
class AttentionClock final : public Capture {
 public:
  void on_qkv(int, int, int, const float*, const float*, const float*) override {
    m_start = Clock::now();
  }
  void on_attention_output(int, int, int, const float*) override {
    m_seconds += seconds_since(m_start);
  }
  double seconds() const { return m_seconds; }

 private:
  Clock::time_point m_start{};
  double m_seconds = 0;
};

struct RunTiming {
  double prefill_seconds = 0;
  double decode_seconds = 0;
  double attention_seconds = 0;
  double kv_cache_bytes = 0;
};

// One prefill of `prompt` ([L] ids) then `decode` greedy single-token steps, with `spec`'s
// hook installed unless it is the baseline.
RunTiming time_once(const std::shared_ptr<const Model>& model,
                    const std::shared_ptr<Backend>& backend, const VariantSpec& spec,
                    const std::vector<int32_t>& prompt, int decode,
                    const std::atomic<bool>* cancel) {
  const ModelConfig& c = model->config;
  const int T = static_cast<int>(prompt.size()) + decode;
  InferenceSession session(model, backend, T);
  Trace scratch;  // the hook records its decisions somewhere; nobody reads them
  std::shared_ptr<VariantAttention> hook;
  if (!spec.is_baseline()) {
    VariantEngineOptions eo;
    eo.record_k = false;
    eo.cancel = cancel;
    hook = std::make_shared<VariantAttention>(spec, model, &scratch, eo);
    session.set_attention_hook(hook);
  }
  AttentionClock clock;
  Sampler greedy(SamplingOptions{});
  RunTiming t;
  auto t0 = Clock::now();
  std::vector<float> logits = session.forward(prompt, &clock, cancel);
  t.prefill_seconds = seconds_since(t0);
  t0 = Clock::now();
  for (int i = 0; i < decode; ++i) {
    const int32_t id = greedy.sample(logits);
    logits = session.forward(std::span<const int32_t>(&id, 1), &clock, cancel);
  }
  t.decode_seconds = seconds_since(t0);
  t.attention_seconds = clock.seconds();
  const double entry_bytes = 2.0 * c.head_dim * sizeof(float);  // one K row + one V row
  t.kv_cache_bytes = hook ? hook->kv_cache_bytes()
                          : static_cast<double>(T) * c.n_head_kv * c.n_layer * entry_bytes;
  return t;
}

void check_cancel(const std::atomic<bool>* cancel) {
  if (cancel != nullptr && cancel->load()) throw_runtime("cancelled");
}

}  // namespace

const ThroughputPoint* ThroughputResult::point(const std::string& spec, int length) const {
  for (const ThroughputPoint& p : points) {
    if (p.spec == spec && p.length == length) return &p;
  }
  return nullptr;
}

ThroughputResult measure_throughput(std::shared_ptr<const Model> model,
                                    const std::vector<VariantSpec>& variants,
                                    const ThroughputOptions& options) {
  if (!model) throw_usage("throughput: no model");
  const ModelConfig& c = model->config;
  if (options.lengths.empty()) throw_usage("throughput: lengths: expected at least one length");
  if (options.decode_steps < 0) {
    throw_usage("throughput: decode steps: expected >= 0, got " +
                std::to_string(options.decode_steps));
  }
  if (options.repeat < 1) {
    throw_usage("throughput: repeat: expected >= 1, got " + std::to_string(options.repeat));
  }
  for (const int length : options.lengths) {
    if (length < 1) {
      throw_usage("throughput: lengths: expected lengths >= 1, got " + std::to_string(length));
    }
    const int64_t total = static_cast<int64_t>(length) + options.decode_steps;
    if (c.context_length > 0 && total > c.context_length) {
      throw_usage("throughput: length " + std::to_string(length) + " + " +
                  std::to_string(options.decode_steps) + " decode steps exceed the model's " +
                  "context of " + std::to_string(c.context_length) + " tokens");
    }
  }
  if (!model->tokenizer) throw_usage("throughput: the model has no tokenizer");
  const std::string& text = options.text.empty() ? std::string(kDefaultText) : options.text;
  const std::vector<int32_t> base = model->tokenizer->encode(text, /*add_special=*/false);
  if (base.empty()) throw_usage("throughput: the prompt text tokenized to nothing");
  // A spec the model cannot run fails here, before any timing.
  for (const VariantSpec& spec : variants) {
    if (spec.is_baseline()) continue;
    Trace scratch;
    VariantAttention probe(spec, model, &scratch, VariantEngineOptions{});
  }

  const std::shared_ptr<Backend> backend =
      options.backend ? options.backend : std::shared_ptr<Backend>(make_cpu_backend());
  ThroughputResult result;
  result.device = backend->device_name();
  result.backend = backend->name();
  const ModelIdentity id = model_identity(*model);
  result.model_name = id.name;
  result.model_sha256 = id.sha256;
  result.created_at = utc_now_iso8601();
  result.attnscope_version = ATTNSCOPE_VERSION;
  result.repeat = options.repeat;
  result.lengths = options.lengths;

  // [baseline, variants...] measured in this order at every length.
  std::vector<VariantSpec> specs{VariantSpec::baseline()};
  specs.insert(specs.end(), variants.begin(), variants.end());
  const size_t n_runs = options.lengths.size() * specs.size() * options.repeat;
  size_t runs_done = 0;
  const auto report = [&](const std::string& stage) {
    if (options.progress) {
      options.progress(static_cast<double>(runs_done) / static_cast<double>(n_runs), stage);
    }
  };

  // Warm-up: first touch of weights (and device uploads) should not count.
  check_cancel(options.cancel);
  report("warm-up");
  const int shortest = *std::min_element(options.lengths.begin(), options.lengths.end());
  const size_t warm = std::min<size_t>(
      {base.size(), static_cast<size_t>(kWarmupTokens), static_cast<size_t>(shortest)});
  time_once(model, backend, specs[0], std::vector<int32_t>(base.begin(), base.begin() + warm),
            std::min(kWarmupDecode, options.decode_steps), options.cancel);

  for (const int length : options.lengths) {
    std::vector<int32_t> prompt(static_cast<size_t>(length));
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = base[i % base.size()];
    for (size_t s = 0; s < specs.size(); ++s) {
      const VariantSpec& spec = specs[s];
      const bool is_base = s == 0;
      const std::string name = is_base ? "baseline" : spec.display_name();
      RunTiming best;
      for (int r = 0; r < options.repeat; ++r) {
        check_cancel(options.cancel);
        std::string stage = "length " + std::to_string(length) + ": " + name + " " +
                            std::to_string(s + 1) + "/" + std::to_string(specs.size());
        if (options.repeat > 1) {
          stage += " run " + std::to_string(r + 1) + "/" + std::to_string(options.repeat);
        }
        report(stage);
        const RunTiming t =
            time_once(model, backend, spec, prompt, options.decode_steps, options.cancel);
        // The fastest prefill is the run least disturbed by other load on the machine.
        if (r == 0 || t.prefill_seconds < best.prefill_seconds) best = t;
        ++runs_done;
      }
      ThroughputPoint p;
      p.spec = spec.to_string();
      p.display_name = name;
      p.baseline = is_base;
      p.length = length;
      p.decode_steps = options.decode_steps;
      p.prefill_seconds = best.prefill_seconds;
      p.decode_seconds = best.decode_seconds;
      p.prefill_tokens_per_second = per_second(length, best.prefill_seconds);
      p.decode_tokens_per_second = per_second(options.decode_steps, best.decode_seconds);
      p.attention_seconds = best.attention_seconds;
      p.kv_cache_bytes = best.kv_cache_bytes;
      result.points.push_back(std::move(p));
    }
  }
  if (options.progress) options.progress(1.0, "done");
  return result;
}

// ------------------------------------------------------------------------------------------
// JSON

json throughput_json_value(const ThroughputResult& r) {
  json points = json::array();
  for (const ThroughputPoint& p : r.points) {
    points.push_back({{"spec", p.spec},
                      {"display_name", text_json(p.display_name)},
                      {"baseline", p.baseline},
                      {"length", p.length},
                      {"decode_steps", p.decode_steps},
                      {"prefill_seconds", p.prefill_seconds},
                      {"decode_seconds", p.decode_seconds},
                      {"prefill_tokens_per_second", p.prefill_tokens_per_second},
                      {"decode_tokens_per_second", p.decode_tokens_per_second},
                      {"attention_seconds", p.attention_seconds},
                      {"kv_cache_bytes", p.kv_cache_bytes}});
  }
  return json{{"format", kThroughputFormat},
              {"schema_version", kThroughputSchemaVersion},
              {"device", text_json(r.device)},
              {"backend", text_json(r.backend)},
              {"model_name", text_json(r.model_name)},
              {"model_sha256", text_json(r.model_sha256)},
              {"created_at", text_json(r.created_at)},
              {"attnscope_version", text_json(r.attnscope_version)},
              {"repeat", r.repeat},
              {"lengths", r.lengths},
              {"points", points}};
}

ThroughputResult throughput_from_json_value(const json& v, const JsonFields& f,
                                            const std::string& field) {
  using trace_detail::kMaxTokens;
  const auto key = [&](const std::string& k) { return field_key(field, k); };
  f.object(v, field);
  const std::string format = f.str(f.at(v, field, "format"), key("format"));
  if (format != kThroughputFormat) {
    f.fail_got(key("format"), std::string("expected \"") + kThroughputFormat + "\"",
               f.at(v, field, "format"));
  }
  f.integer(f.at(v, field, "schema_version"), key("schema_version"), 1, kThroughputSchemaVersion);
  ThroughputResult r;
  r.device = f.text(f.at(v, field, "device"), key("device"));
  r.backend = f.text(f.at(v, field, "backend"), key("backend"));
  r.model_name = f.text(f.at(v, field, "model_name"), key("model_name"));
  r.model_sha256 = f.text(f.at(v, field, "model_sha256"), key("model_sha256"));
  r.created_at = f.text(f.at(v, field, "created_at"), key("created_at"));
  r.attnscope_version = f.text(f.at(v, field, "attnscope_version"), key("attnscope_version"));
  r.repeat = f.i32(f.at(v, field, "repeat"), key("repeat"), 1, 1000000);
  const json& lengths = f.array(f.at(v, field, "lengths"), key("lengths"));
  std::set<int> known;
  for (size_t i = 0; i < lengths.size(); ++i) {
    const std::string li = field_index(key("lengths"), i);
    const int length = f.i32(lengths[i], li, 1, kMaxTokens);
    if (!known.insert(length).second) f.fail_got(li, "expected distinct lengths", lengths[i]);
    r.lengths.push_back(length);
  }
  const json& points = f.array(f.at(v, field, "points"), key("points"));
  for (size_t i = 0; i < points.size(); ++i) {
    const json& pj = points[i];
    const std::string pf = field_index(key("points"), i);
    const auto pk = [&](const std::string& k) { return field_key(pf, k); };
    ThroughputPoint p;
    p.spec = f.str(f.at(pj, pf, "spec"), pk("spec"));
    VariantSpec spec;
    try {
      spec = VariantSpec::parse(p.spec);
    } catch (const Error& e) {
      f.fail(pk("spec"), e.what());
    }
    p.display_name = f.text(f.at(pj, pf, "display_name"), pk("display_name"));
    p.baseline = f.boolean(f.at(pj, pf, "baseline"), pk("baseline"));
    if (p.baseline && !spec.is_baseline()) {
      f.fail_got(pk("baseline"), "expected false for the variant '" + p.spec + "'",
                 f.at(pj, pf, "baseline"));
    }
    p.length = f.i32(f.at(pj, pf, "length"), pk("length"), 1, kMaxTokens);
    if (known.count(p.length) == 0) {
      f.fail_got(pk("length"), "expected one of the sweep's lengths", f.at(pj, pf, "length"));
    }
    p.decode_steps = f.i32(f.at(pj, pf, "decode_steps"), pk("decode_steps"), 0, kMaxTokens);
    const auto nonneg = [&](const char* k) {
      return f.number(f.at(pj, pf, k), pk(k), 0.0, std::numeric_limits<double>::max());
    };
    p.prefill_seconds = nonneg("prefill_seconds");
    p.decode_seconds = nonneg("decode_seconds");
    p.prefill_tokens_per_second = nonneg("prefill_tokens_per_second");
    p.decode_tokens_per_second = nonneg("decode_tokens_per_second");
    p.attention_seconds = nonneg("attention_seconds");
    p.kv_cache_bytes = nonneg("kv_cache_bytes");
    r.points.push_back(std::move(p));
  }
  return r;
}

std::string throughput_to_json(const ThroughputResult& result) {
  return throughput_json_value(result).dump(2) + "\n";
}

ThroughputResult throughput_from_json(const std::string& json_text, const std::string& where) {
  return read_json_document(json_text, JsonFields(where),
                            [](const json& root, const JsonFields& f) {
                              return throughput_from_json_value(root, f, "");
                            });
}

}  // namespace attnscope
