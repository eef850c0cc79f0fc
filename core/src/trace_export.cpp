// Trace data export (maps, KV decisions, group allocations, masks, quality and head metrics as
// CSV/JSON/NPY) shared by `attnscope-cli export` and the GUI, plus the generic table and matrix
// writers for the data behind a view. Every file goes through write_file_atomic.
#include "attnscope/trace_export.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>

#include "attnscope/error.h"
#include "attnscope/file_util.h"
#include "attnscope/metrics.h"
#include "attnscope/npy.h"
#include "attnscope/utf8_text.h"

namespace attnscope {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kWhatNames[] = {"maps", "kv", "groups", "masks", "metrics", "heads"};
constexpr const char* kFormatNames[] = {"csv", "json", "npy"};

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

json finite_or_null(double v) {
  if (std::isfinite(v)) return v;
  return nullptr;
}

fs::path make_folder(const fs::path& out) {
  std::error_code ec;
  fs::create_directories(out, ec);
  if (!fs::is_directory(out, ec)) throw_runtime(out.string() + ": cannot create the output folder");
  return out;
}

void write_json(const fs::path& path, const json& j) {
  write_file_atomic(path, j.dump(1, ' ', false, json::error_handler_t::replace) + "\n");
}

int64_t i64(size_t v) {
  return static_cast<int64_t>(v);
}

// The indices a filter selects out of [0, n): all of them for -1, else just `filter`, which must
// lie in range (Error(Usage) naming the filter and the range otherwise).
std::vector<int> selection(int filter, int n, const char* name, const char* what) {
  if (filter == -1) {
    std::vector<int> all(static_cast<size_t>(std::max(n, 0)));
    for (int i = 0; i < n; ++i) all[static_cast<size_t>(i)] = i;
    return all;
  }
  if (filter < 0 || filter >= n) {
    throw_usage(std::string("export ") + what + ": " + name + ": expected -1 (all) or 0.." +
                std::to_string(n - 1) + ", got " + std::to_string(filter));
  }
  return {filter};
}

// Adds "layer"/"<head_key>" to a JSON export when the matching filter is set, so a filtered file
// says which slice it holds; unfiltered exports keep their plain form.
void add_filters(json& j, const TraceExportOptions& o, const char* head_key) {
  if (o.layer >= 0) j["layer"] = o.layer;
  if (o.head >= 0) j[head_key] = o.head;
}

// ------------------------------------------------------------------------------------------

std::string export_maps(const Trace& t, ExportFormat format, const fs::path& out,
                        const TraceExportOptions& o, const std::string& where) {
  if (t.q.empty() || t.k.empty()) {
    throw_bad_input(where, "no Q/K in the trace (run with Q/K kept) to compute maps");
  }
  const std::vector<int> layers = selection(o.layer, t.model.n_layer, "layer", "maps");
  const std::vector<int> heads = selection(o.head, t.model.n_head, "head", "maps");
  const int L = static_cast<int>(layers.size()), H = static_cast<int>(heads.size());
  std::vector<MapRequest> requests;
  requests.reserve(layers.size() * heads.size());
  for (int l : layers) {
    for (int h : heads) {
      MapRequest r;
      r.layer = l;
      r.head = h;
      r.out_rows = o.rows;
      r.out_cols = o.cols;
      r.reduce = o.reduce;
      requests.push_back(r);
    }
  }
  std::function<void(double)> progress;
  if (o.progress) {
    // One call per layer's worth of maps ("layer k/L" at k/L, as the CLI has always printed);
    // one per map when a single layer is exported ("head j/H"). Maps finish out of order, so k
    // counts maps done, not a particular layer.
    const int total = L * H;
    progress = [&o, L, H, total, done = 0](double) mutable {
      ++done;
      if (L == 1) {
        o.progress(static_cast<double>(done) / total,
                   "head " + std::to_string(done) + "/" + std::to_string(H));
      } else if (done % H == 0) {
        const int k = done / H;
        o.progress(static_cast<double>(k) / L,
                   "layer " + std::to_string(k) + "/" + std::to_string(L));
      }
    };
  }
  // The folder first, so an unusable output fails before the work.
  const fs::path folder = format == ExportFormat::Csv ? make_folder(out) : fs::path();
  const std::vector<PooledMap> maps = compute_maps(t, requests, nullptr, progress);
  const int rows = maps.empty() ? 0 : maps.back().rows;
  const int cols = maps.empty() ? 0 : maps.back().cols;
  const char* reduce = o.reduce == MapRequest::Mean ? "mean" : "max";
  if (format == ExportFormat::Npy) {
    std::vector<float> all;
    all.reserve(maps.size() * static_cast<size_t>(rows) * static_cast<size_t>(cols));
    for (const PooledMap& m : maps) all.insert(all.end(), m.values.begin(), m.values.end());
    write_npy(out, {L, H, rows, cols}, all.data());
  } else if (format == ExportFormat::Csv) {
    for (size_t i = 0; i < maps.size(); ++i) {
      const PooledMap& m = maps[i];
      // Appended piece by piece: GCC 12 reports a false -Wrestrict on "L" + std::string here.
      std::string name = "L";
      name.append(std::to_string(requests[i].layer))
          .append("_H")
          .append(std::to_string(requests[i].head))
          .append(".csv");
      write_file_atomic(folder / name, csv_matrix(m.values.data(), m.rows, m.cols));
    }
  } else {
    json all_layers = json::array();
    for (int li = 0; li < L; ++li) {
      json grids = json::array();
      for (int hi = 0; hi < H; ++hi) {
        const PooledMap& m = maps[static_cast<size_t>(li) * H + hi];
        json grid = json::array();
        for (int i = 0; i < m.rows; ++i) {
          grid.push_back(
              std::vector<float>(m.values.begin() + static_cast<ptrdiff_t>(i) * m.cols,
                                 m.values.begin() + static_cast<ptrdiff_t>(i + 1) * m.cols));
        }
        grids.push_back(grid);
      }
      all_layers.push_back(grids);
    }
    json j = {{"layers", L},  {"heads", H},       {"rows", rows},
              {"cols", cols}, {"reduce", reduce}, {"maps", all_layers}};
    add_filters(j, o, "head");
    write_json(out, j);
  }
  return "maps: " + std::to_string(L) + " layers x " + std::to_string(H) + " heads pooled to " +
         std::to_string(rows) + " x " + std::to_string(cols) + " (" + reduce + ") -> " +
         out.string();
}

std::string export_kv(const Trace& t, ExportFormat format, const fs::path& out,
                      const TraceExportOptions& o, const std::string& where) {
  if (t.kv_steps.empty()) {
    throw_bad_input(where, "no KV decisions (the trace has no decode steps; run with --decode N)");
  }
  size_t L = 0, Hkv = 0, P = 0;
  for (const auto& s : t.kv_steps) {
    L = std::max(L, s.size());
    for (const auto& k : s) {
      Hkv = std::max(Hkv, k.reasons.size());
      for (const auto& r : k.reasons) P = std::max(P, r.size());
    }
  }
  const std::vector<int> layers = selection(o.layer, static_cast<int>(L), "layer", "kv");
  const std::vector<int> heads = selection(o.head, static_cast<int>(Hkv), "KV head", "kv");
  auto has = [](const auto& v, int i) { return static_cast<size_t>(i) < v.size(); };
  if (format == ExportFormat::Csv) {
    std::string csv = "step,position,layer,kv_head,budget,lost_mass,kept,evicted,reasons\n";
    for (size_t s = 0; s < t.kv_steps.size(); ++s) {
      for (int l : layers) {
        if (!has(t.kv_steps[s], l)) continue;
        const KvStep& k = t.kv_steps[s][static_cast<size_t>(l)];
        for (int h : heads) {
          if (!has(k.reasons, h)) continue;
          const auto hs = static_cast<size_t>(h);
          const auto& r = k.reasons[hs];
          const auto kept = std::count_if(r.begin(), r.end(), [](uint8_t x) { return x != 0; });
          std::string digits;
          for (uint8_t x : r) digits += static_cast<char>('0' + x);
          csv += std::to_string(s) + "," + std::to_string(k.position) + "," + std::to_string(l) +
                 "," + std::to_string(h) + "," +
                 (has(k.budgets, h) ? std::to_string(k.budgets[hs]) : std::string()) + "," +
                 (has(k.lost_mass, h) ? num(k.lost_mass[hs]) : std::string()) + "," +
                 std::to_string(kept) + "," +
                 std::to_string(static_cast<int64_t>(r.size()) - kept) + "," + digits + "\n";
        }
      }
    }
    write_file_atomic(out, csv);
  } else if (format == ExportFormat::Json) {
    json steps = json::array();
    for (const auto& s : t.kv_steps) {
      json step_layers = json::array();
      for (int l : layers) {
        if (!has(s, l)) continue;
        const KvStep& k = s[static_cast<size_t>(l)];
        json reasons = json::array(), lost = json::array(), budgets = json::array();
        for (int h : heads) {
          const auto hs = static_cast<size_t>(h);
          if (has(k.reasons, h)) {
            reasons.push_back(std::vector<int>(k.reasons[hs].begin(), k.reasons[hs].end()));
          }
          if (has(k.lost_mass, h)) lost.push_back(finite_or_null(k.lost_mass[hs]));
          if (has(k.budgets, h)) budgets.push_back(k.budgets[hs]);
        }
        step_layers.push_back({{"position", k.position},
                               {"budgets", budgets},
                               {"lost_mass", lost},
                               {"reasons", reasons}});
      }
      steps.push_back(step_layers);
    }
    json j = {{"reason_codes", {"evicted", "sink", "recent", "scored", "window"}},
              {"steps", steps}};
    add_filters(j, o, "kv_head");
    write_json(out, j);
  } else {
    const fs::path folder = make_folder(out);
    const size_t S = t.kv_steps.size(), Ls = layers.size(), Hs = heads.size();
    std::vector<int32_t> reasons(S * Ls * Hs * P, -1), budgets(S * Ls * Hs, -1), positions(S, -1);
    std::vector<float> lost(S * Ls * Hs, 0.0f);
    for (size_t s = 0; s < S; ++s) {
      for (size_t li = 0; li < Ls; ++li) {
        if (!has(t.kv_steps[s], layers[li])) continue;
        const KvStep& k = t.kv_steps[s][static_cast<size_t>(layers[li])];
        positions[s] = k.position;
        for (size_t hi = 0; hi < Hs; ++hi) {
          const int h = heads[hi];
          if (!has(k.reasons, h)) continue;
          const auto hs = static_cast<size_t>(h);
          const size_t base = (s * Ls + li) * Hs + hi;
          if (has(k.budgets, h)) budgets[base] = k.budgets[hs];
          if (has(k.lost_mass, h)) lost[base] = k.lost_mass[hs];
          for (size_t j = 0; j < k.reasons[hs].size(); ++j) {
            reasons[base * P + j] = k.reasons[hs][j];
          }
        }
      }
    }
    write_npy(folder / "reasons.npy", {i64(S), i64(Ls), i64(Hs), i64(P)}, reasons.data());
    write_npy(folder / "budgets.npy", {i64(S), i64(Ls), i64(Hs)}, budgets.data());
    write_npy(folder / "lost_mass.npy", {i64(S), i64(Ls), i64(Hs)}, lost.data());
    write_npy(folder / "positions.npy", {i64(S)}, positions.data());
  }
  return "kv: " + std::to_string(t.kv_steps.size()) + " decode steps x " +
         std::to_string(layers.size()) + " layers x " + std::to_string(heads.size()) +
         " KV heads -> " + out.string();
}

std::string export_groups(const Trace& t, ExportFormat format, const fs::path& out,
                          const TraceExportOptions& o, const std::string& where) {
  if (t.groups.empty()) throw_bad_input(where, "no group allocations in the trace");
  const std::vector<int> layers =
      selection(o.layer, static_cast<int>(t.groups.size()), "layer", "groups");
  const std::vector<int> heads = selection(o.head, t.model.n_head, "head", "groups");
  if (format == ExportFormat::Csv) {
    std::string csv = "layer,query_head,kv_head,n_kv,key_norm\n";
    for (int l : layers) {
      const GroupStep& g = t.groups[static_cast<size_t>(l)];
      for (int h : heads) {
        if (static_cast<size_t>(h) >= g.kv_of_query.size()) continue;
        const int kv = g.kv_of_query[static_cast<size_t>(h)];
        const bool norm = kv >= 0 && static_cast<size_t>(kv) < g.key_norms.size();
        csv += std::to_string(l) + "," + std::to_string(h) + "," + std::to_string(kv) + "," +
               std::to_string(g.n_kv) + "," +
               (norm ? num(g.key_norms[static_cast<size_t>(kv)]) : std::string()) + "\n";
      }
    }
    write_file_atomic(out, csv);
  } else if (format == ExportFormat::Json) {
    // kv_of_query holds the selected query heads; group sizes and key norms stay per KV head.
    auto group_json = [&](const GroupStep& g) {
      std::vector<int> sizes(static_cast<size_t>(std::max(g.n_kv, 0)), 0);
      for (int kv : g.kv_of_query) {
        if (kv >= 0 && kv < g.n_kv) ++sizes[static_cast<size_t>(kv)];
      }
      std::vector<int> kvq;
      for (int h : heads) {
        if (static_cast<size_t>(h) < g.kv_of_query.size()) {
          kvq.push_back(g.kv_of_query[static_cast<size_t>(h)]);
        }
      }
      return json{{"n_kv", g.n_kv},
                  {"kv_of_query", kvq},
                  {"group_sizes", sizes},
                  {"key_norms", g.key_norms}};
    };
    json all_layers = json::array(), steps = json::array();
    for (int l : layers) all_layers.push_back(group_json(t.groups[static_cast<size_t>(l)]));
    for (const auto& s : t.group_steps) {
      json st = json::array();
      for (int l : layers) {
        if (static_cast<size_t>(l) < s.size()) st.push_back(group_json(s[static_cast<size_t>(l)]));
      }
      steps.push_back(st);
    }
    json j = {{"layers", all_layers}, {"decode_steps", steps}};
    add_filters(j, o, "query_head");
    write_json(out, j);
  } else {
    std::vector<int32_t> kvq;
    kvq.reserve(layers.size() * heads.size());
    for (int l : layers) {
      const GroupStep& g = t.groups[static_cast<size_t>(l)];
      for (int h : heads) {
        kvq.push_back(static_cast<size_t>(h) < g.kv_of_query.size()
                          ? g.kv_of_query[static_cast<size_t>(h)]
                          : -1);
      }
    }
    write_npy(out, {i64(layers.size()), i64(heads.size())}, kvq.data());
  }
  return "groups: " + std::to_string(layers.size()) + " layers -> " + out.string();
}

std::string export_masks(const Trace& t, ExportFormat format, const fs::path& out,
                         const TraceExportOptions& o, const std::string& where) {
  if (t.masks.empty()) throw_bad_input(where, "no pattern masks in the trace");
  const std::vector<int> layers =
      selection(o.layer, static_cast<int>(t.masks.size()), "layer", "masks");
  const std::vector<int> heads = selection(o.head, t.model.n_head, "head", "masks");
  auto density = [&](size_t l, size_t h) {
    return l < t.mask_density.size() && h < t.mask_density[l].size() ? t.mask_density[l][h] : 1.0f;
  };
  auto mask_of = [&](int l, int h) -> const HeadMask* {
    const auto& m = t.masks[static_cast<size_t>(l)];
    return static_cast<size_t>(h) < m.size() ? &m[static_cast<size_t>(h)] : nullptr;
  };
  if (format == ExportFormat::Csv) {
    std::string csv =
        "layer,head,sink_tokens,window,block,all_blocks,n_qblocks,n_kblocks,density,blocks_on\n";
    for (int l : layers) {
      for (int h : heads) {
        const HeadMask* m = mask_of(l, h);
        if (m == nullptr) continue;
        const auto on =
            std::count_if(m->blocks.begin(), m->blocks.end(), [](uint8_t x) { return x != 0; });
        csv += std::to_string(l) + "," + std::to_string(h) + "," + std::to_string(m->sink_tokens) +
               "," + std::to_string(m->window) + "," + std::to_string(m->block) + "," +
               (m->all_blocks ? "1" : "0") + "," + std::to_string(m->n_qblocks) + "," +
               std::to_string(m->n_kblocks) + "," +
               num(density(static_cast<size_t>(l), static_cast<size_t>(h))) + "," +
               std::to_string(on) + "\n";
      }
    }
    write_file_atomic(out, csv);
  } else if (format == ExportFormat::Json) {
    json all_layers = json::array();
    for (int l : layers) {
      json head_masks = json::array();
      for (int h : heads) {
        const HeadMask* m = mask_of(l, h);
        if (m == nullptr) continue;
        head_masks.push_back({{"sink_tokens", m->sink_tokens},
                              {"window", m->window},
                              {"block", m->block},
                              {"all_blocks", m->all_blocks},
                              {"n_qblocks", m->n_qblocks},
                              {"n_kblocks", m->n_kblocks},
                              {"density", density(static_cast<size_t>(l), static_cast<size_t>(h))},
                              {"blocks", std::vector<int>(m->blocks.begin(), m->blocks.end())}});
      }
      const auto ls = static_cast<size_t>(l);
      all_layers.push_back(
          {{"heads", head_masks},
           {"note", ls < t.pattern_notes.size() ? sanitize_utf8(t.pattern_notes[ls]) : ""}});
    }
    json j = {{"layers", all_layers}};
    add_filters(j, o, "head");
    write_json(out, j);
  } else {
    const fs::path folder = make_folder(out);
    std::vector<float> dens;
    for (int l : layers) {
      for (int h : heads) {
        dens.push_back(density(static_cast<size_t>(l), static_cast<size_t>(h)));
        const HeadMask* m = mask_of(l, h);
        if (m == nullptr || m->all_blocks || m->blocks.empty()) continue;
        write_npy(folder / ("blocks_L" + std::to_string(l) + "_H" + std::to_string(h) + ".npy"),
                  {m->n_qblocks, m->n_kblocks}, m->blocks.data());
      }
    }
    write_npy(folder / "density.npy", {i64(layers.size()), i64(heads.size())}, dens.data());
  }
  return "masks: " + std::to_string(layers.size()) + " layers -> " + out.string();
}

// Whole-trace figures and per-position quality; the layer/head filters do not apply.
std::string export_metrics(const Trace& t, ExportFormat format, const fs::path& out) {
  const auto summary = trace_summary(t);
  if (format == ExportFormat::Json) {
    json s = json::object(), kl = json::array(), err = json::array();
    for (const auto& [k, v] : summary) s[k] = finite_or_null(v);
    for (float v : t.kl_per_position) kl.push_back(finite_or_null(v));
    for (float v : t.layer_rel_error) err.push_back(finite_or_null(v));
    write_json(out, {{"variant", t.variant.to_string()},
                     {"display_name", t.variant.display_name()},
                     {"summary", s},
                     {"kl_per_position", kl},
                     {"top1_agree", t.top1_agree},
                     {"layer_rel_error", err}});
  } else if (format == ExportFormat::Csv) {
    const fs::path folder = make_folder(out);
    std::string m = "name,value\n";
    for (const auto& [k, v] : summary) m += k + "," + num(v) + "\n";
    write_file_atomic(folder / "metrics.csv", m);
    std::string p = "position,token,kl,top1_agree\n";
    for (size_t i = 0; i < t.tokens.size(); ++i) {
      p += std::to_string(i) + "," + std::to_string(t.tokens[i]) + "," +
           (i < t.kl_per_position.size() ? num(t.kl_per_position[i]) : "") + "," +
           (i < t.top1_agree.size() ? std::to_string(t.top1_agree[i]) : "") + "\n";
    }
    write_file_atomic(folder / "positions.csv", p);
    std::string l = "layer,rel_error\n";
    for (size_t i = 0; i < t.layer_rel_error.size(); ++i) {
      l += std::to_string(i) + "," + num(t.layer_rel_error[i]) + "\n";
    }
    write_file_atomic(folder / "layers.csv", l);
  } else {
    const fs::path folder = make_folder(out);
    write_npy(folder / "kl_per_position.npy", {i64(t.kl_per_position.size())},
              t.kl_per_position.data());
    const std::vector<int32_t> top1(t.top1_agree.begin(), t.top1_agree.end());
    write_npy(folder / "top1_agree.npy", {i64(top1.size())}, top1.data());
    write_npy(folder / "layer_rel_error.npy", {i64(t.layer_rel_error.size())},
              t.layer_rel_error.data());
    json s = json::object();
    for (const auto& [k, v] : summary) s[k] = finite_or_null(v);
    write_json(folder / "metrics.json", s);
  }
  return "metrics: " + std::to_string(summary.size()) + " figures, " +
         std::to_string(t.kl_per_position.size()) + " positions -> " + out.string();
}

// Head metrics of every (layer, head), ranked: a table researchers sort to find sink, local and
// retrieval (induction) heads. npy: [n, 6] float32 rows (layer, head, entropy, sink_mass,
// locality, retrieval_score) in ranked order.
std::string export_heads(const Trace& t, ExportFormat format, const fs::path& out,
                         const TraceExportOptions& o, const std::string& where) {
  {
    std::vector<HeadMetrics> none;
    rank_heads(none, o.rank_by);  // an unknown metric fails before the work
  }
  if (t.q.empty() || t.k.empty()) {
    throw_bad_input(where, "no Q/K in the trace (run with Q/K kept) to compute head metrics");
  }
  selection(o.layer, t.n_layer(), "layer", "heads");
  selection(o.head, t.model.n_head, "head", "heads");
  HeadMetricOptions options;
  options.sink_tokens = o.sink_tokens;
  options.locality_window = o.locality_window;
  options.max_rows = o.max_rows;
  if (o.progress) options.progress = [&](double f) { o.progress(f, "heads"); };
  std::vector<HeadMetrics> heads = compute_head_metrics(t, options);
  rank_heads(heads, o.rank_by);
  std::erase_if(heads, [&](const HeadMetrics& h) {
    return (o.layer >= 0 && h.layer != o.layer) || (o.head >= 0 && h.head != o.head);
  });
  if (format == ExportFormat::Json) {
    json rows = json::array();
    for (const HeadMetrics& h : heads) {
      rows.push_back({{"layer", h.layer},
                      {"head", h.head},
                      {"entropy", finite_or_null(h.entropy)},
                      {"sink_mass", finite_or_null(h.sink_mass)},
                      {"locality", finite_or_null(h.locality)},
                      {"retrieval_score", finite_or_null(h.retrieval_score)}});
    }
    json j = {{"variant", t.variant.to_string()},
              {"ranked_by", o.rank_by},
              {"sink_tokens", o.sink_tokens},
              {"locality_window", o.locality_window},
              {"heads", rows}};
    add_filters(j, o, "head");
    write_json(out, j);
  } else if (format == ExportFormat::Csv) {
    std::string c = "rank,layer,head,entropy,sink_mass,locality,retrieval_score\n";
    for (size_t i = 0; i < heads.size(); ++i) {
      const HeadMetrics& h = heads[i];
      c += std::to_string(i + 1) + "," + std::to_string(h.layer) + "," + std::to_string(h.head) +
           "," + num(h.entropy) + "," + num(h.sink_mass) + "," + num(h.locality) + "," +
           num(h.retrieval_score) + "\n";
    }
    write_file_atomic(out, c);
  } else {
    std::vector<float> table;
    table.reserve(heads.size() * 6);
    for (const HeadMetrics& h : heads) {
      for (double v : {static_cast<double>(h.layer), static_cast<double>(h.head), h.entropy,
                       h.sink_mass, h.locality, h.retrieval_score}) {
        table.push_back(static_cast<float>(v));
      }
    }
    write_npy(out, {i64(heads.size()), 6}, table.data());
  }
  return "heads: " + std::to_string(heads.size()) + " heads ranked by " + o.rank_by + " -> " +
         out.string();
}

// ------------------------------------------------------------------------------------------
// Tables and matrices

std::string lower_extension(const fs::path& path) {
  std::string ext = path.extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

[[noreturn]] void bad_extension(const char* fn, const fs::path& path) {
  throw_usage(std::string(fn) + ": " + path.string() +
              ": expected a file name ending in .csv, .json or .npy");
}

// One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break, with quotes
// doubled; invalid UTF-8 replaced.
std::string csv_field(std::string_view text) {
  std::string s = sanitize_utf8(text);
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) {
    if (c == '"') q += '"';
    q += c;
  }
  q += '"';
  return q;
}

// A number cell: %.9g (round-trips a float, 9 significant digits of a double), NaN empty.
std::string csv_number(double v) {
  return std::isnan(v) ? std::string() : num(v);
}

size_t column_length(const DataColumn& c) {
  return c.is_text ? c.texts.size() : c.numbers.size();
}

void check_table(const DataTable& table) {
  std::set<std::string> names;
  const size_t n = table.rows();
  for (const DataColumn& c : table.columns) {
    if (!names.insert(c.name).second) {
      throw_usage("write_table: duplicate column name '" + sanitize_utf8(c.name) + "'");
    }
    if ((c.is_text && !c.numbers.empty()) || (!c.is_text && !c.texts.empty())) {
      throw_usage("write_table: column '" + sanitize_utf8(c.name) + "' is " +
                  (c.is_text ? "text" : "numeric") + " but holds " +
                  (c.is_text ? "numbers" : "texts"));
    }
    if (column_length(c) != n) {
      throw_usage("write_table: column '" + sanitize_utf8(c.name) + "' has " +
                  std::to_string(column_length(c)) + " rows, expected " + std::to_string(n) +
                  " (the first column's length)");
    }
  }
}

void check_labels(const std::vector<std::string>& labels, int n, const char* name) {
  if (!labels.empty() && labels.size() != static_cast<size_t>(n)) {
    throw_usage(std::string("write_matrix: ") + name + ": expected 0 or " + std::to_string(n) +
                " labels, got " + std::to_string(labels.size()));
  }
}

}  // namespace

