// Trace directories: a fully populated synthetic trace survives save/load bit for bit, and every
// kind of corruption (truncation, wrong shapes, missing files, hand edits, random byte flips)
// ends in one Error(BadInput) naming the file and field, never a crash.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "attnscope/error.h"
#include "attnscope/npy.h"
#include "attnscope/trace_io.h"
#include "test_support.h"
#include "trace_builders.h"
#include "trace_compare.h"

namespace fs = std::filesystem;
using attnscope::Error;
using attnscope::ErrorKind;
using attnscope::Trace;

namespace {

using namespace attnscope::test::full_trace;  // kLayers, kHeads, ... of make_full_trace
using attnscope::test::make_full_trace;

using attnscope::test::expect_same;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void spit(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

// Loads `dir` expecting Error(BadInput) whose message contains every needle.
void expect_bad(const fs::path& dir, const std::vector<std::string>& needles,
                const std::string& what) {
  SCOPED_TRACE(what);
  try {
    attnscope::load_trace(dir);
    ADD_FAILURE() << "loaded without error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput) << e.what();
    for (const auto& n : needles) {
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos)
          << "missing '" << n << "' in " << e.what();
    }
  }
}

class TraceIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    m_root = attnscope::test::make_temp_dir("trace_io");
    m_dir = m_root / "trace";
    attnscope::save_trace(make_full_trace(7), m_dir);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(m_root, ec);
  }
  // Edits trace.json through a JSON pointer.
  void edit_json(const std::function<void(nlohmann::json&)>& fn) {
    auto j = nlohmann::json::parse(slurp(m_dir / "trace.json"));
    fn(j);
    spit(m_dir / "trace.json", j.dump(1));
  }
  fs::path m_root, m_dir;
};

TEST_F(TraceIoTest, RoundTripIsLosslessBitForBit) {
  const Trace original = make_full_trace(7);
  const Trace loaded = attnscope::load_trace(m_dir);
  expect_same(original, loaded);
  // Saving what was loaded and loading again is a fixed point.
  attnscope::save_trace(loaded, m_root / "again");
  expect_same(original, attnscope::load_trace(m_root / "again"));
  // The arrays are plain npy files numpy can read, with the documented shapes.
  const auto q = attnscope::read_npy_f32(m_dir / "q_L1.npy");
  EXPECT_EQ(q.shape, (std::vector<int64_t>{kTokens, kHeads, kDim}));
  const auto k = attnscope::read_npy_f32(m_dir / "k_L0.npy");
  EXPECT_EQ(k.shape, (std::vector<int64_t>{kTokens, kKvHeads, kDim}));
}

TEST_F(TraceIoTest, MinimalTraceWithoutOptionalPartsRoundTrips) {
  Trace t;
  t.model = {"m", "", "llama", "m", 1, 1, 1, 4, 10, 0.0f};
  t.variant = attnscope::VariantSpec::baseline();
  t.tokens = {3};
  t.n_prompt = 1;
  attnscope::save_trace(t, m_root / "minimal");
  expect_same(t, attnscope::load_trace(m_root / "minimal"));
}

TEST_F(TraceIoTest, SaveReplacesATraceButNeverAnotherDirectory) {
  Trace t = make_full_trace(8);
  attnscope::save_trace(t, m_dir);  // replaces the trace of SetUp
  expect_same(t, attnscope::load_trace(m_dir));
  for (const auto& e : fs::directory_iterator(m_root)) {
    EXPECT_EQ(e.path().filename(), "trace") << "left behind: " << e.path();
  }
  const fs::path other = m_root / "other";
  fs::create_directories(other);
  spit(other / "notes.txt", "keep me");
  try {
    attnscope::save_trace(t, other);
    ADD_FAILURE() << "replaced a non-trace directory";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Runtime);
  }
  EXPECT_EQ(slurp(other / "notes.txt"), "keep me");
  // An inconsistent trace is refused before anything is written; the old trace survives.
  t.tokens.push_back(kVocab + 5);
  EXPECT_THROW(attnscope::save_trace(t, m_dir), Error);
  expect_same(make_full_trace(8), attnscope::load_trace(m_dir));
}

TEST_F(TraceIoTest, TruncatedJsonFails) {
  const std::string text = slurp(m_dir / "trace.json");
  spit(m_dir / "trace.json", text.substr(0, text.size() / 2));
  expect_bad(m_dir, {"trace.json", "expected valid JSON"}, "half of trace.json");
  spit(m_dir / "trace.json", "");
  expect_bad(m_dir, {"trace.json"}, "empty trace.json");
}

