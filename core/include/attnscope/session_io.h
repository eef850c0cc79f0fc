// Sessions: everything one GUI session shows, saved as one directory so a run can be reopened,
// shared and re-plotted without the model. The layout extends `attnscope-cli run --out DIR`, so
// a CLI run opens as a session and a saved session's traces work with every CLI command:
//   DIR/index.json        schema version, model identity, prompt text, decode steps, run
//                         seconds and the trace list (folder, spec, display name, metrics,
//                         timings), baseline first
//   DIR/baseline/         the baseline trace (trace_io.h)
//   DIR/<i>_<name>/       variant i's trace, <name> its display name as a folder name
//   DIR/needle.json       passkey/needle results (optional; needle_results_to_json)
//   DIR/throughput.json   throughput sweeps (optional): {"format":
//                         "attnscope-throughput-sweeps", "schema_version", "sweeps": [one
//                         throughput_to_json object per sweep]}
// index.json keeps every field `run --out` wrote before sessions ("seconds" = run_seconds,
// "n_prompt", "model", per trace "dir", "baseline", "spec", "display_name", "needs_training",
// "metrics", "timings"), so old run directories load and old readers still read new ones.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "attnscope/needle.h"
#include "attnscope/throughput.h"
#include "attnscope/trace.h"

namespace attnscope {

inline constexpr int kSessionSchemaVersion = 1;

struct Session {
  // Prompt text as given to the tokenizer (the CLI stores it after --chat wrapping; empty when
  // unknown, e.g. old CLI runs). Kept byte for byte, even when not valid UTF-8.
  std::string prompt;
  int decode_steps = 0;
  double run_seconds = 0;
  // [baseline, variants...]; empty = no run yet. Shared and immutable: traces are large (an
  // 8192-token trace holds ~720 MB of Q/K), so a GUI session and its saved copy never copy them.
  std::vector<std::shared_ptr<const Trace>> traces;
  std::vector<NeedleResult> needle;
  std::vector<ThroughputResult> throughput;
};

using SessionProgress = std::function<void(double fraction, const std::string& stage)>;

// Folder of trace `index` in a session: "baseline" for 0, else "<index>_<display name made a
// folder name>" ([A-Za-z0-9._-] kept, other runs become '_', at most 80 characters).
std::string session_trace_folder(size_t index, const VariantSpec& spec);

// Writes the whole session into "<dir>.tmp-XXXX" first, then replaces `dir`, which must be
// absent, empty or an earlier session/run directory (holding index.json); anything else, and
// any failure, leaves `dir` untouched. A session load_session would refuse (traces[0] not the
// baseline, traces of other tokens or another model, decode_steps not the baseline's decoded
// tokens, invalid needle/throughput values, an inconsistent trace) is refused too.
// Throws Error(Runtime) "<dir>: <what failed>".
void save_session(const Session& session, const std::filesystem::path& dir,
                  const SessionProgress& progress = {});

// Reads and validates a session directory (or a CLI run directory: its index.json lists the
// traces; prompt, needle and throughput may be absent). Every trace is validated by load_trace
// and must share the baseline's model identity and tokens. Throws Error(BadInput) naming the
// file and field: "<dir>/index.json: traces[1].dir: expected a trace folder, got ..." .
Session load_session(const std::filesystem::path& dir, const SessionProgress& progress = {});

// True when `dir` looks like a session or run directory (holds index.json).
bool is_session_directory(const std::filesystem::path& dir);

// JSON text of needle results, and back (from_json throws Error(BadInput) naming `where`).
std::string needle_results_to_json(const std::vector<NeedleResult>& results);
std::vector<NeedleResult> needle_results_from_json(const std::string& json_text,
                                                   const std::string& where);

}  // namespace attnscope