const char* export_what_name(ExportWhat what) {
  return kWhatNames[static_cast<int>(what)];
}

const char* export_format_name(ExportFormat format) {
  return kFormatNames[static_cast<int>(format)];
}

ExportWhat parse_export_what(const std::string& name) {
  for (int i = 0; i < 6; ++i) {
    if (name == kWhatNames[i]) return static_cast<ExportWhat>(i);
  }
  throw_usage("export: what: expected maps, kv, groups, masks, metrics or heads, got '" +
              sanitize_utf8(name) + "'");
}

ExportFormat parse_export_format(const std::string& name) {
  for (int i = 0; i < 3; ++i) {
    if (name == kFormatNames[i]) return static_cast<ExportFormat>(i);
  }
  throw_usage("export: format: expected csv, json or npy, got '" + sanitize_utf8(name) + "'");
}

bool export_is_single_file(ExportWhat what, ExportFormat format) {
  using F = ExportFormat;
  using W = ExportWhat;
  return format == F::Json || what == W::Heads ||
         (format == F::Npy && (what == W::Maps || what == W::Groups)) ||
         (format == F::Csv && (what == W::Kv || what == W::Groups || what == W::Masks));
}

std::string export_trace_data(const Trace& trace, ExportWhat what, ExportFormat format,
                              const fs::path& out, const TraceExportOptions& options,
                              const std::string& where) {
  if (export_is_single_file(what, format) &&
      out.extension() != std::string(".") + export_format_name(format)) {
    throw_usage(std::string("export ") + export_what_name(what) + ": " + out.string() +
                ": expected a file name ending in ." + export_format_name(format));
  }
  switch (what) {
    case ExportWhat::Maps:
      return export_maps(trace, format, out, options, where);
    case ExportWhat::Kv:
      return export_kv(trace, format, out, options, where);
    case ExportWhat::Groups:
      return export_groups(trace, format, out, options, where);
    case ExportWhat::Masks:
      return export_masks(trace, format, out, options, where);
    case ExportWhat::Metrics:
      return export_metrics(trace, format, out);
    case ExportWhat::Heads:
      return export_heads(trace, format, out, options, where);
  }
  throw_usage("export: unknown kind");
}