TEST_F(TraceIoTest, TruncatedNpyFails) {
  const std::string bytes = slurp(m_dir / "q_L1.npy");
  spit(m_dir / "q_L1.npy", bytes.substr(0, bytes.size() - 5));
  expect_bad(m_dir, {"q_L1.npy"}, "q_L1.npy cut short");
  spit(m_dir / "q_L1.npy", bytes.substr(0, 20));
  expect_bad(m_dir, {"q_L1.npy"}, "q_L1.npy header cut");
}

TEST_F(TraceIoTest, WrongShapeFailsNamingTheFile) {
  std::vector<float> data(size_t{kTokens} * kKvHeads * kDim, 0.5f);
  attnscope::write_npy(m_dir / "k_L0.npy", {kTokens, kKvHeads * 2, kDim / 2}, data.data());
  expect_bad(m_dir, {"k_L0.npy", "expected shape [12, 2, 8]"}, "k_L0 reshaped");
}

TEST_F(TraceIoTest, WrongDtypeFails) {
  std::vector<int32_t> data(size_t{kTokens} * kHeads * kDim, 1);
  attnscope::write_npy(m_dir / "q_L0.npy", {kTokens, kHeads, kDim}, data.data());
  expect_bad(m_dir, {"q_L0.npy", "<f4"}, "q_L0 as int32");
}

TEST_F(TraceIoTest, MissingFileFails) {
  fs::remove(m_dir / "q_L0.npy");
  expect_bad(m_dir, {"q_L0.npy", "missing"}, "q_L0.npy removed");
  fs::remove(m_dir / "trace.json");
  expect_bad(m_dir, {"trace.json", "missing"}, "trace.json removed");
  expect_bad(m_root / "nowhere", {"nowhere"}, "no directory");
}

TEST_F(TraceIoTest, HandEditedFieldsFailNamingTheField) {
  struct Case {
    const char* what;
    std::function<void(nlohmann::json&)> edit;
    std::vector<std::string> needles;
  };
  const std::vector<Case> cases = {
      {"string for an int",
       [](auto& j) { j["model"]["n_head"] = "nine"; },
       {"model.n_head", "integer"}},
      {"schema 999", [](auto& j) { j["schema_version"] = 999; }, {"schema_version", "999"}},
      {"token out of range", [](auto& j) { j["tokens"][3] = kVocab; }, {"tokens[3]", "[0, 99]"}},
      {"negative token", [](auto& j) { j["tokens"][0] = -1; }, {"tokens[0]"}},
      {"missing field", [](auto& j) { j.erase("n_prompt"); }, {"n_prompt", "missing"}},
      {"n_prompt > T", [](auto& j) { j["n_prompt"] = 99; }, {"n_prompt"}},
      {"array for object", [](auto& j) { j["model"] = nlohmann::json::array(); }, {"model"}},
      {"bad spec",
       [](auto& j) { j["variant"]["spec"] = "pattern=window:bogus=1"; },
       {"variant.spec", "bogus"}},
      {"mask size", [](auto& j) { j["masks"][0][1]["n_qblocks"] = 4; }, {"masks[0][1].blocks"}},
      {"mask base64",
       [](auto& j) { j["masks"][0][1]["blocks"] = "@@@@"; },
       {"masks[0][1].blocks", "base64"}},
      {"block 0", [](auto& j) { j["masks"][1][0]["block"] = 0; }, {"masks[1][0].block"}},
      {"group map",
       [](auto& j) { j["groups"][1]["kv_of_query"][2] = 2; },
       {"groups[1].kv_of_query[2]"}},
      {"group heads",
       [](auto& j) { j["groups"][0]["kv_of_query"].push_back(0); },
       {"groups[0].kv_of_query"}},
      {"active head range",
       [](auto& j) { j["groups"][1]["active_query_heads"][2] = kHeads; },
       {"groups[1].active_query_heads[2]"}},
      {"active heads order",
       [](auto& j) { j["groups"][0]["active_query_heads"][1] = 0; },
       {"groups[0].active_query_heads[1]", "ascending"}},
      {"k heads", [](auto& j) { j["k_heads"][0] = 3; }, {"k_L0"}},
      {"kv lengths", [](auto& j) { j["kv_steps"][1][0]["lengths"][0] = 3; }, {"kv_reasons"}},
      {"kv budgets",
       [](auto& j) { j["kv_steps"][0][1]["budgets"].push_back(1); },
       {"kv_steps[0][1]"}},
      {"float as string", [](auto& j) { j["kl_per_position"][2] = "x"; }, {"kl_per_position[2]"}},
      {"huge float", [](auto& j) { j["layer_rel_error"][0] = 1e300; }, {"layer_rel_error[0]"}},
      {"density > 1", [](auto& j) { j["mask_density"][0][0] = 1.5; }, {"mask_density[0][0]"}},
      {"top1 not 0/1", [](auto& j) { j["top1_agree"][0] = 2; }, {"top1_agree[0]"}},
      {"extra array entry", [](auto& j) { j["arrays"]["x"] = j["arrays"]["q_L0"]; }, {"arrays"}},
      {"array path escape",
       [](auto& j) { j["arrays"]["q_L0"]["file"] = "../q_L0.npy"; },
       {"arrays.q_L0.file"}},
      {"metric type", [](auto& j) { j["metrics"]["kl_mean"] = true; }, {"metrics.kl_mean"}},
      {"not an object",
       [](auto& j) {
         j = nlohmann::json::array({1, 2});
       },
       {"trace.json"}},
  };
  const std::string pristine = slurp(m_dir / "trace.json");
  for (const Case& c : cases) {
    spit(m_dir / "trace.json", pristine);
    edit_json(c.edit);
    std::vector<std::string> needles = c.needles;
    needles.push_back("trace.json");
    expect_bad(m_dir, needles, c.what);
  }
}

