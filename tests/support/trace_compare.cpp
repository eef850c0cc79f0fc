// Field-by-field trace comparison for round-trip tests (bit-exact floats, NaN == NaN).
#include "trace_compare.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

namespace attnscope::test {

namespace {

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * 4) == 0);
}

bool same_double(double a, double b) {
  return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, sizeof a) == 0;
}

}  // namespace

void expect_same(const Trace& a, const Trace& b) {
  EXPECT_EQ(a.schema_version, b.schema_version);
  EXPECT_EQ(a.attnscope_version, b.attnscope_version);
  EXPECT_EQ(a.created_at, b.created_at);
  EXPECT_EQ(a.backend, b.backend);
  EXPECT_EQ(a.model.path, b.model.path);
  EXPECT_EQ(a.model.sha256, b.model.sha256);
  EXPECT_EQ(a.model.architecture, b.model.architecture);
  EXPECT_EQ(a.model.name, b.model.name);
  EXPECT_EQ(a.model.n_layer, b.model.n_layer);
  EXPECT_EQ(a.model.n_head, b.model.n_head);
  EXPECT_EQ(a.model.n_head_kv, b.model.n_head_kv);
  EXPECT_EQ(a.model.head_dim, b.model.head_dim);
  EXPECT_EQ(a.model.vocab_size, b.model.vocab_size);
  EXPECT_EQ(a.model.rope_theta, b.model.rope_theta);
  EXPECT_TRUE(a.variant == b.variant) << a.variant.to_string() << " vs " << b.variant.to_string();
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.token_texts, b.token_texts);
  EXPECT_EQ(a.n_prompt, b.n_prompt);
  ASSERT_EQ(a.q.size(), b.q.size());
  for (size_t l = 0; l < a.q.size(); ++l) EXPECT_TRUE(same_bits(a.q[l], b.q[l])) << "q layer " << l;
  ASSERT_EQ(a.k.size(), b.k.size());
  for (size_t l = 0; l < a.k.size(); ++l) EXPECT_TRUE(same_bits(a.k[l], b.k[l])) << "k layer " << l;
  EXPECT_EQ(a.k_heads, b.k_heads);
  auto same_group = [](const attnscope::GroupStep& x, const attnscope::GroupStep& y) {
    return x.n_kv == y.n_kv && x.kv_of_query == y.kv_of_query &&
           same_bits(x.key_norms, y.key_norms) && x.active_query_heads == y.active_query_heads;
  };
  ASSERT_EQ(a.groups.size(), b.groups.size());
  for (size_t l = 0; l < a.groups.size(); ++l) EXPECT_TRUE(same_group(a.groups[l], b.groups[l]));
  ASSERT_EQ(a.group_steps.size(), b.group_steps.size());
  for (size_t s = 0; s < a.group_steps.size(); ++s) {
    ASSERT_EQ(a.group_steps[s].size(), b.group_steps[s].size());
    for (size_t l = 0; l < a.group_steps[s].size(); ++l) {
      EXPECT_TRUE(same_group(a.group_steps[s][l], b.group_steps[s][l])) << s << "," << l;
    }
  }
  ASSERT_EQ(a.masks.size(), b.masks.size());
  for (size_t l = 0; l < a.masks.size(); ++l) {
    ASSERT_EQ(a.masks[l].size(), b.masks[l].size());
    for (size_t h = 0; h < a.masks[l].size(); ++h) {
      const auto &x = a.masks[l][h], &y = b.masks[l][h];
      EXPECT_TRUE(x.sink_tokens == y.sink_tokens && x.window == y.window && x.block == y.block &&
                  x.all_blocks == y.all_blocks && x.n_qblocks == y.n_qblocks &&
                  x.n_kblocks == y.n_kblocks && x.blocks == y.blocks)
          << "mask " << l << "," << h;
    }
  }
  ASSERT_EQ(a.mask_density.size(), b.mask_density.size());
  for (size_t l = 0; l < a.mask_density.size(); ++l)
    EXPECT_TRUE(same_bits(a.mask_density[l], b.mask_density[l]));
  EXPECT_EQ(a.pattern_notes, b.pattern_notes);
  ASSERT_EQ(a.pattern_scores.size(), b.pattern_scores.size());
  for (size_t l = 0; l < a.pattern_scores.size(); ++l)
    EXPECT_TRUE(same_bits(a.pattern_scores[l], b.pattern_scores[l]));
  EXPECT_EQ(a.string_shift, b.string_shift);
  EXPECT_EQ(a.string_window, b.string_window);
  ASSERT_EQ(a.kv_steps.size(), b.kv_steps.size());
  for (size_t s = 0; s < a.kv_steps.size(); ++s) {
    ASSERT_EQ(a.kv_steps[s].size(), b.kv_steps[s].size());
    for (size_t l = 0; l < a.kv_steps[s].size(); ++l) {
      const auto &x = a.kv_steps[s][l], &y = b.kv_steps[s][l];
      EXPECT_EQ(x.position, y.position);
      EXPECT_EQ(x.budgets, y.budgets);
      EXPECT_EQ(x.reasons, y.reasons);
      EXPECT_TRUE(same_bits(x.lost_mass, y.lost_mass));
    }
  }
  ASSERT_EQ(a.next_token.size(), b.next_token.size());
  for (size_t i = 0; i < a.next_token.size(); ++i) {
    EXPECT_EQ(a.next_token[i].ids, b.next_token[i].ids) << "position " << i;
    EXPECT_TRUE(same_bits(a.next_token[i].logprobs, b.next_token[i].logprobs)) << "position " << i;
  }
  EXPECT_TRUE(same_bits(a.kl_per_position, b.kl_per_position));
  EXPECT_EQ(a.top1_agree, b.top1_agree);
  EXPECT_TRUE(same_bits(a.layer_rel_error, b.layer_rel_error));
  ASSERT_EQ(a.metrics.size(), b.metrics.size());
  for (const auto& [k, v] : a.metrics) {
    ASSERT_TRUE(b.metrics.count(k)) << k;
    EXPECT_TRUE(same_double(v, b.metrics.at(k))) << k;
  }
  ASSERT_EQ(a.timings.size(), b.timings.size());
  for (const auto& [k, v] : a.timings) {
    ASSERT_TRUE(b.timings.count(k)) << k;
    EXPECT_TRUE(same_double(v, b.timings.at(k))) << k;
  }
}

}  // namespace attnscope::test