std::map<std::string, double> trace_summary(const Trace& t) {
  std::map<std::string, double> out;
  for (const auto& [k, v] : t.metrics) out["metrics." + k] = v;
  for (const auto& [k, v] : t.timings) out["timings." + k] = v;
  double lost = 0;
  size_t n_lost = 0;
  for (const auto& step : t.kv_steps) {
    for (const auto& layer : step) {
      for (float m : layer.lost_mass) {
        lost += m;
        ++n_lost;
      }
    }
  }
  if (n_lost > 0) out["lost_mass_mean"] = lost / static_cast<double>(n_lost);
  double density = 0;
  size_t n_density = 0;
  for (const auto& layer : t.mask_density) {
    for (float d : layer) {
      density += d;
      ++n_density;
    }
  }
  if (n_density > 0) out["mask_density_mean"] = density / static_cast<double>(n_density);
  out["n_tokens"] = t.n_tokens();
  out["n_prompt"] = t.n_prompt;
  return out;
}

std::string csv_matrix(const float* values, int64_t rows, int64_t cols) {
  std::string csv;
  csv.reserve(static_cast<size_t>(rows * cols) * 12);
  char cell[32];
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; ++j) {
      const int n = std::snprintf(cell, sizeof cell, "%s%.9g", j ? "," : "",
                                  static_cast<double>(values[i * cols + j]));
      csv.append(cell, static_cast<size_t>(n));
    }
    csv += '\n';
  }
  return csv;
}

