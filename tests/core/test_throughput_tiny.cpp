// measure_throughput on a tiny random model (no default model needed): the sweep's shape
// (lengths x [baseline, variants...], baseline first), identities, KV bytes against the
// formula, progress, option checks and cancellation. Timings are only checked to exist
// (positive, consistent with tokens/s), never compared as performance.
#include <gtest/gtest.h>

#include <atomic>
#include <regex>

#include "attnscope/error.h"
#include "attnscope/throughput.h"
#include "tiny_models.h"

namespace attnscope {
namespace {

constexpr const char* kStreamSpec = "kv=streamingllm:budget=6,sinks=2";
constexpr const char* kWindowSpec = "pattern=window:w=4";
constexpr int kStreamBudget = 6;

template <typename F>
void expect_error(ErrorKind kind, F&& f, const std::string& needle, const std::string& what) {
  SCOPED_TRACE(what);
  try {
    f();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(static_cast<int>(e.kind()), static_cast<int>(kind)) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

ThroughputOptions small_options() {
  ThroughputOptions o;
  o.lengths = {8, 16};
  o.decode_steps = 2;
  return o;
}

TEST(ThroughputTiny, SweepHasOnePointPerLengthAndConfigurationBaselineFirst) {
  const auto model = test::tiny_byte_model(64);
  const ModelConfig& c = model->config;
  const std::vector<VariantSpec> variants = {
      VariantSpec::parse(kStreamSpec), VariantSpec::parse(kWindowSpec), VariantSpec::baseline()};
  ThroughputOptions o = small_options();
  o.repeat = 2;
  std::vector<std::pair<double, std::string>> progress;
  o.progress = [&](double f, const std::string& stage) { progress.emplace_back(f, stage); };
  const ThroughputResult r = measure_throughput(model, variants, o);

  EXPECT_EQ(r.backend, "cpu");
  EXPECT_FALSE(r.device.empty());
  EXPECT_EQ(r.model_name, "tiny-bytes");
  EXPECT_EQ(r.attnscope_version, ATTNSCOPE_VERSION);
  EXPECT_TRUE(std::regex_match(r.created_at, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")))
      << r.created_at;
  EXPECT_EQ(r.repeat, 2);
  EXPECT_EQ(r.lengths, o.lengths);
  ASSERT_EQ(r.points.size(), o.lengths.size() * (1 + variants.size()));
  for (size_t i = 0; i < r.points.size(); ++i) {
    const ThroughputPoint& p = r.points[i];
    SCOPED_TRACE("point " + std::to_string(i) + " " + p.spec);
    const size_t config = i % (1 + variants.size());
    const VariantSpec expected = config == 0 ? VariantSpec::baseline() : variants[config - 1];
    EXPECT_EQ(p.length, o.lengths[i / (1 + variants.size())]);
    EXPECT_EQ(p.spec, expected.to_string());
    EXPECT_EQ(p.baseline, config == 0);
    EXPECT_EQ(p.display_name, config == 0 ? std::string("baseline") : expected.display_name());
    EXPECT_EQ(p.decode_steps, 2);
    EXPECT_GT(p.prefill_seconds, 0);
    EXPECT_GT(p.decode_seconds, 0);
    EXPECT_GT(p.attention_seconds, 0);
    // Attention is measured inside the same prefill and decode calls.
    EXPECT_LE(p.attention_seconds, p.prefill_seconds + p.decode_seconds);
    EXPECT_DOUBLE_EQ(p.prefill_tokens_per_second, p.length / p.prefill_seconds);
    EXPECT_DOUBLE_EQ(p.decode_tokens_per_second, 2 / p.decode_seconds);
    // Full cache: every one of the T entries, K and V, d floats, per layer and KV head.
    const double full = static_cast<double>(p.length + 2) * c.n_head_kv * c.n_layer * 2 *
                        c.head_dim * sizeof(float);
    if (config == 1) {
      // StreamingLLM keeps at most its budget per layer and KV head.
      EXPECT_GT(p.kv_cache_bytes, 0);
      EXPECT_LE(p.kv_cache_bytes,
                double{kStreamBudget} * c.n_head_kv * c.n_layer * 2 * c.head_dim * sizeof(float));
    } else {
      EXPECT_EQ(p.kv_cache_bytes, full);  // window and baseline keep every entry
    }
  }
  EXPECT_EQ(r.point(variants[0].to_string(), 16), &r.points[5]);

  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back().first, 1.0);
  for (size_t i = 1; i < progress.size(); ++i) {
    EXPECT_GE(progress[i].first, progress[i - 1].first) << progress[i].second;
  }
  bool saw_stage = false;
  const std::string stage = "length 16: " + variants[1].display_name() + " 3/4 run 2/2";
  for (const auto& [f, s] : progress) saw_stage = saw_stage || s == stage;
  EXPECT_TRUE(saw_stage) << "no stage '" << stage << "'";
  // And the measured sweep survives its JSON form.
  const ThroughputResult back = throughput_from_json(throughput_to_json(r), "r");
  ASSERT_EQ(back.points.size(), r.points.size());
  EXPECT_EQ(back.points[7].prefill_seconds, r.points[7].prefill_seconds);
}

TEST(ThroughputTiny, RejectsBadOptions) {
  const auto model = test::tiny_byte_model(64);
  const auto run = [&](const ThroughputOptions& o) { measure_throughput(model, {}, o); };
  ThroughputOptions o = small_options();
  o.lengths.clear();
  expect_error(
      ErrorKind::Usage, [&] { run(o); }, "lengths", "no lengths");
  o = small_options();
  o.lengths = {8, 0};
  expect_error(
      ErrorKind::Usage, [&] { run(o); }, "lengths", "length 0");
  o = small_options();
  o.decode_steps = -1;
  expect_error(
      ErrorKind::Usage, [&] { run(o); }, "decode", "negative decode");
  o = small_options();
  o.repeat = 0;
  expect_error(
      ErrorKind::Usage, [&] { run(o); }, "repeat", "repeat 0");
  o = small_options();
  o.lengths = {8, 63};  // 63 + 2 decode steps > 64
  expect_error(
      ErrorKind::Usage, [&] { run(o); }, "context of 64", "beyond the context");
  auto no_tokenizer = test::tiny_byte_model(64);
  no_tokenizer->tokenizer = nullptr;
  expect_error(
      ErrorKind::Usage, [&] { measure_throughput(no_tokenizer, {}, small_options()); }, "tokenizer",
      "no tokenizer");
  expect_error(
      ErrorKind::Usage, [&] { measure_throughput(nullptr, {}, small_options()); }, "model",
      "no model");
  // A spec the model cannot run fails before anything is timed.
  std::vector<std::string> stages;
  o = small_options();
  o.progress = [&](double, const std::string& s) { stages.push_back(s); };
  const VariantSpec three_groups = VariantSpec::parse("grouping=gqa:groups=3");  // of 2 KV heads
  EXPECT_THROW(measure_throughput(model, {three_groups}, o), Error);
  EXPECT_TRUE(stages.empty());
}

TEST(ThroughputTiny, CancelStopsTheSweep) {
  const auto model = test::tiny_byte_model(64);
  std::atomic<bool> cancel{true};
  ThroughputOptions o = small_options();
  o.cancel = &cancel;
  expect_error(
      ErrorKind::Runtime, [&] { measure_throughput(model, {}, o); }, "cancelled", "before start");
  // Cancelled between runs, from the progress callback, as a GUI's cancel button would.
  cancel = false;
  int runs_started = 0;
  o.progress = [&](double, const std::string& stage) {
    if (stage.rfind("length", 0) == 0 && ++runs_started == 2) cancel = true;
  };
  expect_error(
      ErrorKind::Runtime, [&] { measure_throughput(model, {VariantSpec::parse(kWindowSpec)}, o); },
      "cancelled", "after the first run");
  EXPECT_EQ(runs_started, 2);
}

}  // namespace
}  // namespace attnscope
