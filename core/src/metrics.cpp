// Quality metrics on next-token logits (KL, argmax, log-probabilities, top-k) and head metrics
// (entropy, sink mass, locality, retrieval score) recomputed from a trace's Q/K through the
// variant's own attention (variant_attention_row), so they describe what the variant computed.
#include "attnscope/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <mutex>
#include <numeric>
#include <string>
#include <unordered_map>

#include "attnscope/error.h"
#include "attnscope/variant_attention.h"
#include "attnscope/variant_engine.h"
#include "simd_kernels.h"
#include "thread_pool.h"

namespace attnscope {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// Logits may hold -inf (masked-out vocabulary entries) but never NaN or +inf: those have no
// probability, so a distribution containing them is malformed input.
void check_logits(std::span<const float> logits, const char* where) {
  if (logits.empty()) throw_usage(std::string(where) + ": empty logits");
  for (size_t i = 0; i < logits.size(); ++i) {
    const float x = logits[i];
    if (std::isnan(x) || x == std::numeric_limits<float>::infinity()) {
      throw_bad_input(where, "logit " + std::to_string(i) + " is " +
                                 (std::isnan(x) ? "NaN" : "+inf") +
                                 ", expected a finite value or -inf");
    }
  }
}

// log(sum(exp(x))) in double, shifted by the maximum; -inf when every entry is -inf.
double log_sum_exp(std::span<const float> logits) {
  double mx = kNegInf;
  for (float x : logits) mx = std::max(mx, static_cast<double>(x));
  if (mx == kNegInf) return kNegInf;
  double s = 0.0;
  for (float x : logits) s += std::exp(static_cast<double>(x) - mx);
  return mx + std::log(s);
}

double checked_lse(std::span<const float> logits, const char* where) {
  check_logits(logits, where);
  const double lse = log_sum_exp(logits);
  if (lse == kNegInf) throw_bad_input(where, "every logit is -inf, expected at least one finite");
  return lse;
}

// Query rows the head metrics look at: every row when T <= max_rows, else max_rows rows spread
// evenly over [0, T) including the first and the last (floor(r * (T-1) / (max_rows-1))). The
// step (T-1)/(max_rows-1) exceeds 1, so the rows are distinct; the choice is deterministic.
std::vector<int> sample_rows(int T, int max_rows) {
  std::vector<int> rows;
  if (T <= max_rows) {
    rows.resize(T);
    std::iota(rows.begin(), rows.end(), 0);
    return rows;
  }
  if (max_rows == 1) return {T - 1};
  rows.reserve(max_rows);
  for (int r = 0; r < max_rows; ++r) {
    rows.push_back(static_cast<int>(static_cast<int64_t>(r) * (T - 1) / (max_rows - 1)));
  }
  return rows;
}

std::string layer_field(int l, const char* field) {
  return "trace: layer " + std::to_string(l) + " " + field;
}

void check_mask(const HeadMask& m, int l, int h) {
  const std::string where = layer_field(l, "mask") + " head " + std::to_string(h);
  if (m.block <= 0) throw_bad_input(where, "block must be positive");
  if (m.sink_tokens < 0 || m.window < 0) throw_bad_input(where, "negative sinks or window");
  if (!m.all_blocks) {
    if (m.n_qblocks < 0 || m.n_kblocks < 0 ||
        m.blocks.size() != static_cast<size_t>(m.n_qblocks) * static_cast<size_t>(m.n_kblocks)) {
      throw_bad_input(where, "blocks must hold n_qblocks * n_kblocks entries");
    }
  }
}

}  // namespace

double kl_divergence_from_logits(std::span<const float> p_logits, std::span<const float> q_logits) {
  if (p_logits.size() != q_logits.size()) {
    throw_usage("kl_divergence: logits of different sizes (" + std::to_string(p_logits.size()) +
                " vs " + std::to_string(q_logits.size()) + ")");
  }
  const double lse_p = checked_lse(p_logits, "kl_divergence: p");
  const double lse_q = checked_lse(q_logits, "kl_divergence: q");
  double kl = 0.0;
  for (size_t i = 0; i < p_logits.size(); ++i) {
    if (p_logits[i] == -std::numeric_limits<float>::infinity()) continue;  // p_i = 0: no term
    const double lp = static_cast<double>(p_logits[i]) - lse_p;
    const double p = std::exp(lp);
    if (p == 0.0) continue;  // underflow: the term is below double resolution
    if (q_logits[i] == -std::numeric_limits<float>::infinity()) {
      return std::numeric_limits<double>::infinity();  // q_i = 0 where p_i > 0
    }
    const double lq = static_cast<double>(q_logits[i]) - lse_q;
    kl += p * (lp - lq);
  }
  // KL >= 0 mathematically; rounding can leave a tiny negative sum for nearly equal inputs.
  return std::max(kl, 0.0);
}

