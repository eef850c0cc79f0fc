// Consistency checks of an in-memory Trace (validate_trace): sizes against the model identity
// and token count, value ranges, finite floats, a canonical variant spec.
#include <cmath>
#include <initializer_list>

#include "attnscope/error.h"
#include "attnscope/trace_io.h"
#include "trace_limits.h"

namespace attnscope {
namespace {

using namespace trace_detail;

// ------------------------------------------------------------------------------------------
// Validation of an in-memory trace

struct Checker {
  std::string where;
  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw_bad_input(where + ": " + field, what);
  }
  void size_in(const std::string& field, size_t size, std::initializer_list<size_t> allowed) const {
    std::string list;
    for (size_t a : allowed) {
      if (size == a) return;
      if (!list.empty()) list += " or ";
      list += std::to_string(a);
    }
    fail(field, "expected " + list + " entries, got " + std::to_string(size));
  }
  void range(const std::string& field, int64_t v, int64_t lo, int64_t hi) const {
    if (v < lo || v > hi) {
      fail(field, "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                      "], got " + std::to_string(v));
    }
  }
  void finite(const std::string& field, const std::vector<float>& values) const {
    for (size_t i = 0; i < values.size(); ++i) {
      if (!std::isfinite(values[i])) fail(idx(field, i), "expected a finite number");
    }
  }
};

void check_group(const Checker& c, const std::string& f, const GroupStep& g, int n_head) {
  c.range(f + ".n_kv", g.n_kv, 1, kMaxHeads);
  c.size_in(f + ".kv_of_query", g.kv_of_query.size(), {static_cast<size_t>(n_head)});
  for (size_t h = 0; h < g.kv_of_query.size(); ++h) {
    c.range(idx(f + ".kv_of_query", h), g.kv_of_query[h], 0, g.n_kv - 1);
  }
  c.size_in(f + ".key_norms", g.key_norms.size(), {0, static_cast<size_t>(g.n_kv)});
  c.finite(f + ".key_norms", g.key_norms);
  for (size_t i = 0; i < g.active_query_heads.size(); ++i) {
    const std::string fi = idx(f + ".active_query_heads", i);
    c.range(fi, g.active_query_heads[i], 0, n_head - 1);
    if (i > 0 && g.active_query_heads[i] <= g.active_query_heads[i - 1])
      c.fail(fi, "expected strictly ascending query heads");
  }
}

void check_mask(const Checker& c, const std::string& f, const HeadMask& m, int64_t n_tokens) {
  c.range(f + ".sink_tokens", m.sink_tokens, 0, kMaxTokens);
  c.range(f + ".window", m.window, 0, kMaxTokens);
  c.range(f + ".block", m.block, 1, kMaxTokens);
  c.range(f + ".n_qblocks", m.n_qblocks, 0, kMaxBlocks);
  c.range(f + ".n_kblocks", m.n_kblocks, 0, kMaxBlocks);
  const int64_t cells = int64_t{m.n_qblocks} * m.n_kblocks;
  if (cells > kMaxBlockCells) c.fail(f + ".n_qblocks", "expected at most 2^28 blocks");
  if (!m.all_blocks || !m.blocks.empty()) {
    c.size_in(f + ".blocks", m.blocks.size(), {static_cast<size_t>(cells)});
  }
  (void)n_tokens;
}

}  // namespace

