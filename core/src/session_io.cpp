// Session directories: index.json (schema kSessionSchemaVersion, a superset of what
// `attnscope-cli run` wrote before sessions existed) + one trace folder per run + optional
// needle.json and throughput.json; written atomically as a whole, validated field by field on
// load. Also the needle results' JSON form.
#include "attnscope/session_io.h"

#include <cctype>
#include <cmath>
#include <set>

#include "attnscope/error.h"
#include "attnscope/file_util.h"
#include "attnscope/trace_io.h"
#include "json_fields.h"
#include "throughput_json.h"
#include "trace_limits.h"

namespace attnscope {

using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr const char* kSessionFormat = "attnscope-session";
constexpr const char* kNeedleFormat = "attnscope-needle";
constexpr int kNeedleSchemaVersion = 1;
constexpr const char* kSweepsFormat = "attnscope-throughput-sweeps";
constexpr int kSweepsSchemaVersion = 1;
constexpr const char* kIndexFile = "index.json";
constexpr const char* kNeedleFile = "needle.json";
constexpr const char* kThroughputFile = "throughput.json";
constexpr size_t kMaxFolderName = 80;  // keeps paths short on every file system

using trace_detail::kMaxTokens;

// Metric maps as the index always held them: non-finite values become null.
json number_map(const std::map<std::string, double>& values) {
  json j = json::object();
  for (const auto& [k, v] : values) {
    if (std::isfinite(v)) {
      j[k] = v;
    } else {
      j[k] = nullptr;
    }
  }
  return j;
}

json needle_results_value(const std::vector<NeedleResult>& results) {
  json list = json::array();
  for (const NeedleResult& r : results) {
    json cells = json::array();
    for (const NeedleCell& c : r.cells) {
      cells.push_back({{"length", c.length},
                       {"depth", c.depth},
                       {"trials", c.trials},
                       {"successes", c.successes}});
    }
    json trials = json::array();
    for (const NeedleTrial& t : r.trials) {
      trials.push_back({{"length", t.length},
                        {"depth", t.depth},
                        {"trial", t.trial},
                        {"seed", t.seed},
                        {"passkey", text_json(t.passkey)},
                        {"needle_token", t.needle_token},
                        {"actual_depth", t.actual_depth},
                        {"generated_tokens", t.generated_tokens},
                        {"generated", text_json(t.generated)},
                        {"success", t.success},
                        {"seconds", t.seconds}});
    }
    list.push_back({{"variant", r.variant}, {"cells", cells}, {"trials", trials}});
  }
  return json{
      {"format", kNeedleFormat}, {"schema_version", kNeedleSchemaVersion}, {"results", list}};
}

void check_format(const json& root, const JsonFields& f, const char* format, int max_version) {
  f.object(root, "");
  const json& fmt = f.at(root, "", "format");
  if (f.str(fmt, "format") != format)
    f.fail_got("format", std::string("expected \"") + format + "\"", fmt);
  f.integer(f.at(root, "", "schema_version"), "schema_version", 1, max_version);
}

VariantSpec parse_spec(const JsonFields& f, const json& v, const std::string& field) {
  const std::string text = f.str(v, field);
  try {
    return VariantSpec::parse(text);
  } catch (const Error& e) {
    f.fail(field, e.what());
  }
}

std::vector<NeedleResult> needle_results_from_value(const json& root, const JsonFields& f) {
  check_format(root, f, kNeedleFormat, kNeedleSchemaVersion);
  const json& list = f.array(f.at(root, "", "results"), "results");
  std::vector<NeedleResult> out;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string rf = field_index("results", i);
    const json& rj = list[i];
    NeedleResult r;
    parse_spec(f, f.at(rj, rf, "variant"), rf + ".variant");
    r.variant = f.str(f.at(rj, rf, "variant"), rf + ".variant");
    const json& cells = f.array(f.at(rj, rf, "cells"), rf + ".cells");
    for (size_t c = 0; c < cells.size(); ++c) {
      const std::string cf = field_index(rf + ".cells", c);
      const json& cj = cells[c];
      NeedleCell cell;
      cell.length = f.i32(f.at(cj, cf, "length"), cf + ".length", 1, kMaxTokens);
      cell.depth = f.number(f.at(cj, cf, "depth"), cf + ".depth", 0.0, 1.0);
      cell.trials = f.i32(f.at(cj, cf, "trials"), cf + ".trials", 0, 1 << 30);
      cell.successes = f.i32(f.at(cj, cf, "successes"), cf + ".successes", 0, cell.trials);
      r.cells.push_back(cell);
    }
    const json& trials = f.array(f.at(rj, rf, "trials"), rf + ".trials");
    for (size_t t = 0; t < trials.size(); ++t) {
      const std::string tf = field_index(rf + ".trials", t);
      const auto k = [&](const char* key) { return tf + "." + key; };
      const json& tj = trials[t];
      NeedleTrial trial;
      trial.length = f.i32(f.at(tj, tf, "length"), k("length"), 1, kMaxTokens);
      trial.depth = f.number(f.at(tj, tf, "depth"), k("depth"), 0.0, 1.0);
      trial.trial = f.i32(f.at(tj, tf, "trial"), k("trial"), 0, 1 << 30);
      trial.seed = f.u64(f.at(tj, tf, "seed"), k("seed"));
      trial.passkey = f.text(f.at(tj, tf, "passkey"), k("passkey"));
      trial.needle_token = f.i32(f.at(tj, tf, "needle_token"), k("needle_token"), 0, trial.length);
      trial.actual_depth = f.number(f.at(tj, tf, "actual_depth"), k("actual_depth"), 0.0, 1.0);
      const json& gen = f.array(f.at(tj, tf, "generated_tokens"), k("generated_tokens"));
      for (size_t g = 0; g < gen.size(); ++g) {
        trial.generated_tokens.push_back(
            f.i32(gen[g], field_index(k("generated_tokens"), g), 0, (int64_t{1} << 31) - 1));
      }
      trial.generated = f.text(f.at(tj, tf, "generated"), k("generated"));
      trial.success = f.boolean(f.at(tj, tf, "success"), k("success"));
      trial.seconds = f.number(f.at(tj, tf, "seconds"), k("seconds"), 0.0);
      r.trials.push_back(std::move(trial));
    }
    out.push_back(std::move(r));
  }
  return out;
}

