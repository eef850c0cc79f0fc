// `attnscope-cli export DIR`: a trace's data as CSV, JSON or NPY for plotting elsewhere:
// pooled maps of every head, KV keep/evict decisions, group allocations, pattern masks, metrics.
// Exports that are several arrays or tables (csv/npy of maps, kv, masks, metrics) write a folder.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>

#include "attnscope/error.h"
#include "attnscope/file_util.h"
#include "attnscope/map_request.h"
#include "attnscope/metrics.h"
#include "attnscope/npy.h"
#include "attnscope/trace_io.h"
#include "cli_common.h"

namespace attnscope::cli {

namespace {

namespace fs = std::filesystem;

struct ExportOptions {
  std::string dir;
  std::string what;
  std::string format;
  std::string out;
  int rows = 64, cols = 64;
  std::string reduce = "max";
  std::string rank_by = "retrieval_score";
  int sink_tokens = 4, locality_window = 8, max_rows = 512;
};

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

nlohmann::json finite_or_null(double v) {
  if (std::isfinite(v)) return v;
  return nullptr;
}

fs::path make_folder(const std::string& out) {
  std::error_code ec;
  fs::create_directories(out, ec);
  if (!fs::is_directory(out, ec)) throw_runtime(out + ": cannot create the output folder");
  return fs::path(out);
}

void write_json(const std::string& path, const nlohmann::json& j) {
  write_file_atomic(path, j.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

// ------------------------------------------------------------------------------------------

int export_maps(const Trace& t, const ExportOptions& o) {
  const int L = t.model.n_layer, H = t.model.n_head;
  MapRequest r;
  r.out_rows = o.rows;
  r.out_cols = o.cols;
  r.reduce = o.reduce == "mean" ? MapRequest::Mean : MapRequest::Max;
  std::vector<float> all;
  nlohmann::json layers = nlohmann::json::array();
  int rows = 0, cols = 0;
  const fs::path folder = o.format == "csv" ? make_folder(o.out) : fs::path();
  auto progress = stderr_progress("export maps");
  for (int l = 0; l < L; ++l) {
    nlohmann::json heads = nlohmann::json::array();
    for (int h = 0; h < H; ++h) {
      r.layer = l;
      r.head = h;
      const PooledMap m = compute_map(t, r);
      rows = m.rows;
      cols = m.cols;
      if (o.format == "npy") {
        all.insert(all.end(), m.values.begin(), m.values.end());
      } else if (o.format == "csv") {
        // Appended piece by piece: GCC 12 reports a false -Wrestrict on "L" + std::string here.
        std::string name = "L";
        name.append(std::to_string(l)).append("_H").append(std::to_string(h)).append(".csv");
        write_file_atomic(folder / name, csv_matrix(m.values.data(), m.rows, m.cols));
      } else {
        nlohmann::json grid = nlohmann::json::array();
        for (int i = 0; i < m.rows; ++i) {
          grid.push_back(
              std::vector<float>(m.values.begin() + static_cast<ptrdiff_t>(i) * m.cols,
                                 m.values.begin() + static_cast<ptrdiff_t>(i + 1) * m.cols));
        }
        heads.push_back(grid);
      }
    }
    if (o.format == "json") layers.push_back(heads);
    progress(static_cast<double>(l + 1) / L,
             "layer " + std::to_string(l + 1) + "/" + std::to_string(L));
  }
  if (o.format == "npy") {
    write_npy(o.out, {L, H, rows, cols}, all.data());
  } else if (o.format == "json") {
    write_json(o.out, {{"layers", L},
                       {"heads", H},
                       {"rows", rows},
                       {"cols", cols},
                       {"reduce", o.reduce},
                       {"maps", layers}});
  }
  std::cerr << "maps: " << L << " layers x " << H << " heads pooled to " << rows << " x " << cols
            << " (" << o.reduce << ") -> " << o.out << '\n';
  return 0;
}

int export_kv(const Trace& t, const ExportOptions& o) {
  if (t.kv_steps.empty()) {
    throw_bad_input(o.dir, "no KV decisions (the trace has no decode steps; run with --decode N)");
  }
  size_t L = 0, Hkv = 0, P = 0;
  for (const auto& s : t.kv_steps) {
    L = std::max(L, s.size());
    for (const auto& k : s) {
      Hkv = std::max(Hkv, k.reasons.size());
      for (const auto& r : k.reasons) P = std::max(P, r.size());
    }
  }
  if (o.format == "csv") {
    std::string csv = "step,position,layer,kv_head,budget,lost_mass,kept,evicted,reasons\n";
    for (size_t s = 0; s < t.kv_steps.size(); ++s) {
      for (size_t l = 0; l < t.kv_steps[s].size(); ++l) {
        const KvStep& k = t.kv_steps[s][l];
        for (size_t h = 0; h < k.reasons.size(); ++h) {
          const auto& r = k.reasons[h];
          const auto kept = std::count_if(r.begin(), r.end(), [](uint8_t x) { return x != 0; });
          std::string digits;
          for (uint8_t x : r) digits += static_cast<char>('0' + x);
          csv += std::to_string(s) + "," + std::to_string(k.position) + "," + std::to_string(l) +
                 "," + std::to_string(h) + "," + std::to_string(k.budgets[h]) + "," +
                 num(k.lost_mass[h]) + "," + std::to_string(kept) + "," +
                 std::to_string(static_cast<int64_t>(r.size()) - kept) + "," + digits + "\n";
        }
      }
    }
    write_file_atomic(o.out, csv);
  } else if (o.format == "json") {
    nlohmann::json steps = nlohmann::json::array();
    for (const auto& s : t.kv_steps) {
      nlohmann::json layers = nlohmann::json::array();
      for (const KvStep& k : s) {
        nlohmann::json reasons = nlohmann::json::array();
        for (const auto& r : k.reasons) reasons.push_back(std::vector<int>(r.begin(), r.end()));
        nlohmann::json lost = nlohmann::json::array();
        for (float m : k.lost_mass) lost.push_back(finite_or_null(m));
        layers.push_back({{"position", k.position},
                          {"budgets", k.budgets},
                          {"lost_mass", lost},
                          {"reasons", reasons}});
      }
      steps.push_back(layers);
    }
    write_json(o.out, {{"reason_codes", {"evicted", "sink", "recent", "scored", "window"}},
                       {"steps", steps}});
  } else {
    const fs::path folder = make_folder(o.out);
    const size_t S = t.kv_steps.size();
    std::vector<int32_t> reasons(S * L * Hkv * P, -1), budgets(S * L * Hkv, -1), positions(S, -1);
    std::vector<float> lost(S * L * Hkv, 0.0f);
    for (size_t s = 0; s < S; ++s) {
      for (size_t l = 0; l < t.kv_steps[s].size(); ++l) {
        const KvStep& k = t.kv_steps[s][l];
        positions[s] = k.position;
        for (size_t h = 0; h < k.reasons.size(); ++h) {
          const size_t base = (s * L + l) * Hkv + h;
          budgets[base] = k.budgets[h];
          lost[base] = k.lost_mass[h];
          for (size_t j = 0; j < k.reasons[h].size(); ++j) reasons[base * P + j] = k.reasons[h][j];
        }
      }
    }
    const auto i64 = [](size_t v) { return static_cast<int64_t>(v); };
    write_npy(folder / "reasons.npy", {i64(S), i64(L), i64(Hkv), i64(P)}, reasons.data());
    write_npy(folder / "budgets.npy", {i64(S), i64(L), i64(Hkv)}, budgets.data());
    write_npy(folder / "lost_mass.npy", {i64(S), i64(L), i64(Hkv)}, lost.data());
    write_npy(folder / "positions.npy", {i64(S)}, positions.data());
  }
  std::cerr << "kv: " << t.kv_steps.size() << " decode steps x " << L << " layers x " << Hkv
            << " KV heads -> " << o.out << '\n';
  return 0;
}

int export_groups(const Trace& t, const ExportOptions& o) {
  if (t.groups.empty()) throw_bad_input(o.dir, "no group allocations in the trace");
  const int H = t.model.n_head;
  if (o.format == "csv") {
    std::string csv = "layer,query_head,kv_head,n_kv,key_norm\n";
    for (size_t l = 0; l < t.groups.size(); ++l) {
      const GroupStep& g = t.groups[l];
      for (size_t h = 0; h < g.kv_of_query.size(); ++h) {
        const int kv = g.kv_of_query[h];
        csv += std::to_string(l) + "," + std::to_string(h) + "," + std::to_string(kv) + "," +
               std::to_string(g.n_kv) + "," +
               (g.key_norms.empty() ? std::string() : num(g.key_norms[static_cast<size_t>(kv)])) +
               "\n";
      }
    }
    write_file_atomic(o.out, csv);
  } else if (o.format == "json") {
    auto group_json = [](const GroupStep& g) {
      std::vector<int> sizes(static_cast<size_t>(g.n_kv), 0);
      for (int kv : g.kv_of_query) ++sizes[static_cast<size_t>(kv)];
      return nlohmann::json{{"n_kv", g.n_kv},
                            {"kv_of_query", g.kv_of_query},
                            {"group_sizes", sizes},
                            {"key_norms", g.key_norms}};
    };
    nlohmann::json layers = nlohmann::json::array(), steps = nlohmann::json::array();
    for (const auto& g : t.groups) layers.push_back(group_json(g));
    for (const auto& s : t.group_steps) {
      nlohmann::json st = nlohmann::json::array();
      for (const auto& g : s) st.push_back(group_json(g));
      steps.push_back(st);
    }
    write_json(o.out, {{"layers", layers}, {"decode_steps", steps}});
  } else {
    std::vector<int32_t> kvq;
    for (const auto& g : t.groups)
      kvq.insert(kvq.end(), g.kv_of_query.begin(), g.kv_of_query.end());
    write_npy(o.out, {static_cast<int64_t>(t.groups.size()), H}, kvq.data());
  }
  std::cerr << "groups: " << t.groups.size() << " layers -> " << o.out << '\n';
  return 0;
}

int export_masks(const Trace& t, const ExportOptions& o) {
  if (t.masks.empty()) throw_bad_input(o.dir, "no pattern masks in the trace");
  auto density = [&](size_t l, size_t h) {
    return l < t.mask_density.size() && h < t.mask_density[l].size() ? t.mask_density[l][h] : 1.0f;
  };
  if (o.format == "csv") {
    std::string csv =
        "layer,head,sink_tokens,window,block,all_blocks,n_qblocks,n_kblocks,density,blocks_on\n";
    for (size_t l = 0; l < t.masks.size(); ++l) {
      for (size_t h = 0; h < t.masks[l].size(); ++h) {
        const HeadMask& m = t.masks[l][h];
        const auto on =
            std::count_if(m.blocks.begin(), m.blocks.end(), [](uint8_t x) { return x != 0; });
        csv += std::to_string(l) + "," + std::to_string(h) + "," + std::to_string(m.sink_tokens) +
               "," + std::to_string(m.window) + "," + std::to_string(m.block) + "," +
               (m.all_blocks ? "1" : "0") + "," + std::to_string(m.n_qblocks) + "," +
               std::to_string(m.n_kblocks) + "," + num(density(l, h)) + "," + std::to_string(on) +
               "\n";
      }
    }
    write_file_atomic(o.out, csv);
  } else if (o.format == "json") {
    nlohmann::json layers = nlohmann::json::array();
    for (size_t l = 0; l < t.masks.size(); ++l) {
      nlohmann::json heads = nlohmann::json::array();
      for (size_t h = 0; h < t.masks[l].size(); ++h) {
        const HeadMask& m = t.masks[l][h];
        heads.push_back({{"sink_tokens", m.sink_tokens},
                         {"window", m.window},
                         {"block", m.block},
                         {"all_blocks", m.all_blocks},
                         {"n_qblocks", m.n_qblocks},
                         {"n_kblocks", m.n_kblocks},
                         {"density", density(l, h)},
                         {"blocks", std::vector<int>(m.blocks.begin(), m.blocks.end())}});
      }
      layers.push_back(
          {{"heads", heads},
           {"note", l < t.pattern_notes.size() ? sanitize_utf8(t.pattern_notes[l]) : ""}});
    }
    write_json(o.out, {{"layers", layers}});
  } else {
    const fs::path folder = make_folder(o.out);
    std::vector<float> dens;
    for (size_t l = 0; l < t.masks.size(); ++l) {
      for (size_t h = 0; h < t.masks[l].size(); ++h) {
        dens.push_back(density(l, h));
        const HeadMask& m = t.masks[l][h];
        if (m.all_blocks || m.blocks.empty()) continue;
        write_npy(folder / ("blocks_L" + std::to_string(l) + "_H" + std::to_string(h) + ".npy"),
                  {m.n_qblocks, m.n_kblocks}, m.blocks.data());
      }
    }
    write_npy(folder / "density.npy", {static_cast<int64_t>(t.masks.size()), t.model.n_head},
              dens.data());
  }
  std::cerr << "masks: " << t.masks.size() << " layers -> " << o.out << '\n';
  return 0;
}

int export_metrics(const Trace& t, const ExportOptions& o) {
  const auto summary = trace_summary(t);
  if (o.format == "json") {
    nlohmann::json s = nlohmann::json::object(), kl = nlohmann::json::array(),
                   err = nlohmann::json::array();
    for (const auto& [k, v] : summary) s[k] = finite_or_null(v);
    for (float v : t.kl_per_position) kl.push_back(finite_or_null(v));
    for (float v : t.layer_rel_error) err.push_back(finite_or_null(v));
    write_json(o.out, {{"variant", t.variant.to_string()},
                       {"display_name", t.variant.display_name()},
                       {"summary", s},
                       {"kl_per_position", kl},
                       {"top1_agree", t.top1_agree},
                       {"layer_rel_error", err}});
  } else if (o.format == "csv") {
    const fs::path folder = make_folder(o.out);
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
    const fs::path folder = make_folder(o.out);
    write_npy(folder / "kl_per_position.npy", {static_cast<int64_t>(t.kl_per_position.size())},
              t.kl_per_position.data());
    const std::vector<int32_t> top1(t.top1_agree.begin(), t.top1_agree.end());
    write_npy(folder / "top1_agree.npy", {static_cast<int64_t>(top1.size())}, top1.data());
    write_npy(folder / "layer_rel_error.npy", {static_cast<int64_t>(t.layer_rel_error.size())},
              t.layer_rel_error.data());
    nlohmann::json s = nlohmann::json::object();
    for (const auto& [k, v] : summary) s[k] = finite_or_null(v);
    write_json((folder / "metrics.json").string(), s);
  }
  std::cerr << "metrics: " << summary.size() << " figures, " << t.kl_per_position.size()
            << " positions -> " << o.out << '\n';
  return 0;
}

// Head metrics of every (layer, head), ranked: a table researchers sort to find sink, local and
// retrieval (induction) heads. npy: [L*H, 6] float32 rows (layer, head, entropy, sink_mass,
// locality, retrieval_score) in ranked order.
int export_heads(const Trace& t, const ExportOptions& o) {
  HeadMetricOptions options;
  options.sink_tokens = o.sink_tokens;
  options.locality_window = o.locality_window;
  options.max_rows = o.max_rows;
  std::vector<HeadMetrics> heads = compute_head_metrics(t, options);
  rank_heads(heads, o.rank_by);
  if (o.format == "json") {
    nlohmann::json rows = nlohmann::json::array();
    for (const HeadMetrics& h : heads) {
      rows.push_back({{"layer", h.layer},
                      {"head", h.head},
                      {"entropy", finite_or_null(h.entropy)},
                      {"sink_mass", finite_or_null(h.sink_mass)},
                      {"locality", finite_or_null(h.locality)},
                      {"retrieval_score", finite_or_null(h.retrieval_score)}});
    }
    write_json(o.out, {{"variant", t.variant.to_string()},
                       {"ranked_by", o.rank_by},
                       {"sink_tokens", o.sink_tokens},
                       {"locality_window", o.locality_window},
                       {"heads", rows}});
  } else if (o.format == "csv") {
    std::string c = "rank,layer,head,entropy,sink_mass,locality,retrieval_score\n";
    for (size_t i = 0; i < heads.size(); ++i) {
      const HeadMetrics& h = heads[i];
      c += std::to_string(i + 1) + "," + std::to_string(h.layer) + "," + std::to_string(h.head) +
           "," + num(h.entropy) + "," + num(h.sink_mass) + "," + num(h.locality) + "," +
           num(h.retrieval_score) + "\n";
    }
    write_file_atomic(o.out, c);
  } else {
    std::vector<float> table;
    table.reserve(heads.size() * 6);
    for (const HeadMetrics& h : heads) {
      for (double v : {static_cast<double>(h.layer), static_cast<double>(h.head), h.entropy,
                       h.sink_mass, h.locality, h.retrieval_score}) {
        table.push_back(static_cast<float>(v));
      }
    }
    write_npy(o.out, {static_cast<int64_t>(heads.size()), 6}, table.data());
  }
  std::cerr << "heads: " << heads.size() << " heads ranked by " << o.rank_by << " -> " << o.out
            << '\n';
  return 0;
}

int run_export(const ExportOptions& o) {
  const bool single_file =
      o.format == "json" || o.what == "heads" ||
      (o.format == "npy" && (o.what == "maps" || o.what == "groups")) ||
      (o.format == "csv" && (o.what == "kv" || o.what == "groups" || o.what == "masks"));
  if (single_file) out_extension(o.out, {"." + o.format});
  const Trace t = load_trace(o.dir);
  if (o.what == "maps") return export_maps(t, o);
  if (o.what == "kv") return export_kv(t, o);
  if (o.what == "groups") return export_groups(t, o);
  if (o.what == "masks") return export_masks(t, o);
  if (o.what == "heads") return export_heads(t, o);
  return export_metrics(t, o);
}

}  // namespace

Command add_export_command(CLI::App& parent) {
  auto o = std::make_shared<ExportOptions>();
  CLI::App* app = parent.add_subcommand(
      "export",
      "Export a trace's data. Single files: json (all), npy maps [L,H,R,C] and groups [L,H], csv "
      "kv/groups/masks, heads (ranked head metrics, any format). Folders: csv maps (L{l}_H{h}.csv) and metrics, npy kv/masks/metrics");
  app->add_option("dir", o->dir, "Trace directory")->required();
  app->add_option("--what", o->what, "maps, kv, groups, masks, metrics or heads")
      ->required()
      ->check(CLI::IsMember({"maps", "kv", "groups", "masks", "metrics", "heads"}));
  app->add_option("--format", o->format, "csv, json or npy")
      ->required()
      ->check(CLI::IsMember({"csv", "json", "npy"}));
  app->add_option("-o,--out", o->out, "Output file or folder (see above)")->required();
  app->add_option("--rows", o->rows, "maps: output rows per head")
      ->check(CLI::Range(1, 1 << 16))
      ->capture_default_str();
  app->add_option("--cols", o->cols, "maps: output columns per head")
      ->check(CLI::Range(1, 1 << 16))
      ->capture_default_str();
  app->add_option("--reduce", o->reduce, "maps: max, or mean over every cell of a bin")
      ->check(CLI::IsMember({"max", "mean"}))
      ->capture_default_str();
  app->add_option("--rank-by", o->rank_by, "heads: sort key, descending")
      ->check(CLI::IsMember({"entropy", "sink_mass", "locality", "retrieval_score"}))
      ->capture_default_str();
  app->add_option("--sink-tokens", o->sink_tokens, "heads: keys counted as sinks")
      ->check(CLI::Range(0, 1 << 20))
      ->capture_default_str();
  app->add_option("--locality-window", o->locality_window, "heads: distance counted as local")
      ->check(CLI::Range(0, 1 << 20))
      ->capture_default_str();
  app->add_option("--max-rows", o->max_rows, "heads: query rows sampled per head")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  return {app, [o] { return run_export(*o); }};
}

}  // namespace attnscope::cli
