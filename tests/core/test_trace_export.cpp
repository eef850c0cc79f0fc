// Trace data export and the table/matrix writers: every (what, format) of export_trace_data on
// the fully populated synthetic trace, read back (CSV through an RFC 4180 parser written here,
// JSON through nlohmann, NPY through read_npy_*) and checked against the trace itself and
// against compute_map / compute_head_metrics; layer/head filters; errors naming the trace;
// write_table / write_matrix round trips with quoting, NaN and bad input; atomic writes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "attnscope/error.h"
#include "attnscope/map_request.h"
#include "attnscope/metrics.h"
#include "attnscope/npy.h"
#include "attnscope/trace_export.h"
#include "test_support.h"
#include "trace_builders.h"

namespace attnscope {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace test::full_trace;  // kLayers, kHeads, kKvHeads, kTokens, kPrompt, kDecode

// %.9g keeps 9 significant digits: a double read back is within 5e-9 relative of the original.
constexpr double kNineDigitsRel = 5e-9;
constexpr const char* kWhere = "/traces/demo";  // names the trace in error messages

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void spit(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

// RFC 4180: fields separated by commas, records by '\n'; a field starting with '"' runs to the
// next lone '"', with "" standing for one quote, and may hold commas and line breaks.
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> records;
  std::vector<std::string> record;
  std::string field;
  size_t i = 0;
  bool at_field_start = true;
  while (i < text.size()) {
    const char c = text[i];
    if (at_field_start && c == '"') {
      ++i;
      for (;;) {
        if (i >= text.size()) {
          ADD_FAILURE() << "unterminated quoted field";
          return records;
        }
        if (text[i] == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        field += text[i++];
      }
      at_field_start = false;
      continue;
    }
    if (c == ',') {
      record.push_back(field);
      field.clear();
      at_field_start = true;
    } else if (c == '\n') {
      record.push_back(field);
      records.push_back(record);
      record.clear();
      field.clear();
      at_field_start = true;
    } else {
      field += c;
      at_field_start = false;
    }
    ++i;
  }
  if (!at_field_start || !field.empty() || !record.empty()) {
    ADD_FAILURE() << "CSV does not end with a newline";
  }
  return records;
}

std::vector<std::vector<std::string>> read_csv(const fs::path& p) {
  return parse_csv(slurp(p));
}

bool same_floats(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

template <typename F>
std::string expect_error(ErrorKind kind, F&& f, const std::string& what) {
  try {
    f();
    ADD_FAILURE() << what << ": no error";
  } catch (const Error& e) {
    EXPECT_EQ(static_cast<int>(e.kind()), static_cast<int>(kind)) << what << ": " << e.what();
    return e.what();
  }
  return {};
}

class TraceExportTest : public ::testing::Test {
 protected:
  void SetUp() override { m_dir = test::make_temp_dir("attnscope-export"); }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(m_dir, ec);
  }
  const fs::path& dir() const { return m_dir; }

  // The shared fully populated trace (2 layers, 4 query over 2 KV heads, 12 tokens, 3 decode
  // steps), seed 7.
  static const Trace& trace() {
    static const Trace t = test::make_full_trace(7);
    return t;
  }

  std::string run(ExportWhat what, ExportFormat format, const fs::path& out,
                  const TraceExportOptions& o = {}) {
    return export_trace_data(trace(), what, format, out, o, kWhere);
  }

  static std::vector<PooledMap> reference_maps(const TraceExportOptions& o) {
    std::vector<PooledMap> maps;
    for (int l = 0; l < kLayers; ++l) {
      for (int h = 0; h < kHeads; ++h) {
        if ((o.layer >= 0 && l != o.layer) || (o.head >= 0 && h != o.head)) continue;
        MapRequest r;
        r.layer = l;
        r.head = h;
        r.out_rows = o.rows;
        r.out_cols = o.cols;
        r.reduce = o.reduce;
        maps.push_back(compute_map(trace(), r));
      }
    }
    return maps;
  }

 private:
  fs::path m_dir;
};

// ------------------------------------------------------------------------------------------
// Names and the file/folder table

TEST(TraceExportNames, ParseRoundTripsAndRejectsUnknown) {
  for (auto w : {ExportWhat::Maps, ExportWhat::Kv, ExportWhat::Groups, ExportWhat::Masks,
                 ExportWhat::Metrics, ExportWhat::Heads}) {
    EXPECT_EQ(parse_export_what(export_what_name(w)), w);
  }
  for (auto f : {ExportFormat::Csv, ExportFormat::Json, ExportFormat::Npy}) {
    EXPECT_EQ(parse_export_format(export_format_name(f)), f);
  }
  EXPECT_STREQ(export_what_name(ExportWhat::Heads), "heads");
  EXPECT_STREQ(export_format_name(ExportFormat::Npy), "npy");
  const std::string w = expect_error(
      ErrorKind::Usage, [] { parse_export_what("pictures"); }, "unknown what");
  EXPECT_NE(w.find("maps, kv, groups, masks, metrics or heads"), std::string::npos) << w;
  const std::string f = expect_error(
      ErrorKind::Usage, [] { parse_export_format("xlsx"); }, "unknown format");
  EXPECT_NE(f.find("csv, json or npy"), std::string::npos) << f;
}

TEST(TraceExportNames, SingleFileTableAsDocumented) {
  // Rows: maps, kv, groups, masks, metrics, heads; columns: csv, json, npy.
  const bool want[6][3] = {{false, true, true}, {true, true, false},  {true, true, true},
                           {true, true, false}, {false, true, false}, {true, true, true}};
  for (int w = 0; w < 6; ++w) {
    for (int f = 0; f < 3; ++f) {
      EXPECT_EQ(export_is_single_file(static_cast<ExportWhat>(w), static_cast<ExportFormat>(f)),
                want[w][f])
          << export_what_name(static_cast<ExportWhat>(w)) << "/"
          << export_format_name(static_cast<ExportFormat>(f));
    }
  }
}

// ------------------------------------------------------------------------------------------
// Maps

TEST_F(TraceExportTest, MapsInEveryFormatEqualComputeMap) {
  TraceExportOptions o;
  o.rows = 5;
  o.cols = 6;
  o.reduce = MapRequest::Mean;
  const auto ref = reference_maps(o);
  ASSERT_EQ(ref.size(), size_t{kLayers} * kHeads);

  const fs::path npy = dir() / "maps.npy";
  EXPECT_EQ(run(ExportWhat::Maps, ExportFormat::Npy, npy, o),
            "maps: 2 layers x 4 heads pooled to 5 x 6 (mean) -> " + npy.string());
  const auto arr = read_npy_f32(npy);
  EXPECT_EQ(arr.shape, (std::vector<int64_t>{kLayers, kHeads, 5, 6}));
  std::vector<float> all;
  for (const auto& m : ref) all.insert(all.end(), m.values.begin(), m.values.end());
  EXPECT_TRUE(same_floats(arr.data, all)) << "npy maps differ from compute_map";

  const fs::path csv = dir() / "maps_csv";
  run(ExportWhat::Maps, ExportFormat::Csv, csv, o);
  for (int l = 0; l < kLayers; ++l) {
    for (int h = 0; h < kHeads; ++h) {
      const auto rows =
          read_csv(csv / ("L" + std::to_string(l) + "_H" + std::to_string(h) + ".csv"));
      ASSERT_EQ(rows.size(), 5u) << l << "," << h;
      const PooledMap& m = ref[static_cast<size_t>(l) * kHeads + h];
      for (int i = 0; i < 5; ++i) {
        ASSERT_EQ(rows[i].size(), 6u);
        for (int j = 0; j < 6; ++j) {
          // %.9g round-trips a float exactly.
          EXPECT_EQ(std::strtof(rows[i][j].c_str(), nullptr), m.values[i * 6 + j])
              << "L" << l << "_H" << h << " cell " << i << "," << j;
        }
      }
    }
  }

  const fs::path js = dir() / "maps.json";
  run(ExportWhat::Maps, ExportFormat::Json, js, o);
  const json j = json::parse(slurp(js));
  EXPECT_EQ(j.at("layers"), kLayers);
  EXPECT_EQ(j.at("heads"), kHeads);
  EXPECT_EQ(j.at("rows"), 5);
  EXPECT_EQ(j.at("cols"), 6);
  EXPECT_EQ(j.at("reduce"), "mean");
  EXPECT_FALSE(j.contains("layer")) << "unfiltered exports carry no filter keys";
  for (int l = 0; l < kLayers; ++l) {
    for (int h = 0; h < kHeads; ++h) {
      const PooledMap& m = ref[static_cast<size_t>(l) * kHeads + h];
      for (int i = 0; i < 5; ++i) {
        for (int c = 0; c < 6; ++c) {
          EXPECT_EQ(j["maps"][l][h][i][c].get<float>(), m.values[i * 6 + c]);
        }
      }
    }
  }
}

TEST_F(TraceExportTest, MapsFiltersSelectLayersAndHeads) {
  TraceExportOptions o;
  o.rows = 4;
  o.cols = 4;
  o.layer = 1;
  run(ExportWhat::Maps, ExportFormat::Npy, dir() / "l1.npy", o);
  auto arr = read_npy_f32(dir() / "l1.npy");
  EXPECT_EQ(arr.shape, (std::vector<int64_t>{1, kHeads, 4, 4}));
  std::vector<float> want;
  for (const auto& m : reference_maps(o)) want.insert(want.end(), m.values.begin(), m.values.end());
  EXPECT_TRUE(same_floats(arr.data, want));

  o.layer = -1;
  o.head = 2;
  const std::string summary = run(ExportWhat::Maps, ExportFormat::Npy, dir() / "h2.npy", o);
  EXPECT_EQ(summary.rfind("maps: 2 layers x 1 heads", 0), 0u) << summary;
  arr = read_npy_f32(dir() / "h2.npy");
  EXPECT_EQ(arr.shape, (std::vector<int64_t>{kLayers, 1, 4, 4}));
  want.clear();
  for (const auto& m : reference_maps(o)) want.insert(want.end(), m.values.begin(), m.values.end());
  EXPECT_TRUE(same_floats(arr.data, want));

  o.layer = 1;
  run(ExportWhat::Maps, ExportFormat::Csv, dir() / "one", o);
  std::set<std::string> files;
  for (const auto& e : fs::directory_iterator(dir() / "one")) files.insert(e.path().filename());
  EXPECT_EQ(files, (std::set<std::string>{"L1_H2.csv"}));
  run(ExportWhat::Maps, ExportFormat::Json, dir() / "one.json", o);
  const json j = json::parse(slurp(dir() / "one.json"));
  EXPECT_EQ(j.at("layer"), 1);
  EXPECT_EQ(j.at("head"), 2);
  EXPECT_EQ(j.at("maps").size(), 1u);
  EXPECT_EQ(j.at("maps")[0].size(), 1u);

  for (auto [layer, head] : {std::pair{2, -1}, std::pair{-1, 4}, std::pair{-2, -1}}) {
    TraceExportOptions bad = o;
    bad.layer = layer;
    bad.head = head;
    const fs::path out = dir() / "bad.npy";
    const std::string msg = expect_error(
        ErrorKind::Usage, [&] { run(ExportWhat::Maps, ExportFormat::Npy, out, bad); },
        "filter layer " + std::to_string(layer) + " head " + std::to_string(head));
    EXPECT_NE(msg.find(layer != -1 ? "layer" : "head"), std::string::npos) << msg;
    EXPECT_FALSE(fs::exists(out));
  }
}

TEST_F(TraceExportTest, MapsProgressPerLayerOrPerHead) {
  std::vector<std::pair<double, std::string>> calls;
  TraceExportOptions o;
  o.rows = 3;
  o.cols = 3;
  o.progress = [&](double f, const std::string& stage) { calls.emplace_back(f, stage); };
  run(ExportWhat::Maps, ExportFormat::Npy, dir() / "p.npy", o);
  EXPECT_EQ(calls,
            (std::vector<std::pair<double, std::string>>{{0.5, "layer 1/2"}, {1.0, "layer 2/2"}}));
  calls.clear();
  o.layer = 0;
  run(ExportWhat::Maps, ExportFormat::Npy, dir() / "p0.npy", o);
  ASSERT_EQ(calls.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_DOUBLE_EQ(calls[i].first, (i + 1) / 4.0);
    EXPECT_EQ(calls[i].second, "head " + std::to_string(i + 1) + "/4");
  }
}

// ------------------------------------------------------------------------------------------
// KV decisions

TEST_F(TraceExportTest, KvCsvRowsMatchTheDecisions) {
  const fs::path out = dir() / "kv.csv";
  EXPECT_EQ(run(ExportWhat::Kv, ExportFormat::Csv, out),
            "kv: 3 decode steps x 2 layers x 2 KV heads -> " + out.string());
  const auto rows = read_csv(out);
  ASSERT_EQ(rows.size(), 1u + kDecode * kLayers * kKvHeads);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"step", "position", "layer", "kv_head", "budget",
                                               "lost_mass", "kept", "evicted", "reasons"}));
  size_t r = 1;
  for (int s = 0; s < kDecode; ++s) {
    for (int l = 0; l < kLayers; ++l) {
      const KvStep& k = trace().kv_steps[s][l];
      for (int h = 0; h < kKvHeads; ++h, ++r) {
        const auto& row = rows[r];
        ASSERT_EQ(row.size(), 9u);
        int kept = 0;
        std::string digits;
        for (uint8_t x : k.reasons[h]) {
          kept += x != 0;
          digits += std::to_string(x);
        }
        EXPECT_EQ(row[0], std::to_string(s));
        EXPECT_EQ(row[1], std::to_string(kPrompt + s));
        EXPECT_EQ(row[2], std::to_string(l));
        EXPECT_EQ(row[3], std::to_string(h));
        EXPECT_EQ(row[4], "6");
        EXPECT_EQ(std::stof(row[5]), k.lost_mass[h]);
        EXPECT_EQ(row[6], std::to_string(kept));
        EXPECT_EQ(row[7], std::to_string(kPrompt + s + 1 - kept));
        EXPECT_EQ(row[8], digits);
      }
    }
  }
  TraceExportOptions o;
  o.layer = 1;
  o.head = 0;
  run(ExportWhat::Kv, ExportFormat::Csv, dir() / "kv1.csv", o);
  const auto some = read_csv(dir() / "kv1.csv");
  ASSERT_EQ(some.size(), 1u + kDecode);
  for (size_t i = 1; i < some.size(); ++i) {
    EXPECT_EQ(some[i][2], "1");
    EXPECT_EQ(some[i][3], "0");
  }
  o.head = 2;  // only 2 KV heads
  expect_error(
      ErrorKind::Usage, [&] { run(ExportWhat::Kv, ExportFormat::Csv, dir() / "x.csv", o); },
      "KV head 2 of 2");
}

