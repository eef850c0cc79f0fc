// Data export shared by `attnscope-cli export` and the GUI's "Export data": a trace's maps, KV
// decisions, group allocations, masks, quality metrics and ranked head metrics as CSV, JSON or
// NPY; and generic table/matrix writers for the data behind any view. Every file is written
// atomically (temp file + rename); a failure leaves an existing file intact.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "attnscope/map_request.h"
#include "attnscope/trace.h"

namespace attnscope {

enum class ExportWhat { Maps, Kv, Groups, Masks, Metrics, Heads };
enum class ExportFormat { Csv, Json, Npy };

// "maps", "kv", ... / "csv", "json", "npy"; the parse functions throw Error(Usage) listing the
// accepted names.
const char* export_what_name(ExportWhat what);
const char* export_format_name(ExportFormat format);
ExportWhat parse_export_what(const std::string& name);
ExportFormat parse_export_format(const std::string& name);

struct TraceExportOptions {
  int rows = 64, cols = 64;                                  // maps: output resolution per head
  MapRequest::Reduce reduce = MapRequest::Max;               // maps
  std::string rank_by = "retrieval_score";                   // heads
  int sink_tokens = 4, locality_window = 8, max_rows = 512;  // heads
  // Optional filters (-1 = all): only this layer / head, for a view's selection. `head` is a
  // query head for maps, groups, masks and heads, and a KV head for kv; metrics are whole-trace
  // figures and ignore both. A filter outside the trace's layers/heads is Error(Usage). Filtered
  // JSON files add "layer" and "head" ("kv_head" for kv, "query_head" for groups) keys naming
  // the slice; CSV rows keep their absolute layer/head numbers; NPY arrays shrink those axes.
  int layer = -1;
  int head = -1;
  // Optional, for maps ("layer k/L" once per layer's worth of maps, or "head j/H" per map when
  // one layer is exported) and heads ("heads"): called one at a time, possibly from worker
  // threads, with increasing fractions.
  std::function<void(double fraction, const std::string& stage)> progress;
};

// True when (what, format) writes one file; false when it writes a folder of files:
// single files are json (all), npy maps [L,H,R,C] and groups [L,H], csv kv/groups/masks, and
// heads in any format; folders are csv maps (L{l}_H{h}.csv) and metrics, npy kv/masks/metrics.
bool export_is_single_file(ExportWhat what, ExportFormat format);

// Writes the export to `out` (a file or a folder, see above) and returns a one-line summary
// ("kv: 16 decode steps x 30 layers x 3 KV heads -> out.csv"). Throws Error(BadInput) naming
// `where` when the trace lacks the data (e.g. no decode steps for kv, no Q/K for maps or heads),
// Error(Usage) for a single-file export whose name lacks the format's extension, a bad filter or
// an unknown rank_by, Error(Runtime) on I/O. Maps are computed with compute_maps.
std::string export_trace_data(const Trace& trace, ExportWhat what, ExportFormat format,
                              const std::filesystem::path& out, const TraceExportOptions& options,
                              const std::string& where);

// Whole-trace figures for `compare` and `export --what metrics`: every "metrics.*" and
// "timings.*" entry, plus "lost_mass_mean" (mean over decode steps, layers and KV heads),
// "mask_density_mean" (mean over layers and heads), "n_tokens", "n_prompt". Absent when the
// trace has nothing to average.
std::map<std::string, double> trace_summary(const Trace& trace);

// values: [rows, cols] row-major -> one CSV line per row, %.9g (round-trips a float).
std::string csv_matrix(const float* values, int64_t rows, int64_t cols);

// A table whose columns are numbers or texts, for the data behind a view.
struct DataColumn {
  std::string name;
  bool is_text = false;
  std::vector<double> numbers;     // when !is_text
  std::vector<std::string> texts;  // when is_text (UTF-8; invalid bytes are replaced on write)
};
struct DataTable {
  std::vector<DataColumn> columns;  // all of the same length, distinct names
  size_t rows() const;              // the first column's length (0 without columns)
};

// By the file's extension: .csv (header row, RFC 4180 quoting, numbers as %.9g, NaN as empty),
// .json ({"columns": [...], "rows": [{name: value, ...}]}, non-finite numbers as null), .npy
// (float64 [rows, numeric columns]; text columns are left out -- use csv/json for them).
// Infinities are written as inf/-inf in CSV. The extension is matched case-insensitively.
// Throws Error(Usage) for another extension, mismatched column lengths, duplicate names or a
// column holding the other kind of values, Error(Runtime) on I/O.
void write_table(const std::filesystem::path& path, const DataTable& table);

// values: [rows, cols] row-major. .csv (optional label column/row, RFC 4180 quoting, %.9g, NaN
// empty; with both label kinds the corner cell is empty), .json ({"rows", "cols",
// "row_labels", "col_labels", "values": [[...]]}, non-finite as null), .npy (float32 [rows,
// cols]; labels are left out). Labels may be empty or must have rows / cols entries. Throws
// Error(Usage) for another extension, negative sizes or wrong label counts, Error(Runtime) on
// I/O.
void write_matrix(const std::filesystem::path& path, int rows, int cols, const float* values,
                  const std::vector<std::string>& row_labels = {},
                  const std::vector<std::string>& col_labels = {});

}  // namespace attnscope