void validate_trace(const Trace& t, const std::string& where) {
  const Checker c{where};
  c.range("schema_version", t.schema_version, kTraceSchemaVersion, kTraceSchemaVersion);
  const ModelIdentity& m = t.model;
  c.range("model.n_layer", m.n_layer, 1, kMaxLayers);
  c.range("model.n_head", m.n_head, 1, kMaxHeads);
  c.range("model.n_head_kv", m.n_head_kv, 1, kMaxHeads);
  c.range("model.head_dim", m.head_dim, 1, kMaxHeadDim);
  c.range("model.vocab_size", m.vocab_size, 1, kMaxVocab);
  if (!std::isfinite(m.rope_theta) || m.rope_theta < 0) {
    c.fail("model.rope_theta", "expected a finite number >= 0");
  }
  const auto L = static_cast<size_t>(m.n_layer);
  const auto H = static_cast<size_t>(m.n_head);
  const auto d = static_cast<size_t>(m.head_dim);
  const size_t T = t.tokens.size();
  c.range("tokens", static_cast<int64_t>(T), 0, kMaxTokens);
  for (size_t i = 0; i < T; ++i) c.range(idx("tokens", i), t.tokens[i], 0, m.vocab_size - 1);
  c.size_in("token_texts", t.token_texts.size(), {0, T});
  c.range("n_prompt", t.n_prompt, 0, static_cast<int64_t>(T));

  // The spec must parse back to itself: a hand-edited parameter fails here with the part name.
  const std::string spec_text = t.variant.to_string();
  bool round_trips = false;
  try {
    round_trips = VariantSpec::parse(spec_text) == t.variant;
  } catch (const Error& e) {
    c.fail("variant.spec", e.what());
  }
  if (!round_trips) c.fail("variant.spec", "expected a canonical spec, got '" + spec_text + "'");

  c.size_in("q", t.q.size(), {0, L});
  for (size_t l = 0; l < t.q.size(); ++l) {
    c.size_in(idx("q", l), t.q[l].size(), {0, T * H * d});
    c.finite(idx("q", l), t.q[l]);
  }
  c.size_in("k", t.k.size(), {0, L});
  c.size_in("k_heads", t.k_heads.size(), {0, L});
  for (size_t l = 0; l < t.k_heads.size(); ++l)
    c.range(idx("k_heads", l), t.k_heads[l], 1, kMaxHeads);
  for (size_t l = 0; l < t.k.size(); ++l) {
    if (t.k[l].empty()) continue;
    if (t.k_heads.empty()) c.fail("k_heads", "expected one entry per layer when k is stored");
    c.size_in(idx("k", l), t.k[l].size(), {T * static_cast<size_t>(t.k_heads[l]) * d});
    c.finite(idx("k", l), t.k[l]);
  }

  c.size_in("groups", t.groups.size(), {0, L});
  for (size_t l = 0; l < t.groups.size(); ++l) {
    check_group(c, idx("groups", l), t.groups[l], m.n_head);
    if (l < t.k.size() && !t.k[l].empty() && t.groups[l].n_kv != t.k_heads[l]) {
      c.fail(idx("groups", l) + ".n_kv", "expected " + std::to_string(t.k_heads[l]) +
                                             " (the KV heads of k_L" + std::to_string(l) +
                                             "), got " + std::to_string(t.groups[l].n_kv));
    }
  }
  for (size_t s = 0; s < t.group_steps.size(); ++s) {
    const std::string fs_ = idx("group_steps", s);
    c.size_in(fs_, t.group_steps[s].size(), {0, L});
    for (size_t l = 0; l < t.group_steps[s].size(); ++l) {
      check_group(c, idx(fs_, l), t.group_steps[s][l], m.n_head);
    }
  }

  c.size_in("masks", t.masks.size(), {0, L});
  for (size_t l = 0; l < t.masks.size(); ++l) {
    c.size_in(idx("masks", l), t.masks[l].size(), {H});
    for (size_t h = 0; h < H; ++h) {
      check_mask(c, idx(idx("masks", l), h), t.masks[l][h], static_cast<int64_t>(T));
    }
  }
  for (size_t s = 0; s < t.mask_steps.size(); ++s) {
    const std::string fs_ = idx("mask_steps", s);
    c.size_in(fs_, t.mask_steps[s].size(), {0, L});
    for (size_t l = 0; l < t.mask_steps[s].size(); ++l) {
      const std::string f = idx(fs_, l);
      c.size_in(f, t.mask_steps[s][l].size(), {H});
      for (size_t h = 0; h < H; ++h) {
        const std::string fh = idx(f, h);
        check_mask(c, fh, t.mask_steps[s][l][h], static_cast<int64_t>(T));
        // Only the decoded row's block row is stored (trace.h).
        c.range(fh + ".n_qblocks", t.mask_steps[s][l][h].n_qblocks, 0, 1);
      }
    }
  }
  c.size_in("mask_density", t.mask_density.size(), {0, L});
  for (size_t l = 0; l < t.mask_density.size(); ++l) {
    const std::string f = idx("mask_density", l);
    c.size_in(f, t.mask_density[l].size(), {0, H});
    c.finite(f, t.mask_density[l]);
    for (size_t h = 0; h < t.mask_density[l].size(); ++h) {
      if (t.mask_density[l][h] < 0 || t.mask_density[l][h] > 1) {
        c.fail(idx(f, h), "expected a density in [0, 1]");
      }
    }
  }
  c.size_in("pattern_notes", t.pattern_notes.size(), {0, L});
  c.size_in("pattern_scores", t.pattern_scores.size(), {0, L});
  for (size_t l = 0; l < t.pattern_scores.size(); ++l) {
    c.size_in(idx("pattern_scores", l), t.pattern_scores[l].size(), {0, H});
    c.finite(idx("pattern_scores", l), t.pattern_scores[l]);
  }
  c.range("string.shift", t.string_shift, 0, kMaxTokens);
  c.range("string.window", t.string_window, 0, kMaxTokens);

  for (size_t s = 0; s < t.kv_steps.size(); ++s) {
    const std::string fs_ = idx("kv_steps", s);
    c.size_in(fs_, t.kv_steps[s].size(), {0, L});
    for (size_t l = 0; l < t.kv_steps[s].size(); ++l) {
      const KvStep& k = t.kv_steps[s][l];
      const std::string f = idx(fs_, l);
      c.range(f + ".position", k.position, 0, static_cast<int64_t>(T) - 1);
      c.range(f + ".reasons", static_cast<int64_t>(k.reasons.size()), 0, kMaxHeads);
      c.size_in(f + ".budgets", k.budgets.size(), {k.reasons.size()});
      c.size_in(f + ".lost_mass", k.lost_mass.size(), {k.reasons.size()});
      c.finite(f + ".lost_mass", k.lost_mass);
      for (size_t h = 0; h < k.reasons.size(); ++h) {
        c.range(idx(f + ".budgets", h), k.budgets[h], 0, kMaxTokens);
        const auto& r = k.reasons[h];
        c.range(idx(f + ".reasons", h), static_cast<int64_t>(r.size()), 0, static_cast<int64_t>(T));
        for (size_t j = 0; j < r.size(); ++j) {
          if (r[j] > kMaxReason) {
            c.fail(idx(idx(f + ".reasons", h), j),
                   "expected a keep reason in [0, 4], got " + std::to_string(r[j]));
          }
        }
      }
    }
  }

  c.range("next_token", static_cast<int64_t>(t.next_token.size()), 0, static_cast<int64_t>(T));
  for (size_t i = 0; i < t.next_token.size(); ++i) {
    const TopKDistribution& n = t.next_token[i];
    const std::string f = idx("next_token", i);
    c.range(f + ".ids", static_cast<int64_t>(n.ids.size()), 0, m.vocab_size);
    c.size_in(f + ".logprobs", n.logprobs.size(), {n.ids.size()});
    for (size_t k = 0; k < n.ids.size(); ++k) {
      c.range(idx(f + ".ids", k), n.ids[k], 0, m.vocab_size - 1);
    }
    c.finite(f + ".logprobs", n.logprobs);
  }

  c.range("kl_per_position", static_cast<int64_t>(t.kl_per_position.size()), 0,
          static_cast<int64_t>(T));
  c.finite("kl_per_position", t.kl_per_position);
  c.range("top1_agree", static_cast<int64_t>(t.top1_agree.size()), 0, static_cast<int64_t>(T));
  for (size_t i = 0; i < t.top1_agree.size(); ++i)
    c.range(idx("top1_agree", i), t.top1_agree[i], 0, 1);
  c.size_in("layer_rel_error", t.layer_rel_error.size(), {0, L});
  c.finite("layer_rel_error", t.layer_rel_error);
}

}  // namespace attnscope
