// Trace directories: save_trace writes trace.json (versioned schema, kTraceSchemaVersion) plus
// .npy arrays atomically; load_trace reads one back and validates every field, range and shape.
//
// Layout of <dir>:
//   trace.json               metadata, small per-layer records and an "arrays" table naming
//                            every .npy file with its dtype and shape
//   q_L{l}.npy  float32 [T, H, d]       post-RoPE queries of layer l (when stored)
//   k_L{l}.npy  float32 [T, n_kv_l, d]  keys the variant attended in layer l (when stored)
//   next_token_ids.npy       int32 [N, K]  top-K ids per position (-1 pads shorter rows)
//   next_token_logprobs.npy  float32 [N, K] their log-probabilities (0 on padding)
//   kv_reasons.npy           uint8 [total] every KvStep's reasons, concatenated in order
//                            (decode step, layer, KV head); lengths are in trace.json
#pragma once

#include <filesystem>
#include <string>

#include "attnscope/trace.h"

namespace attnscope {

// Writes `trace` to `dir`: everything goes into a sibling "<dir>.tmp-XXXX" first, which then
// replaces `dir` (an existing dir must be empty or hold a trace.json; it is kept intact when
// anything fails). Throws Error(Runtime) "<dir>: ..." for an inconsistent trace or an I/O
// failure.
void save_trace(const Trace& trace, const std::filesystem::path& dir);

// Reads and validates a trace directory. Throws Error(BadInput) naming the file and field:
// "<dir>/trace.json: masks[3][2].block: expected an integer in [1, 1048576], got 0" or
// "<dir>/q_L3.npy: expected shape [12, 9, 64] (from trace.json), got [12, 9, 32]".
Trace load_trace(const std::filesystem::path& dir);

// Internal consistency of a trace: every size against the model identity (n_layer, n_head,
// head_dim, vocab) and the token count, value ranges (token ids, KV reasons <= 4, group maps),
// finite floats, and a variant spec that round-trips through VariantSpec::parse.
// Throws Error(BadInput) "<where>: <field>: expected ...".
void validate_trace(const Trace& trace, const std::string& where);

// Bytes of the trace's payload in memory (array elements and strings, not container
// overheads): what holding the trace costs, dominated by the per-layer Q/K.
size_t trace_memory_bytes(const Trace& trace);

}  // namespace attnscope