size_t DataTable::rows() const {
  return columns.empty() ? 0 : column_length(columns.front());
}

void write_table(const fs::path& path, const DataTable& table) {
  const std::string ext = lower_extension(path);
  if (ext != ".csv" && ext != ".json" && ext != ".npy") bad_extension("write_table", path);
  check_table(table);
  const size_t n = table.rows();
  if (ext == ".csv") {
    std::string csv;
    for (size_t c = 0; c < table.columns.size(); ++c) {
      if (c) csv += ',';
      csv += csv_field(table.columns[c].name);
    }
    csv += '\n';
    for (size_t r = 0; r < n; ++r) {
      for (size_t c = 0; c < table.columns.size(); ++c) {
        const DataColumn& col = table.columns[c];
        if (c) csv += ',';
        csv += col.is_text ? csv_field(col.texts[r]) : csv_number(col.numbers[r]);
      }
      csv += '\n';
    }
    write_file_atomic(path, csv);
  } else if (ext == ".json") {
    json names = json::array(), rows = json::array();
    for (const DataColumn& c : table.columns) names.push_back(sanitize_utf8(c.name));
    for (size_t r = 0; r < n; ++r) {
      json row = json::object();
      for (const DataColumn& c : table.columns) {
        row[sanitize_utf8(c.name)] =
            c.is_text ? json(sanitize_utf8(c.texts[r])) : finite_or_null(c.numbers[r]);
      }
      rows.push_back(row);
    }
    write_json(path, {{"columns", names}, {"rows", rows}});
  } else {
    std::vector<const DataColumn*> numeric;
    for (const DataColumn& c : table.columns) {
      if (!c.is_text) numeric.push_back(&c);
    }
    std::vector<double> data(n * numeric.size());
    for (size_t r = 0; r < n; ++r) {
      for (size_t c = 0; c < numeric.size(); ++c)
        data[r * numeric.size() + c] = numeric[c]->numbers[r];
    }
    write_npy(path, {i64(n), i64(numeric.size())}, data.data());
  }
}