TEST_F(TraceExportTest, KvJsonAndNpyHoldEveryStep) {
  run(ExportWhat::Kv, ExportFormat::Json, dir() / "kv.json");
  const json j = json::parse(slurp(dir() / "kv.json"));
  EXPECT_EQ(j.at("reason_codes"),
            (std::vector<std::string>{"evicted", "sink", "recent", "scored", "window"}));
  ASSERT_EQ(j.at("steps").size(), size_t{kDecode});
  for (int s = 0; s < kDecode; ++s) {
    ASSERT_EQ(j["steps"][s].size(), size_t{kLayers});
    for (int l = 0; l < kLayers; ++l) {
      const KvStep& k = trace().kv_steps[s][l];
      const json& e = j["steps"][s][l];
      EXPECT_EQ(e.at("position"), k.position);
      EXPECT_EQ(e.at("budgets"), k.budgets);
      EXPECT_EQ(e.at("lost_mass")[0].get<float>(), k.lost_mass[0]);
      for (int h = 0; h < kKvHeads; ++h) {
        EXPECT_EQ(e.at("reasons")[h], std::vector<int>(k.reasons[h].begin(), k.reasons[h].end()));
      }
    }
  }
  TraceExportOptions o;
  o.head = 1;
  run(ExportWhat::Kv, ExportFormat::Json, dir() / "kv_h1.json", o);
  const json f = json::parse(slurp(dir() / "kv_h1.json"));
  EXPECT_EQ(f.at("kv_head"), 1);
  EXPECT_EQ(f["steps"][2][1].at("reasons").size(), 1u);
  EXPECT_EQ(f["steps"][2][1]["reasons"][0],
            std::vector<int>(trace().kv_steps[2][1].reasons[1].begin(),
                             trace().kv_steps[2][1].reasons[1].end()));

  const fs::path folder = dir() / "kv_npy";
  run(ExportWhat::Kv, ExportFormat::Npy, folder);
  const auto reasons = read_npy_i32(folder / "reasons.npy");
  const int64_t P = kTokens;  // the last decode position + 1
  ASSERT_EQ(reasons.shape, (std::vector<int64_t>{kDecode, kLayers, kKvHeads, P}));
  for (int s = 0; s < kDecode; ++s) {
    for (int l = 0; l < kLayers; ++l) {
      for (int h = 0; h < kKvHeads; ++h) {
        const auto& want = trace().kv_steps[s][l].reasons[h];
        for (int p = 0; p < P; ++p) {
          const int32_t got =
              reasons.data[((static_cast<size_t>(s) * kLayers + l) * kKvHeads + h) * P + p];
          EXPECT_EQ(got, static_cast<size_t>(p) < want.size() ? want[p] : -1)
              << "step " << s << " layer " << l << " head " << h << " position " << p;
        }
      }
    }
  }
  EXPECT_EQ(read_npy_i32(folder / "budgets.npy").data, std::vector<int32_t>(12, 6));
  const auto lost = read_npy_f32(folder / "lost_mass.npy");
  EXPECT_EQ(lost.shape, (std::vector<int64_t>{kDecode, kLayers, kKvHeads}));
  EXPECT_EQ(lost.data[0], 0.125f);
  EXPECT_EQ(lost.data[1], 0.0f);
  EXPECT_EQ(read_npy_i32(folder / "positions.npy").data, (std::vector<int32_t>{9, 10, 11}));
  o.head = -1;
  o.layer = 0;
  run(ExportWhat::Kv, ExportFormat::Npy, dir() / "kv_l0", o);
  EXPECT_EQ(read_npy_i32(dir() / "kv_l0" / "reasons.npy").shape,
            (std::vector<int64_t>{kDecode, 1, kKvHeads, P}));
}

