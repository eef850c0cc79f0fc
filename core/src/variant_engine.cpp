// VariantAttention: composes a variant's four parts per layer inside the session's forward
// (grouping -> pattern masks -> KV keep set -> variant_attention_row per (row, head) -> weighted
// V sum -> grouping's output perturbation) and records each part's decisions into a Trace,
// including the attention mass a KV policy's evictions cost against the shadow full cache.
#include "attnscope/variant_engine.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "attnscope/error.h"
#include "attnscope/ops.h"
#include "attnscope/variant_attention.h"
#include "simd_kernels.h"
#include "thread_pool.h"

namespace attnscope {

bool same_part(const PartConfig& a, const PartConfig& b) {
  return a.name == b.name && a.params == b.params;
}

StringParams string_params_of(const PositionPart& part, int max_distance) {
  StringParams s;
  int first = -1;
  for (int r = 0; r <= max_distance; ++r) {
    if (part.effective_distance(r) != r) {
      first = r;
      break;
    }
  }
  if (first < 0) return s;  // identity on every distance the context can hold
  s.shift = first;
  s.window = part.effective_distance(first);
  if (s.shift == 0 || s.window < 0) {
    throw_usage("positions: distance map maps 0 to " + std::to_string(s.window) +
                "; only RoPE as trained or STRING (r -> r - S + W for r >= S > 0) is supported");
  }
  for (int r = first; r <= max_distance; ++r) {
    if (part.effective_distance(r) != r - s.shift + s.window) {
      throw_usage("positions: distance map is not of STRING form at r = " + std::to_string(r) +
                  " (expected " + std::to_string(r - s.shift + s.window) + ", got " +
                  std::to_string(part.effective_distance(r)) + ")");
    }
  }
  return s;
}

namespace {

// Full causal masks / native grouping, recorded where a part was the identity and skipped.
GroupStep native_groups(const ModelConfig& c) {
  GroupStep g;
  g.n_kv = c.n_head_kv;
  g.kv_of_query.resize(c.n_head);
  for (int h = 0; h < c.n_head; ++h) g.kv_of_query[h] = h / c.group_size();
  return g;
}

// The mask of the decoded row `pos` in mask_steps' compact form (trace.h): the block row of
// pos / block only.
HeadMask decode_row_mask(const HeadMask& m, int pos) {
  HeadMask out = m;
  if (m.all_blocks) return out;
  const int qb = pos / std::max(1, m.block);
  out.n_qblocks = m.n_kblocks > 0 ? 1 : 0;
  out.blocks.assign(static_cast<size_t>(out.n_qblocks) * m.n_kblocks, 0);
  if (qb < m.n_qblocks && m.blocks.size() >= static_cast<size_t>(m.n_qblocks) * m.n_kblocks) {
    std::copy_n(m.blocks.begin() + static_cast<std::ptrdiff_t>(qb) * m.n_kblocks, m.n_kblocks,
                out.blocks.begin());
  }
  return out;
}

}  // namespace

struct VariantAttention::Impl {
  VariantSpec spec;
  std::shared_ptr<const Model> model;
  Trace* trace = nullptr;
  VariantEngineOptions options;
  std::unique_ptr<GroupingPart> grouping;
  std::unique_ptr<PatternPart> pattern;
  std::unique_ptr<PositionPart> positions;
  std::unique_ptr<KvPolicy> kv;
  bool prefill_by_backend = false;
  bool records_k = false;
  bool records_masks = false;  // decode-step masks (non-identity pattern)
  StringParams string;
  GroupReduce reduce = GroupReduce::Mean;
  ThreadPool pool;
  std::vector<int> decode_calls;    // [n_layer] decode calls seen
  std::vector<double> layer_bytes;  // [n_layer] simulated cache bytes after the last call
  // Scratch reused across calls.
  std::vector<float> packed;         // [n_kv][packed_keys_size(n_key, d)]
  std::vector<uint8_t> keep;         // [n_kv][n_key]
  std::vector<uint8_t> any_evicted;  // [n_kv]
  std::vector<float> last_probs;     // [H, n_key] probabilities of the last decode row
  std::vector<float> lost_per_head;  // [H]

  Impl(const VariantSpec& s, std::shared_ptr<const Model> m, Trace* t,
       const VariantEngineOptions& o)
      : spec(s), model(std::move(m)), trace(t), options(o), pool(o.n_threads) {}

  void record_prefill(int layer, const GroupStep& groups, std::vector<HeadMask> masks,
                      std::vector<float> density, std::string note, std::vector<float> scores) {
    trace->groups[layer] = groups;
    trace->k_heads[layer] = groups.n_kv;
    trace->masks[layer] = std::move(masks);
    trace->mask_density[layer] = std::move(density);
    trace->pattern_notes[layer] = std::move(note);
    trace->pattern_scores[layer] = std::move(scores);
  }

