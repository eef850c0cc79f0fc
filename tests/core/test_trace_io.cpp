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

namespace fs = std::filesystem;
using attnscope::Error;
using attnscope::ErrorKind;
using attnscope::Trace;

namespace {

constexpr int kLayers = 2, kHeads = 4, kKvHeads = 2, kDim = 8, kVocab = 100;
constexpr int kPrompt = 9, kDecode = 3, kTokens = kPrompt + kDecode;

std::vector<float> random_floats(std::mt19937& rng, size_t n) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// Every field populated, with the awkward cases: invalid UTF-8 token text, NaN/inf metrics,
// a next-token row shorter than the others, denormal and negative-zero floats.
Trace make_trace(uint32_t seed) {
  std::mt19937 rng(seed);
  Trace t;
  t.attnscope_version = "0.1.0";
  t.created_at = "2026-11-24T07:00:00Z";
  t.backend = "cpu (test)";
  t.model = {"/models/tiny.gguf",
             "ab12",
             "llama",
             "tiny",
             kLayers,
             kHeads,
             kKvHeads,
             kDim,
             kVocab,
             10000.0f};
  t.variant = attnscope::VariantSpec::parse("pattern=window;positions=string");
  for (int i = 0; i < kTokens; ++i) {
    t.tokens.push_back(static_cast<int32_t>(rng() % kVocab));
    t.token_texts.push_back(i == 2 ? std::string("\xe2\x82") : "tok" + std::to_string(i));
  }
  t.n_prompt = kPrompt;
  for (int l = 0; l < kLayers; ++l) {
    t.q.push_back(random_floats(rng, size_t{kTokens} * kHeads * kDim));
    t.k.push_back(random_floats(rng, size_t{kTokens} * kKvHeads * kDim));
    t.k_heads.push_back(kKvHeads);
    t.groups.push_back({kKvHeads, {0, 0, 1, 1}, {1.5f, 2.25f}, {0, 2, 3}});
    std::vector<attnscope::HeadMask> masks(kHeads);
    masks[1].all_blocks = false;
    masks[1].block = 4;
    masks[1].n_qblocks = 3;
    masks[1].n_kblocks = 3;
    masks[1].blocks = {1, 0, 0, 1, 1, 0, 0, 1, 1};
    masks[2].window = 5;
    masks[2].sink_tokens = 2;
    t.masks.push_back(masks);
    t.mask_density.push_back({1.0f, 0.5f, 0.75f, 1.0f});
    t.pattern_notes.push_back(l == 0 ? "query-aware D=0.03" : "");
    t.pattern_scores.push_back(random_floats(rng, kHeads));
    t.layer_rel_error.push_back(0.01f * static_cast<float>(l + 1));
  }
  t.q[0][5] = -0.0f;
  t.k[1][3] = std::numeric_limits<float>::denorm_min();
  t.string_shift = 3;
  t.string_window = 2;
  for (int s = 0; s < kDecode; ++s) {
    std::vector<attnscope::GroupStep> gs;
    std::vector<attnscope::KvStep> ks;
    for (int l = 0; l < kLayers; ++l) {
      gs.push_back({kKvHeads, {s % 2, 1, 0, 1}, {}});
      attnscope::KvStep k;
      k.position = kPrompt + s;
      k.budgets = {6, 6};
      for (int h = 0; h < kKvHeads; ++h) {
        std::vector<uint8_t> r(static_cast<size_t>(k.position) + 1);
        for (auto& x : r) x = static_cast<uint8_t>(rng() % 5);
        k.reasons.push_back(r);
      }
      k.lost_mass = {0.125f, 0.0f};
      ks.push_back(k);
    }
    t.group_steps.push_back(gs);
    t.kv_steps.push_back(ks);
  }
  for (int i = 0; i < kTokens; ++i) {
    attnscope::TopKDistribution d;
    const int k = i == 4 ? 2 : 5;
    for (int j = 0; j < k; ++j) {
      d.ids.push_back(static_cast<int32_t>((i * 7 + j * 13) % kVocab));
      d.logprobs.push_back(-0.1f * static_cast<float>(j + 1) - 1e-7f * static_cast<float>(i));
    }
    t.next_token.push_back(d);
    t.kl_per_position.push_back(std::ldexp(1.0f, -i) / 3.0f);
    t.top1_agree.push_back(static_cast<uint8_t>(i % 3 != 0));
  }
  t.metrics = {{"kl_mean", 0.1234567891234},
               {"perplexity", std::numeric_limits<double>::quiet_NaN()},
               {"inf_metric", -std::numeric_limits<double>::infinity()}};
  t.timings = {{"prefill_seconds", 0.5}, {"kv_cache_bytes", 123456789.0}};
  return t;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * 4) == 0);
}

