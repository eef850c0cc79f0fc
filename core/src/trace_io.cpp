// Trace directory (de)serialisation: trace.json (schema kTraceSchemaVersion) + .npy arrays,
// written atomically through a temporary sibling directory and validated field by field on load.
#include "attnscope/trace_io.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <system_error>

#include "attnscope/error.h"
#include "attnscope/file_util.h"
#include "attnscope/npy.h"
#include "json_fields.h"
#include "trace_limits.h"

namespace attnscope {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kFormatName = "attnscope-trace";
using namespace trace_detail;

namespace {

// ------------------------------------------------------------------------------------------
// Writing

json float_array(const std::vector<float>& v) {
  json a = json::array();
  for (float x : v) a.push_back(x);
  return a;
}

// Metric values may be NaN/inf (e.g. perplexity of an empty range); JSON has no such numbers.
json metric_json(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

json group_json(const GroupStep& g) {
  return json{{"n_kv", g.n_kv},
              {"kv_of_query", g.kv_of_query},
              {"key_norms", float_array(g.key_norms)},
              {"active_query_heads", g.active_query_heads}};
}

json mask_json(const HeadMask& m) {
  return json{{"sink_tokens", m.sink_tokens},
              {"window", m.window},
              {"block", m.block},
              {"all_blocks", m.all_blocks},
              {"n_qblocks", m.n_qblocks},
              {"n_kblocks", m.n_kblocks},
              {"blocks", base64_encode(m.blocks.data(), m.blocks.size())}};
}

json array_entry(const std::string& file, const char* dtype, const std::vector<int64_t>& shape) {
  return json{{"file", file}, {"dtype", dtype}, {"shape", shape}};
}

void write_trace_files(const Trace& t, const fs::path& tmp) {
  const auto T = static_cast<int64_t>(t.tokens.size());
  const int64_t H = t.model.n_head, d = t.model.head_dim;
  json arrays = json::object();
  json root;
  root["format"] = kFormatName;
  root["schema_version"] = t.schema_version;
  root["attnscope_version"] = t.attnscope_version;
  root["created_at"] = t.created_at;
  root["backend"] = t.backend;
  const ModelIdentity& m = t.model;
  root["model"] = {{"path", m.path},
                   {"sha256", m.sha256},
                   {"architecture", m.architecture},
                   {"name", m.name},
                   {"n_layer", m.n_layer},
                   {"n_head", m.n_head},
                   {"n_head_kv", m.n_head_kv},
                   {"head_dim", m.head_dim},
                   {"vocab_size", m.vocab_size},
                   {"rope_theta", m.rope_theta}};
  root["variant"] = {{"spec", t.variant.to_string()}, {"display_name", t.variant.display_name()}};
  root["tokens"] = t.tokens;
  json texts = json::array();
  for (const auto& s : t.token_texts) texts.push_back(text_json(s));
  root["token_texts"] = texts;
  root["n_prompt"] = t.n_prompt;

  std::vector<bool> q_present, k_present;
  for (size_t l = 0; l < t.q.size(); ++l) {
    q_present.push_back(!t.q[l].empty());
    if (t.q[l].empty()) continue;
    const std::string name = "q_L" + std::to_string(l);
    const std::vector<int64_t> shape{T, H, d};
    write_npy(tmp / (name + ".npy"), shape, t.q[l].data());
    arrays[name] = array_entry(name + ".npy", "float32", shape);
  }
  for (size_t l = 0; l < t.k.size(); ++l) {
    k_present.push_back(!t.k[l].empty());
    if (t.k[l].empty()) continue;
    const std::string name = "k_L" + std::to_string(l);
    const std::vector<int64_t> shape{T, t.k_heads[l], d};
    write_npy(tmp / (name + ".npy"), shape, t.k[l].data());
    arrays[name] = array_entry(name + ".npy", "float32", shape);
  }
  root["q_present"] = q_present;
  root["k_present"] = k_present;
  root["k_heads"] = t.k_heads;

  json groups = json::array();
  for (const auto& g : t.groups) groups.push_back(group_json(g));
  root["groups"] = groups;
  json gsteps = json::array();
  for (const auto& step : t.group_steps) {
    json s = json::array();
    for (const auto& g : step) s.push_back(group_json(g));
    gsteps.push_back(s);
  }
  root["group_steps"] = gsteps;
  json masks = json::array();
  for (const auto& layer : t.masks) {
    json ml = json::array();
    for (const auto& mk : layer) ml.push_back(mask_json(mk));
    masks.push_back(ml);
  }
  root["masks"] = masks;
  json msteps = json::array();
  for (const auto& step : t.mask_steps) {
    json sl = json::array();
    for (const auto& layer : step) {
      json ml = json::array();
      for (const auto& mk : layer) ml.push_back(mask_json(mk));
      sl.push_back(ml);
    }
    msteps.push_back(sl);
  }
  root["mask_steps"] = msteps;
  json dens = json::array();
  for (const auto& v : t.mask_density) dens.push_back(float_array(v));
  root["mask_density"] = dens;
  json notes = json::array();
  for (const auto& s : t.pattern_notes) notes.push_back(text_json(s));
  root["pattern_notes"] = notes;
  json scores = json::array();
  for (const auto& v : t.pattern_scores) scores.push_back(float_array(v));
  root["pattern_scores"] = scores;
  root["string"] = {{"shift", t.string_shift}, {"window", t.string_window}};

  json kv = json::array();
  std::vector<uint8_t> reasons;
  for (const auto& step : t.kv_steps) {
    json s = json::array();
    for (const KvStep& k : step) {
      std::vector<int64_t> lengths;
      for (const auto& r : k.reasons) {
        lengths.push_back(static_cast<int64_t>(r.size()));
        reasons.insert(reasons.end(), r.begin(), r.end());
      }
      s.push_back(json{{"position", k.position},
                       {"budgets", k.budgets},
                       {"lost_mass", float_array(k.lost_mass)},
                       {"lengths", lengths}});
    }
    kv.push_back(s);
  }
  root["kv_steps"] = kv;
  if (!t.kv_steps.empty()) {
    const std::vector<int64_t> shape{static_cast<int64_t>(reasons.size())};
    write_npy(tmp / "kv_reasons.npy", shape, reasons.data());
    arrays["kv_reasons"] = array_entry("kv_reasons.npy", "uint8", shape);
  }

  size_t top_k = 0;
  for (const auto& n : t.next_token) top_k = std::max(top_k, n.ids.size());
  root["next_token"] = {{"count", t.next_token.size()}, {"k", top_k}};
  if (!t.next_token.empty()) {
    const size_t n = t.next_token.size();
    std::vector<int32_t> ids(n * top_k, -1);
    std::vector<float> lps(n * top_k, 0.0f);
    for (size_t i = 0; i < n; ++i) {
      std::copy(t.next_token[i].ids.begin(), t.next_token[i].ids.end(), ids.begin() + i * top_k);
      std::copy(t.next_token[i].logprobs.begin(), t.next_token[i].logprobs.end(),
                lps.begin() + i * top_k);
    }
    const std::vector<int64_t> shape{static_cast<int64_t>(n), static_cast<int64_t>(top_k)};
    write_npy(tmp / "next_token_ids.npy", shape, ids.data());
    write_npy(tmp / "next_token_logprobs.npy", shape, lps.data());
    arrays["next_token_ids"] = array_entry("next_token_ids.npy", "int32", shape);
    arrays["next_token_logprobs"] = array_entry("next_token_logprobs.npy", "float32", shape);
  }

  root["kl_per_position"] = float_array(t.kl_per_position);
  root["top1_agree"] = t.top1_agree;
  root["layer_rel_error"] = float_array(t.layer_rel_error);
  json metrics = json::object(), timings = json::object();
  for (const auto& [k, v] : t.metrics) metrics[k] = metric_json(v);
  for (const auto& [k, v] : t.timings) timings[k] = metric_json(v);
  root["metrics"] = metrics;
  root["timings"] = timings;
  root["arrays"] = arrays;
  write_file_atomic(tmp / "trace.json",
                    root.dump(1, ' ', false, json::error_handler_t::replace) + "\n");
}

// ------------------------------------------------------------------------------------------
// Reading: typed accessors that name the field on failure.

// The shared typed accessors (json_fields.h) plus the trace's own kinds of values.
struct Reader : JsonFields {
  using JsonFields::JsonFields;
  const json& arr(const json& v, const std::string& field) const { return array(v, field); }
  float f32(const json& v, const std::string& field) const {
    if (!v.is_number()) fail(field, "expected a finite number");
    const double x = v.get<double>();
    if (!std::isfinite(x) || std::fabs(x) > std::numeric_limits<float>::max()) {
      fail(field, "expected a finite float32 number");
    }
    return static_cast<float>(x);
  }
  double metric(const json& v, const std::string& field) const {
    if (v.is_number()) return v.get<double>();
    if (v.is_string()) {
      const auto& s = v.get_ref<const std::string&>();
      if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
      if (s == "inf") return std::numeric_limits<double>::infinity();
      if (s == "-inf") return -std::numeric_limits<double>::infinity();
    }
    fail(field, "expected a number or \"nan\", \"inf\", \"-inf\"");
  }
  std::vector<float> floats(const json& v, const std::string& field) const {
    arr(v, field);
    std::vector<float> out;
    out.reserve(v.size());
    for (size_t i = 0; i < v.size(); ++i) out.push_back(f32(v[i], idx(field, i)));
    return out;
  }
  std::vector<int> ints(const json& v, const std::string& field, int64_t lo, int64_t hi) const {
    arr(v, field);
    std::vector<int> out;
    out.reserve(v.size());
    for (size_t i = 0; i < v.size(); ++i) out.push_back(i32(v[i], idx(field, i), lo, hi));
    return out;
  }
  GroupStep group(const json& v, const std::string& f) const {
    GroupStep g;
    g.n_kv = i32(at(v, f, "n_kv"), f + ".n_kv", 1, kMaxHeads);
    g.kv_of_query = ints(at(v, f, "kv_of_query"), f + ".kv_of_query", 0, g.n_kv - 1);
    g.key_norms = floats(at(v, f, "key_norms"), f + ".key_norms");
    // Optional: traces written before SQA recorded it have every head active.
    if (v.contains("active_query_heads")) {
      g.active_query_heads =
          ints(v["active_query_heads"], f + ".active_query_heads", 0, kMaxHeads - 1);
    }
    return g;
  }
  HeadMask mask(const json& v, const std::string& f) const {
    HeadMask m;
    m.sink_tokens = i32(at(v, f, "sink_tokens"), f + ".sink_tokens", 0, kMaxTokens);
    m.window = i32(at(v, f, "window"), f + ".window", 0, kMaxTokens);
    m.block = i32(at(v, f, "block"), f + ".block", 1, kMaxTokens);
    m.all_blocks = boolean(at(v, f, "all_blocks"), f + ".all_blocks");
    m.n_qblocks = i32(at(v, f, "n_qblocks"), f + ".n_qblocks", 0, kMaxBlocks);
    m.n_kblocks = i32(at(v, f, "n_kblocks"), f + ".n_kblocks", 0, kMaxBlocks);
    if (!base64_decode(str(at(v, f, "blocks"), f + ".blocks"), m.blocks)) {
      fail(f + ".blocks", "expected base64 text");
    }
    return m;
  }
};

struct ArrayInfo {
  std::string file, dtype;
  std::vector<int64_t> shape;
};

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Looks up `name` in the arrays table, checks it against what trace.json implies, reads the npy
// and checks its shape against the table.
template <typename T, typename ReadFn>
std::vector<T> read_array(const Reader& r, const fs::path& dir, const json& arrays,
                          const std::string& name, const char* dtype,
                          const std::vector<int64_t>& shape, ReadFn read) {
  const std::string f = "arrays." + name;
  const json& e = r.at(arrays, "arrays", name.c_str());
  const std::string file = r.str(r.at(e, f, "file"), f + ".file");
  if (file != name + ".npy") r.fail(f + ".file", "expected \"" + name + ".npy\"");
  if (r.str(r.at(e, f, "dtype"), f + ".dtype") != dtype) {
    r.fail(f + ".dtype", std::string("expected \"") + dtype + "\"");
  }
  const json& sj = r.arr(r.at(e, f, "shape"), f + ".shape");
  std::vector<int64_t> table_shape;
  for (size_t i = 0; i < sj.size(); ++i) {
    table_shape.push_back(r.integer(sj[i], idx(f + ".shape", i), 0, int64_t{1} << 40));
  }
  if (table_shape != shape) {
    r.fail(f + ".shape", "expected " + shape_text(shape) + " (from the other fields), got " +
                             shape_text(table_shape));
  }
  const fs::path path = dir / file;
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw_bad_input(path.string(), "missing array file");
  auto a = read(path);
  if (a.shape != shape) {
    throw_bad_input(path.string(), "expected shape " + shape_text(shape) +
                                       " (from trace.json), got " + shape_text(a.shape));
  }
  return std::move(a.data);
}

Trace parse_trace(const fs::path& dir, const json& root, const Reader& r) {
  Trace t;
  if (!root.is_object()) r.fail("(root)", "expected a JSON object");
  if (r.str(r.at(root, "", "format"), "format") != kFormatName) {
    r.fail("format", std::string("expected \"") + kFormatName + "\"");
  }
  t.schema_version = r.i32(r.at(root, "", "schema_version"), "schema_version");
  if (t.schema_version != kTraceSchemaVersion) {
    r.fail("schema_version", "expected " + std::to_string(kTraceSchemaVersion) +
                                 " (the schema this build reads), got " +
                                 std::to_string(t.schema_version));
  }
  t.attnscope_version = r.str(r.at(root, "", "attnscope_version"), "attnscope_version");
  t.created_at = r.str(r.at(root, "", "created_at"), "created_at");
  t.backend = r.str(r.at(root, "", "backend"), "backend");
  const json& mj = r.at(root, "", "model");
  ModelIdentity& m = t.model;
  m.path = r.str(r.at(mj, "model", "path"), "model.path");
  m.sha256 = r.str(r.at(mj, "model", "sha256"), "model.sha256");
  m.architecture = r.str(r.at(mj, "model", "architecture"), "model.architecture");
  m.name = r.str(r.at(mj, "model", "name"), "model.name");
  m.n_layer = r.i32(r.at(mj, "model", "n_layer"), "model.n_layer", 1, kMaxLayers);
  m.n_head = r.i32(r.at(mj, "model", "n_head"), "model.n_head", 1, kMaxHeads);
  m.n_head_kv = r.i32(r.at(mj, "model", "n_head_kv"), "model.n_head_kv", 1, kMaxHeads);
  m.head_dim = r.i32(r.at(mj, "model", "head_dim"), "model.head_dim", 1, kMaxHeadDim);
  m.vocab_size = r.i32(r.at(mj, "model", "vocab_size"), "model.vocab_size", 1, kMaxVocab);
  m.rope_theta = r.f32(r.at(mj, "model", "rope_theta"), "model.rope_theta");

  const json& vj = r.at(root, "", "variant");
  const std::string spec = r.str(r.at(vj, "variant", "spec"), "variant.spec");
  r.str(r.at(vj, "variant", "display_name"), "variant.display_name");
  try {
    t.variant = VariantSpec::parse(spec);
  } catch (const Error& e) {
    r.fail("variant.spec", e.what());
  }

  const json& tj = r.arr(r.at(root, "", "tokens"), "tokens");
  if (static_cast<int64_t>(tj.size()) > kMaxTokens)
    r.fail("tokens", "expected at most 2^24 tokens");
  t.tokens.reserve(tj.size());
  for (size_t i = 0; i < tj.size(); ++i) {
    t.tokens.push_back(r.i32(tj[i], idx("tokens", i), 0, m.vocab_size - 1));
  }
  const json& tx = r.arr(r.at(root, "", "token_texts"), "token_texts");
  for (size_t i = 0; i < tx.size(); ++i)
    t.token_texts.push_back(r.text(tx[i], idx("token_texts", i)));
  const auto T = static_cast<int64_t>(t.tokens.size());
  t.n_prompt = r.i32(r.at(root, "", "n_prompt"), "n_prompt", 0, T);

  const json& arrays = r.at(root, "", "arrays");
  if (!arrays.is_object()) r.fail("arrays", "expected an object");
  size_t arrays_used = 0;
  const int64_t H = m.n_head, d = m.head_dim;
  const json& qp = r.arr(r.at(root, "", "q_present"), "q_present");
  const json& kp = r.arr(r.at(root, "", "k_present"), "k_present");
  const size_t L = static_cast<size_t>(m.n_layer);
  if (qp.size() != 0 && qp.size() != L) r.fail("q_present", "expected 0 or n_layer entries");
  if (kp.size() != 0 && kp.size() != L) r.fail("k_present", "expected 0 or n_layer entries");
  t.k_heads = r.ints(r.at(root, "", "k_heads"), "k_heads", 1, kMaxHeads);
  if (t.k_heads.size() != 0 && t.k_heads.size() != L)
    r.fail("k_heads", "expected 0 or n_layer entries");
  const auto read_f32 = [](const fs::path& p) { return read_npy_f32(p); };
  for (size_t l = 0; l < qp.size(); ++l) {
    t.q.emplace_back();
    if (!r.boolean(qp[l], idx("q_present", l))) continue;
    t.q[l] = read_array<float>(r, dir, arrays, "q_L" + std::to_string(l), "float32", {T, H, d},
                               read_f32);
    ++arrays_used;
  }
  for (size_t l = 0; l < kp.size(); ++l) {
    t.k.emplace_back();
    if (!r.boolean(kp[l], idx("k_present", l))) continue;
    if (t.k_heads.empty()) r.fail("k_heads", "expected one entry per layer when k is stored");
    t.k[l] = read_array<float>(r, dir, arrays, "k_L" + std::to_string(l), "float32",
                               {T, t.k_heads[l], d}, read_f32);
    ++arrays_used;
  }

  const json& gj = r.arr(r.at(root, "", "groups"), "groups");
  for (size_t l = 0; l < gj.size(); ++l) t.groups.push_back(r.group(gj[l], idx("groups", l)));
  const json& gs = r.arr(r.at(root, "", "group_steps"), "group_steps");
  for (size_t s = 0; s < gs.size(); ++s) {
    const std::string f = idx("group_steps", s);
    r.arr(gs[s], f);
    t.group_steps.emplace_back();
    for (size_t l = 0; l < gs[s].size(); ++l)
      t.group_steps[s].push_back(r.group(gs[s][l], idx(f, l)));
  }
  const json& mk = r.arr(r.at(root, "", "masks"), "masks");
  for (size_t l = 0; l < mk.size(); ++l) {
    const std::string f = idx("masks", l);
    r.arr(mk[l], f);
    t.masks.emplace_back();
    for (size_t h = 0; h < mk[l].size(); ++h) t.masks[l].push_back(r.mask(mk[l][h], idx(f, h)));
  }
  // Optional: traces written before decode masks were recorded have none.
  if (root.contains("mask_steps")) {
    const json& ms = r.arr(root["mask_steps"], "mask_steps");
    for (size_t s = 0; s < ms.size(); ++s) {
      const std::string fs_ = idx("mask_steps", s);
      r.arr(ms[s], fs_);
      t.mask_steps.emplace_back();
      for (size_t l = 0; l < ms[s].size(); ++l) {
        const std::string f = idx(fs_, l);
        r.arr(ms[s][l], f);
        t.mask_steps[s].emplace_back();
        for (size_t h = 0; h < ms[s][l].size(); ++h)
          t.mask_steps[s][l].push_back(r.mask(ms[s][l][h], idx(f, h)));
      }
    }
  }
  const json& dn = r.arr(r.at(root, "", "mask_density"), "mask_density");
  for (size_t l = 0; l < dn.size(); ++l)
    t.mask_density.push_back(r.floats(dn[l], idx("mask_density", l)));
  const json& nt = r.arr(r.at(root, "", "pattern_notes"), "pattern_notes");
  for (size_t l = 0; l < nt.size(); ++l)
    t.pattern_notes.push_back(r.text(nt[l], idx("pattern_notes", l)));
  const json& sc = r.arr(r.at(root, "", "pattern_scores"), "pattern_scores");
  for (size_t l = 0; l < sc.size(); ++l)
    t.pattern_scores.push_back(r.floats(sc[l], idx("pattern_scores", l)));
  const json& st = r.at(root, "", "string");
  t.string_shift = r.i32(r.at(st, "string", "shift"), "string.shift", 0, kMaxTokens);
  t.string_window = r.i32(r.at(st, "string", "window"), "string.window", 0, kMaxTokens);

  const json& kv = r.arr(r.at(root, "", "kv_steps"), "kv_steps");
  std::vector<std::vector<std::vector<int64_t>>> lengths;
  int64_t total = 0;
  for (size_t s = 0; s < kv.size(); ++s) {
    const std::string f = idx("kv_steps", s);
    r.arr(kv[s], f);
    t.kv_steps.emplace_back();
    lengths.emplace_back();
    for (size_t l = 0; l < kv[s].size(); ++l) {
      const std::string g = idx(f, l);
      const json& e = kv[s][l];
      KvStep k;
      k.position = r.i32(r.at(e, g, "position"), g + ".position", 0, std::max<int64_t>(T - 1, 0));
      k.budgets = r.ints(r.at(e, g, "budgets"), g + ".budgets", 0, kMaxTokens);
      k.lost_mass = r.floats(r.at(e, g, "lost_mass"), g + ".lost_mass");
      const json& lj = r.arr(r.at(e, g, "lengths"), g + ".lengths");
      if (lj.size() != k.budgets.size())
        r.fail(g + ".lengths", "expected one entry per KV head (as budgets)");
      std::vector<int64_t> lens;
      for (size_t h = 0; h < lj.size(); ++h) {
        lens.push_back(r.integer(lj[h], idx(g + ".lengths", h), 0, T));
        total += lens.back();
      }
      lengths.back().push_back(std::move(lens));
      t.kv_steps[s].push_back(std::move(k));
    }
  }
  if (!kv.empty()) {
    const auto reasons = read_array<uint8_t>(r, dir, arrays, "kv_reasons", "uint8", {total},
                                             [](const fs::path& p) { return read_npy_u8(p); });
    ++arrays_used;
    size_t off = 0;
    for (size_t s = 0; s < lengths.size(); ++s) {
      for (size_t l = 0; l < lengths[s].size(); ++l) {
        for (int64_t len : lengths[s][l]) {
          t.kv_steps[s][l].reasons.emplace_back(
              reasons.begin() + static_cast<ptrdiff_t>(off),
              reasons.begin() + static_cast<ptrdiff_t>(off + len));
          off += static_cast<size_t>(len);
        }
      }
    }
  }

  const json& nj = r.at(root, "", "next_token");
  const int64_t n_next = r.integer(r.at(nj, "next_token", "count"), "next_token.count", 0, T);
  const int64_t top_k = r.integer(r.at(nj, "next_token", "k"), "next_token.k", 0, m.vocab_size);
  if (n_next > 0) {
    const auto ids = read_array<int32_t>(r, dir, arrays, "next_token_ids", "int32", {n_next, top_k},
                                         [](const fs::path& p) { return read_npy_i32(p); });
    const auto lps = read_array<float>(r, dir, arrays, "next_token_logprobs", "float32",
                                       {n_next, top_k}, read_f32);
    arrays_used += 2;
    const std::string idf = (dir / "next_token_ids.npy").string();
    for (int64_t i = 0; i < n_next; ++i) {
      TopKDistribution dist;
      for (int64_t k = 0; k < top_k; ++k) {
        const size_t at = static_cast<size_t>(i * top_k + k);
        if (ids[at] == -1) {
          for (int64_t k2 = k; k2 < top_k; ++k2) {
            if (ids[static_cast<size_t>(i * top_k + k2)] != -1) {
              throw_bad_input(idf, "row " + std::to_string(i) + ": padding (-1) must end the row");
            }
          }
          break;
        }
        if (ids[at] < 0 || ids[at] >= m.vocab_size) {
          throw_bad_input(idf, "row " + std::to_string(i) + ": expected token ids in [0, " +
                                   std::to_string(m.vocab_size - 1) + "], got " +
                                   std::to_string(ids[at]));
        }
        dist.ids.push_back(ids[at]);
        dist.logprobs.push_back(lps[at]);
      }
      t.next_token.push_back(std::move(dist));
    }
  }
  if (arrays.size() != arrays_used) {
    r.fail("arrays", "expected " + std::to_string(arrays_used) +
                         " entries (one per stored array), got " + std::to_string(arrays.size()));
  }

  t.kl_per_position = r.floats(r.at(root, "", "kl_per_position"), "kl_per_position");
  const json& ta = r.arr(r.at(root, "", "top1_agree"), "top1_agree");
  for (size_t i = 0; i < ta.size(); ++i) {
    t.top1_agree.push_back(static_cast<uint8_t>(r.i32(ta[i], idx("top1_agree", i), 0, 1)));
  }
  t.layer_rel_error = r.floats(r.at(root, "", "layer_rel_error"), "layer_rel_error");
  const json& mt = r.at(root, "", "metrics");
  if (!mt.is_object()) r.fail("metrics", "expected an object");
  for (auto it = mt.begin(); it != mt.end(); ++it)
    t.metrics[it.key()] = r.metric(it.value(), "metrics." + it.key());
  const json& tm = r.at(root, "", "timings");
  if (!tm.is_object()) r.fail("timings", "expected an object");
  for (auto it = tm.begin(); it != tm.end(); ++it)
    t.timings[it.key()] = r.metric(it.value(), "timings." + it.key());
  return t;
}

}  // namespace

void save_trace(const Trace& trace, const fs::path& dir) {
  try {
    validate_trace(trace, "trace");
  } catch (const Error& e) {
    throw_runtime(dir.string() + ": cannot save an inconsistent trace: " + e.what());
  }
  replace_directory_atomic(dir, "trace.json", "trace",
                           [&](const fs::path& tmp) { write_trace_files(trace, tmp); });
}

Trace load_trace(const fs::path& dir) {
  const fs::path json_path = dir / "trace.json";
  const Reader r(json_path.string());
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw_bad_input(dir.string(), "expected a trace directory");
  if (!fs::is_regular_file(json_path, ec)) throw_bad_input(json_path.string(), "missing file");
  const std::string text = read_text_file(json_path);
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {
    throw_bad_input(json_path.string(), std::string("expected valid JSON (") + e.what() + ")");
  }
  Trace t;
  try {
    t = parse_trace(dir, root, r);
  } catch (const json::exception& e) {
    // Accessors check types first; this catches anything they missed, still as bad input.
    throw_bad_input(json_path.string(), std::string("unexpected content (") + e.what() + ")");
  }
  validate_trace(t, json_path.string());
  return t;
}

size_t trace_memory_bytes(const Trace& t) {
  const auto bytes = [](const auto& v) { return v.size() * sizeof(v[0]); };
  size_t n = bytes(t.tokens) + bytes(t.kl_per_position) + bytes(t.top1_agree) +
             bytes(t.layer_rel_error) + bytes(t.k_heads);
  for (const auto& s : t.token_texts) n += s.size();
  for (const auto& v : t.q) n += bytes(v);
  for (const auto& v : t.k) n += bytes(v);
  const auto group_bytes = [&](const GroupStep& g) {
    return bytes(g.kv_of_query) + bytes(g.key_norms) + bytes(g.active_query_heads);
  };
  for (const auto& g : t.groups) n += group_bytes(g);
  for (const auto& step : t.group_steps)
    for (const auto& g : step) n += group_bytes(g);
  for (const auto& layer : t.masks)
    for (const auto& m : layer) n += bytes(m.blocks);
  for (const auto& step : t.mask_steps)
    for (const auto& layer : step)
      for (const auto& m : layer) n += bytes(m.blocks);
  for (const auto& v : t.mask_density) n += bytes(v);
  for (const auto& v : t.pattern_scores) n += bytes(v);
  for (const auto& s : t.pattern_notes) n += s.size();
  for (const auto& step : t.kv_steps) {
    for (const auto& k : step) {
      n += bytes(k.budgets) + bytes(k.lost_mass);
      for (const auto& r : k.reasons) n += bytes(r);
    }
  }
  for (const auto& d : t.next_token) n += bytes(d.ids) + bytes(d.logprobs);
  return n;
}

}  // namespace attnscope
