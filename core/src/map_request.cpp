// Pooled attention maps: rows recomputed from the trace's Q/K with variant_attention_row (mask,
// group map, STRING, KV keep set) and reduced into bins without materialising the full matrix.
// compute_map parallelises one map's row bins; compute_maps parallelises across maps and runs
// each map's bins in order on one thread, through the same per-bin code, so both give the same
// bits.
#include "attnscope/map_request.h"

#include <algorithm>
#include <mutex>
#include <string>

#include "attnscope/error.h"
#include "attnscope/variant_attention.h"
#include "simd_kernels.h"
#include "thread_pool.h"

namespace attnscope {
namespace {

// Edge i of `bins` contiguous bins over [begin, end): begin + floor(i * n / bins).
std::vector<int> bin_edges(int begin, int end, int bins) {
  std::vector<int> edges(static_cast<size_t>(bins) + 1);
  const int64_t n = end - begin;
  for (int i = 0; i <= bins; ++i)
    edges[static_cast<size_t>(i)] = begin + static_cast<int>(i * n / bins);
  return edges;
}

int max_gap(const std::vector<int>& edges) {
  int g = 0;
  for (size_t i = 0; i + 1 < edges.size(); ++i) g = std::max(g, edges[i + 1] - edges[i]);
  return g;
}

void check_range(const char* name, int begin, int end, int n_tokens) {
  if (begin < 0 || begin >= end || end > n_tokens) {
    throw_usage(std::string("map request: ") + name +
                ": expected 0 <= begin < end <= " + std::to_string(n_tokens) + ", got [" +
                std::to_string(begin) + ", " + std::to_string(end) + ")");
  }
}

// Query rows of a bin of `size` rows starting at `first` under MapRequest::sample_rows `n`:
// all of them when n == 0 or size <= n, else first + floor(r * (size - 1) / (n - 1)), r < n
// (distinct, since (size - 1) / (n - 1) > 1), and only `first` when n == 1.
int sampled_count(int size, int n) {
  return n > 0 && size > n ? n : size;
}
int sampled_row(int first, int size, int n, int r) {
  if (n <= 0 || size <= n) return first + r;
  if (n == 1) return first;
  return first + static_cast<int>(static_cast<int64_t>(r) * (size - 1) / (n - 1));
}

// Checks the request against the trace and returns the map's shape (bins, strides, ranges,
// sampled flag) with zeroed values. Throws as documented for compute_map.
PooledMap shaped_map(const Trace& t, const MapRequest& req) {
  const int n_layer = t.model.n_layer;
  const int H = t.model.n_head, d = t.model.head_dim;
  const int T = t.n_tokens();
  if (req.layer < 0 || req.layer >= n_layer) {
    throw_usage("map request: layer: expected 0.." + std::to_string(n_layer - 1) + ", got " +
                std::to_string(req.layer));
  }
  if (req.head < 0 || req.head >= H) {
    throw_usage("map request: head: expected 0.." + std::to_string(H - 1) + ", got " +
                std::to_string(req.head));
  }
  const auto L = static_cast<size_t>(req.layer);
  if (T == 0 || L >= t.q.size() || L >= t.k.size() || L >= t.k_heads.size() || t.q[L].empty() ||
      t.k[L].empty()) {
    throw_bad_input("trace: q/k of layer " + std::to_string(req.layer),
                    "expected stored Q and K (run with Q/K kept) to compute maps");
  }
  const int n_kv = t.k_heads[L];
  const auto need_q = static_cast<size_t>(T) * H * d;
  const auto need_k = static_cast<size_t>(T) * static_cast<size_t>(std::max(n_kv, 0)) * d;
  if (n_kv <= 0 || t.q[L].size() != need_q || t.k[L].size() != need_k) {
    throw_bad_input("trace: q/k of layer " + std::to_string(req.layer),
                    "expected [T, H, d] and [T, n_kv, d] arrays");
  }
  PooledMap map;
  map.q_begin = req.q_begin;
  map.q_end = req.q_end <= 0 ? T : req.q_end;
  map.k_begin = req.k_begin;
  map.k_end = req.k_end <= 0 ? T : req.k_end;
  check_range("query range", map.q_begin, map.q_end, T);
  check_range("key range", map.k_begin, map.k_end, T);
  if (req.out_rows < 1 || req.out_cols < 1) {
    throw_usage("map request: out_rows/out_cols: expected >= 1, got " +
                std::to_string(req.out_rows) + " x " + std::to_string(req.out_cols));
  }
  if (req.sample_rows < 0) {
    throw_usage("map request: sample_rows: expected >= 0 (0 = every row), got " +
                std::to_string(req.sample_rows));
  }
  map.rows = std::min(req.out_rows, map.q_end - map.q_begin);
  map.cols = std::min(req.out_cols, map.k_end - map.k_begin);
  map.row_edges = bin_edges(map.q_begin, map.q_end, map.rows);
  map.col_edges = bin_edges(map.k_begin, map.k_end, map.cols);
  map.row_stride = max_gap(map.row_edges);
  map.col_stride = max_gap(map.col_edges);
  // Bins differ in size by at most one, so the largest one decides whether any row is skipped.
  map.sampled = req.sample_rows > 0 && map.row_stride > req.sample_rows;
  map.values.assign(static_cast<size_t>(map.rows) * map.cols, 0.0f);
  return map;
}

// What the rows of one request read, built once per request: the column bin of each key, the
// KV decision recorded at each decode position, the head's prefill mask.
class MapRows {
 public:
  MapRows(const Trace& t, const MapRequest& req, const PooledMap& map)
      : m_t(t), m_req(req), m_map(map), m_L(static_cast<size_t>(req.layer)) {
    // Column bin of every key in range: O(n_key) instead of a search per cell.
    m_col_of.resize(static_cast<size_t>(map.k_end - map.k_begin));
    for (int c = 0; c < map.cols; ++c) {
      for (int j = map.col_edges[static_cast<size_t>(c)];
           j < map.col_edges[static_cast<size_t>(c) + 1]; ++j) {
        m_col_of[static_cast<size_t>(j - map.k_begin)] = c;
      }
    }
    // Decode rows: the KvStep recorded at that position for this layer.
    const int T = t.n_tokens();
    m_kv_at.assign(static_cast<size_t>(T), nullptr);
    if (req.apply_kv) {
      for (const auto& step : t.kv_steps) {
        if (m_L < step.size() && step[m_L].position >= 0 && step[m_L].position < T) {
          m_kv_at[static_cast<size_t>(step[m_L].position)] = &step[m_L];
        }
      }
    }
    const auto h = static_cast<size_t>(req.head);
    m_mask = m_L < t.masks.size() && h < t.masks[m_L].size() ? &t.masks[m_L][h] : nullptr;
    // Keys of every KV head packed once for all rows (a row reads the prefix it needs), instead
    // of once per row: the packing would otherwise cost as much as the scores.
    const int n_kv = t.k_heads[m_L], d = t.model.head_dim;
    m_packed.resize(static_cast<size_t>(n_kv));
    for (int kv = 0; kv < n_kv; ++kv) {
      auto& p = m_packed[static_cast<size_t>(kv)];
      p.resize(detail::packed_keys_size(T, d));
      detail::pack_keys(t.k[m_L].data() + static_cast<size_t>(kv) * d, T, n_kv * d, d, p.data());
    }
  }