json sweeps_value(const std::vector<ThroughputResult>& sweeps) {
  json list = json::array();
  for (const ThroughputResult& s : sweeps) list.push_back(throughput_json_value(s));
  return json{
      {"format", kSweepsFormat}, {"schema_version", kSweepsSchemaVersion}, {"sweeps", list}};
}

std::vector<ThroughputResult> sweeps_from_value(const json& root, const JsonFields& f) {
  check_format(root, f, kSweepsFormat, kSweepsSchemaVersion);
  const json& list = f.array(f.at(root, "", "sweeps"), "sweeps");
  std::vector<ThroughputResult> out;
  for (size_t i = 0; i < list.size(); ++i) {
    out.push_back(throughput_from_json_value(list[i], f, field_index("sweeps", i)));
  }
  return out;
}

std::string dump(const json& j) {
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

// Reads and parses a whole JSON file of the session.
template <typename Read>
auto read_json_file(const fs::path& path, Read&& read) {
  return read_json_document(read_text_file(path), JsonFields(path.string()), read);
}

// A folder named in index.json: one plain path component, so it can only name an entry of the
// session directory itself ("../x", "/abs", "a/b", "." are refused).
bool is_plain_folder_name(const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.size() > 255) return false;
  for (const char c : name) {
    if (c == '/' || c == '\\' || c == '\0') return false;
  }
  return true;
}