// ------------------------------------------------------------------------------------------
// Groups and masks

TEST_F(TraceExportTest, GroupsInEveryFormat) {
  const fs::path csv = dir() / "groups.csv";
  EXPECT_EQ(run(ExportWhat::Groups, ExportFormat::Csv, csv), "groups: 2 layers -> " + csv.string());
  const auto rows = read_csv(csv);
  ASSERT_EQ(rows.size(), 1u + kLayers * kHeads);
  EXPECT_EQ(rows[0],
            (std::vector<std::string>{"layer", "query_head", "kv_head", "n_kv", "key_norm"}));
  const std::vector<int> kvq = {0, 0, 1, 1};
  const std::vector<float> norms = {1.5f, 2.25f};
  for (int l = 0; l < kLayers; ++l) {
    for (int h = 0; h < kHeads; ++h) {
      const auto& row = rows[1 + l * kHeads + h];
      EXPECT_EQ(row, (std::vector<std::string>{std::to_string(l), std::to_string(h),
                                               std::to_string(kvq[h]), "2",
                                               norms[kvq[h]] == 1.5f ? "1.5" : "2.25"}));
    }
  }
  run(ExportWhat::Groups, ExportFormat::Json, dir() / "groups.json");
  const json j = json::parse(slurp(dir() / "groups.json"));
  ASSERT_EQ(j.at("layers").size(), size_t{kLayers});
  EXPECT_EQ(j["layers"][1].at("kv_of_query"), kvq);
  EXPECT_EQ(j["layers"][1].at("group_sizes"), (std::vector<int>{2, 2}));
  EXPECT_EQ(j["layers"][1].at("key_norms"), norms);
  ASSERT_EQ(j.at("decode_steps").size(), size_t{kDecode});
  EXPECT_EQ(j["decode_steps"][1][0].at("kv_of_query"), (std::vector<int>{1, 1, 0, 1}));
  EXPECT_EQ(j["decode_steps"][1][0].at("group_sizes"), (std::vector<int>{1, 3}));

  run(ExportWhat::Groups, ExportFormat::Npy, dir() / "groups.npy");
  const auto arr = read_npy_i32(dir() / "groups.npy");
  EXPECT_EQ(arr.shape, (std::vector<int64_t>{kLayers, kHeads}));
  EXPECT_EQ(arr.data, (std::vector<int32_t>{0, 0, 1, 1, 0, 0, 1, 1}));

  TraceExportOptions o;
  o.head = 3;
  run(ExportWhat::Groups, ExportFormat::Json, dir() / "g3.json", o);
  const json f = json::parse(slurp(dir() / "g3.json"));
  EXPECT_EQ(f.at("query_head"), 3);
  EXPECT_EQ(f["layers"][0].at("kv_of_query"), (std::vector<int>{1}));
  EXPECT_EQ(f["layers"][0].at("group_sizes"), (std::vector<int>{2, 2})) << "sizes stay per KV head";
  run(ExportWhat::Groups, ExportFormat::Npy, dir() / "g3.npy", o);
  EXPECT_EQ(read_npy_i32(dir() / "g3.npy").shape, (std::vector<int64_t>{kLayers, 1}));
}

