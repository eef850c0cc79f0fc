// `attnscope-cli export DIR`: a trace's data as CSV, JSON or NPY for plotting elsewhere:
// pooled maps of every head, KV keep/evict decisions, group allocations, pattern masks, metrics.
// Exports that are several arrays or tables (csv/npy of maps, kv, masks, metrics) write a folder.
// A thin wrapper over core's export_trace_data (attnscope/trace_export.h), which the GUI shares.
#include <iostream>
#include <memory>

#include "attnscope/trace_export.h"
#include "attnscope/trace_io.h"
#include "cli_common.h"

namespace attnscope::cli {

namespace {

struct ExportOptions {
  std::string dir;
  std::string what;
  std::string format;
  std::string out;
  int rows = 64, cols = 64;
  std::string reduce = "max";
  std::string rank_by = "retrieval_score";
  int sink_tokens = 4, locality_window = 8, max_rows = 512;
  int layer = -1, head = -1;
};

int run_export(const ExportOptions& o) {
  const ExportWhat what = parse_export_what(o.what);
  const ExportFormat format = parse_export_format(o.format);
  // Checked before the trace loads, so a wrong name fails fast with the option's name.
  if (export_is_single_file(what, format)) out_extension(o.out, {"." + o.format});
  const Trace t = load_trace(o.dir);
  TraceExportOptions options;
  options.rows = o.rows;
  options.cols = o.cols;
  options.reduce = o.reduce == "mean" ? MapRequest::Mean : MapRequest::Max;
  options.rank_by = o.rank_by;
  options.sink_tokens = o.sink_tokens;
  options.locality_window = o.locality_window;
  options.max_rows = o.max_rows;
  options.layer = o.layer;
  options.head = o.head;
  if (what == ExportWhat::Maps) options.progress = stderr_progress("export maps");
  std::cerr << export_trace_data(t, what, format, o.out, options, o.dir) << '\n';
  return 0;
}

}  // namespace

Command add_export_command(CLI::App& parent) {
  auto o = std::make_shared<ExportOptions>();
  CLI::App* app = parent.add_subcommand(
      "export",
      "Export a trace's data. Single files: json (all), npy maps [L,H,R,C] and groups [L,H], csv "
      "kv/groups/masks, heads (ranked head metrics, any format). Folders: csv maps (L{l}_H{h}.csv) "
      "and metrics, npy kv/masks/metrics");
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
  app->add_option("--layer", o->layer, "Only this layer (-1 = all; metrics: ignored)")
      ->check(CLI::Range(-1, 1 << 20))
      ->capture_default_str();
  app->add_option("--head", o->head,
                  "Only this head (-1 = all): a query head, or a KV head for --what kv")
      ->check(CLI::Range(-1, 1 << 20))
      ->capture_default_str();
  return {app, [o] { return run_export(*o); }};
}

}  // namespace attnscope::cli
