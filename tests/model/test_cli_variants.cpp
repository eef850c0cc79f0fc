// End-to-end tests of the variant commands of attnscope-cli on the default model: `run` writes
// loadable traces and an index, `compare`/`map`/`export` read them back (the baseline's
// full-resolution map equals the `attention` command's probabilities), corrupt traces exit 3
// naming the file, invalid specs exit 2 naming part.param.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "attnscope/metrics.h"
#include "attnscope/npy.h"
#include "attnscope/trace_io.h"
#include "cli_runner.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace {

using attnscope::test::CliResult;
using attnscope::test::slurp;

// The trace's map recomputes each row from stored fp32 Q/K with the same softmax as the forward
// pass; only summation order differs, which moves probabilities by ~1e-7.
constexpr double kMapVsForwardTolerance = 1e-5;

constexpr const char* kPrompt = "The capital of France is Paris. The capital of Italy is";
constexpr const char* kWindowSpec = "pattern=window:w=4";
constexpr const char* kStreamSpec = "kv=streamingllm:budget=8,sinks=2";
constexpr int kDecode = 4;

class CliVariantsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    s_dir = new fs::path(attnscope::test::make_temp_dir("cli_variants"));
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*s_dir, ec);
    delete s_dir;
    delete s_run;
    s_dir = nullptr;
    s_run = nullptr;
  }

  static fs::path dir() { return *s_dir; }
  static fs::path model() { return attnscope::test::default_model(); }
  // The shared `run` (baseline + two variants), made on first use so tests that need no traces
  // (ctest runs each test in its own process) do not pay for it.
  static const CliResult& run_result() {
    if (s_run == nullptr) {
      s_run = new CliResult(run({"run", "--model", model().string(), "--prompt", kPrompt,
                                 "--variant", kWindowSpec, "--variant", kStreamSpec, "--decode",
                                 std::to_string(kDecode), "--out", (dir() / "runs").string()}));
    }
    return *s_run;
  }

  static CliResult run(const std::vector<std::string>& args) {
    return attnscope::test::run_cli(args, dir());
  }

  // The trace folders listed by index.json, in order (baseline first).
  static std::vector<fs::path> trace_dirs() {
    std::vector<fs::path> dirs;
    const auto index = nlohmann::json::parse(slurp(dir() / "runs" / "index.json"));
    for (const auto& t : index.at("traces"))
      dirs.push_back(dir() / "runs" / t.at("dir").get<std::string>());
    return dirs;
  }

  static void expect_error(const CliResult& r, int code, const std::vector<std::string>& needles,
                           const std::string& what) {
    attnscope::test::expect_cli_error(r, code, needles, what);
  }

 private:
  static fs::path* s_dir;
  static CliResult* s_run;
};

fs::path* CliVariantsTest::s_dir = nullptr;
CliResult* CliVariantsTest::s_run = nullptr;

TEST_F(CliVariantsTest, VariantsListsTheRegistry) {
  const CliResult table = run({"variants"});
  ASSERT_EQ(table.code, 0) << table.err;
  for (const char* name : {"kdgqa", "window", "string", "snapkv", "streamingllm"}) {
    EXPECT_NE(table.out.find(name), std::string::npos) << name;
  }
  const CliResult json = run({"variants", "--json"});
  ASSERT_EQ(json.code, 0) << json.err;
  EXPECT_TRUE(nlohmann::json::accept(json.out)) << json.out.substr(0, 200);
  EXPECT_NE(json.out.find("streamingllm"), std::string::npos);
}