TEST_F(TraceExportTest, MasksInEveryFormat) {
  const fs::path csv = dir() / "masks.csv";
  EXPECT_EQ(run(ExportWhat::Masks, ExportFormat::Csv, csv), "masks: 2 layers -> " + csv.string());
  const auto rows = read_csv(csv);
  ASSERT_EQ(rows.size(), 1u + kLayers * kHeads);
  // Layer 1 head 1: the 3x3 block pattern {1,0,0, 1,1,0, 0,1,1} (5 on), density 0.5.
  EXPECT_EQ(rows[1 + kHeads + 1],
            (std::vector<std::string>{"1", "1", "0", "0", "4", "0", "3", "3", "0.5", "5"}));
  // Head 2: window 5, 2 sinks, all blocks (default block 64), density 0.75.
  EXPECT_EQ(rows[1 + 2],
            (std::vector<std::string>{"0", "2", "2", "5", "64", "1", "0", "0", "0.75", "0"}));
  run(ExportWhat::Masks, ExportFormat::Json, dir() / "masks.json");
  const json j = json::parse(slurp(dir() / "masks.json"));
  ASSERT_EQ(j.at("layers").size(), size_t{kLayers});
  EXPECT_EQ(j["layers"][0].at("note"), "query-aware D=0.03");
  EXPECT_EQ(j["layers"][1].at("note"), "");
  EXPECT_EQ(j["layers"][0]["heads"][1].at("blocks"), (std::vector<int>{1, 0, 0, 1, 1, 0, 0, 1, 1}));
  EXPECT_EQ(j["layers"][0]["heads"][1].at("density"), 0.5);
  EXPECT_EQ(j["layers"][0]["heads"][2].at("window"), 5);

  const fs::path folder = dir() / "masks_npy";
  run(ExportWhat::Masks, ExportFormat::Npy, folder);
  std::set<std::string> files;
  for (const auto& e : fs::directory_iterator(folder)) files.insert(e.path().filename());
  EXPECT_EQ(files, (std::set<std::string>{"blocks_L0_H1.npy", "blocks_L1_H1.npy", "density.npy"}));
  const auto blocks = read_npy_u8(folder / "blocks_L1_H1.npy");
  EXPECT_EQ(blocks.shape, (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(blocks.data, trace().masks[1][1].blocks);
  const auto density = read_npy_f32(folder / "density.npy");
  EXPECT_EQ(density.shape, (std::vector<int64_t>{kLayers, kHeads}));
  EXPECT_EQ(density.data, (std::vector<float>{1.0f, 0.5f, 0.75f, 1.0f, 1.0f, 0.5f, 0.75f, 1.0f}));

  TraceExportOptions o;
  o.layer = 0;
  o.head = 1;
  run(ExportWhat::Masks, ExportFormat::Csv, dir() / "m01.csv", o);
  const auto one = read_csv(dir() / "m01.csv");
  ASSERT_EQ(one.size(), 2u);
  EXPECT_EQ(one[1][0], "0");
  EXPECT_EQ(one[1][1], "1");
  run(ExportWhat::Masks, ExportFormat::Npy, dir() / "m01", o);
  EXPECT_EQ(read_npy_f32(dir() / "m01" / "density.npy").data, (std::vector<float>{0.5f}));
}

// ------------------------------------------------------------------------------------------
// Quality metrics and head metrics

TEST_F(TraceExportTest, MetricsInEveryFormat) {
  // trace_summary, by hand: 3 metrics, 2 timings, lost mass mean of {0.125, 0} over every
  // step and layer, mask density mean of {1, 0.5, 0.75, 1}, token counts.
  const auto summary = trace_summary(trace());
  EXPECT_EQ(summary.size(), 9u);
  EXPECT_EQ(summary.at("metrics.kl_mean"), 0.1234567891234);
  EXPECT_TRUE(std::isnan(summary.at("metrics.perplexity")));
  EXPECT_DOUBLE_EQ(summary.at("lost_mass_mean"), 0.0625);
  EXPECT_DOUBLE_EQ(summary.at("mask_density_mean"), 0.8125);
  EXPECT_EQ(summary.at("n_tokens"), kTokens);
  EXPECT_EQ(summary.at("n_prompt"), kPrompt);
  EXPECT_EQ(summary.at("timings.kv_cache_bytes"), 123456789.0);

  const fs::path js = dir() / "metrics.json";
  EXPECT_EQ(run(ExportWhat::Metrics, ExportFormat::Json, js),
            "metrics: 9 figures, 12 positions -> " + js.string());
  const json j = json::parse(slurp(js));
  EXPECT_EQ(j.at("variant"), trace().variant.to_string());
  EXPECT_NEAR(j["summary"].at("metrics.kl_mean").get<double>(), 0.1234567891234, 1e-15);
  EXPECT_TRUE(j["summary"].at("metrics.perplexity").is_null()) << "NaN -> null";
  EXPECT_TRUE(j["summary"].at("metrics.inf_metric").is_null()) << "-inf -> null";
  ASSERT_EQ(j.at("kl_per_position").size(), size_t{kTokens});
  for (int i = 0; i < kTokens; ++i) {
    EXPECT_EQ(j["kl_per_position"][i].get<float>(), trace().kl_per_position[i]);
  }
  EXPECT_EQ(j.at("top1_agree"), trace().top1_agree);
  EXPECT_EQ(j.at("layer_rel_error")[1].get<float>(), 0.02f);

  const fs::path csv = dir() / "metrics_csv";
  run(ExportWhat::Metrics, ExportFormat::Csv, csv);
  const auto m = read_csv(csv / "metrics.csv");
  ASSERT_EQ(m.size(), 1u + summary.size());
  EXPECT_EQ(m[0], (std::vector<std::string>{"name", "value"}));
  for (size_t i = 1; i < m.size(); ++i) {
    const double want = summary.at(m[i][0]);
    if (std::isnan(want)) {
      EXPECT_EQ(m[i][1], "nan");
    } else if (std::isinf(want)) {
      EXPECT_EQ(std::stod(m[i][1]), want) << m[i][0];
    } else {
      EXPECT_NEAR(std::stod(m[i][1]), want, std::fabs(want) * kNineDigitsRel) << m[i][0];
    }
  }
  const auto p = read_csv(csv / "positions.csv");
  ASSERT_EQ(p.size(), 1u + kTokens);
  EXPECT_EQ(p[5][1], std::to_string(trace().tokens[4]));
  EXPECT_EQ(std::stof(p[5][2]), trace().kl_per_position[4]);
  EXPECT_EQ(p[5][3], std::to_string(trace().top1_agree[4]));
  EXPECT_EQ(read_csv(csv / "layers.csv").size(), 1u + kLayers);

  const fs::path npy = dir() / "metrics_npy";
  run(ExportWhat::Metrics, ExportFormat::Npy, npy);
  EXPECT_TRUE(same_floats(read_npy_f32(npy / "kl_per_position.npy").data, trace().kl_per_position));
  const auto top1 = read_npy_i32(npy / "top1_agree.npy").data;
  EXPECT_EQ(std::vector<uint8_t>(top1.begin(), top1.end()), trace().top1_agree);
  EXPECT_TRUE(same_floats(read_npy_f32(npy / "layer_rel_error.npy").data, trace().layer_rel_error));
  EXPECT_EQ(json::parse(slurp(npy / "metrics.json")).at("n_tokens"), kTokens);
}

TEST_F(TraceExportTest, HeadsEqualComputeHeadMetricsRanked) {
  TraceExportOptions o;
  o.rank_by = "sink_mass";
  o.sink_tokens = 2;
  o.locality_window = 3;
  HeadMetricOptions ho;
  ho.sink_tokens = 2;
  ho.locality_window = 3;
  std::vector<HeadMetrics> want = compute_head_metrics(trace(), ho);
  rank_heads(want, "sink_mass");

  const fs::path js = dir() / "heads.json";
  EXPECT_EQ(run(ExportWhat::Heads, ExportFormat::Json, js, o),
            "heads: 8 heads ranked by sink_mass -> " + js.string());
  const json j = json::parse(slurp(js));
  EXPECT_EQ(j.at("ranked_by"), "sink_mass");
  EXPECT_EQ(j.at("sink_tokens"), 2);
  EXPECT_EQ(j.at("locality_window"), 3);
  ASSERT_EQ(j.at("heads").size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const json& h = j["heads"][i];
    EXPECT_EQ(h.at("layer"), want[i].layer);
    EXPECT_EQ(h.at("head"), want[i].head);
    EXPECT_EQ(h.at("sink_mass").get<double>(), want[i].sink_mass);
    EXPECT_EQ(h.at("retrieval_score").get<double>(), want[i].retrieval_score);
  }

  run(ExportWhat::Heads, ExportFormat::Csv, dir() / "heads.csv", o);
  const auto rows = read_csv(dir() / "heads.csv");
  ASSERT_EQ(rows.size(), 1u + want.size());
  EXPECT_EQ(rows[0], (std::vector<std::string>{"rank", "layer", "head", "entropy", "sink_mass",
                                               "locality", "retrieval_score"}));
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(rows[i + 1][0], std::to_string(i + 1));
    EXPECT_EQ(rows[i + 1][1], std::to_string(want[i].layer));
    EXPECT_EQ(rows[i + 1][2], std::to_string(want[i].head));
    EXPECT_NEAR(std::stod(rows[i + 1][3]), want[i].entropy, want[i].entropy * kNineDigitsRel);
  }

  run(ExportWhat::Heads, ExportFormat::Npy, dir() / "heads.npy", o);
  const auto arr = read_npy_f32(dir() / "heads.npy");
  ASSERT_EQ(arr.shape, (std::vector<int64_t>{8, 6}));
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(arr.data[i * 6 + 0], static_cast<float>(want[i].layer));
    EXPECT_EQ(arr.data[i * 6 + 1], static_cast<float>(want[i].head));
    EXPECT_EQ(arr.data[i * 6 + 3], static_cast<float>(want[i].sink_mass));
    EXPECT_EQ(arr.data[i * 6 + 5], static_cast<float>(want[i].retrieval_score));
  }

  // Filters keep the ranked order of the selected heads.
  o.layer = 1;
  run(ExportWhat::Heads, ExportFormat::Json, dir() / "h_l1.json", o);
  const json f = json::parse(slurp(dir() / "h_l1.json"));
  EXPECT_EQ(f.at("layer"), 1);
  std::vector<int> got_heads, want_heads;
  for (const auto& h : f.at("heads")) {
    EXPECT_EQ(h.at("layer"), 1);
    got_heads.push_back(h.at("head"));
  }
  for (const auto& h : want) {
    if (h.layer == 1) want_heads.push_back(h.head);
  }
  EXPECT_EQ(got_heads, want_heads);
  o.layer = -1;
  o.head = 3;
  run(ExportWhat::Heads, ExportFormat::Csv, dir() / "h3.csv", o);
  EXPECT_EQ(read_csv(dir() / "h3.csv").size(), 1u + kLayers);

  o.rank_by = "beauty";
  const fs::path never = dir() / "never.csv";
  expect_error(
      ErrorKind::Usage, [&] { run(ExportWhat::Heads, ExportFormat::Csv, never, o); },
      "unknown rank_by");
  EXPECT_FALSE(fs::exists(never));
}