  template <typename T>
  static std::vector<T>& step_slot(std::vector<std::vector<T>>& steps, int step, int n_layer) {
    if (static_cast<int>(steps.size()) <= step) steps.resize(step + 1);
    auto& s = steps[step];
    if (static_cast<int>(s.size()) != n_layer) s.resize(n_layer);
    return s;
  }
};

VariantAttention::VariantAttention(const VariantSpec& spec, std::shared_ptr<const Model> model,
                                   Trace* trace, const VariantEngineOptions& options) {
  if (!model) throw_usage("variant engine: no model");
  if (trace == nullptr) throw_usage("variant engine: no trace to record into");
  m_impl = std::make_unique<Impl>(spec, model, trace, options);
  Impl& s = *m_impl;
  const ModelConfig& c = model->config;
  s.grouping = make_grouping_part(spec.grouping, *model);
  s.pattern = make_pattern_part(spec.pattern, *model);
  s.positions = make_position_part(spec.positions, *model);
  s.kv = make_kv_policy(spec.kv, *model);
  const VariantSpec base = VariantSpec::baseline();
  const bool grouping_id = same_part(spec.grouping, base.grouping);
  const bool pattern_id = same_part(spec.pattern, base.pattern);
  const bool positions_id = same_part(spec.positions, base.positions);
  s.prefill_by_backend = grouping_id && pattern_id && positions_id && !options.force_hook;
  s.records_k = !grouping_id && options.record_k;
  s.records_masks = !pattern_id;
  m_records_k = !grouping_id;
  // Scanned well past any context so a shift beyond the prompt is still recorded as given.
  const int max_distance = std::max(1 << 21, c.context_length);
  s.string = string_params_of(*s.positions, max_distance);
  const auto it = spec.kv.params.find("reduce");
  s.reduce =
      it != spec.kv.params.end() && it->second == "max" ? GroupReduce::Max : GroupReduce::Mean;
  m_reduce = s.reduce;

  const int L = c.n_layer;
  trace->groups.assign(L, GroupStep{});
  trace->masks.assign(L, {});
  trace->mask_density.assign(L, {});
  trace->pattern_notes.assign(L, "");
  trace->pattern_scores.assign(L, {});
  trace->k_heads.assign(L, c.n_head_kv);
  if (s.records_k) trace->k.assign(L, {});
  trace->group_steps.clear();
  trace->mask_steps.clear();
  trace->kv_steps.clear();
  trace->string_shift = s.string.shift;
  trace->string_window = s.string.window;
  s.decode_calls.assign(L, 0);
  s.layer_bytes.assign(L, 0.0);
}

VariantAttention::~VariantAttention() = default;

double VariantAttention::kv_cache_bytes() const {
  double total = 0;
  for (double b : m_impl->layer_bytes) total += b;
  return total;
}

bool VariantAttention::attend(int layer, const AttentionShape& shape, const float* q,
                              const float* k, const float* v, float* out) {
  Impl& s = *m_impl;
  const ModelConfig& c = s.model->config;
  const int H = c.n_head, Hkv = c.n_head_kv, d = c.head_dim;
  if (layer < 0 || layer >= c.n_layer || shape.n_head != H || shape.n_head_kv != Hkv ||
      shape.head_dim != d || shape.n_query <= 0 || shape.pos0 < 0) {
    throw_usage("variant engine: layer " + std::to_string(layer) +
                " called with a shape that does not match the model");
  }
  if (s.options.cancel != nullptr && s.options.cancel->load()) throw_runtime("cancelled");
  Trace& trace = *s.trace;
  const bool prefill = shape.pos0 == 0;
  const int n_key = shape.n_key();
  const int nq = shape.n_query;
  const double entry_bytes = 2.0 * d * sizeof(float);  // one K row + one V row

  LayerContext ctx;
  ctx.config = &c;
  ctx.layer = layer;
  ctx.shape = shape;
  ctx.q = q;
  ctx.k = k;
  ctx.v = v;

  if (prefill && s.prefill_by_backend) {
    // Only the KV policy differs from the baseline and policies never change prefill: the
    // backend computes it; the policy still sees the prefill to score the prompt.
    s.record_prefill(layer, native_groups(c), std::vector<HeadMask>(H), std::vector<float>(H, 1.0f),
                     "", {});
    s.kv->after_prefill(ctx);
    s.layer_bytes[layer] = static_cast<double>(n_key) * Hkv * entry_bytes;
    return false;
  }

  // Grouping: which (possibly new) KV head each query head reads.
  GroupingResult g = s.grouping->group(ctx);
  if (g.k.empty()) g.n_kv = Hkv;
  const int n_kv = g.n_kv;
  const size_t kv_size = static_cast<size_t>(n_key) * n_kv * d;
  if (n_kv <= 0 || static_cast<int>(g.kv_of_query.size()) != H ||
      (!g.k.empty() && (g.k.size() != kv_size || g.v.size() != kv_size))) {
    throw_runtime(
        "variant engine: grouping '" + s.spec.grouping.name + "' returned " + std::to_string(n_kv) +
        " KV heads, a map of " + std::to_string(g.kv_of_query.size()) + " query heads and K/V of " +
        std::to_string(g.k.size()) + "/" + std::to_string(g.v.size()) + " values (expected " +
        std::to_string(H) + " and " + std::to_string(kv_size) + ")");
  }
  for (int kvh : g.kv_of_query) {
    if (kvh < 0 || kvh >= n_kv) {
      throw_runtime("variant engine: grouping '" + s.spec.grouping.name +
                    "' maps a query head to KV head " + std::to_string(kvh) + " outside [0, " +
                    std::to_string(n_kv) + ")");
    }
  }
  const float* ke = g.k.empty() ? k : g.k.data();
  const float* ve = g.v.empty() ? v : g.v.data();
  // Patterns and policies see the KV heads actually attended.
  LayerContext ectx = ctx;
  ectx.k = ke;
  ectx.v = ve;
  ectx.shape.n_head_kv = n_kv;
  ectx.kv_of_query = &g.kv_of_query;  // policies reduce over the heads that read each KV head

  PatternResult p = s.pattern->mask(ectx);
  if (p.heads.empty()) p.heads.assign(H, HeadMask{});
  if (static_cast<int>(p.heads.size()) != H) {
    throw_runtime("variant engine: pattern '" + s.spec.pattern.name + "' returned " +
                  std::to_string(p.heads.size()) + " head masks, expected " + std::to_string(H));
  }

  // KV keep set (decode only; prefill attention is never changed by a policy).
  const KvDecision* decision = nullptr;
  std::vector<std::vector<uint8_t>> used_reasons;
  s.any_evicted.assign(n_kv, 0);
  if (!prefill) {
    s.kv->before_decode(ectx);
    decision = &s.kv->decision(layer);
    if (static_cast<int>(decision->reasons.size()) != n_kv) {
      throw_runtime("variant engine: kv policy '" + s.spec.kv.name + "' decided for " +
                    std::to_string(decision->reasons.size()) + " KV heads, expected " +
                    std::to_string(n_kv));
    }
    s.keep.assign(static_cast<size_t>(n_kv) * n_key, 0);
    used_reasons.assign(n_kv, std::vector<uint8_t>(n_key, 0));
    for (int kvh = 0; kvh < n_kv; ++kvh) {
      const auto& r = decision->reasons[kvh];
      const int n = std::min(n_key, static_cast<int>(r.size()));
      uint8_t* kp = &s.keep[static_cast<size_t>(kvh) * n_key];
      for (int j = 0; j < n; ++j) {
        used_reasons[kvh][j] = static_cast<uint8_t>(r[j]);
        kp[j] = r[j] != KeepReason::Evicted ? 1 : 0;
      }
      // Positions the policy has not reported are not in its cache.
      for (int j = 0; j < n_key; ++j) {
        if (kp[j] == 0) s.any_evicted[kvh] = 1;
      }
    }
  }

  // Keys packed once per attended KV head for the score kernel.
  const size_t packed_size = detail::packed_keys_size(n_key, d);
  s.packed.resize(static_cast<size_t>(n_kv) * packed_size);
  s.pool.parallel_for(0, n_kv, 1, [&](int lo, int hi) {
    for (int kvh = lo; kvh < hi; ++kvh) {
      detail::pack_keys(ke + static_cast<size_t>(kvh) * d, n_key, n_kv * d, d,
                        s.packed.data() + kvh * packed_size);
    }
  });
  if (!prefill) {
    s.last_probs.assign(static_cast<size_t>(H) * n_key, 0.0f);
    s.lost_per_head.assign(H, 0.0f);
  }
  const int n_items = nq * H;
  const int grain = std::max(1, std::min(H, n_items / (8 * s.pool.size()) + 1));
  const int S = s.string.shift, W = s.string.window;
  const float theta = c.rope_theta;
  s.pool.parallel_for(0, n_items, grain, [&](int lo, int hi) {
    std::vector<float> probs(static_cast<size_t>(n_key)), full, shifted(d);
    for (int item = lo; item < hi; ++item) {
      const int i = item / H, h = item % H;
      const int pos = shape.pos0 + i;
      const int kvh = g.kv_of_query[h];
      const float* qi = q + (static_cast<size_t>(i) * H + h) * d;
      const float* qs = nullptr;
      if (s.string.active() && pos >= S) {
        detail::rotate_by(qi, d, W - S, theta, shifted.data());
        qs = shifted.data();
      }
      const float* pk = s.packed.data() + kvh * packed_size;
      const uint8_t* keep =
          (!prefill && s.any_evicted[kvh]) ? &s.keep[static_cast<size_t>(kvh) * n_key] : nullptr;
      detail::variant_attention_row_packed(qi, qs, pos, pk, d, &p.heads[h], S, keep, probs.data());
      detail::weighted_sum_f32(probs.data(), ve + static_cast<size_t>(kvh) * d, n_kv * d, pos + 1,
                               d, out + (static_cast<size_t>(i) * H + h) * d);
      if (!prefill && i == nq - 1) {
        std::copy(probs.begin(), probs.begin() + pos + 1,
                  s.last_probs.begin() + static_cast<size_t>(h) * n_key);
        if (keep != nullptr) {
          // Lost mass: plain causal attention of the same query over the same (grouped) full
          // cache, summed over the entries the policy evicted.
          full.resize(static_cast<size_t>(pos) + 1);
          detail::attention_row_packed(qi, pk, pos + 1, d, full.data());
          double lost = 0;
          for (int j = 0; j <= pos; ++j) {
            if (keep[j] == 0) lost += full[j];
          }
          s.lost_per_head[h] = static_cast<float>(lost);
        }
      }
    }
  });
  s.grouping->perturb_output(ctx, g, out);

  GroupStep step_groups;
  step_groups.n_kv = n_kv;
  step_groups.kv_of_query = g.kv_of_query;
  step_groups.key_norms = g.key_norms;
  step_groups.active_query_heads = g.active_query_heads;
  if (prefill) {
    std::vector<float> density(H);
    for (int h = 0; h < H; ++h) {
      density[h] = static_cast<float>(mask_density(p.heads[h], 0, nq));
    }
    s.record_prefill(layer, step_groups, std::move(p.heads), std::move(density), std::move(p.note),
                     std::move(p.head_scores));
    s.kv->after_prefill(ectx);
    s.layer_bytes[layer] = static_cast<double>(n_key) * n_kv * entry_bytes;
  } else {
    s.kv->after_decode(ectx, s.last_probs.data());
    const int step = s.decode_calls[layer]++;
    Impl::step_slot(trace.group_steps, step, c.n_layer)[layer] = std::move(step_groups);
    if (s.records_masks) {
      // The mask this step's last (decoded) row used; map/metrics replay decode rows with it.
      std::vector<HeadMask> row_masks(H);
      for (int h = 0; h < H; ++h) row_masks[h] = decode_row_mask(p.heads[h], n_key - 1);
      Impl::step_slot(trace.mask_steps, step, c.n_layer)[layer] = std::move(row_masks);
    }
    KvStep ks;
    ks.position = n_key - 1;
    ks.budgets = decision->budgets;
    ks.lost_mass.assign(n_kv, 0.0f);
    double kept_total = 0;
    for (int kvh = 0; kvh < n_kv; ++kvh) {
      double sum = 0, mx = 0;
      int count = 0;
      for (int h = 0; h < H; ++h) {
        if (g.kv_of_query[h] != kvh) continue;
        sum += s.lost_per_head[h];
        mx = std::max(mx, static_cast<double>(s.lost_per_head[h]));
        ++count;
      }
      if (count > 0) {
        ks.lost_mass[kvh] = static_cast<float>(s.reduce == GroupReduce::Max ? mx : sum / count);
      }
      const uint8_t* kp = &s.keep[static_cast<size_t>(kvh) * n_key];
      for (int j = 0; j < n_key; ++j) kept_total += kp[j];
    }
    ks.reasons = std::move(used_reasons);
    Impl::step_slot(trace.kv_steps, step, c.n_layer)[layer] = std::move(ks);
    s.layer_bytes[layer] = kept_total * entry_bytes;
  }

  if (s.records_k) {
    // Rows pos0 .. n_key-1 of the attended K (earlier rows were recorded by earlier calls).
    auto& tk = trace.k[layer];
    const size_t row = static_cast<size_t>(n_kv) * d;
    if (tk.capacity() == 0 && s.options.reserve_tokens > 0) {
      tk.reserve(static_cast<size_t>(std::max(s.options.reserve_tokens, n_key)) * row);
    }
    tk.resize(static_cast<size_t>(shape.pos0) * row);
    tk.insert(tk.end(), ke + static_cast<size_t>(shape.pos0) * row, ke + n_key * row);
    trace.k_heads[layer] = n_kv;
  }
  return true;
}

}  // namespace attnscope
