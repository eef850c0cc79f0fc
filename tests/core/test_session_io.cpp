// Session directories without the default model: a session of real traces (run_variants on a
// tiny random model) plus needle and throughput results survives save/load field by field;
// saving replaces an earlier session as one step and keeps it when a write fails midway; a
// folder that is not a session is never replaced; hand-edited index.json, needle.json and
// throughput.json fail naming the file and field; index folders cannot leave the directory.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "attnscope/error.h"
#include "attnscope/run.h"
#include "attnscope/session_io.h"
#include "attnscope/trace_io.h"
#include "session_compare.h"
#include "test_support.h"
#include "tiny_models.h"
#include "trace_compare.h"

namespace attnscope {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kWindowSpec = "pattern=window:w=4";
constexpr const char* kStreamSpec = "kv=streamingllm:budget=6,sinks=2";
constexpr int kDecode = 3;
// Bytes 0xE2 0x82 start a three-byte character that never ends: the prompt and a generated
// text must still come back byte for byte.
const std::string kPromptText = "The grass is green. \xe2\x82 The sky is blue.";

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void spit(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

// Baseline + two variants on the tiny model: every trace field the engine fills, for real.
std::vector<Trace> tiny_traces() {
  static const std::vector<Trace> traces = [] {
    const auto model = test::tiny_byte_model(256);
    const std::vector<int32_t> prompt = model->tokenizer->encode("The grass is green.", true);
    RunOptions o;
    o.decode_steps = kDecode;
    return run_variants(model, prompt,
                        {VariantSpec::parse(kWindowSpec), VariantSpec::parse(kStreamSpec)}, o);
  }();
  return traces;
}

std::vector<std::shared_ptr<const Trace>> shared(const std::vector<Trace>& traces) {
  std::vector<std::shared_ptr<const Trace>> out;
  for (const Trace& t : traces) out.push_back(std::make_shared<const Trace>(t));
  return out;
}

// Session traces are immutable and shared: a test that edits one replaces it with a copy.
Trace& edit_trace(Session& s, size_t i) {
  auto copy = std::make_shared<Trace>(*s.traces[i]);
  Trace& t = *copy;
  s.traces[i] = std::move(copy);
  return t;
}

std::vector<NeedleResult> sample_needle() {
  NeedleResult a;
  a.variant = VariantSpec::parse(kStreamSpec).to_string();
  a.cells = {{300, 0.25, 2, 1}, {300, 1.0, 2, 0}};
  NeedleTrial t;
  t.length = 300;
  t.depth = 0.25;
  t.trial = 1;
  t.seed = std::numeric_limits<uint64_t>::max();  // not representable as a double
  t.passkey = "71432";
  t.needle_token = 77;
  t.actual_depth = 1.0 / 3.0;
  t.generated_tokens = {12, 0, 255, 2147483647};
  t.generated = "The pass key is 7\xe2\x82";  // cut inside a character
  t.success = false;
  t.seconds = 0.1;
  a.trials.push_back(t);
  t.trial = 2;
  t.seed = (uint64_t{1} << 63) + 1;
  t.generated = "71432";
  t.success = true;
  t.actual_depth = 0.0;
  a.trials.push_back(t);
  NeedleResult b;  // a result with no cells or trials is still a result
  b.variant = VariantSpec::baseline().to_string();
  return {a, b};
}

ThroughputResult sample_sweep(const std::string& device) {
  ThroughputResult r;
  r.device = device;
  r.backend = "cpu";
  r.model_name = "tiny-bytes";
  r.model_sha256 = "ab12";
  r.created_at = "2026-11-24T07:00:00Z";
  r.attnscope_version = "0.1.0";
  r.repeat = 3;
  r.lengths = {8, 16};
  for (const int length : r.lengths) {
    for (const bool base : {true, false}) {
      ThroughputPoint p;
      p.spec =
          base ? VariantSpec::baseline().to_string() : VariantSpec::parse(kWindowSpec).to_string();
      p.display_name = base ? "baseline" : VariantSpec::parse(kWindowSpec).display_name();
      p.baseline = base;
      p.length = length;
      p.decode_steps = 2;
      p.prefill_seconds = 0.1 * length / 3.0;
      p.decode_seconds = 1e-300;
      p.prefill_tokens_per_second = length / p.prefill_seconds;
      p.decode_tokens_per_second = 2e300;
      p.attention_seconds = 0.0;
      p.kv_cache_bytes = 123456789.0 * length;
      r.points.push_back(p);
    }
  }
  return r;
}

Session sample_session() {
  Session s;
  s.prompt = kPromptText;
  s.decode_steps = kDecode;
  s.run_seconds = 1.0 / 7.0;
  s.traces = shared(tiny_traces());
  s.needle = sample_needle();
  s.throughput = {sample_sweep("CPU (OpenBLAS, 2 threads)"), sample_sweep("NVIDIA H200")};
  return s;
}

// Runs `fn` expecting Error(kind) whose message contains every needle.
void expect_error(ErrorKind kind, const std::function<void()>& fn,
                  const std::vector<std::string>& needles, const std::string& what) {
  SCOPED_TRACE(what);
  try {
    fn();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(static_cast<int>(e.kind()), static_cast<int>(kind)) << e.what();
    for (const auto& n : needles) {
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos)
          << "missing '" << n << "' in " << e.what();
    }
  }
}

// The names of everything directly inside `dir`, sorted.
std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

class SessionIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    m_root = test::make_temp_dir("session_io");
    m_dir = m_root / "session";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(m_root, ec);
  }
  // Edits one JSON file of the saved session.
  void edit(const std::string& file, const std::function<void(json&)>& fn) {
    json j = json::parse(slurp(m_dir / file));
    fn(j);
    spit(m_dir / file, j.dump(1));
  }
  fs::path m_root, m_dir;
};