TEST_F(CliVariantsTest, RunWritesOneLoadableTracePerVariantAndAnIndex) {
  ASSERT_EQ(run_result().code, 0) << run_result().err;
  const auto dirs = trace_dirs();
  ASSERT_EQ(dirs.size(), 3u);
  EXPECT_EQ(dirs[0].filename(), "baseline");
  const auto index = nlohmann::json::parse(slurp(dir() / "runs" / "index.json"));
  EXPECT_EQ(index.at("traces")[1].at("spec"),
            attnscope::VariantSpec::parse(kWindowSpec).to_string());
  EXPECT_EQ(index.at("traces")[2].at("spec"),
            attnscope::VariantSpec::parse(kStreamSpec).to_string());
  std::vector<attnscope::Trace> traces;
  for (const auto& d : dirs) traces.push_back(attnscope::load_trace(d));
  EXPECT_TRUE(traces[0].variant.is_baseline());
  EXPECT_TRUE(traces[1].variant == attnscope::VariantSpec::parse(kWindowSpec));
  EXPECT_TRUE(traces[2].variant == attnscope::VariantSpec::parse(kStreamSpec));
  for (const auto& t : traces) {
    EXPECT_EQ(t.n_tokens(), t.n_prompt + kDecode);
    EXPECT_EQ(t.tokens, traces[0].tokens) << "teacher forcing feeds every variant the same tokens";
    EXPECT_EQ(t.model.n_layer, 30);
    EXPECT_EQ(t.n_layer(), 30);
  }
  // StreamingLLM's cache at every decode step, layer and KV head: at most `budget` kept.
  ASSERT_EQ(traces[2].kv_steps.size(), static_cast<size_t>(kDecode));
  for (const auto& step : traces[2].kv_steps) {
    for (const auto& k : step) {
      for (const auto& r : k.reasons) {
        const auto kept = std::count_if(r.begin(), r.end(), [](uint8_t x) { return x != 0; });
        EXPECT_LE(kept, 8) << "position " << k.position;
      }
    }
  }
  EXPECT_TRUE(traces[1].metrics.count("kl_mean"));
}

