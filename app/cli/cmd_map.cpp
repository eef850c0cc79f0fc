// `attnscope-cli map DIR`: one head's attention map from a trace, recomputed from its Q/K through
// the variant's attention and pooled (max or mean) to --rows x --cols, as .npy or .csv.
#include <cstdio>
#include <iostream>
#include <memory>

#include "attnscope/error.h"
#include "attnscope/file_util.h"
#include "attnscope/map_request.h"
#include "attnscope/npy.h"
#include "attnscope/trace_io.h"
#include "cli_common.h"

namespace attnscope::cli {

std::string out_extension(const std::string& out, const std::vector<std::string>& extensions) {
  const std::string ext = std::filesystem::path(out).extension().string();
  std::string list;
  for (const auto& e : extensions) {
    if (ext == e) return ext;
    list += (list.empty() ? "" : " or ") + e;
  }
  throw_usage("--out: expected a file name ending in " + list + ", got '" + out + "'");
}

namespace {

struct MapOptions {
  std::string dir;
  int layer = 0, head = 0;
  int rows = 0, cols = 0;
  int q_begin = 0, q_end = 0, k_begin = 0, k_end = 0;
  std::string reduce = "max";
  std::string out;
};

int run_map(const MapOptions& o) {
  const std::string ext = out_extension(o.out, {".npy", ".csv"});
  const Trace trace = load_trace(o.dir);
  MapRequest r;
  r.layer = o.layer;
  r.head = o.head;
  r.q_begin = o.q_begin;
  r.q_end = o.q_end;
  r.k_begin = o.k_begin;
  r.k_end = o.k_end;
  // 0 = full resolution of the range (compute_map reduces larger requests to the range).
  r.out_rows = o.rows > 0 ? o.rows : trace.n_tokens();
  r.out_cols = o.cols > 0 ? o.cols : trace.n_tokens();
  r.reduce = o.reduce == "mean" ? MapRequest::Mean : MapRequest::Max;
  const double start = now_seconds();
  const PooledMap map = compute_map(trace, r);
  const double seconds = now_seconds() - start;
  if (ext == ".npy") {
    write_npy(o.out, {map.rows, map.cols}, map.values.data());
  } else {
    write_file_atomic(o.out, csv_matrix(map.values.data(), map.rows, map.cols));
  }
  std::cerr << "layer " << o.layer << " head " << o.head << ": queries [" << map.q_begin << ", "
            << map.q_end << ") x keys [" << map.k_begin << ", " << map.k_end << ") pooled ("
            << o.reduce << ") to " << map.rows << " x " << map.cols << " -> " << o.out << " ("
            << seconds << " s)\n";
  return 0;
}

}  // namespace

Command add_map_command(CLI::App& parent) {
  auto o = std::make_shared<MapOptions>();
  CLI::App* app = parent.add_subcommand(
      "map", "Export one head's pooled attention map [rows, cols] from a trace as .npy or .csv");
  app->add_option("dir", o->dir, "Trace directory")->required();
  app->add_option("-l,--layer", o->layer, "Layer (0-based)")
      ->required()
      ->check(CLI::Range(0, 1 << 20));
  app->add_option("--head", o->head, "Query head (0-based)")
      ->required()
      ->check(CLI::Range(0, 1 << 20));
  app->add_option("--rows", o->rows, "Output rows (0 = one per query)")
      ->check(CLI::Range(0, 1 << 24))
      ->capture_default_str();
  app->add_option("--cols", o->cols, "Output columns (0 = one per key)")
      ->check(CLI::Range(0, 1 << 24))
      ->capture_default_str();
  app->add_option("--q-begin", o->q_begin, "First query position")->check(CLI::Range(0, 1 << 24));
  app->add_option("--q-end", o->q_end, "One past the last query position (0 = end)")
      ->check(CLI::Range(0, 1 << 24));
  app->add_option("--k-begin", o->k_begin, "First key position")->check(CLI::Range(0, 1 << 24));
  app->add_option("--k-end", o->k_end, "One past the last key position (0 = end)")
      ->check(CLI::Range(0, 1 << 24));
  app->add_option("--reduce", o->reduce,
                  "Pooling: max, or mean over every cell of a bin (causal zeros included)")
      ->check(CLI::IsMember({"max", "mean"}))
      ->capture_default_str();
  app->add_option("-o,--out", o->out, "Output file: .npy (float32 [rows, cols]) or .csv")
      ->required();
  return {app, [o] { return run_map(*o); }};
}

}  // namespace attnscope::cli