  // Per-thread buffers: probs [T], keep [T], sums [cols], shifted [d].
  struct Scratch {
    std::vector<float> probs;
    std::vector<uint8_t> keep;
    std::vector<double> sums;  // mean: double so long bins stay exact
    std::vector<float> shifted;
  };
  Scratch scratch() const {
    const auto T = static_cast<size_t>(m_t.n_tokens());
    return {std::vector<float>(T), std::vector<uint8_t>(T),
            std::vector<double>(static_cast<size_t>(m_map.cols)),
            std::vector<float>(static_cast<size_t>(m_t.model.head_dim))};
  }

  // Output row bin r into out: [cols], zero on entry.
  void compute_bin(int r, float* out, Scratch& s) const {
    const int H = m_t.model.n_head, d = m_t.model.head_dim, n_kv = m_t.k_heads[m_L];
    const float* q = m_t.q[m_L].data();
    std::fill(s.sums.begin(), s.sums.end(), 0.0);
    const int i0 = m_map.row_edges[static_cast<size_t>(r)];
    const int size = m_map.row_edges[static_cast<size_t>(r) + 1] - i0;
    const int n_rows = sampled_count(size, m_req.sample_rows);
    for (int ri = 0; ri < n_rows; ++ri) {
      const int i = sampled_row(i0, size, m_req.sample_rows, ri);
      const int kv = kv_for_row(i, n_kv, H);
      VariantRowSpec spec;
      spec.mask = m_mask;
      // Decode rows: the mask the pattern returned at that step (trace.h mask_steps).
      const size_t step = static_cast<size_t>(i - m_t.n_prompt);
      HeadMask step_mask;
      if (i >= m_t.n_prompt && step < m_t.mask_steps.size() && m_L < m_t.mask_steps[step].size() &&
          static_cast<size_t>(m_req.head) < m_t.mask_steps[step][m_L].size()) {
        step_mask =
            step_mask_for_row(m_t.mask_steps[step][m_L][static_cast<size_t>(m_req.head)], i);
        spec.mask = &step_mask;
      }
      spec.string_shift = m_t.string_shift;
      spec.string_window = m_t.string_window;
      spec.rope_theta = m_t.model.rope_theta;
      if (const KvStep* ks = m_kv_at[static_cast<size_t>(i)];
          ks && static_cast<size_t>(kv) < ks->reasons.size()) {
        const auto& reasons = ks->reasons[static_cast<size_t>(kv)];
        for (int j = 0; j <= i; ++j) {
          // Positions the policy has not seen yet (none, normally) count as kept.
          s.keep[static_cast<size_t>(j)] =
              static_cast<size_t>(j) < reasons.size() ? (reasons[static_cast<size_t>(j)] != 0) : 1;
        }
        spec.keep = s.keep.data();
      }
      variant_attention_row_on_packed(q + (static_cast<size_t>(i) * H + m_req.head) * d, i,
                                      m_packed[static_cast<size_t>(kv)].data(), d, spec,
                                      s.shifted.data(), s.probs.data());
      const int j_end = std::min(m_map.k_end, i + 1);
      for (int j = m_map.k_begin; j < j_end; ++j) {
        const float p = s.probs[static_cast<size_t>(j)];
        const int c = m_col_of[static_cast<size_t>(j - m_map.k_begin)];
        if (m_req.reduce == MapRequest::Max) {
          out[c] = std::max(out[c], p);
        } else {
          s.sums[static_cast<size_t>(c)] += p;
        }
      }
    }
    if (m_req.reduce == MapRequest::Mean) {
      for (int c = 0; c < m_map.cols; ++c) {
        const int w =
            m_map.col_edges[static_cast<size_t>(c) + 1] - m_map.col_edges[static_cast<size_t>(c)];
        out[c] = static_cast<float>(s.sums[static_cast<size_t>(c)] /
                                    static_cast<double>(static_cast<int64_t>(n_rows) * w));
      }
    }
  }