int32_t argmax(std::span<const float> logits) {
  if (logits.empty()) throw_usage("argmax: empty logits");
  // NaN never wins, as in the greedy sampler, so argmax agrees with greedy decoding.
  int32_t best = -1;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (std::isnan(logits[i])) continue;
    if (best < 0 || logits[i] > logits[best]) best = static_cast<int32_t>(i);
  }
  if (best < 0) throw_bad_input("argmax", "every logit is NaN");
  return best;
}

double log_prob_of(std::span<const float> logits, int32_t id) {
  if (id < 0 || static_cast<size_t>(id) >= logits.size()) {
    throw_usage("log_prob_of: id " + std::to_string(id) + " outside [0, " +
                std::to_string(logits.size()) + ")");
  }
  const double lse = checked_lse(logits, "log_prob_of");
  if (logits[id] == -std::numeric_limits<float>::infinity()) return kNegInf;
  return static_cast<double>(logits[id]) - lse;
}

TopKDistribution top_k_distribution(std::span<const float> logits, int k) {
  if (k < 0) throw_usage("top_k_distribution: k must be >= 0, got " + std::to_string(k));
  const double lse = checked_lse(logits, "top_k_distribution");
  const int n = static_cast<int>(logits.size());
  const int kk = std::min(k, n);
  std::vector<int32_t> ids(n);
  std::iota(ids.begin(), ids.end(), 0);
  // Descending logit, lower id first among equal logits (no NaN: check_logits rejected them).
  std::partial_sort(ids.begin(), ids.begin() + kk, ids.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  TopKDistribution out;
  out.ids.assign(ids.begin(), ids.begin() + kk);
  out.logprobs.reserve(kk);
  for (int32_t id : out.ids) {
    out.logprobs.push_back(static_cast<float>(static_cast<double>(logits[id]) - lse));
  }
  return out;
}

std::vector<HeadMetrics> compute_head_metrics(const Trace& trace,
                                              const HeadMetricOptions& options) {
  if (options.sink_tokens < 0) throw_usage("head metrics: sink_tokens must be >= 0");
  if (options.locality_window < 0) throw_usage("head metrics: locality_window must be >= 0");
  if (options.max_rows < 1) throw_usage("head metrics: max_rows must be >= 1");
  if (trace.string_shift < 0 || trace.string_window < 0) {
    throw_bad_input("trace: string_shift", "STRING shift and window must be >= 0");
  }

  const int L = trace.n_layer();
  const int T = trace.n_tokens();
  const int H = trace.model.n_head;
  const int d = trace.model.head_dim;
  if (L == 0) throw_usage("head metrics: the trace holds no Q/K (run with store_qk)");
  if (T == 0) throw_bad_input("trace: tokens", "empty, expected at least one token");
  if (H <= 0 || d <= 0 || d % 2 != 0) {
    throw_bad_input("trace: model", "n_head must be positive and head_dim positive and even");
  }
  if (trace.k.size() != static_cast<size_t>(L) || trace.k_heads.size() != static_cast<size_t>(L)) {
    throw_bad_input("trace: k", "expected one K array and one k_heads entry per layer of q");
  }
  const int n_prompt = trace.n_prompt;
  if (n_prompt < 0 || n_prompt > T) throw_bad_input("trace: n_prompt", "expected in [0, T]");

  // Validate every layer's arrays and maps before any thread reads them.
  for (int l = 0; l < L; ++l) {
    const int n_kv = trace.k_heads[l];
    if (n_kv <= 0) throw_bad_input(layer_field(l, "k_heads"), "expected a positive count");
    if (trace.q[l].size() != static_cast<size_t>(T) * H * d) {
      throw_bad_input(layer_field(l, "q"), "expected T * n_head * head_dim floats");
    }
    if (trace.k[l].size() != static_cast<size_t>(T) * n_kv * d) {
      throw_bad_input(layer_field(l, "k"), "expected T * k_heads * head_dim floats");
    }
    if (l < static_cast<int>(trace.groups.size()) && !trace.groups[l].kv_of_query.empty()) {
      const auto& g = trace.groups[l].kv_of_query;
      if (g.size() != static_cast<size_t>(H)) {
        throw_bad_input(layer_field(l, "groups"), "expected one KV head per query head");
      }
      for (int kv : g) {
        if (kv < 0 || kv >= n_kv) throw_bad_input(layer_field(l, "groups"), "KV head out of range");
      }
    } else if (H % n_kv != 0) {
      throw_bad_input(layer_field(l, "groups"), "missing, and n_head is not a multiple of k_heads");
    }
    if (l < static_cast<int>(trace.masks.size()) && !trace.masks[l].empty()) {
      if (trace.masks[l].size() != static_cast<size_t>(H)) {
        throw_bad_input(layer_field(l, "masks"), "expected one mask per query head");
      }
      for (int h = 0; h < H; ++h) check_mask(trace.masks[l][h], l, h);
    }
  }
  // Decode rows read the grouping of their step (DGQA) and the keep set of their step's KV
  // decision (eviction); check those shapes too.
  for (size_t s = 0; s < trace.group_steps.size(); ++s) {
    for (size_t l = 0; l < trace.group_steps[s].size() && l < static_cast<size_t>(L); ++l) {
      for (int kv : trace.group_steps[s][l].kv_of_query) {
        if (kv < 0 || kv >= trace.k_heads[l]) {
          throw_bad_input("trace: group_steps[" + std::to_string(s) + "]", "KV head out of range");
        }
      }
    }
  }
  for (size_t s = 0; s < trace.mask_steps.size(); ++s) {
    for (size_t l = 0; l < trace.mask_steps[s].size() && l < static_cast<size_t>(L); ++l) {
      if (trace.mask_steps[s][l].size() != static_cast<size_t>(H)) continue;  // not used
      for (int h = 0; h < H; ++h) check_mask(trace.mask_steps[s][l][h], static_cast<int>(l), h);
    }
  }
  for (size_t s = 0; s < trace.kv_steps.size(); ++s) {
    for (size_t l = 0; l < trace.kv_steps[s].size() && l < static_cast<size_t>(L); ++l) {
      const KvStep& ks = trace.kv_steps[s][l];
      if (ks.reasons.empty()) continue;
      const std::string where =
          "trace: kv_steps[" + std::to_string(s) + "] layer " + std::to_string(l);
      if (ks.position < 0 || ks.position >= T)
        throw_bad_input(where, "position outside the tokens");
      // A keep set applies only when the decision is per head of the K the variant attended;
      // a policy over native heads combined with pooled heads (MQA/GQA-k) has no such map.
      if (ks.reasons.size() != static_cast<size_t>(trace.k_heads[l])) continue;
      for (const auto& r : ks.reasons) {
        if (r.size() < static_cast<size_t>(ks.position) + 1) {
          throw_bad_input(where, "expected position + 1 reasons per KV head");
        }
      }
    }
  }

  const std::vector<int> rows = sample_rows(T, options.max_rows);
  // occurrences[t]: positions of token t in order; the retrieval (induction) score of row i reads
  // keys j = o + 1 for every earlier occurrence o < i of tokens[i].
  std::unordered_map<int32_t, std::vector<int>> occurrences;
  for (int i = 0; i < T; ++i) occurrences[trace.tokens[i]].push_back(i);

  const VariantRowSpec base_spec = [&] {
    VariantRowSpec s;
    s.string_shift = trace.string_shift;
    s.string_window = trace.string_window;
    s.rope_theta = trace.model.rope_theta > 0 ? trace.model.rope_theta : 10000.0f;
    return s;
  }();

  std::vector<HeadMetrics> out(static_cast<size_t>(L) * H);
  auto compute_one = [&](int job) {
    const int l = job / H, h = job % H;
    const int n_kv = trace.k_heads[l];
    const bool has_groups =
        l < static_cast<int>(trace.groups.size()) && !trace.groups[l].kv_of_query.empty();
    const int prefill_kv = has_groups ? trace.groups[l].kv_of_query[h] : h / (H / n_kv);
    const HeadMask* mask = (l < static_cast<int>(trace.masks.size()) && !trace.masks[l].empty())
                               ? &trace.masks[l][h]
                               : nullptr;
    std::vector<float> probs(T);
    std::vector<float> shifted(d);
    std::vector<std::vector<float>> packed_of(n_kv);  // [n_kv] packed keys, filled on first use
    std::vector<uint8_t> keep;
    HeadMask step_mask;
    double ent = 0, sink = 0, local = 0, retr = 0;
    int n_retr_rows = 0;
    for (int i : rows) {
      if (options.cancel != nullptr && options.cancel->load()) throw_runtime("cancelled");
      VariantRowSpec spec = base_spec;
      spec.mask = mask;
      int kv = prefill_kv;
      if (i >= n_prompt) {
        const size_t s = static_cast<size_t>(i - n_prompt);
        // The mask the pattern returned at this decode step (trace.h mask_steps).
        if (s < trace.mask_steps.size() && static_cast<size_t>(l) < trace.mask_steps[s].size() &&
            trace.mask_steps[s][l].size() == static_cast<size_t>(H)) {
          step_mask = step_mask_for_row(trace.mask_steps[s][l][h], i);
          spec.mask = &step_mask;
        }
        if (s < trace.group_steps.size() && static_cast<size_t>(l) < trace.group_steps[s].size() &&
            trace.group_steps[s][l].kv_of_query.size() == static_cast<size_t>(H)) {
          kv = trace.group_steps[s][l].kv_of_query[h];
        }
        if (s < trace.kv_steps.size() && static_cast<size_t>(l) < trace.kv_steps[s].size()) {
          const KvStep& ks = trace.kv_steps[s][l];
          if (ks.reasons.size() == static_cast<size_t>(n_kv) && ks.position == i) {
            keep.assign(static_cast<size_t>(i) + 1, 0);
            for (int j = 0; j <= i; ++j) keep[j] = ks.reasons[kv][j] != 0 ? 1 : 0;
            spec.keep = keep.data();
          }
        }
      }
      const float* q_row = &trace.q[l][(static_cast<size_t>(i) * H + h) * d];
      // Each KV head's keys are packed once per job instead of once per row.
      std::vector<float>& packed = packed_of[kv];
      if (packed.empty()) {
        packed.resize(detail::packed_keys_size(T, d));
        detail::pack_keys(trace.k[l].data() + static_cast<size_t>(kv) * d, T, n_kv * d, d,
                          packed.data());
      }
      variant_attention_row_on_packed(q_row, i, packed.data(), d, spec, shifted.data(),
                                      probs.data());

      double e = 0, sm = 0, lm = 0;
      for (int j = 0; j <= i; ++j) {
        const double p = probs[j];
        if (p > 0) e -= p * std::log(p);
        if (j < options.sink_tokens) sm += p;
        if (i - j <= options.locality_window) lm += p;
      }
      ent += e;
      sink += sm;
      local += lm;
      const auto& occ = occurrences.find(trace.tokens[i])->second;
      double rm = 0;
      bool any = false;
      for (int o : occ) {
        if (o >= i) break;  // occurrences are sorted; only earlier ones count
        rm += probs[o + 1];
        any = true;
      }
      if (any) {
        retr += rm;
        ++n_retr_rows;
      }
    }
    HeadMetrics& m = out[job];
    const double n = static_cast<double>(rows.size());
    m.layer = l;
    m.head = h;
    m.entropy = ent / n;
    m.sink_mass = sink / n;
    m.locality = local / n;
    m.retrieval_score = n_retr_rows > 0 ? retr / n_retr_rows : 0.0;
  };
  // Heads are independent; occurrences and the trace are only read from here on.
  const int n_jobs = L * H;
  std::mutex progress_mutex;
  int done = 0;
  ThreadPool pool;
  pool.parallel_for(0, n_jobs, 1, [&](int lo, int hi) {
    for (int job = lo; job < hi; ++job) {
      if (options.cancel != nullptr && options.cancel->load()) throw_runtime("cancelled");
      compute_one(job);
      if (options.progress) {
        // Serialised, so callers need no lock and see the fractions in increasing order.
        std::lock_guard<std::mutex> lock(progress_mutex);
        ++done;
        options.progress(static_cast<double>(done) / n_jobs);
      }
    }
  });
  if (options.cancel != nullptr && options.cancel->load()) throw_runtime("cancelled");
  return out;
}

uint8_t head_badges(const HeadMetrics& m, const HeadBadgeThresholds& t) {
  uint8_t badges = 0;
  if (m.sink_mass >= t.sink_mass) badges |= kBadgeSink;
  if (m.locality >= t.locality) badges |= kBadgeLocal;
  if (m.retrieval_score >= t.retrieval_score) badges |= kBadgeRetrieval;
  return badges;
}

void rank_heads(std::vector<HeadMetrics>& metrics, const std::string& by) {
  double HeadMetrics::*field = nullptr;
  if (by == "entropy") {
    field = &HeadMetrics::entropy;
  } else if (by == "sink_mass") {
    field = &HeadMetrics::sink_mass;
  } else if (by == "locality") {
    field = &HeadMetrics::locality;
  } else if (by == "retrieval_score") {
    field = &HeadMetrics::retrieval_score;
  } else {
    throw_usage("rank_heads: unknown metric '" + by +
                "', expected entropy, sink_mass, locality or retrieval_score");
  }
  // Stable: heads with equal values keep their (layer, head) order.
  std::stable_sort(
      metrics.begin(), metrics.end(),
      [field](const HeadMetrics& a, const HeadMetrics& b) { return a.*field > b.*field; });
}

}  // namespace attnscope