// ------------------------------------------------------------------------------------------
// Errors

TEST_F(TraceExportTest, MissingDataNamesTheTrace) {
  auto expect_missing = [&](const Trace& t, ExportWhat what, ExportFormat format,
                            const std::string& needle) {
    const fs::path out = dir() / (std::string("missing.") + export_format_name(format));
    const std::string msg = expect_error(
        ErrorKind::BadInput,
        [&] { export_trace_data(t, what, format, out, TraceExportOptions{}, kWhere); },
        export_what_name(what));
    EXPECT_EQ(msg.rfind(std::string(kWhere) + ": ", 0), 0u) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_FALSE(fs::exists(out));
  };
  Trace t = trace();
  t.kv_steps.clear();
  expect_missing(t, ExportWhat::Kv, ExportFormat::Csv, "no KV decisions");
  t = trace();
  t.groups.clear();
  expect_missing(t, ExportWhat::Groups, ExportFormat::Json, "no group allocations");
  t = trace();
  t.masks.clear();
  expect_missing(t, ExportWhat::Masks, ExportFormat::Csv, "no pattern masks");
  t = trace();
  t.q.clear();
  t.k.clear();
  t.k_heads.clear();
  expect_missing(t, ExportWhat::Maps, ExportFormat::Npy, "Q/K");
  expect_missing(t, ExportWhat::Heads, ExportFormat::Json, "Q/K");
}