TEST_F(SessionIoTest, RoundTripIsLossless) {
  const Session original = sample_session();
  ASSERT_EQ(original.traces.size(), 3u);
  std::vector<double> fractions;
  save_session(original, m_dir, [&](double f, const std::string&) { fractions.push_back(f); });
  ASSERT_FALSE(fractions.empty());
  EXPECT_EQ(fractions.back(), 1.0);
  for (size_t i = 1; i < fractions.size(); ++i) EXPECT_GE(fractions[i], fractions[i - 1]);
  EXPECT_TRUE(is_session_directory(m_dir));
  EXPECT_EQ(entries(m_dir),
            (std::vector<std::string>{"1_window_w_4", "2_streamingllm_budget_6_sinks_2", "baseline",
                                      "index.json", "needle.json", "throughput.json"}));
  EXPECT_EQ(entries(m_root), std::vector<std::string>{"session"}) << "temporary folders left";

  const Session loaded = load_session(m_dir);
  test::expect_same(original, loaded);
  // Every folder is an ordinary trace the CLI commands read.
  test::expect_same(*original.traces[2], load_trace(m_dir / "2_streamingllm_budget_6_sinks_2"));
  // Saving what was loaded writes the same files: a fixed point.
  save_session(loaded, m_root / "again");
  for (const char* f : {"index.json", "needle.json", "throughput.json", "baseline/trace.json"}) {
    EXPECT_EQ(slurp(m_dir / f), slurp(m_root / "again" / f)) << f;
  }
  // index.json keeps the fields `run --out` always wrote, plus the session's own.
  const json index = json::parse(slurp(m_dir / "index.json"));
  EXPECT_EQ(index.at("schema_version"), kSessionSchemaVersion);
  EXPECT_EQ(index.at("n_prompt"), original.traces[0]->n_prompt);
  EXPECT_EQ(index.at("decode_steps"), kDecode);
  EXPECT_EQ(index.at("seconds").get<double>(), original.run_seconds);
  EXPECT_EQ(index.at("run_seconds").get<double>(), original.run_seconds);
  EXPECT_TRUE(index.at("model").contains("sha256"));
  EXPECT_EQ(index.at("traces")[0].at("dir"), "baseline");
  EXPECT_EQ(index.at("traces")[0].at("baseline"), true);
  EXPECT_EQ(index.at("traces")[2].at("spec"), VariantSpec::parse(kStreamSpec).to_string());
  for (const char* key : {"display_name", "needs_training", "metrics", "timings"}) {
    EXPECT_TRUE(index.at("traces")[1].contains(key)) << key;
  }
}