// How `t` differs from the baseline in model identity or tokens: "" when it does not, else
// "model sha256 'x', expected the baseline's 'y'".
std::string baseline_mismatch(const Trace& base, const Trace& t) {
  const auto differs = [](const std::string& what, const std::string& got,
                          const std::string& expected) {
    return what + " " + got + ", expected the baseline's " + expected;
  };
  if (t.model.sha256 != base.model.sha256)
    return differs("model sha256", "'" + t.model.sha256 + "'", "'" + base.model.sha256 + "'");
  if (t.model.n_layer != base.model.n_layer)
    return differs("n_layer", std::to_string(t.model.n_layer), std::to_string(base.model.n_layer));
  if (t.model.n_head != base.model.n_head)
    return differs("n_head", std::to_string(t.model.n_head), std::to_string(base.model.n_head));
  if (t.n_prompt != base.n_prompt)
    return differs("n_prompt", std::to_string(t.n_prompt), std::to_string(base.n_prompt));
  if (t.tokens != base.tokens) {
    return differs("other tokens", "(" + std::to_string(t.tokens.size()) + ")",
                   "(" + std::to_string(base.tokens.size()) + ")");
  }
  return "";
}

// What load_session would refuse, refused before anything is written.
void check_session(const Session& s, const std::string& where) {
  const auto fail = [&](const std::string& what) {
    throw_runtime(where + ": cannot save the session: " + what);
  };
  if (s.decode_steps < 0 || s.decode_steps > kMaxTokens) {
    fail("decode_steps: expected an integer in [0, " + std::to_string(kMaxTokens) + "], got " +
         std::to_string(s.decode_steps));
  }
  if (!std::isfinite(s.run_seconds) || s.run_seconds < 0) {
    fail("run_seconds: expected a finite number >= 0");
  }
  if (s.traces.empty()) return;
  const Trace& base = *s.traces[0];
  if (!base.variant.is_baseline()) {
    fail("traces[0]: expected the baseline, got '" + base.variant.to_string() + "'");
  }
  if (base.n_tokens() - base.n_prompt != s.decode_steps) {
    fail("decode_steps: expected " + std::to_string(base.n_tokens() - base.n_prompt) +
         " (the baseline's decoded tokens), got " + std::to_string(s.decode_steps));
  }
  for (size_t i = 1; i < s.traces.size(); ++i) {
    const std::string why = baseline_mismatch(base, *s.traces[i]);
    if (!why.empty()) fail(field_index("traces", i) + ": " + why);
  }
}

json index_value(const Session& s) {
  json index;
  index["format"] = kSessionFormat;
  index["schema_version"] = kSessionSchemaVersion;
  if (!s.traces.empty()) {
    const ModelIdentity& m = s.traces[0]->model;
    index["model"] = {{"path", text_json(m.path)},
                      {"sha256", text_json(m.sha256)},
                      {"architecture", text_json(m.architecture)}};
  }
  index["n_prompt"] = s.traces.empty() ? 0 : s.traces[0]->n_prompt;
  index["prompt"] = text_json(s.prompt);
  index["decode_steps"] = s.decode_steps;
  index["run_seconds"] = s.run_seconds;
  index["seconds"] = s.run_seconds;  // the name `run --out` used before sessions
  json list = json::array();
  for (size_t i = 0; i < s.traces.size(); ++i) {
    const Trace& t = *s.traces[i];
    list.push_back({{"dir", session_trace_folder(i, t.variant)},
                    {"baseline", i == 0},
                    {"spec", t.variant.to_string()},
                    {"display_name", text_json(t.variant.display_name())},
                    {"needs_training", t.variant.needs_training()},
                    {"metrics", number_map(t.metrics)},
                    {"timings", number_map(t.timings)}});
  }
  index["traces"] = list;
  return index;
}

}  // namespace

std::string session_trace_folder(size_t index, const VariantSpec& spec) {
  if (index == 0) return "baseline";
  // [A-Za-z0-9.-] kept, runs of anything else become one '_'; no leading/trailing '_' or '.'.
  std::string name;
  for (const char c : spec.display_name()) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '.' || c == '-') {
      name += c;
    } else if (name.empty() || name.back() != '_') {
      name += '_';
    }
  }
  while (!name.empty() && (name.back() == '_' || name.back() == '.')) name.pop_back();
  while (!name.empty() && (name.front() == '_' || name.front() == '.')) name.erase(name.begin());
  if (name.size() > kMaxFolderName) name.resize(kMaxFolderName);
  return std::to_string(index) + "_" + (name.empty() ? "variant" : name);
}

