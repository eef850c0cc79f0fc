// Pooled attention maps on demand: one head's attention over a query range x key range,
// recomputed row by row from a trace's Q/K through the variant's own attention
// (variant_attention_row) and pooled to a requested resolution, so a 32k-token prompt is
// viewable without ever materialising the full [T, T] matrix.
#pragma once

#include <atomic>
#include <functional>
#include <vector>

#include "attnscope/trace.h"

namespace attnscope {

struct MapRequest {
  enum Reduce { Max, Mean };
  int layer = 0, head = 0;
  // Half-open ranges of query rows and key columns; q_end/k_end <= 0 mean "to the end" (T).
  int q_begin = 0, q_end = 0;
  int k_begin = 0, k_end = 0;
  // Output resolution; values larger than the range are reduced to it (one cell per token).
  int out_rows = 64, out_cols = 64;
  Reduce reduce = Max;
  // Apply the KV policy's keep set on decode rows (what the variant really attended there).
  bool apply_kv = true;
  // Overview sampling: 0 = every query row of each output row bin; n > 0 = at most n query
  // rows per bin, evenly spread with the bin's first and last row included (rows
  // first + floor(r * (size - 1) / (n - 1)), r < n; one row = the first), so thumbnails of
  // long prompts cost O(out_rows * n * T). Mean then averages over the sampled rows' cells.
  // A bin with at most n rows is exact.
  int sample_rows = 0;
};

struct PooledMap {
  int rows = 0, cols = 0;
  std::vector<float> values;  // [rows, cols] row-major
  int q_begin = 0, q_end = 0, k_begin = 0, k_end = 0;
  // Bin edges: output row r covers queries [row_edges[r], row_edges[r + 1]); [rows + 1] and
  // [cols + 1] absolute positions. Edge i = begin + floor(i * n / bins).
  std::vector<int> row_edges, col_edges;
  // Largest bin size in tokens (the stride of the pooling; 1 at full resolution).
  int row_stride = 1, col_stride = 1;
  bool sampled = false;  // some row bin skipped rows (MapRequest::sample_rows)
};

// The pooled map of `request.head` in `request.layer`: each cell reduces (max or mean) the
// attention probabilities of its bin's (query, key) cells. Mean averages over ALL cells of the
// bin, including causally hidden (j > i), masked or evicted ones, which count as 0, so a cell's
// value is the bin's mean probability density. At full resolution (rows = q range, cols = key
// range) the map equals the exact attention probabilities.
// Memory O(out_rows * out_cols + T) per thread; rows are computed in parallel.
// Throws Error(Usage) for a layer/head/range outside the trace, and Error(BadInput) when the
// trace holds no Q/K for the layer. With sample_rows > 0, max and mean reduce over the sampled
// rows of each bin only (see MapRequest::sample_rows) and `sampled` says whether any was skipped;
// a negative sample_rows is Error(Usage).
// `cancel` (optional) is polled before each output row bin; when set, Error(Runtime)
// "cancelled" is thrown (a view that moved on stops paying for a 32k-token exact map).
PooledMap compute_map(const Trace& trace, const MapRequest& request,
                      const std::atomic<bool>* cancel = nullptr);

// Many maps of one trace (e.g. a thumbnail of every head): the same results as compute_map for
// each request (bit for bit), computed in parallel across requests with each request's rows on
// one thread, which suits many small maps. Every request is validated before any work starts
// (the first bad one throws as compute_map would). `cancel` (optional) is polled between rows;
// when set, Error(Runtime) "cancelled" is thrown. progress (optional) receives the fraction of
// requests done, from worker threads, one call at a time and in increasing order.
std::vector<PooledMap> compute_maps(const Trace& trace, const std::vector<MapRequest>& requests,
                                    const std::atomic<bool>* cancel = nullptr,
                                    const std::function<void(double)>& progress = {});

// Cell-wise b - a of two maps pooled over the same bins (same row and column edges, e.g. the
// same MapRequest on two traces of one run): the Compare view's difference. Throws
// Error(Usage) "difference_map: ..." when the bins differ.
PooledMap difference_map(const PooledMap& a, const PooledMap& b);

}  // namespace attnscope