TEST_F(SessionIoTest, EmptyAndPartialSessionsRoundTrip) {
  Session s;  // no run yet, only a throughput sweep
  s.throughput = {sample_sweep("cpu")};
  save_session(s, m_dir);
  EXPECT_FALSE(fs::exists(m_dir / "needle.json"));
  const Session loaded = load_session(m_dir);
  test::expect_same(s, loaded);
  // Replacing it with a session of traces (and back) works: both are sessions.
  Session full = sample_session();
  full.needle.clear();
  save_session(full, m_dir);
  test::expect_same(full, load_session(m_dir));
  EXPECT_FALSE(fs::exists(m_dir / "needle.json"));
}

TEST_F(SessionIoTest, FolderNamesFollowTheRunCommand) {
  // The folder names `attnscope-cli run` has always produced (README examples).
  EXPECT_EQ(session_trace_folder(0, VariantSpec::baseline()), "baseline");
  EXPECT_EQ(session_trace_folder(0, VariantSpec::parse(kWindowSpec)), "baseline");
  EXPECT_EQ(session_trace_folder(1, VariantSpec::parse("kv=snapkv:budget=128,window=16")),
            "1_snapkv_budget_128_window_16");
  EXPECT_EQ(session_trace_folder(2, VariantSpec::parse("kv=streamingllm:budget=128")),
            "2_streamingllm_budget_128");
  EXPECT_EQ(session_trace_folder(3, VariantSpec::parse("pattern=window:w=64")), "3_window_w_64");
  EXPECT_EQ(session_trace_folder(4, VariantSpec::parse("grouping=kdgqa")), "4_kdgqa");
  // Long display names are cut to 80 characters after the index.
  const VariantSpec many = VariantSpec::parse(
      "grouping=kdgqa;pattern=window:w=64;positions=string;kv=snapkv:budget=128,window=16");
  const std::string folder = session_trace_folder(12, many);
  EXPECT_EQ(folder.rfind("12_", 0), 0u) << folder;
  EXPECT_LE(folder.size(), 3u + 80u) << folder;
  for (const char c : folder) {
    EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-')
        << folder;
  }
}