TEST_F(TraceExportTest, SingleFilesNeedTheFormatsExtension) {
  const fs::path out = dir() / "maps.csv";
  const std::string msg = expect_error(
      ErrorKind::Usage, [&] { run(ExportWhat::Maps, ExportFormat::Npy, out); }, "npy to .csv");
  EXPECT_NE(msg.find(".npy"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(TraceExportTest, FailedWritesCreateNothingAndKeepOldFiles) {
  // A missing directory: Runtime, and nothing appears (no folder, no temp file).
  const fs::path missing = dir() / "no_such_dir";
  expect_error(
      ErrorKind::Runtime, [&] { run(ExportWhat::Groups, ExportFormat::Csv, missing / "g.csv"); },
      "file in a missing directory");
  expect_error(
      ErrorKind::Runtime,
      [&] { write_matrix(missing / "m.csv", 1, 1, std::vector<float>{1}.data()); },
      "matrix in a missing directory");
  EXPECT_FALSE(fs::exists(missing));
  // A folder export whose folder cannot be made (a file is in the way): Runtime, file intact.
  spit(dir() / "blocker", "keep me");
  expect_error(
      ErrorKind::Runtime, [&] { run(ExportWhat::Kv, ExportFormat::Npy, dir() / "blocker"); },
      "folder over a file");
  EXPECT_EQ(slurp(dir() / "blocker"), "keep me");
  // An existing export survives a failed one: bad input (nothing written) and an I/O failure
  // (the rename onto a non-empty directory fails), with no temp files left behind.
  const fs::path old = dir() / "table.csv";
  spit(old, "old contents\n");
  DataTable bad;
  bad.columns = {{"a", false, {1, 2}, {}}, {"b", false, {1}, {}}};
  expect_error(
      ErrorKind::Usage, [&] { write_table(old, bad); }, "mismatched lengths");
  EXPECT_EQ(slurp(old), "old contents\n");
  fs::create_directories(dir() / "busy.csv");
  spit(dir() / "busy.csv" / "inside", "x");
  DataTable good;
  good.columns = {{"a", false, {1, 2}, {}}};
  expect_error(
      ErrorKind::Runtime, [&] { write_table(dir() / "busy.csv", good); },
      "rename onto a directory");
  EXPECT_EQ(slurp(dir() / "busy.csv" / "inside"), "x");
  for (const auto& e : fs::directory_iterator(dir())) {
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos)
        << "left behind: " << e.path();
  }
}

// ------------------------------------------------------------------------------------------
// write_table and write_matrix

DataTable awkward_table() {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  DataTable t;
  t.columns.push_back(
      {"label",
       true,
       {},
       {"plain", "comma, inside", "quote \"q\"", "line\nbreak", "bad \xff byte", ""}});
  t.columns.push_back({"x", false, {1.0 / 3.0, nan, inf, -0.5, 1e-300, 123456789.0}, {}});
  t.columns.push_back({"a,\"b\"", false, {0, 1, 2, 3, 4, 5}, {}});
  return t;
}

TEST_F(TraceExportTest, WriteTableCsvQuotesAndRoundTrips) {
  const DataTable t = awkward_table();
  EXPECT_EQ(t.rows(), 6u);
  write_table(dir() / "t.csv", t);
  const auto rows = read_csv(dir() / "t.csv");
  ASSERT_EQ(rows.size(), 7u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"label", "x", "a,\"b\""}));
  const std::vector<std::string> labels = {"plain",       "comma, inside",         "quote \"q\"",
                                           "line\nbreak", "bad \xEF\xBF\xBD byte", ""};
  for (size_t r = 0; r < 6; ++r) {
    ASSERT_EQ(rows[r + 1].size(), 3u) << "row " << r;
    EXPECT_EQ(rows[r + 1][0], labels[r]);
    EXPECT_EQ(rows[r + 1][2], std::to_string(r));
  }
  EXPECT_EQ(rows[2][1], "") << "NaN is an empty cell";
  EXPECT_EQ(rows[3][1], "inf");
  for (size_t r : {0u, 3u, 4u, 5u}) {
    const double want = t.columns[1].numbers[r];
    EXPECT_NEAR(std::stod(rows[r + 1][1]), want, std::fabs(want) * kNineDigitsRel) << "row " << r;
  }
  // Unquoted where nothing needs quoting.
  EXPECT_NE(slurp(dir() / "t.csv").find("\nplain,0.333333333,0\n"), std::string::npos);
}