void write_matrix(const fs::path& path, int rows, int cols, const float* values,
                  const std::vector<std::string>& row_labels,
                  const std::vector<std::string>& col_labels) {
  const std::string ext = lower_extension(path);
  if (ext != ".csv" && ext != ".json" && ext != ".npy") bad_extension("write_matrix", path);
  if (rows < 0 || cols < 0) {
    throw_usage("write_matrix: expected rows, cols >= 0, got " + std::to_string(rows) + " x " +
                std::to_string(cols));
  }
  const size_t cells = static_cast<size_t>(rows) * static_cast<size_t>(cols);
  if (cells > 0 && values == nullptr) throw_usage("write_matrix: values is null");
  check_labels(row_labels, rows, "row_labels");
  check_labels(col_labels, cols, "col_labels");
  if (ext == ".csv") {
    std::string csv;
    if (!col_labels.empty()) {
      if (!row_labels.empty()) csv += ',';  // the label column's header cell is empty
      for (int c = 0; c < cols; ++c) {
        if (c) csv += ',';
        csv += csv_field(col_labels[static_cast<size_t>(c)]);
      }
      csv += '\n';
    }
    for (int r = 0; r < rows; ++r) {
      if (!row_labels.empty()) {
        csv += csv_field(row_labels[static_cast<size_t>(r)]);
        csv += ',';
      }
      for (int c = 0; c < cols; ++c) {
        if (c) csv += ',';
        csv += csv_number(
            values[static_cast<size_t>(r) * static_cast<size_t>(cols) + static_cast<size_t>(c)]);
      }
      csv += '\n';
    }
    write_file_atomic(path, csv);
  } else if (ext == ".json") {
    json grid = json::array(), rl = json::array(), cl = json::array();
    for (int r = 0; r < rows; ++r) {
      json row = json::array();
      for (int c = 0; c < cols; ++c) {
        row.push_back(finite_or_null(
            values[static_cast<size_t>(r) * static_cast<size_t>(cols) + static_cast<size_t>(c)]));
      }
      grid.push_back(row);
    }
    for (const auto& s : row_labels) rl.push_back(sanitize_utf8(s));
    for (const auto& s : col_labels) cl.push_back(sanitize_utf8(s));
    write_json(
        path,
        {{"rows", rows}, {"cols", cols}, {"row_labels", rl}, {"col_labels", cl}, {"values", grid}});
  } else {
    write_npy(path, {rows, cols}, values);
  }
}

}  // namespace attnscope
