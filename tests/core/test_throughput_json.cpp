// Throughput sweeps as JSON without a model: a sweep with awkward values (1/3, 1e-300, 2e300,
// a device name that is not UTF-8) comes back exactly; hand-edited fields fail with
// Error(BadInput) naming the file and field; ThroughputResult::point finds (spec, length).
#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "attnscope/error.h"
#include "attnscope/throughput.h"
#include "session_compare.h"

namespace attnscope {
namespace {

using json = nlohmann::json;

constexpr const char* kWindowSpec = "pattern=window:w=4";

ThroughputResult sample() {
  ThroughputResult r;
  r.device = "CPU (OpenBLAS, 2 threads) \xff";  // a byte that is not UTF-8
  r.backend = "cpu";
  r.model_name = "SmolLM2-135M-Instruct";
  r.model_sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  r.created_at = "2026-11-24T07:00:00Z";
  r.attnscope_version = "0.1.0";
  r.repeat = 2;
  r.lengths = {128, 512};
  const std::string base = VariantSpec::baseline().to_string();
  const std::string window = VariantSpec::parse(kWindowSpec).to_string();
  for (const int length : r.lengths) {
    for (const std::string& spec : {base, window, base}) {
      ThroughputPoint p;
      p.spec = spec;
      p.baseline = r.points.size() % 3 == 0;  // the third is a variant equal to the baseline
      p.display_name = p.baseline ? "baseline" : VariantSpec::parse(spec).display_name();
      p.length = length;
      p.decode_steps = 16;
      p.prefill_seconds = 1.0 / 3.0 * length;
      p.decode_seconds = 1e-300;
      p.prefill_tokens_per_second = length / p.prefill_seconds;
      p.decode_tokens_per_second = 2e300;
      p.attention_seconds = 0.1 + 0.2;
      p.kv_cache_bytes = 2.0 * 64 * 4 * 3 * 30 * length;
      r.points.push_back(p);
    }
  }
  return r;
}

using test::expect_same;

void expect_bad(const std::string& text, const std::vector<std::string>& needles,
                const std::string& what) {
  SCOPED_TRACE(what);
  try {
    throughput_from_json(text, "sweep.json");
    ADD_FAILURE() << "parsed without error";
  } catch (const Error& e) {
    EXPECT_EQ(static_cast<int>(e.kind()), static_cast<int>(ErrorKind::BadInput)) << e.what();
    std::vector<std::string> all = needles;
    all.push_back("sweep.json");
    for (const auto& n : all) {
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos)
          << "missing '" << n << "' in " << e.what();
    }
  }
}

TEST(ThroughputJson, RoundTripIsExact) {
  const ThroughputResult r = sample();
  const std::string text = throughput_to_json(r);
  ASSERT_TRUE(json::accept(text));
  const ThroughputResult back = throughput_from_json(text, "sweep.json");
  expect_same(r, back);
  EXPECT_EQ(throughput_to_json(back), text) << "to_json(from_json(x)) is a fixed point";
  // Field names other tools read.
  const json j = json::parse(text);
  EXPECT_EQ(j.at("format"), "attnscope-throughput");
  EXPECT_EQ(j.at("points")[1].at("spec"), VariantSpec::parse(kWindowSpec).to_string());
  EXPECT_EQ(j.at("points")[1].at("length"), 128);
  EXPECT_TRUE(j.at("device").contains("base64")) << "non-UTF-8 text is kept byte for byte";
}

TEST(ThroughputJson, PointFindsSpecAndLength) {
  const ThroughputResult r = sample();
  const std::string window = VariantSpec::parse(kWindowSpec).to_string();
  const ThroughputPoint* p = r.point(window, 512);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p, &r.points[4]);
  // A variant equal to the baseline shares its spec: the baseline (first) is the one found.
  EXPECT_EQ(r.point(VariantSpec::baseline().to_string(), 128), &r.points[0]);
  EXPECT_EQ(r.point(window, 256), nullptr);
  EXPECT_EQ(r.point("kv=snapkv", 128), nullptr);
  EXPECT_EQ(ThroughputResult{}.point(window, 128), nullptr);
}

TEST(ThroughputJson, HandEditedFieldsFailNamingTheField) {
  struct Case {
    const char* what;
    std::function<void(json&)> edit;
    std::vector<std::string> needles;
  };
  const std::vector<Case> cases = {
      {"not an object", [](json& j) { j = json::array(); }, {"expected an object"}},
      {"format", [](json& j) { j["format"] = "csv"; }, {"format", "\"csv\""}},
      {"schema", [](json& j) { j["schema_version"] = 2; }, {"schema_version", "2"}},
      {"device type", [](json& j) { j["device"] = 1; }, {"device"}},
      {"missing sha", [](json& j) { j.erase("model_sha256"); }, {"model_sha256", "missing"}},
      {"repeat 0", [](json& j) { j["repeat"] = 0; }, {"repeat", "0"}},
      {"lengths type", [](json& j) { j["lengths"] = 128; }, {"lengths", "array"}},
      {"length 0", [](json& j) { j["lengths"][1] = 0; }, {"lengths[1]", "0"}},
      {"length twice", [](json& j) { j["lengths"][1] = 128; }, {"lengths[1]", "distinct"}},
      {"points type", [](json& j) { j["points"] = "x"; }, {"points", "array"}},
      {"bad spec", [](json& j) { j["points"][2]["spec"] = "kv=nope"; }, {"points[2].spec", "nope"}},
      {"baseline variant",
       [](json& j) { j["points"][1]["baseline"] = true; },
       {"points[1].baseline", "expected false"}},
      {"length not swept",
       [](json& j) { j["points"][3]["length"] = 256; },
       {"points[3].length", "256"}},
      {"negative time",
       [](json& j) { j["points"][4]["decode_seconds"] = -1; },
       {"points[4].decode_seconds", "-1"}},
      {"time as string",
       [](json& j) { j["points"][0]["prefill_seconds"] = "fast"; },
       {"points[0].prefill_seconds", "\"fast\""}},
      {"null bytes",
       [](json& j) { j["points"][5]["kv_cache_bytes"] = nullptr; },
       {"points[5].kv_cache_bytes", "null"}},
      {"decode steps",
       [](json& j) { j["points"][0]["decode_steps"] = -2; },
       {"points[0].decode_steps", "-2"}},
      {"missing field",
       [](json& j) { j["points"][0].erase("attention_seconds"); },
       {"points[0].attention_seconds", "missing"}},
      {"base64 text", [](json& j) { j["device"]["base64"] = "@@@"; }, {"device.base64", "base64"}},
  };
  const json pristine = json::parse(throughput_to_json(sample()));
  for (const Case& c : cases) {
    json j = pristine;
    c.edit(j);
    expect_bad(j.dump(), c.needles, c.what);
  }
  const std::string text = throughput_to_json(sample());
  expect_bad(text.substr(0, text.size() / 2), {"valid JSON"}, "cut in half");
  expect_bad("", {"valid JSON"}, "empty");
}

}  // namespace
}  // namespace attnscope