TEST_F(TraceIoTest, CorruptArrayContentsFail) {
  // A KV reason outside KeepReason.
  auto r = attnscope::read_npy_u8(m_dir / "kv_reasons.npy");
  r.data[17] = 9;
  attnscope::write_npy(m_dir / "kv_reasons.npy", r.shape, r.data.data());
  expect_bad(m_dir, {"reasons", "[0, 4]"}, "reason 9");
  attnscope::save_trace(make_full_trace(7), m_dir);
  // A NaN query.
  auto q = attnscope::read_npy_f32(m_dir / "q_L1.npy");
  q.data[40] = std::numeric_limits<float>::quiet_NaN();
  attnscope::write_npy(m_dir / "q_L1.npy", q.shape, q.data.data());
  expect_bad(m_dir, {"q[1]", "finite"}, "NaN in q");
  attnscope::save_trace(make_full_trace(7), m_dir);
  // A next-token id beyond the vocabulary.
  auto ids = attnscope::read_npy_i32(m_dir / "next_token_ids.npy");
  ids.data[3] = kVocab;
  attnscope::write_npy(m_dir / "next_token_ids.npy", ids.shape, ids.data.data());
  expect_bad(m_dir, {"next_token_ids.npy"}, "next token id 100");
}

TEST_F(TraceIoTest, RandomByteFlipsNeverCrash) {
  const std::string json_text = slurp(m_dir / "trace.json");
  const std::string npy_bytes = slurp(m_dir / "kv_reasons.npy");
  std::mt19937 rng(12345);
  int failures = 0, loads = 0;
  constexpr int kIterations = 300;
  for (int it = 0; it < kIterations; ++it) {
    const bool json_target = it % 3 != 2;
    std::string bytes = json_target ? json_text : npy_bytes;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < flips; ++f) {
      bytes[rng() % bytes.size()] ^= static_cast<char>(1 + rng() % 255);
    }
    spit(m_dir / (json_target ? "trace.json" : "kv_reasons.npy"), bytes);
    try {
      attnscope::load_trace(m_dir);
      ++loads;  // a flip inside a string or a still-valid number can be harmless
    } catch (const Error& e) {
      ++failures;
      EXPECT_EQ(e.kind(), ErrorKind::BadInput) << "seed 12345 iteration " << it << ": " << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "seed 12345 iteration " << it << ": non-attnscope exception " << e.what();
    }
    spit(m_dir / "trace.json", json_text);
    spit(m_dir / "kv_reasons.npy", npy_bytes);
  }
  EXPECT_GT(failures, kIterations / 3) << "flips should mostly be detected (loads " << loads << ")";
}

}  // namespace

namespace {

// trace_memory_bytes counts every payload element once: Q/K dominate, so adding one layer's
// Q grows it by exactly that array's bytes, and the total is at least the Q/K bytes.
TEST(TraceMemory, CountsPayloadBytes) {
  Trace t = make_full_trace(5);
  const size_t before = attnscope::trace_memory_bytes(t);
  size_t qk = 0;
  for (const auto& v : t.q) qk += v.size() * sizeof(float);
  for (const auto& v : t.k) qk += v.size() * sizeof(float);
  EXPECT_GT(before, qk);
  t.q[0].resize(t.q[0].size() + 1000);
  EXPECT_EQ(attnscope::trace_memory_bytes(t), before + 1000 * sizeof(float));
  t.kv_steps.clear();
  EXPECT_LT(attnscope::trace_memory_bytes(t), before + 1000 * sizeof(float));
  EXPECT_EQ(attnscope::trace_memory_bytes(Trace{}), 0u);
}

}  // namespace