TEST_F(SessionIoTest, FailedSaveKeepsTheOldSession) {
  const Session original = sample_session();
  save_session(original, m_dir);
  const std::string index_before = slurp(m_dir / "index.json");

  // The last trace is inconsistent, so save_trace throws after the others were written; those
  // differ from the saved ones, so a save that wrote into `dir` directly would show.
  Session broken = sample_session();
  broken.prompt = "another prompt";
  edit_trace(broken, 0).timings["prefill_seconds"] = 99.0;
  edit_trace(broken, 1).metrics["kl_mean"] = 42.0;
  edit_trace(broken, 2).top1_agree[0] = 2;
  expect_error(
      ErrorKind::Runtime, [&] { save_session(broken, m_dir); },
      {(m_dir / "2_streamingllm_budget_6_sinks_2").string(), "top1_agree[0]"},
      "inconsistent last trace");
  EXPECT_EQ(slurp(m_dir / "index.json"), index_before);
  test::expect_same(original, load_session(m_dir));
  EXPECT_EQ(entries(m_root), std::vector<std::string>{"session"}) << "temporary folders left";

  // Session-level inconsistencies are refused before anything is written.
  Session swapped = sample_session();
  std::swap(swapped.traces[0], swapped.traces[1]);
  expect_error(
      ErrorKind::Runtime, [&] { save_session(swapped, m_dir); }, {"traces[0]", "baseline"},
      "variant first");
  Session other_tokens = sample_session();
  edit_trace(other_tokens, 1).tokens[0] ^= 1;
  expect_error(
      ErrorKind::Runtime, [&] { save_session(other_tokens, m_dir); }, {"traces[1]", "tokens"},
      "different tokens");
  Session wrong_decode = sample_session();
  wrong_decode.decode_steps = kDecode + 1;
  expect_error(
      ErrorKind::Runtime, [&] { save_session(wrong_decode, m_dir); }, {"decode_steps"},
      "decode steps");
  Session bad_needle = sample_session();
  bad_needle.needle[0].cells[0].successes = 5;  // more than its 2 trials
  expect_error(
      ErrorKind::Runtime, [&] { save_session(bad_needle, m_dir); }, {"cells[0].successes"},
      "needle");
  EXPECT_EQ(slurp(m_dir / "index.json"), index_before);
  EXPECT_EQ(entries(m_root), std::vector<std::string>{"session"});
}

TEST_F(SessionIoTest, NeverReplacesAFolderThatIsNotASession) {
  const Session s = sample_session();
  fs::create_directories(m_dir);
  spit(m_dir / "notes.txt", "keep me");
  expect_error(
      ErrorKind::Runtime, [&] { save_session(s, m_dir); }, {m_dir.string(), "index.json"},
      "folder with a file");
  EXPECT_EQ(entries(m_dir), std::vector<std::string>{"notes.txt"});
  EXPECT_EQ(slurp(m_dir / "notes.txt"), "keep me");
  // A trace folder is not a session either.
  save_trace(*s.traces[0], m_root / "trace");
  expect_error(
      ErrorKind::Runtime, [&] { save_session(s, m_root / "trace"); }, {"index.json"}, "a trace");
  EXPECT_NO_THROW(load_trace(m_root / "trace"));
  // Nor is a file.
  spit(m_root / "file", "data");
  expect_error(
      ErrorKind::Runtime, [&] { save_session(s, m_root / "file"); }, {"not a directory"}, "a file");
  EXPECT_EQ(slurp(m_root / "file"), "data");
  EXPECT_FALSE(is_session_directory(m_dir));
  EXPECT_FALSE(is_session_directory(m_root / "file"));
  EXPECT_FALSE(is_session_directory(m_root / "nowhere"));
  // An empty folder, and a missing one with missing parents, are fine.
  fs::create_directories(m_root / "empty");
  save_session(s, m_root / "empty");
  EXPECT_TRUE(is_session_directory(m_root / "empty"));
  save_session(s, m_root / "a" / "b");
  EXPECT_TRUE(is_session_directory(m_root / "a" / "b"));
}