TEST_F(TraceExportTest, WriteTableJsonAndNpy) {
  const DataTable t = awkward_table();
  write_table(dir() / "t.json", t);
  const json j = json::parse(slurp(dir() / "t.json"));
  EXPECT_EQ(j.at("columns"), (std::vector<std::string>{"label", "x", "a,\"b\""}));
  ASSERT_EQ(j.at("rows").size(), 6u);
  EXPECT_EQ(j["rows"][3].at("label"), "line\nbreak");
  EXPECT_EQ(j["rows"][4].at("label"), "bad \xEF\xBF\xBD byte");
  EXPECT_EQ(j["rows"][0].at("x").get<double>(), 1.0 / 3.0) << "JSON keeps every double digit";
  EXPECT_TRUE(j["rows"][1].at("x").is_null()) << "NaN -> null";
  EXPECT_TRUE(j["rows"][2].at("x").is_null()) << "inf -> null";
  EXPECT_EQ(j["rows"][5].at("a,\"b\""), 5.0);

  write_table(dir() / "t.npy", t);
  const auto arr = read_npy_f64(dir() / "t.npy");
  ASSERT_EQ(arr.shape, (std::vector<int64_t>{6, 2})) << "the text column is left out";
  for (size_t r = 0; r < 6; ++r) {
    const double x = t.columns[1].numbers[r];
    if (std::isnan(x)) {
      EXPECT_TRUE(std::isnan(arr.data[r * 2]));
    } else {
      EXPECT_EQ(arr.data[r * 2], x) << "row " << r;
    }
    EXPECT_EQ(arr.data[r * 2 + 1], static_cast<double>(r));
  }
  // Upper-case extensions are accepted; an empty table is a header.
  write_table(dir() / "T.CSV", DataTable{});
  EXPECT_EQ(slurp(dir() / "T.CSV"), "\n");
}