bool is_session_directory(const fs::path& dir) {
  std::error_code ec;
  return fs::is_directory(dir, ec) && fs::is_regular_file(dir / kIndexFile, ec);
}

std::string needle_results_to_json(const std::vector<NeedleResult>& results) {
  return dump(needle_results_value(results));
}

std::vector<NeedleResult> needle_results_from_json(const std::string& json_text,
                                                   const std::string& where) {
  return read_json_document(json_text, JsonFields(where), needle_results_from_value);
}

void save_session(const Session& session, const fs::path& dir, const SessionProgress& progress) {
  const std::string where = dir.string();
  check_session(session, where);
  // Serialised (and read back, so what is written always loads) before anything touches disk.
  std::string needle_text, throughput_text;
  try {
    if (!session.needle.empty()) {
      needle_text = dump(needle_results_value(session.needle));
      needle_results_from_json(needle_text, kNeedleFile);
    }
    if (!session.throughput.empty()) {
      throughput_text = dump(sweeps_value(session.throughput));
      sweeps_from_value(json::parse(throughput_text), JsonFields(kThroughputFile));
    }
  } catch (const std::exception& e) {
    throw_runtime(where + ": cannot save the session: " + e.what());
  }
  const std::string index_text = dump(index_value(session));
  const double n_steps = static_cast<double>(session.traces.size()) + 1.0;
  replace_directory_atomic(dir, kIndexFile, "session", [&](const fs::path& tmp) {
    for (size_t i = 0; i < session.traces.size(); ++i) {
      const std::string folder = session_trace_folder(i, session.traces[i]->variant);
      if (progress) progress(static_cast<double>(i) / n_steps, "saving " + folder);
      try {
        save_trace(*session.traces[i], tmp / folder);
      } catch (const Error& e) {
        // Name the session's folder, not the temporary one it was written to.
        std::string message = e.what();
        const std::string tmp_name = (tmp / folder).string();
        if (message.rfind(tmp_name, 0) == 0)
          message = (dir / folder).string() + message.substr(tmp_name.size());
        throw Error(e.kind(), message);
      }
    }
    if (progress) progress((n_steps - 1.0) / n_steps, "saving index.json");
    if (!needle_text.empty()) write_file_atomic(tmp / kNeedleFile, needle_text);
    if (!throughput_text.empty()) write_file_atomic(tmp / kThroughputFile, throughput_text);
    write_file_atomic(tmp / kIndexFile, index_text);
  });
  if (progress) progress(1.0, "saved");
}