TEST_F(SessionIoTest, LoadsARunDirectoryWrittenBeforeSessions) {
  // index.json exactly as `attnscope-cli run --out` wrote it before sessions existed.
  const std::vector<Trace> traces = tiny_traces();
  fs::create_directories(m_dir);
  json list = json::array();
  for (size_t i = 0; i < traces.size(); ++i) {
    const std::string dir = session_trace_folder(i, traces[i].variant);
    save_trace(traces[i], m_dir / dir);
    list.push_back({{"dir", dir},
                    {"baseline", i == 0},
                    {"spec", traces[i].variant.to_string()},
                    {"display_name", traces[i].variant.display_name()},
                    {"needs_training", false},
                    {"metrics", json::object()},
                    {"timings", json::object()}});
  }
  json index = {
      {"schema_version", 1},
      {"model", {{"path", ""}, {"sha256", traces[0].model.sha256}, {"architecture", "llama"}}},
      {"n_prompt", traces[0].n_prompt},
      {"decode_steps", kDecode},
      {"seconds", 2.5},
      {"traces", list}};
  spit(m_dir / "index.json", index.dump(2));
  ASSERT_TRUE(is_session_directory(m_dir));
  const Session s = load_session(m_dir);
  EXPECT_EQ(s.prompt, "");
  EXPECT_EQ(s.decode_steps, kDecode);
  EXPECT_EQ(s.run_seconds, 2.5);
  EXPECT_TRUE(s.needle.empty());
  EXPECT_TRUE(s.throughput.empty());
  ASSERT_EQ(s.traces.size(), traces.size());
  for (size_t i = 0; i < traces.size(); ++i) test::expect_same(traces[i], *s.traces[i]);
  // And save_session replaces it: it is a session.
  save_session(sample_session(), m_dir);
  EXPECT_EQ(load_session(m_dir).prompt, kPromptText);
}

TEST_F(SessionIoTest, HandEditedIndexFailsNamingTheField) {
  save_session(sample_session(), m_dir);
  // A folder with another prompt's trace, and one with a second baseline, for the cases below.
  Trace other = tiny_traces()[1];
  other.tokens[1] = (other.tokens[1] + 1) % 256;
  save_trace(other, m_dir / "other_tokens");
  struct Case {
    const char* what;
    std::function<void(json&)> edit;
    std::vector<std::string> needles;
  };
  const std::vector<Case> cases = {
      {"not an object", [](json& j) { j = json::array(); }, {"expected an object"}},
      {"schema 99", [](json& j) { j["schema_version"] = 99; }, {"schema_version", "99"}},
      {"format", [](json& j) { j["format"] = "attnscope-trace"; }, {"format", "attnscope-trace"}},
      {"decode type", [](json& j) { j["decode_steps"] = "three"; }, {"decode_steps", "\"three\""}},
      {"decode mismatch", [](json& j) { j["decode_steps"] = kDecode + 1; }, {"decode_steps", "4"}},
      {"decode missing", [](json& j) { j.erase("decode_steps"); }, {"decode_steps", "missing"}},
      {"prompt type", [](json& j) { j["prompt"] = 5; }, {"prompt", "5"}},
      {"run seconds", [](json& j) { j["run_seconds"] = -1.0; }, {"run_seconds", "-1"}},
      {"n_prompt", [](json& j) { j["n_prompt"] = 2; }, {"n_prompt", "2"}},
      {"model sha", [](json& j) { j["model"]["sha256"] = "beef"; }, {"model.sha256", "beef"}},
      {"model missing", [](json& j) { j.erase("model"); }, {"model", "missing"}},
      {"traces type", [](json& j) { j["traces"] = json::object(); }, {"traces", "array"}},
      {"dir missing", [](json& j) { j["traces"][1].erase("dir"); }, {"traces[1].dir", "missing"}},
      {"dir type", [](json& j) { j["traces"][1]["dir"] = 3; }, {"traces[1].dir", "string"}},
      {"dir absent", [](json& j) { j["traces"][1]["dir"] = "gone"; }, {"traces[1].dir", "gone"}},
      {"dir twice",
       [](json& j) { j["traces"][2]["dir"] = j["traces"][1]["dir"]; },
       {"traces[2].dir", "distinct"}},
      {"baseline flag",
       [](json& j) { j["traces"][1]["baseline"] = true; },
       {"traces[1].baseline", "expected false"}},
      {"baseline flag type",
       [](json& j) { j["traces"][0]["baseline"] = 1; },
       {"traces[0].baseline", "true or false"}},
      {"spec mismatch",
       [](json& j) { j["traces"][1]["spec"] = j["traces"][2]["spec"]; },
       {"traces[1].spec", "streamingllm", "window"}},
      {"spec bogus",
       [](json& j) { j["traces"][1]["spec"] = "pattern=window:bogus=1"; },
       {"traces[1].spec", "bogus"}},
      {"variant first",
       [](json& j) {
         j["traces"][0]["dir"] = "1_window_w_4";
         j["traces"][0]["spec"] = VariantSpec::parse(kWindowSpec).to_string();
       },
       {"traces[0].dir", "baseline"}},
      {"other tokens",
       [](json& j) { j["traces"][1]["dir"] = "other_tokens"; },
       {"traces[1].dir", "other_tokens", "tokens"}},
      {"metrics type", [](json& j) { j["traces"][2]["metrics"] = 1; }, {"traces[2].metrics"}},
  };
  const std::string pristine = slurp(m_dir / "index.json");
  for (const Case& c : cases) {
    spit(m_dir / "index.json", pristine);
    edit("index.json", c.edit);
    std::vector<std::string> needles = c.needles;
    needles.push_back((m_dir / "index.json").string());
    expect_error(
        ErrorKind::BadInput, [&] { load_session(m_dir); }, needles, c.what);
  }
  spit(m_dir / "index.json", pristine.substr(0, pristine.size() / 2));
  expect_error(
      ErrorKind::BadInput, [&] { load_session(m_dir); }, {"index.json", "valid JSON"}, "cut");
  // A broken trace is reported by load_trace, naming its own file.
  spit(m_dir / "index.json", pristine);
  spit(m_dir / "1_window_w_4" / "trace.json", "{}");
  expect_error(
      ErrorKind::BadInput, [&] { load_session(m_dir); }, {"1_window_w_4", "trace.json"}, "trace");
  fs::remove(m_dir / "index.json");
  expect_error(
      ErrorKind::BadInput, [&] { load_session(m_dir); }, {"index.json", "missing"}, "no index");
  expect_error(
      ErrorKind::BadInput, [&] { load_session(m_root / "nowhere"); }, {"nowhere"}, "no dir");
}

