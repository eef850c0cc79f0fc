// The throughput harness on the default model (tiny lengths so it stays quick): the sweep's
// shape and identities, KV bytes against the formula for SmolLM2, and `attnscope-cli bench`
// (the JSON fields it has always printed, plus variants). Timings are only checked to exist,
// never compared as performance.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "attnscope/error.h"
#include "attnscope/model.h"
#include "attnscope/run.h"
#include "attnscope/throughput.h"
#include "cli_runner.h"
#include "test_support.h"

namespace attnscope {
namespace {

namespace fs = std::filesystem;

constexpr const char* kStreamSpec = "kv=streamingllm:budget=8,sinks=2";
constexpr int kStreamBudget = 8;

TEST(ThroughputModel, SweepOnTheDefaultModel) {
  const auto model = load_model(test::default_model());
  const ModelConfig& c = model->config;
  ThroughputOptions o;
  o.lengths = {8, 16};
  o.decode_steps = 2;
  const std::vector<VariantSpec> variants = {VariantSpec::parse(kStreamSpec)};
  const ThroughputResult r = measure_throughput(model, variants, o);
  EXPECT_EQ(r.model_name, c.name);
  EXPECT_EQ(r.model_sha256, model_identity(*model).sha256);
  EXPECT_EQ(r.model_sha256.size(), 64u);
  EXPECT_EQ(r.backend, "cpu");
  ASSERT_EQ(r.points.size(), 4u);
  for (size_t i = 0; i < r.points.size(); ++i) {
    const ThroughputPoint& p = r.points[i];
    SCOPED_TRACE("point " + std::to_string(i));
    EXPECT_EQ(p.baseline, i % 2 == 0);
    EXPECT_EQ(p.length, i < 2 ? 8 : 16);
    EXPECT_EQ(p.spec, i % 2 == 0 ? VariantSpec::baseline().to_string() : variants[0].to_string());
    EXPECT_GT(p.prefill_seconds, 0);
    EXPECT_GT(p.decode_seconds, 0);
    EXPECT_GT(p.attention_seconds, 0);
    EXPECT_GT(p.prefill_tokens_per_second, 0);
    EXPECT_GT(p.decode_tokens_per_second, 0);
    const double entry = 2.0 * c.head_dim * sizeof(float);  // K and V rows
    if (p.baseline) {
      EXPECT_EQ(p.kv_cache_bytes, (p.length + 2.0) * c.n_head_kv * c.n_layer * entry);
    } else {
      EXPECT_GT(p.kv_cache_bytes, 0);
      EXPECT_LE(p.kv_cache_bytes, double{kStreamBudget} * c.n_head_kv * c.n_layer * entry);
    }
  }
}

class BenchCliTest : public ::testing::Test {
 protected:
  void SetUp() override { m_dir = test::make_temp_dir("bench_cli"); }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(m_dir, ec);
  }
  test::CliResult run(const std::vector<std::string>& args) { return test::run_cli(args, m_dir); }
  fs::path m_dir;
};

TEST_F(BenchCliTest, ReportsTheBaselineAndVariantsAsJson) {
  const test::CliResult r =
      run({"bench", "--model", test::default_model().string(), "--lengths", "8,16", "--decode", "2",
           "--variant", kStreamSpec, "--threads", "2"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  // The fields bench has always printed: the baseline's results per length.
  for (const char* key : {"device", "backend", "model", "model_name", "version", "variant"}) {
    EXPECT_TRUE(j.at(key).is_string()) << key;
  }
  EXPECT_EQ(j.at("variant"), "full");
  EXPECT_EQ(j.at("backend"), "cpu");
  EXPECT_EQ(j.at("repeat"), 1);
  ASSERT_EQ(j.at("results").size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const auto& e = j.at("results")[i];
    EXPECT_EQ(e.at("length"), i == 0 ? 8 : 16);
    EXPECT_EQ(e.at("decode_tokens"), 2);
    for (const char* key : {"prefill_seconds", "prefill_tokens_per_second", "decode_seconds",
                            "decode_tokens_per_second"}) {
      EXPECT_GT(e.at(key).get<double>(), 0) << key;
    }
  }
  // Every configuration, the baseline first.
  const auto& variants = j.at("variants");
  ASSERT_EQ(variants.size(), 2u);
  EXPECT_EQ(variants[0].at("baseline"), true);
  EXPECT_EQ(variants[1].at("baseline"), false);
  EXPECT_EQ(variants[1].at("spec"), VariantSpec::parse(kStreamSpec).to_string());
  EXPECT_EQ(variants[1].at("display_name"), VariantSpec::parse(kStreamSpec).display_name());
  ASSERT_EQ(variants[1].at("results").size(), 2u);
  EXPECT_EQ(variants[1].at("results")[1].at("length"), 16);
  EXPECT_GT(variants[1].at("results")[1].at("kv_cache_bytes").get<double>(), 0);
  EXPECT_EQ(variants[0].at("results"), j.at("results"));
}

TEST_F(BenchCliTest, BadOptionsExitWithUsage) {
  test::expect_cli_error(run({"bench", "--model", test::default_model().string(), "--lengths", "8",
                              "--variant", "kv=streamingllm:budget=-1"}),
                         2, {"streamingllm.budget"}, "negative budget");
  test::expect_cli_error(run({"bench", "--model", test::default_model().string(), "--lengths",
                              "8190", "--decode", "4"}),
                         2, {"--lengths", "context"}, "beyond the context");
}

}  // namespace
}  // namespace attnscope
