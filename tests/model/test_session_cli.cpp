// `attnscope-cli run --out DIR` writes a session: load_session opens it (traces equal to
// load_trace of each folder, the prompt and decode steps recorded), a second run replaces it,
// and a non-empty folder that is not a session is refused before the run, left intact.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "attnscope/session_io.h"
#include "attnscope/trace_io.h"
#include "cli_runner.h"
#include "test_support.h"
#include "trace_compare.h"

namespace attnscope {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPrompt = "The capital of France is Paris. The capital of Italy is";
constexpr const char* kWindowSpec = "pattern=window:w=4";
constexpr int kDecode = 2;

class SessionCliTest : public ::testing::Test {
 protected:
  void SetUp() override { m_dir = test::make_temp_dir("session_cli"); }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(m_dir, ec);
  }
  test::CliResult run_to(const fs::path& out, const std::string& spec) {
    return test::run_cli(
        {"run", "--model", test::default_model().string(), "--prompt", kPrompt, "--variant", spec,
         "--decode", std::to_string(kDecode), "--out", out.string(), "--threads", "2"},
        m_dir);
  }
  fs::path m_dir;
};

TEST_F(SessionCliTest, RunDirectoryLoadsAsASession) {
  const fs::path out = m_dir / "runs";
  const test::CliResult r = run_to(out, kWindowSpec);
  ASSERT_EQ(r.code, 0) << r.err;
  // stdout: one line per trace, folder first, as before sessions.
  EXPECT_EQ(r.out.rfind("baseline\tbaseline\n", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("\n1_window_w_4\t"), std::string::npos) << r.out;
  ASSERT_TRUE(is_session_directory(out));
  const Session s = load_session(out);
  EXPECT_EQ(s.prompt, kPrompt);
  EXPECT_EQ(s.decode_steps, kDecode);
  EXPECT_GT(s.run_seconds, 0);
  ASSERT_EQ(s.traces.size(), 2u);
  EXPECT_TRUE(s.traces[0]->variant.is_baseline());
  EXPECT_TRUE(s.traces[1]->variant == VariantSpec::parse(kWindowSpec));
  test::expect_same(*s.traces[0], load_trace(out / "baseline"));
  test::expect_same(*s.traces[1], load_trace(out / "1_window_w_4"));
  const auto index = nlohmann::json::parse(test::slurp(out / "index.json"));
  EXPECT_EQ(index.at("schema_version"), kSessionSchemaVersion);
  EXPECT_EQ(index.at("prompt"), kPrompt);
  EXPECT_EQ(index.at("model").at("sha256"), s.traces[0]->model.sha256);

  // A second run replaces the first as a whole: the old variant's folder is gone.
  const test::CliResult again = run_to(out, "kv=streamingllm:budget=8,sinks=2");
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_FALSE(fs::exists(out / "1_window_w_4"));
  const Session s2 = load_session(out);
  ASSERT_EQ(s2.traces.size(), 2u);
  EXPECT_EQ(s2.traces[1]->variant.display_name(),
            VariantSpec::parse("kv=streamingllm:budget=8,sinks=2").display_name());
  for (const auto& e : fs::directory_iterator(m_dir)) {
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
    EXPECT_EQ(e.path().filename().string().find(".old-"), std::string::npos) << e.path();
  }
}

TEST_F(SessionCliTest, RefusesAFolderThatIsNotASession) {
  const fs::path out = m_dir / "mine";
  fs::create_directories(out);
  std::ofstream(out / "notes.txt") << "keep me";
  test::expect_cli_error(run_to(out, kWindowSpec), 4, {"mine", "not a run directory"},
                         "non-session folder");
  EXPECT_EQ(test::slurp(out / "notes.txt"), "keep me");
  EXPECT_FALSE(fs::exists(out / "baseline"));
}

}  // namespace
}  // namespace attnscope