TEST_F(SessionIoTest, IndexFoldersCannotLeaveTheDirectory) {
  save_session(sample_session(), m_dir);
  // A perfectly valid trace outside the session, reachable by each of these names.
  save_trace(tiny_traces()[1], m_root / "outside");
  fs::create_symlink(m_root / "outside", m_dir / "link");
  const std::vector<std::string> names = {"../outside",   (m_root / "outside").string(),
                                          "./../outside", "baseline/../../outside",
                                          "link",         ".",
                                          "..",           ""};
  const std::string pristine = slurp(m_dir / "index.json");
  for (const std::string& name : names) {
    spit(m_dir / "index.json", pristine);
    edit("index.json", [&](json& j) { j["traces"][1]["dir"] = name; });
    expect_error(
        ErrorKind::BadInput, [&] { load_session(m_dir); },
        {"index.json", "traces[1].dir", "expected a trace folder inside"}, "dir '" + name + "'");
  }
}

TEST_F(SessionIoTest, HandEditedNeedleAndThroughputFailNamingTheField) {
  save_session(sample_session(), m_dir);
  struct Case {
    const char* file;
    const char* what;
    std::function<void(json&)> edit;
    std::vector<std::string> needles;
  };
  const std::vector<Case> cases = {
      {"needle.json", "format", [](json& j) { j["format"] = "x"; }, {"format"}},
      {"needle.json", "schema", [](json& j) { j["schema_version"] = 2; }, {"schema_version"}},
      {"needle.json",
       "negative seed",
       [](json& j) { j["results"][0]["trials"][1]["seed"] = -1; },
       {"results[0].trials[1].seed", "-1"}},
      {"needle.json",
       "fractional seed",
       [](json& j) { j["results"][0]["trials"][0]["seed"] = 1.5; },
       {"results[0].trials[0].seed", "1.5"}},
      {"needle.json",
       "successes > trials",
       [](json& j) { j["results"][0]["cells"][1]["successes"] = 3; },
       {"results[0].cells[1].successes", "[0, 2]"}},
      {"needle.json",
       "depth > 1",
       [](json& j) { j["results"][0]["cells"][0]["depth"] = 1.5; },
       {"results[0].cells[0].depth"}},
      {"needle.json",
       "bad variant",
       [](json& j) { j["results"][1]["variant"] = "kv=nope"; },
       {"results[1].variant", "nope"}},
      {"needle.json",
       "token type",
       [](json& j) { j["results"][0]["trials"][0]["generated_tokens"][2] = "x"; },
       {"results[0].trials[0].generated_tokens[2]"}},
      {"needle.json",
       "text type",
       [](json& j) { j["results"][0]["trials"][0]["generated"] = json::array(); },
       {"results[0].trials[0].generated"}},
      {"needle.json",
       "missing success",
       [](json& j) { j["results"][0]["trials"][0].erase("success"); },
       {"results[0].trials[0].success", "missing"}},
      {"throughput.json", "format", [](json& j) { j["format"] = "x"; }, {"format"}},
      {"throughput.json", "sweeps type", [](json& j) { j["sweeps"] = 1; }, {"sweeps", "array"}},
      {"throughput.json",
       "negative seconds",
       [](json& j) { j["sweeps"][1]["points"][2]["prefill_seconds"] = -0.5; },
       {"sweeps[1].points[2].prefill_seconds", "-0.5"}},
      {"throughput.json",
       "length not swept",
       [](json& j) { j["sweeps"][0]["points"][0]["length"] = 9; },
       {"sweeps[0].points[0].length", "9"}},
      {"throughput.json",
       "repeat 0",
       [](json& j) { j["sweeps"][0]["repeat"] = 0; },
       {"sweeps[0].repeat"}},
  };
  for (const Case& c : cases) {
    save_session(sample_session(), m_dir);
    edit(c.file, c.edit);
    std::vector<std::string> needles = c.needles;
    needles.push_back((m_dir / c.file).string());
    expect_error(
        ErrorKind::BadInput, [&] { load_session(m_dir); }, needles,
        std::string(c.file) + ": " + c.what);
  }
  spit(m_dir / "needle.json", "[1, 2");
  expect_error(
      ErrorKind::BadInput, [&] { load_session(m_dir); }, {"needle.json", "valid JSON"}, "cut");
  // Absent files are simply no results.
  fs::remove(m_dir / "needle.json");
  fs::remove(m_dir / "throughput.json");
  const Session s = load_session(m_dir);
  EXPECT_TRUE(s.needle.empty());
  EXPECT_TRUE(s.throughput.empty());
  EXPECT_EQ(s.traces.size(), 3u);
}

TEST(NeedleJson, RoundTripIsExact) {
  const std::vector<NeedleResult> results = sample_needle();
  const std::string text = needle_results_to_json(results);
  EXPECT_TRUE(json::accept(text));
  // Seeds are written as integers, never as doubles that would round 2^64 - 1.
  EXPECT_NE(text.find("18446744073709551615"), std::string::npos);
  EXPECT_NE(text.find("9223372036854775809"), std::string::npos);
  const std::vector<NeedleResult> back = needle_results_from_json(text, "n.json");
  test::expect_same(results, back);
  EXPECT_EQ(back[0].accuracy(), results[0].accuracy());
  EXPECT_EQ(needle_results_to_json(back), text);
  EXPECT_TRUE(needle_results_from_json(needle_results_to_json({}), "n.json").empty());
  expect_error(
      ErrorKind::BadInput, [] { needle_results_from_json("nope", "n.json"); },
      {"n.json", "valid JSON"}, "not JSON");
  expect_error(
      ErrorKind::BadInput, [] { needle_results_from_json("{}", "n.json"); },
      {"n.json", "format", "missing"}, "empty object");
}

}  // namespace
}  // namespace attnscope