TEST_F(CliVariantsTest, CompareReportsBothTracesAndTheDelta) {
  ASSERT_EQ(run_result().code, 0) << run_result().err;
  const auto dirs = trace_dirs();
  const CliResult r = run({"compare", dirs[1].string(), dirs[2].string(), "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("same_tokens"), true);
  const auto& kl = j.at("metrics").at("metrics.kl_mean");
  ASSERT_TRUE(kl.at("a").is_number() && kl.at("b").is_number()) << kl.dump();
  EXPECT_NEAR(kl.at("delta").get<double>(), kl.at("b").get<double>() - kl.at("a").get<double>(),
              1e-12);
  EXPECT_TRUE(j.at("metrics").contains("lost_mass_mean")) << "the streamingllm trace evicts";
  const CliResult table = run({"compare", dirs[0].string(), dirs[2].string()});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_NE(table.out.find("metric"), std::string::npos);
}

TEST_F(CliVariantsTest, MapHasTheRequestedShapeAndMatchesTheForwardPass) {
  ASSERT_EQ(run_result().code, 0) << run_result().err;
  const auto dirs = trace_dirs();
  const fs::path pooled = dir() / "pooled.npy";
  const CliResult r = run({"map", dirs[1].string(), "--layer", "3", "--head", "2", "--rows", "5",
                           "--cols", "7", "--reduce", "mean", "--out", pooled.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(attnscope::read_npy_f32(pooled).shape, (std::vector<int64_t>{5, 7}));

  // Baseline prompt rows at full resolution against the plain forward pass's probabilities.
  const attnscope::Trace base = attnscope::load_trace(dirs[0]);
  const int n = base.n_prompt;
  const fs::path map_file = dir() / "map_full.npy", attn_file = dir() / "attn.npy";
  const CliResult m =
      run({"map", dirs[0].string(), "--layer", "5", "--head", "4", "--q-end", std::to_string(n),
           "--k-end", std::to_string(n), "--out", map_file.string()});
  ASSERT_EQ(m.code, 0) << m.err;
  const CliResult a = run({"attention", "--model", model().string(), "--prompt", kPrompt, "--layer",
                           "5", "--head", "4", "--out", attn_file.string()});
  ASSERT_EQ(a.code, 0) << a.err;
  const auto got = attnscope::read_npy_f32(map_file), want = attnscope::read_npy_f32(attn_file);
  ASSERT_EQ(got.shape, want.shape);
  double worst = 0;
  for (size_t i = 0; i < got.data.size(); ++i) {
    worst = std::max(worst, std::fabs(static_cast<double>(got.data[i]) - want.data[i]));
  }
  EXPECT_LE(worst, kMapVsForwardTolerance) << "layer 5 head 4, T=" << n;

  const CliResult csv = run({"map", dirs[0].string(), "--layer", "0", "--head", "0", "--rows", "3",
                             "--cols", "3", "--out", (dir() / "m.csv").string()});
  ASSERT_EQ(csv.code, 0) << csv.err;
  const std::string text = slurp(dir() / "m.csv");
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3);
  expect_error(run({"map", dirs[0].string(), "--layer", "30", "--head", "0", "--out",
                    (dir() / "x.npy").string()}),
               2, {"layer"}, "layer out of range");
}

TEST_F(CliVariantsTest, ExportWritesEveryKind) {
  ASSERT_EQ(run_result().code, 0) << run_result().err;
  const auto dirs = trace_dirs();
  const fs::path out = dir() / "export";
  fs::create_directories(out);
  auto ok = [&](const std::vector<std::string>& args) {
    const CliResult r = run(args);
    EXPECT_EQ(r.code, 0) << r.err;
  };
  ok({"export", dirs[1].string(), "--what", "maps", "--format", "npy", "--rows", "8", "--cols", "8",
      "--out", (out / "maps.npy").string()});
  EXPECT_EQ(attnscope::read_npy_f32(out / "maps.npy").shape, (std::vector<int64_t>{30, 9, 8, 8}));

  ok({"export", dirs[2].string(), "--what", "kv", "--format", "csv", "--out",
      (out / "kv.csv").string()});
  const std::string kv = slurp(out / "kv.csv");
  EXPECT_EQ(std::count(kv.begin(), kv.end(), '\n'), 1 + kDecode * 30 * 3)
      << "header + step x layer x head";
  ok({"export", dirs[2].string(), "--what", "kv", "--format", "npy", "--out",
      (out / "kv_npy").string()});
  const auto reasons = attnscope::read_npy_i32(out / "kv_npy" / "reasons.npy");
  ASSERT_EQ(reasons.shape.size(), 4u);
  EXPECT_EQ(reasons.shape[0], kDecode);
  EXPECT_EQ(reasons.shape[1], 30);

  ok({"export", dirs[0].string(), "--what", "groups", "--format", "json", "--out",
      (out / "groups.json").string()});
  const auto groups = nlohmann::json::parse(slurp(out / "groups.json"));
  ASSERT_EQ(groups.at("layers").size(), 30u);
  // Native SmolLM2 grouping: 9 query heads over 3 KV heads, 3 per group.
  EXPECT_EQ(groups.at("layers")[0].at("kv_of_query"),
            (std::vector<int>{0, 0, 0, 1, 1, 1, 2, 2, 2}));

  ok({"export", dirs[1].string(), "--what", "masks", "--format", "csv", "--out",
      (out / "masks.csv").string()});
  const std::string masks = slurp(out / "masks.csv");
  EXPECT_EQ(std::count(masks.begin(), masks.end(), '\n'), 1 + 30 * 9);
  EXPECT_NE(masks.find(",4,"), std::string::npos) << "window w=4 appears in the table";

  ok({"export", dirs[1].string(), "--what", "metrics", "--format", "json", "--out",
      (out / "metrics.json").string()});
  const auto metrics = nlohmann::json::parse(slurp(out / "metrics.json"));
  EXPECT_TRUE(metrics.at("summary").contains("metrics.kl_mean"));
  ok({"export", dirs[1].string(), "--what", "metrics", "--format", "csv", "--out",
      (out / "metrics_csv").string()});
  EXPECT_TRUE(fs::exists(out / "metrics_csv" / "positions.csv"));
  ok({"export", dirs[1].string(), "--what", "metrics", "--format", "npy", "--out",
      (out / "metrics_npy").string()});
  EXPECT_TRUE(fs::exists(out / "metrics_npy" / "kl_per_position.npy"));

  expect_error(run({"export", dirs[1].string(), "--what", "maps", "--format", "npy", "--out",
                    (out / "maps.csv").string()}),
               2, {"--out", ".npy"}, "wrong extension");
  // Ranked head metrics equal core's compute_head_metrics on the loaded trace, in rank order.
  ok({"export", dirs[0].string(), "--what", "heads", "--format", "json", "--rank-by", "sink_mass",
      "--out", (out / "heads.json").string()});
  const auto heads = nlohmann::json::parse(slurp(out / "heads.json")).at("heads");
  ASSERT_EQ(heads.size(), 30u * 9u);
  for (size_t i = 1; i < heads.size(); ++i) {
    EXPECT_GE(heads[i - 1].at("sink_mass").get<double>(), heads[i].at("sink_mass").get<double>());
  }
  const attnscope::Trace baseline = attnscope::load_trace(dirs[0]);
  std::vector<attnscope::HeadMetrics> expected =
      attnscope::compute_head_metrics(baseline, attnscope::HeadMetricOptions{});
  attnscope::rank_heads(expected, "sink_mass");
  EXPECT_EQ(heads[0].at("layer").get<int>(), expected[0].layer);
  EXPECT_EQ(heads[0].at("head").get<int>(), expected[0].head);
  EXPECT_NEAR(heads[0].at("sink_mass").get<double>(), expected[0].sink_mass, 1e-12);
  ok({"export", dirs[0].string(), "--what", "heads", "--format", "npy", "--out",
      (out / "heads.npy").string()});
  EXPECT_EQ(attnscope::read_npy_f32(out / "heads.npy").shape, (std::vector<int64_t>{270, 6}));
  expect_error(run({"export", dirs[0].string(), "--what", "heads", "--format", "csv", "--rank-by",
                    "beauty", "--out", (out / "heads.csv").string()}),
               2, {"--rank-by"}, "unknown ranking metric");
}

TEST_F(CliVariantsTest, CorruptTraceExitsThreeNamingTheFile) {
  ASSERT_EQ(run_result().code, 0) << run_result().err;
  const fs::path bad = dir() / "corrupt";
  fs::remove_all(bad);
  fs::copy(trace_dirs()[0], bad, fs::copy_options::recursive);
  const std::string q = slurp(bad / "q_L3.npy");
  std::ofstream(bad / "q_L3.npy", std::ios::binary | std::ios::trunc) << q.substr(0, q.size() / 2);
  expect_error(run({"map", bad.string(), "--layer", "3", "--head", "0", "--out",
                    (dir() / "c.npy").string()}),
               3, {"q_L3.npy"}, "truncated q_L3.npy");
  std::ofstream(bad / "trace.json", std::ios::trunc) << "{\"schema_version\": ";
  expect_error(run({"compare", bad.string(), trace_dirs()[1].string()}), 3, {"trace.json"},
               "truncated trace.json");
}

TEST_F(CliVariantsTest, InvalidSpecExitsTwoNamingPartAndParameter) {
  expect_error(run({"run", "--model", model().string(), "--prompt", "hi", "--variant",
                    "kv=streamingllm:budget=-1", "--out", (dir() / "never").string()}),
               2, {"streamingllm.budget"}, "negative budget");
  expect_error(run({"needle", "--model", model().string(), "--variant", "pattern=window:w=0",
                    "--lengths", "64", "--depths", "0.5"}),
               2, {"window.w"}, "zero window");
  EXPECT_FALSE(fs::exists(dir() / "never"));
}

}  // namespace