Session load_session(const fs::path& dir, const SessionProgress& progress) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw_bad_input(dir.string(), "expected a session directory");
  const fs::path index_path = dir / kIndexFile;
  if (!fs::is_regular_file(index_path, ec)) {
    throw_bad_input(index_path.string(), "missing file (expected a session or run directory)");
  }
  Session session = read_json_file(index_path, [&](const json& root, const JsonFields& f) {
    Session s;
    f.object(root, "");
    if (const json* fmt = f.find(root, "", "format")) {
      if (f.str(*fmt, "format") != kSessionFormat) {
        f.fail_got("format", std::string("expected \"") + kSessionFormat + "\"", *fmt);
      }
    }
    f.integer(f.at(root, "", "schema_version"), "schema_version", 1, kSessionSchemaVersion);
    if (const json* p = f.find(root, "", "prompt")) s.prompt = f.text(*p, "prompt");
    s.decode_steps = f.i32(f.at(root, "", "decode_steps"), "decode_steps", 0, kMaxTokens);
    if (const json* rs = f.find(root, "", "run_seconds")) {
      s.run_seconds = f.number(*rs, "run_seconds", 0.0);
    } else if (const json* sec = f.find(root, "", "seconds")) {
      s.run_seconds = f.number(*sec, "seconds", 0.0);
    }
    const json& list = f.array(f.at(root, "", "traces"), "traces");
    std::set<std::string> folders;
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string tf = field_index("traces", i);
      const json& tj = list[i];
      const json& dj = f.at(tj, tf, "dir");
      const std::string folder = f.str(dj, tf + ".dir");
      const fs::path path = dir / folder;
      // A plain name whose entry is a real directory (not a symlink) cannot lead outside `dir`.
      if (!is_plain_folder_name(folder) || !fs::is_directory(fs::symlink_status(path, ec))) {
        f.fail_got(tf + ".dir", "expected a trace folder inside " + dir.string(), dj);
      }
      if (!folders.insert(folder).second) f.fail_got(tf + ".dir", "expected distinct folders", dj);
      const json& bj = f.at(tj, tf, "baseline");
      if (f.boolean(bj, tf + ".baseline") != (i == 0)) {
        f.fail_got(tf + ".baseline",
                   i == 0 ? "expected true (the baseline comes first)"
                          : "expected false (only traces[0] is the baseline)",
                   bj);
      }
      const json& sj = f.at(tj, tf, "spec");
      const VariantSpec listed = parse_spec(f, sj, tf + ".spec");
      if (const json* m = f.find(tj, tf, "metrics")) f.object(*m, tf + ".metrics");
      if (const json* t = f.find(tj, tf, "timings")) f.object(*t, tf + ".timings");

      if (progress) {
        progress(static_cast<double>(i) / (static_cast<double>(list.size()) + 1.0),
                 "loading " + folder);
      }
      Trace trace = load_trace(path);
      if (!(trace.variant == listed)) {
        f.fail_got(tf + ".spec",
                   "expected '" + trace.variant.to_string() + "' (from " + folder + "/trace.json)",
                   sj);
      }
      if (i == 0 && !trace.variant.is_baseline()) {
        f.fail(tf + ".dir", "expected the baseline trace, got '" + trace.variant.to_string() + "'");
      }
      if (i > 0) {
        const std::string why = baseline_mismatch(*s.traces[0], trace);
        if (!why.empty()) f.fail(tf + ".dir", "trace " + folder + " has " + why);
      }
      s.traces.push_back(std::make_shared<const Trace>(std::move(trace)));
    }
    if (!s.traces.empty()) {
      const Trace& base = *s.traces[0];
      const json& mj = f.object(f.at(root, "", "model"), "model");
      const std::string sha = f.text(f.at(mj, "model", "sha256"), "model.sha256");
      if (sha != base.model.sha256) {
        f.fail_got("model.sha256", "expected '" + base.model.sha256 + "' (the baseline trace's)",
                   mj.at("sha256"));
      }
      if (const json* np = f.find(root, "", "n_prompt")) {
        if (f.i32(*np, "n_prompt", 0, kMaxTokens) != base.n_prompt) {
          f.fail_got("n_prompt", "expected " + std::to_string(base.n_prompt) + " (the baseline's)",
                     *np);
        }
      }
      if (s.decode_steps != base.n_tokens() - base.n_prompt) {
        f.fail_got("decode_steps",
                   "expected " + std::to_string(base.n_tokens() - base.n_prompt) +
                       " (the baseline's decoded tokens)",
                   root.at("decode_steps"));
      }
    }
    return s;
  });
  const fs::path needle_path = dir / kNeedleFile;
  if (fs::exists(fs::symlink_status(needle_path, ec))) {
    session.needle = read_json_file(needle_path, needle_results_from_value);
  }
  const fs::path throughput_path = dir / kThroughputFile;
  if (fs::exists(fs::symlink_status(throughput_path, ec))) {
    session.throughput = read_json_file(throughput_path, sweeps_from_value);
  }
  if (progress) progress(1.0, "loaded");
  return session;
}

}  // namespace attnscope