 private:
  // KV head read by the head: prefill map, per-step maps for decode rows (DGQA), native else.
  int kv_for_row(int i, int n_kv, int H) const {
    const std::vector<int>* kvq = m_L < m_t.groups.size() ? &m_t.groups[m_L].kv_of_query : nullptr;
    const int step = i - m_t.n_prompt;
    if (step >= 0 && static_cast<size_t>(step) < m_t.group_steps.size() &&
        m_L < m_t.group_steps[static_cast<size_t>(step)].size()) {
      kvq = &m_t.group_steps[static_cast<size_t>(step)][m_L].kv_of_query;
    }
    const int kv = kvq && static_cast<size_t>(m_req.head) < kvq->size()
                       ? (*kvq)[static_cast<size_t>(m_req.head)]
                       : static_cast<int>(static_cast<int64_t>(m_req.head) * n_kv / H);
    if (kv < 0 || kv >= n_kv) {
      throw_bad_input("trace: groups of layer " + std::to_string(m_req.layer),
                      "expected KV heads in [0, " + std::to_string(n_kv - 1) + "]");
    }
    return kv;
  }

  const Trace& m_t;
  const MapRequest& m_req;
  const PooledMap& m_map;
  size_t m_L;
  std::vector<int> m_col_of;
  std::vector<const KvStep*> m_kv_at;
  const HeadMask* m_mask = nullptr;
  std::vector<std::vector<float>> m_packed;  // [n_kv] packed keys of the layer (all T)
};

void throw_if_cancelled(const std::atomic<bool>* cancel) {
  if (cancel != nullptr && cancel->load()) throw_runtime("cancelled");
}

}  // namespace

PooledMap compute_map(const Trace& t, const MapRequest& req, const std::atomic<bool>* cancel) {
  throw_if_cancelled(cancel);
  PooledMap map = shaped_map(t, req);
  const MapRows rows(t, req, map);
  ThreadPool pool(0);
  pool.parallel_for(0, map.rows, 1, [&](int lo, int hi) {
    MapRows::Scratch s = rows.scratch();
    for (int r = lo; r < hi; ++r) {
      throw_if_cancelled(cancel);
      rows.compute_bin(r, map.values.data() + static_cast<size_t>(r) * map.cols, s);
    }
  });
  throw_if_cancelled(cancel);
  return map;
}

std::vector<PooledMap> compute_maps(const Trace& t, const std::vector<MapRequest>& requests,
                                    const std::atomic<bool>* cancel,
                                    const std::function<void(double)>& progress) {
  throw_if_cancelled(cancel);
  // Every request is checked before any work, so a bad one fails fast and deterministically.
  std::vector<PooledMap> maps;
  maps.reserve(requests.size());
  for (const MapRequest& req : requests) maps.push_back(shaped_map(t, req));
  const int n = static_cast<int>(requests.size());
  std::mutex progress_mutex;
  int done = 0;
  ThreadPool pool(0);
  pool.parallel_for(0, n, 1, [&](int lo, int hi) {
    for (int m = lo; m < hi; ++m) {
      PooledMap& map = maps[static_cast<size_t>(m)];
      const MapRows rows(t, requests[static_cast<size_t>(m)], map);
      MapRows::Scratch s = rows.scratch();
      for (int r = 0; r < map.rows; ++r) {
        throw_if_cancelled(cancel);
        rows.compute_bin(r, map.values.data() + static_cast<size_t>(r) * map.cols, s);
      }
      if (progress) {
        // Serialised, so callers need no lock and see the fractions in increasing order.
        std::lock_guard<std::mutex> lock(progress_mutex);
        ++done;
        progress(static_cast<double>(done) / n);
      }
    }
  });
  throw_if_cancelled(cancel);
  return maps;
}

PooledMap difference_map(const PooledMap& a, const PooledMap& b) {
  auto shape = [](const PooledMap& m) {
    return std::to_string(m.rows) + " x " + std::to_string(m.cols) + " over queries [" +
           std::to_string(m.q_begin) + ", " + std::to_string(m.q_end) + ") x keys [" +
           std::to_string(m.k_begin) + ", " + std::to_string(m.k_end) + ")";
  };
  if (a.rows != b.rows || a.cols != b.cols || a.row_edges != b.row_edges ||
      a.col_edges != b.col_edges) {
    throw_usage("difference_map: the maps are pooled over different bins (" + shape(a) + " vs " +
                shape(b) + "); request both with the same ranges and resolution");
  }
  const size_t cells = static_cast<size_t>(a.rows) * static_cast<size_t>(a.cols);
  if (a.values.size() != cells || b.values.size() != cells) {
    throw_usage("difference_map: values must hold rows x cols = " + std::to_string(cells) +
                " cells, got " + std::to_string(a.values.size()) + " and " +
                std::to_string(b.values.size()));
  }
  PooledMap d = a;
  for (size_t i = 0; i < cells; ++i) d.values[i] = b.values[i] - a.values[i];
  d.sampled = a.sampled || b.sampled;
  return d;
}

}  // namespace attnscope
