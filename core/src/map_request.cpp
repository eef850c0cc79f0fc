// Pooled attention maps: rows recomputed from the trace's Q/K with variant_attention_row (mask,
// group map, STRING, KV keep set) and reduced into bins without materialising the full matrix.
#include "attnscope/map_request.h"

#include <algorithm>
#include <string>

#include "attnscope/error.h"
#include "attnscope/variant_attention.h"
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

}  // namespace

PooledMap compute_map(const Trace& t, const MapRequest& req) {
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
  const auto need_q = static_cast<size_t>(T) * H * d, need_k = static_cast<size_t>(T) * n_kv * d;
  if (t.q[L].size() != need_q || t.k[L].size() != need_k) {
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
  map.rows = std::min(req.out_rows, map.q_end - map.q_begin);
  map.cols = std::min(req.out_cols, map.k_end - map.k_begin);
  map.row_edges = bin_edges(map.q_begin, map.q_end, map.rows);
  map.col_edges = bin_edges(map.k_begin, map.k_end, map.cols);
  map.row_stride = max_gap(map.row_edges);
  map.col_stride = max_gap(map.col_edges);
  map.values.assign(static_cast<size_t>(map.rows) * map.cols, 0.0f);

  // Column bin of every key in range: O(n_key) instead of a search per cell.
  std::vector<int> col_of(static_cast<size_t>(map.k_end - map.k_begin));
  for (int c = 0; c < map.cols; ++c) {
    for (int j = map.col_edges[static_cast<size_t>(c)];
         j < map.col_edges[static_cast<size_t>(c) + 1]; ++j) {
      col_of[static_cast<size_t>(j - map.k_begin)] = c;
    }
  }

  // KV head read by the head: prefill map, per-step maps for decode rows (DGQA), native else.
  auto kv_for_row = [&](int i) {
    const std::vector<int>* kvq = L < t.groups.size() ? &t.groups[L].kv_of_query : nullptr;
    const int step = i - t.n_prompt;
    if (step >= 0 && static_cast<size_t>(step) < t.group_steps.size() &&
        L < t.group_steps[static_cast<size_t>(step)].size()) {
      kvq = &t.group_steps[static_cast<size_t>(step)][L].kv_of_query;
    }
    int kv = kvq && static_cast<size_t>(req.head) < kvq->size()
                 ? (*kvq)[static_cast<size_t>(req.head)]
                 : static_cast<int>(static_cast<int64_t>(req.head) * n_kv / H);
    if (kv < 0 || kv >= n_kv) {
      throw_bad_input("trace: groups of layer " + std::to_string(req.layer),
                      "expected KV heads in [0, " + std::to_string(n_kv - 1) + "]");
    }
    return kv;
  };
  // Decode rows: the KvStep recorded at that position for this layer.
  std::vector<const KvStep*> kv_at(static_cast<size_t>(T), nullptr);
  if (req.apply_kv) {
    for (const auto& step : t.kv_steps) {
      if (L < step.size() && step[L].position >= 0 && step[L].position < T) {
        kv_at[static_cast<size_t>(step[L].position)] = &step[L];
      }
    }
  }
  const HeadMask* mask = L < t.masks.size() && static_cast<size_t>(req.head) < t.masks[L].size()
                             ? &t.masks[L][static_cast<size_t>(req.head)]
                             : nullptr;
  const float* q = t.q[L].data();
  const float* k = t.k[L].data();

  ThreadPool pool(0);
  pool.parallel_for(0, map.rows, 1, [&](int lo, int hi) {
    std::vector<float> probs(static_cast<size_t>(T));
    std::vector<uint8_t> keep(static_cast<size_t>(T));
    std::vector<double> sums(
        static_cast<size_t>(map.cols));  // mean: double so long bins stay exact
    for (int r = lo; r < hi; ++r) {
      std::fill(sums.begin(), sums.end(), 0.0);
      float* out = map.values.data() + static_cast<size_t>(r) * map.cols;
      const int i0 = map.row_edges[static_cast<size_t>(r)],
                i1 = map.row_edges[static_cast<size_t>(r) + 1];
      for (int i = i0; i < i1; ++i) {
        const int kv = kv_for_row(i);
        VariantRowSpec spec;
        spec.mask = mask;
        // Decode rows: the mask the pattern returned at that step (trace.h mask_steps).
        const size_t step = static_cast<size_t>(i - t.n_prompt);
        HeadMask step_mask;
        if (i >= t.n_prompt && step < t.mask_steps.size() && L < t.mask_steps[step].size() &&
            static_cast<size_t>(req.head) < t.mask_steps[step][L].size()) {
          step_mask = step_mask_for_row(t.mask_steps[step][L][static_cast<size_t>(req.head)], i);
          spec.mask = &step_mask;
        }
        spec.string_shift = t.string_shift;
        spec.string_window = t.string_window;
        spec.rope_theta = t.model.rope_theta;
        if (const KvStep* ks = kv_at[static_cast<size_t>(i)];
            ks && static_cast<size_t>(kv) < ks->reasons.size()) {
          const auto& reasons = ks->reasons[static_cast<size_t>(kv)];
          for (int j = 0; j <= i; ++j) {
            // Positions the policy has not seen yet (none, normally) count as kept.
            keep[static_cast<size_t>(j)] = static_cast<size_t>(j) < reasons.size()
                                               ? (reasons[static_cast<size_t>(j)] != 0)
                                               : 1;
          }
          spec.keep = keep.data();
        }
        variant_attention_row(q + (static_cast<size_t>(i) * H + req.head) * d, i, k, n_kv, kv, d,
                              spec, probs.data());
        const int j_end = std::min(map.k_end, i + 1);
        for (int j = map.k_begin; j < j_end; ++j) {
          const float p = probs[static_cast<size_t>(j)];
          const int c = col_of[static_cast<size_t>(j - map.k_begin)];
          if (req.reduce == MapRequest::Max) {
            out[c] = std::max(out[c], p);
          } else {
            sums[static_cast<size_t>(c)] += p;
          }
        }
      }
      if (req.reduce == MapRequest::Mean) {
        for (int c = 0; c < map.cols; ++c) {
          const int w =
              map.col_edges[static_cast<size_t>(c) + 1] - map.col_edges[static_cast<size_t>(c)];
          out[c] = static_cast<float>(sums[static_cast<size_t>(c)] /
                                      static_cast<double>(static_cast<int64_t>(i1 - i0) * w));
        }
      }
    }
  });
  return map;
}

}  // namespace attnscope