TEST_F(TraceExportTest, WriteTableRejectsBadTables) {
  auto expect_usage = [&](const DataTable& t, const fs::path& p, const std::string& needle) {
    const std::string msg = expect_error(
        ErrorKind::Usage, [&] { write_table(p, t); }, needle);
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_FALSE(fs::exists(p));
  };
  expect_usage(awkward_table(), dir() / "t.txt", ".csv, .json or .npy");
  expect_usage(awkward_table(), dir() / "noext", ".csv, .json or .npy");
  DataTable t = awkward_table();
  t.columns[2].numbers.pop_back();
  expect_usage(t, dir() / "t.csv", "has 5 rows, expected 6");
  t = awkward_table();
  t.columns[1].name = "label";
  expect_usage(t, dir() / "t.json", "duplicate column name 'label'");
  t = awkward_table();
  t.columns[0].numbers = {1};
  expect_usage(t, dir() / "t.npy", "'label' is text but holds numbers");
}

TEST_F(TraceExportTest, WriteMatrixInEveryFormat) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> v = {0.1f, nan, 3.0f, -4.5f, 1e-8f, 6.0f};  // [2, 3]
  const std::vector<std::string> rl = {"row, one", "row \"two\""}, cl = {"a", "b", "c\nd"};
  write_matrix(dir() / "m.csv", 2, 3, v.data(), rl, cl);
  auto rows = read_csv(dir() / "m.csv");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"", "a", "b", "c\nd"}));
  EXPECT_EQ(rows[1][0], "row, one");
  EXPECT_EQ(rows[2][0], "row \"two\"");
  EXPECT_EQ(std::strtof(rows[1][1].c_str(), nullptr), 0.1f);
  EXPECT_EQ(rows[1][2], "") << "NaN is an empty cell";
  EXPECT_EQ(std::strtof(rows[2][2].c_str(), nullptr), 1e-8f);
  // Without labels: the bare grid; column labels only: a header without a corner cell.
  write_matrix(dir() / "bare.csv", 2, 3, v.data());
  rows = read_csv(dir() / "bare.csv");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1], (std::vector<std::string>{"-4.5", "9.99999994e-09", "6"}));
  write_matrix(dir() / "cols.csv", 2, 3, v.data(), {}, cl);
  EXPECT_EQ(read_csv(dir() / "cols.csv")[0], cl);

  write_matrix(dir() / "m.json", 2, 3, v.data(), rl, cl);
  const json j = json::parse(slurp(dir() / "m.json"));
  EXPECT_EQ(j.at("rows"), 2);
  EXPECT_EQ(j.at("cols"), 3);
  EXPECT_EQ(j.at("row_labels"), rl);
  EXPECT_EQ(j.at("col_labels"), cl);
  EXPECT_EQ(j["values"][0][0].get<float>(), 0.1f);
  EXPECT_TRUE(j["values"][0][1].is_null()) << "NaN -> null";
  EXPECT_EQ(j["values"][1][2].get<float>(), 6.0f);
  write_matrix(dir() / "nolabels.json", 2, 3, v.data());
  EXPECT_TRUE(json::parse(slurp(dir() / "nolabels.json")).at("row_labels").empty());

  write_matrix(dir() / "m.npy", 2, 3, v.data(), rl, cl);
  const auto arr = read_npy_f32(dir() / "m.npy");
  EXPECT_EQ(arr.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_TRUE(same_floats(arr.data, v)) << "float32 bit for bit, NaN included";

  auto expect_usage = [&](const std::function<void()>& f, const fs::path& p, const char* what) {
    expect_error(ErrorKind::Usage, f, what);
    EXPECT_FALSE(fs::exists(p)) << what;
  };
  expect_usage([&] { write_matrix(dir() / "x.csv", 2, 3, v.data(), {"one"}); }, dir() / "x.csv",
               "one row label for two rows");
  expect_usage(
      [&] {
        write_matrix(dir() / "x.json", 2, 3, v.data(), {}, {"a", "b"});
      },
      dir() / "x.json", "two column labels for three columns");
  expect_usage([&] { write_matrix(dir() / "x.png", 2, 3, v.data()); }, dir() / "x.png",
               "image extension");
  expect_usage([&] { write_matrix(dir() / "x.npy", -1, 3, v.data()); }, dir() / "x.npy",
               "negative rows");
}

}  // namespace
}  // namespace attnscope
