// Synthetic traces shared by the core tests (see trace_builders.h).
#include "trace_builders.h"

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace attnscope::test {
namespace {

std::vector<float> random_floats(std::mt19937& rng, size_t n) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

}  // namespace

Trace make_qk_trace(int T, int H, int n_kv, int d, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  Trace t;
  t.model = {"m", "", "llama", "m", 1, H, n_kv, d, 1000, 10000.0f};
  t.variant = VariantSpec::baseline();
  t.tokens.assign(static_cast<size_t>(T), 1);
  t.n_prompt = T;
  t.q.emplace_back(static_cast<size_t>(T) * H * d);
  t.k.emplace_back(static_cast<size_t>(T) * n_kv * d);
  for (auto& x : t.q[0]) x = dist(rng);
  for (auto& x : t.k[0]) x = dist(rng);
  t.k_heads = {n_kv};
  return t;
}

// Every field populated, with the awkward cases: invalid UTF-8 token text, NaN/inf metrics,
// a next-token row shorter than the others, denormal and negative-zero floats.
Trace make_full_trace(uint32_t seed) {
  using namespace full_trace;
  std::mt19937 rng(seed);
  Trace t;
  t.attnscope_version = "0.1.0";
  t.created_at = "2026-11-24T07:00:00Z";
  t.backend = "cpu (test)";
  t.model = {"/models/tiny.gguf",
             "ab12",
             "llama",
             "tiny",
             kLayers,
             kHeads,
             kKvHeads,
             kDim,
             kVocab,
             10000.0f};
  t.variant = VariantSpec::parse("pattern=window;positions=string");
  for (int i = 0; i < kTokens; ++i) {
    t.tokens.push_back(static_cast<int32_t>(rng() % kVocab));
    t.token_texts.push_back(i == 2 ? std::string("\xe2\x82") : "tok" + std::to_string(i));
  }
  t.n_prompt = kPrompt;
  for (int l = 0; l < kLayers; ++l) {
    t.q.push_back(random_floats(rng, size_t{kTokens} * kHeads * kDim));
    t.k.push_back(random_floats(rng, size_t{kTokens} * kKvHeads * kDim));
    t.k_heads.push_back(kKvHeads);
    t.groups.push_back({kKvHeads, {0, 0, 1, 1}, {1.5f, 2.25f}, {0, 2, 3}});
    std::vector<HeadMask> masks(kHeads);
    masks[1].all_blocks = false;
    masks[1].block = 4;
    masks[1].n_qblocks = 3;
    masks[1].n_kblocks = 3;
    masks[1].blocks = {1, 0, 0, 1, 1, 0, 0, 1, 1};
    masks[2].window = 5;
    masks[2].sink_tokens = 2;
    t.masks.push_back(masks);
    t.mask_density.push_back({1.0f, 0.5f, 0.75f, 1.0f});
    t.pattern_notes.push_back(l == 0 ? "query-aware D=0.03" : "");
    t.pattern_scores.push_back(random_floats(rng, kHeads));
    t.layer_rel_error.push_back(0.01f * static_cast<float>(l + 1));
  }
  t.q[0][5] = -0.0f;
  t.k[1][3] = std::numeric_limits<float>::denorm_min();
  t.string_shift = 3;
  t.string_window = 2;
  for (int s = 0; s < kDecode; ++s) {
    std::vector<GroupStep> gs;
    std::vector<KvStep> ks;
    for (int l = 0; l < kLayers; ++l) {
      gs.push_back({kKvHeads, {s % 2, 1, 0, 1}, {}});
      KvStep k;
      k.position = kPrompt + s;
      k.budgets = {6, 6};
      for (int h = 0; h < kKvHeads; ++h) {
        std::vector<uint8_t> r(static_cast<size_t>(k.position) + 1);
        for (auto& x : r) x = static_cast<uint8_t>(rng() % 5);
        k.reasons.push_back(r);
      }
      k.lost_mass = {0.125f, 0.0f};
      ks.push_back(k);
    }
    t.group_steps.push_back(gs);
    t.kv_steps.push_back(ks);
  }
  for (int i = 0; i < kTokens; ++i) {
    TopKDistribution d;
    const int k = i == 4 ? 2 : 5;
    for (int j = 0; j < k; ++j) {
      d.ids.push_back(static_cast<int32_t>((i * 7 + j * 13) % kVocab));
      d.logprobs.push_back(-0.1f * static_cast<float>(j + 1) - 1e-7f * static_cast<float>(i));
    }
    t.next_token.push_back(d);
    t.kl_per_position.push_back(std::ldexp(1.0f, -i) / 3.0f);
    t.top1_agree.push_back(static_cast<uint8_t>(i % 3 != 0));
  }
  t.metrics = {{"kl_mean", 0.1234567891234},
               {"perplexity", std::numeric_limits<double>::quiet_NaN()},
               {"inf_metric", -std::numeric_limits<double>::infinity()}};
  t.timings = {{"prefill_seconds", 0.5}, {"kv_cache_bytes", 123456789.0}};
  return t;
}

}  // namespace attnscope::test