bool same_double(double a, double b) {
  return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, sizeof a) == 0;
}

void expect_same(const Trace& a, const Trace& b) {
  EXPECT_EQ(a.schema_version, b.schema_version);
  EXPECT_EQ(a.attnscope_version, b.attnscope_version);
  EXPECT_EQ(a.created_at, b.created_at);
  EXPECT_EQ(a.backend, b.backend);
  EXPECT_EQ(a.model.path, b.model.path);
  EXPECT_EQ(a.model.sha256, b.model.sha256);
  EXPECT_EQ(a.model.architecture, b.model.architecture);
  EXPECT_EQ(a.model.name, b.model.name);
  EXPECT_EQ(a.model.n_layer, b.model.n_layer);
  EXPECT_EQ(a.model.n_head, b.model.n_head);
  EXPECT_EQ(a.model.n_head_kv, b.model.n_head_kv);
  EXPECT_EQ(a.model.head_dim, b.model.head_dim);
  EXPECT_EQ(a.model.vocab_size, b.model.vocab_size);
  EXPECT_EQ(a.model.rope_theta, b.model.rope_theta);
  EXPECT_TRUE(a.variant == b.variant) << a.variant.to_string() << " vs " << b.variant.to_string();
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.token_texts, b.token_texts);
  EXPECT_EQ(a.n_prompt, b.n_prompt);
  ASSERT_EQ(a.q.size(), b.q.size());
  for (size_t l = 0; l < a.q.size(); ++l) EXPECT_TRUE(same_bits(a.q[l], b.q[l])) << "q layer " << l;
  ASSERT_EQ(a.k.size(), b.k.size());
  for (size_t l = 0; l < a.k.size(); ++l) EXPECT_TRUE(same_bits(a.k[l], b.k[l])) << "k layer " << l;
  EXPECT_EQ(a.k_heads, b.k_heads);
  auto same_group = [](const attnscope::GroupStep& x, const attnscope::GroupStep& y) {
    return x.n_kv == y.n_kv && x.kv_of_query == y.kv_of_query &&
           same_bits(x.key_norms, y.key_norms) && x.active_query_heads == y.active_query_heads;
  };
  ASSERT_EQ(a.groups.size(), b.groups.size());
  for (size_t l = 0; l < a.groups.size(); ++l) EXPECT_TRUE(same_group(a.groups[l], b.groups[l]));
  ASSERT_EQ(a.group_steps.size(), b.group_steps.size());
  for (size_t s = 0; s < a.group_steps.size(); ++s) {
    ASSERT_EQ(a.group_steps[s].size(), b.group_steps[s].size());
    for (size_t l = 0; l < a.group_steps[s].size(); ++l) {
      EXPECT_TRUE(same_group(a.group_steps[s][l], b.group_steps[s][l])) << s << "," << l;
    }
  }
  ASSERT_EQ(a.masks.size(), b.masks.size());
  for (size_t l = 0; l < a.masks.size(); ++l) {
    ASSERT_EQ(a.masks[l].size(), b.masks[l].size());
    for (size_t h = 0; h < a.masks[l].size(); ++h) {
      const auto &x = a.masks[l][h], &y = b.masks[l][h];
      EXPECT_TRUE(x.sink_tokens == y.sink_tokens && x.window == y.window && x.block == y.block &&
                  x.all_blocks == y.all_blocks && x.n_qblocks == y.n_qblocks &&
                  x.n_kblocks == y.n_kblocks && x.blocks == y.blocks)
          << "mask " << l << "," << h;
    }
  }
  ASSERT_EQ(a.mask_density.size(), b.mask_density.size());
  for (size_t l = 0; l < a.mask_density.size(); ++l)
    EXPECT_TRUE(same_bits(a.mask_density[l], b.mask_density[l]));
  EXPECT_EQ(a.pattern_notes, b.pattern_notes);
  ASSERT_EQ(a.pattern_scores.size(), b.pattern_scores.size());
  for (size_t l = 0; l < a.pattern_scores.size(); ++l)
    EXPECT_TRUE(same_bits(a.pattern_scores[l], b.pattern_scores[l]));
  EXPECT_EQ(a.string_shift, b.string_shift);
  EXPECT_EQ(a.string_window, b.string_window);
  ASSERT_EQ(a.kv_steps.size(), b.kv_steps.size());
  for (size_t s = 0; s < a.kv_steps.size(); ++s) {
    ASSERT_EQ(a.kv_steps[s].size(), b.kv_steps[s].size());
    for (size_t l = 0; l < a.kv_steps[s].size(); ++l) {
      const auto &x = a.kv_steps[s][l], &y = b.kv_steps[s][l];
      EXPECT_EQ(x.position, y.position);
      EXPECT_EQ(x.budgets, y.budgets);
      EXPECT_EQ(x.reasons, y.reasons);
      EXPECT_TRUE(same_bits(x.lost_mass, y.lost_mass));
    }
  }
  ASSERT_EQ(a.next_token.size(), b.next_token.size());
  for (size_t i = 0; i < a.next_token.size(); ++i) {
    EXPECT_EQ(a.next_token[i].ids, b.next_token[i].ids) << "position " << i;
    EXPECT_TRUE(same_bits(a.next_token[i].logprobs, b.next_token[i].logprobs)) << "position " << i;
  }
  EXPECT_TRUE(same_bits(a.kl_per_position, b.kl_per_position));
  EXPECT_EQ(a.top1_agree, b.top1_agree);
  EXPECT_TRUE(same_bits(a.layer_rel_error, b.layer_rel_error));
  ASSERT_EQ(a.metrics.size(), b.metrics.size());
  for (const auto& [k, v] : a.metrics) {
    ASSERT_TRUE(b.metrics.count(k)) << k;
    EXPECT_TRUE(same_double(v, b.metrics.at(k))) << k;
  }
  ASSERT_EQ(a.timings.size(), b.timings.size());
  for (const auto& [k, v] : a.timings) {
    ASSERT_TRUE(b.timings.count(k)) << k;
    EXPECT_TRUE(same_double(v, b.timings.at(k))) << k;
  }
}

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
    attnscope::save_trace(make_trace(7), m_dir);
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
  const Trace original = make_trace(7);
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
  Trace t = make_trace(8);
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
  expect_same(make_trace(8), attnscope::load_trace(m_dir));
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
  attnscope::save_trace(make_trace(7), m_dir);
  // A NaN query.
  auto q = attnscope::read_npy_f32(m_dir / "q_L1.npy");
  q.data[40] = std::numeric_limits<float>::quiet_NaN();
  attnscope::write_npy(m_dir / "q_L1.npy", q.shape, q.data.data());
  expect_bad(m_dir, {"q[1]", "finite"}, "NaN in q");
  attnscope::save_trace(make_trace(7), m_dir);
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
