// The variant engine on a tiny random llama model (2 layers, 4 query heads over 2 KV heads,
// head_dim 8): identity settings of every part reproduce the baseline logits exactly through
// the hook path; lost attention mass equals a double-precision recomputation from the captured
// Q/K and the recorded evictions (0 when nothing is evicted); run_variants gives consistent
// traces (shapes, shared tokens, KL 0 for identities, perplexity against an independent sum);
// SQA's kept heads and blocktopk's per-decode-step masks are recorded, round-trip, and decode
// rows of compute_map use the step masks.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "attnscope/error.h"
#include "attnscope/map_request.h"
#include "attnscope/run.h"
#include "attnscope/session.h"
#include "attnscope/trace_io.h"
#include "attnscope/variant_attention.h"
#include "attnscope/variant_engine.h"
#include "tiny_models.h"

namespace attnscope {
namespace {

constexpr uint64_t kSeed = 2024;
constexpr int kPrompt = 20;
constexpr int kDecode = 8;
// Lost mass recomputed in double from the same fp32 Q/K: softmax rounding only.
constexpr double kLostTol = 1e-5;
// Perplexity from an independent log-softmax sum in double over fp32 logits.
constexpr double kPplTol = 1e-6;

// The default tiny llama (2 layers, 4 query heads over 2 KV heads, head_dim 8, vocab 32) with
// Q/K projections drawn from N(0, 0.6) instead of 0.4: sharper attention.
std::shared_ptr<Model> tiny_model(uint64_t seed = kSeed) {
  test::TinyLlamaSpec spec;
  spec.seed = seed;
  spec.qk_scale = 0.6f;
  return test::tiny_random_llama(spec);
}

std::vector<int32_t> prompt_tokens(int n, uint64_t seed = 9) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = static_cast<int32_t>(rng() % 32);
  return t;
}

struct SessionRun {
  std::vector<int32_t> tokens;  // prompt + decoded
  std::vector<float> logits;    // [T, vocab]
  std::shared_ptr<RecordedCapture> capture;
};

// Prefill + teacher-forced decode of `forced` (or greedy when empty) with an optional hook.
SessionRun run_session(std::shared_ptr<const Model> model, std::shared_ptr<AttentionHook> hook,
                       const std::vector<int32_t>& prompt, int decode,
                       const std::vector<int32_t>& forced = {}) {
  InferenceSession session(model, nullptr, 64);
  session.set_attention_hook(hook);
  SessionRun r;
  r.capture = std::make_shared<RecordedCapture>(model->config, true);
  r.tokens = prompt;
  std::vector<float> last = session.forward(prompt, r.capture.get());
  for (int s = 0; s < decode; ++s) {
    int32_t tok;
    if (!forced.empty()) {
      tok = forced[prompt.size() + s];
    } else {
      tok = static_cast<int32_t>(std::max_element(last.begin(), last.end()) - last.begin());
    }
    r.tokens.push_back(tok);
    last = session.forward(std::span<const int32_t>(&tok, 1), r.capture.get());
  }
  r.logits = r.capture->logits();
  return r;
}

TEST(VariantEngine, IdentitySettingsReproduceBaselineExactly) {
  auto model = tiny_model();
  const auto prompt = prompt_tokens(kPrompt);
  const SessionRun base = run_session(model, nullptr, prompt, kDecode);
  ASSERT_EQ(base.logits.size(), static_cast<size_t>(kPrompt + kDecode) * 32);
  // Every part at a setting that cannot change anything for 28 tokens.
  const char* specs[] = {
      "grouping=native",
      "grouping=gqa:groups=2",
      "pattern=window:w=64",
      "positions=string:shift=100,window=10",
      "kv=streamingllm:budget=64,sinks=4",
      "kv=h2o:budget=64",
      "kv=snapkv:budget=64",
      "kv=tova:budget=64",
      "grouping=native;pattern=window:w=64;positions=string:shift=40,window=8;"
      "kv=streamingllm:budget=40",
  };
  for (const char* text : specs) {
    Trace trace;
    VariantEngineOptions opt;
    opt.force_hook = true;
    auto hook = std::make_shared<VariantAttention>(VariantSpec::parse(text), model, &trace, opt);
    const SessionRun run = run_session(model, hook, prompt, kDecode, base.tokens);
    ASSERT_EQ(run.logits.size(), base.logits.size()) << text;
    size_t n_diff = 0;
    double worst = 0;
    for (size_t i = 0; i < base.logits.size(); ++i) {
      if (run.logits[i] != base.logits[i]) ++n_diff;
      worst = std::max(worst, static_cast<double>(std::abs(run.logits[i] - base.logits[i])));
    }
    EXPECT_EQ(n_diff, 0u) << text << ": seed " << kSeed << ", worst logit diff " << worst;
    // Decisions were recorded for every layer and decode step, none evicting.
    ASSERT_EQ(trace.kv_steps.size(), static_cast<size_t>(kDecode)) << text;
    for (const auto& step : trace.kv_steps) {
      ASSERT_EQ(step.size(), 2u);
      for (const KvStep& ks : step) {
        for (float lost : ks.lost_mass) EXPECT_EQ(lost, 0.0f) << text;
        for (const auto& r : ks.reasons) {
          EXPECT_EQ(r.size(), static_cast<size_t>(ks.position) + 1);
          for (uint8_t x : r) EXPECT_NE(x, static_cast<uint8_t>(KeepReason::Evicted)) << text;
        }
      }
    }
    for (const auto& d : trace.mask_density) {
      for (float x : d) EXPECT_FLOAT_EQ(x, 1.0f) << text;
    }
  }
}

// softmax(q·k/sqrt(d)) over keys 0..pos in double.
std::vector<double> causal_probs(const RecordedCapture& cap, int layer, int head, int pos) {
  const auto& c = cap.config();
  const int H = c.n_head, Hkv = c.n_head_kv, d = c.head_dim;
  const int kvh = head / (H / Hkv);
  std::vector<double> p(pos + 1);
  double mx = -INFINITY;
  for (int j = 0; j <= pos; ++j) {
    double s = 0;
    for (int e = 0; e < d; ++e) {
      s += static_cast<double>(cap.q(layer)[(static_cast<size_t>(pos) * H + head) * d + e]) *
           cap.k(layer)[(static_cast<size_t>(j) * Hkv + kvh) * d + e];
    }
    p[j] = s / std::sqrt(static_cast<double>(d));
    mx = std::max(mx, p[j]);
  }
  double sum = 0;
  for (auto& x : p) sum += (x = std::exp(x - mx));
  for (auto& x : p) x /= sum;
  return p;
}

TEST(VariantEngine, LostMassEqualsRecomputedEvictedProbability) {
  auto model = tiny_model();
  const auto prompt = prompt_tokens(kPrompt);
  const SessionRun base = run_session(model, nullptr, prompt, kDecode);
  for (const char* text : {"kv=streamingllm:budget=8,sinks=2", "kv=h2o:budget=10,reduce=max"}) {
    Trace trace;
    auto hook = std::make_shared<VariantAttention>(VariantSpec::parse(text), model, &trace);
    const SessionRun run = run_session(model, hook, prompt, kDecode, base.tokens);
    const bool use_max = hook->group_reduce() == GroupReduce::Max;
    ASSERT_EQ(trace.kv_steps.size(), static_cast<size_t>(kDecode));
    double worst = 0, largest = 0;
    for (int s = 0; s < kDecode; ++s) {
      for (int l = 0; l < 2; ++l) {
        const KvStep& ks = trace.kv_steps[s][l];
        ASSERT_EQ(ks.position, kPrompt + s);
        ASSERT_EQ(ks.reasons.size(), 2u);
        ASSERT_EQ(ks.lost_mass.size(), 2u);
        for (int kvh = 0; kvh < 2; ++kvh) {
          double sum = 0, mx = 0;
          for (int h = kvh * 2; h < kvh * 2 + 2; ++h) {
            const auto p = causal_probs(*run.capture, l, h, ks.position);
            double lost = 0;
            for (int j = 0; j <= ks.position; ++j) {
              if (ks.reasons[kvh][j] == static_cast<uint8_t>(KeepReason::Evicted)) lost += p[j];
            }
            sum += lost;
            mx = std::max(mx, lost);
          }
          const double want = use_max ? mx : sum / 2;
          worst = std::max(worst, std::abs(ks.lost_mass[kvh] - want));
          largest = std::max(largest, want);
          EXPECT_NEAR(ks.lost_mass[kvh], want, kLostTol)
              << text << " step " << s << " layer " << l << " kv head " << kvh;
        }
      }
    }
    // The hand case must actually evict something, or the comparison proves nothing.
    EXPECT_GT(largest, 1e-3) << text << ": nothing evicted; worst " << worst;
  }
}

// Records layer 0's attention output per position besides Q/K/V.
class OutputCapture final : public RecordedCapture {
 public:
  using RecordedCapture::RecordedCapture;
  void on_attention_output(int layer, int pos0, int n, const float* out) override {
    if (layer != 0) return;
    const size_t row = 4 * 8;
    out0.resize(static_cast<size_t>(pos0) * row);
    out0.insert(out0.end(), out, out + n * row);
  }
  std::vector<float> out0;  // [T, H, d]
};

// Layer 0 sees the same Q/K/V whatever the variant (it comes from the embeddings), so its
// attention output can be rebuilt from the captured tensors: pooling for MQA by hand, each row
// through variant_attention_row with the recorded mask and keep set, V summed in double.
TEST(VariantEngine, LayerZeroOutputEqualsRowReference) {
  // fp32 engine vs double V sum over <= 28 keys of O(1) values.
  constexpr double kOutTol = 2e-6;
  auto model = tiny_model();
  const auto prompt = prompt_tokens(kPrompt);
  const SessionRun base = run_session(model, nullptr, prompt, kDecode);
  for (const char* text : {"positions=string:shift=6,window=2", "pattern=sinks:sink_tokens=2,w=3",
                           "grouping=mqa", "kv=streamingllm:budget=8,sinks=2;pattern=window:w=12",
                           "grouping=mqa;positions=string:shift=9,window=4;kv=h2o:budget=9"}) {
    Trace trace;
    auto hook = std::make_shared<VariantAttention>(VariantSpec::parse(text), model, &trace);
    InferenceSession session(model, nullptr, 64);
    session.set_attention_hook(hook);
    OutputCapture cap(model->config, false);
    session.forward(prompt, &cap);
    for (int s = 0; s < kDecode; ++s) {
      session.forward(std::span<const int32_t>(&base.tokens[kPrompt + s], 1), &cap);
    }
    const int T = kPrompt + kDecode, H = 4, d = 8;
    const int n_kv = trace.k_heads[0];
    ASSERT_EQ(cap.out0.size(), static_cast<size_t>(T) * H * d) << text;
    // Attended K/V of layer 0: native, or all KV heads mean-pooled into one.
    std::vector<float> k(static_cast<size_t>(T) * n_kv * d), v(k.size());
    for (int j = 0; j < T; ++j) {
      for (int e = 0; e < d; ++e) {
        if (n_kv == 2) {
          for (int h = 0; h < 2; ++h) {
            k[(j * 2 + h) * d + e] = cap.k(0)[(j * 2 + h) * d + e];
            v[(j * 2 + h) * d + e] = cap.v(0)[(j * 2 + h) * d + e];
          }
        } else {
          k[j * d + e] = (cap.k(0)[(j * 2) * d + e] + cap.k(0)[(j * 2 + 1) * d + e]) / 2;
          v[j * d + e] = (cap.v(0)[(j * 2) * d + e] + cap.v(0)[(j * 2 + 1) * d + e]) / 2;
        }
      }
    }
    double worst = 0;
    for (int pos = 0; pos < T; ++pos) {
      const int step = pos - kPrompt;
      for (int h = 0; h < H; ++h) {
        const int kvh =
            step < 0 ? trace.groups[0].kv_of_query[h] : trace.group_steps[step][0].kv_of_query[h];
        VariantRowSpec spec;
        spec.mask = &trace.masks[0][h];  // prefill masks; these patterns are position rules
        spec.string_shift = trace.string_shift;
        spec.string_window = trace.string_window;
        spec.rope_theta = model->config.rope_theta;
        std::vector<uint8_t> keep;
        if (step >= 0) {
          for (uint8_t r : trace.kv_steps[step][0].reasons[kvh]) {
            keep.push_back(r != static_cast<uint8_t>(KeepReason::Evicted));
          }
          spec.keep = keep.data();
        }
        std::vector<float> p(pos + 1);
        variant_attention_row(&cap.q(0)[(static_cast<size_t>(pos) * H + h) * d], pos, k.data(),
                              n_kv, kvh, d, spec, p.data());
        for (int e = 0; e < d; ++e) {
          double o = 0;
          for (int j = 0; j <= pos; ++j)
            o += static_cast<double>(p[j]) * v[(j * n_kv + kvh) * d + e];
          const double got = cap.out0[(static_cast<size_t>(pos) * H + h) * d + e];
          worst = std::max(worst, std::abs(got - o));
        }
      }
    }
    EXPECT_LE(worst, kOutTol) << text << ": seed " << kSeed << ", T " << T;
  }
}

TEST(RunVariants, ConsistentTraces) {
  auto model = tiny_model();
  const auto prompt = prompt_tokens(12);
  const int decode = 4, T = 16;
  RunOptions opt;
  opt.decode_steps = decode;
  std::vector<double> fractions;
  opt.progress = [&](double f, const std::string&) { fractions.push_back(f); };
  const std::vector<VariantSpec> variants = {
      VariantSpec::baseline(), VariantSpec::parse("pattern=window:w=4"),
      VariantSpec::parse("kv=streamingllm:budget=6,sinks=2"), VariantSpec::parse("grouping=mqa")};
  const auto traces = run_variants(model, prompt, variants, opt);
  ASSERT_EQ(traces.size(), 5u);

  // Independent baseline: plain session, greedy, captured logits.
  const SessionRun base = run_session(model, nullptr, prompt, decode);
  const auto& c = model->config;
  double nll = 0;
  for (int p = 0; p + 1 < T; ++p) {
    const float* row = &base.logits[static_cast<size_t>(p) * 32];
    double mx = -INFINITY, sum = 0;
    for (int v = 0; v < 32; ++v) mx = std::max(mx, static_cast<double>(row[v]));
    for (int v = 0; v < 32; ++v) sum += std::exp(row[v] - mx);
    nll -= row[base.tokens[p + 1]] - mx - std::log(sum);
  }
  const double ppl = std::exp(nll / (T - 1));

  for (size_t i = 0; i < traces.size(); ++i) {
    const Trace& t = traces[i];
    SCOPED_TRACE("trace " + std::to_string(i));
    // Every trace the run produces passes the loader's validation.
    EXPECT_NO_THROW(validate_trace(t, "trace " + std::to_string(i)));
    EXPECT_EQ(t.tokens, base.tokens);
    EXPECT_EQ(t.n_prompt, 12);
    ASSERT_EQ(t.n_layer(), c.n_layer);
    ASSERT_EQ(t.next_token.size(), static_cast<size_t>(T));
    for (const auto& nt : t.next_token) EXPECT_EQ(nt.ids.size(), static_cast<size_t>(kTraceTopK));
    ASSERT_EQ(t.k_heads.size(), 2u);
    for (int l = 0; l < 2; ++l) {
      EXPECT_EQ(t.q[l].size(), static_cast<size_t>(T) * 4 * 8);
      EXPECT_EQ(t.k[l].size(), static_cast<size_t>(T) * t.k_heads[l] * 8);
      EXPECT_EQ(t.groups[l].kv_of_query.size(), 4u);
      EXPECT_EQ(t.masks[l].size(), 4u);
    }
    EXPECT_EQ(t.token_texts.size(), static_cast<size_t>(T));
    for (const char* key :
         {"prefill_seconds", "decode_seconds", "attention_seconds", "kv_cache_bytes",
          "prefill_tokens_per_second", "decode_tokens_per_second"}) {
      EXPECT_EQ(t.timings.count(key), 1u) << key;
    }
    EXPECT_NEAR(t.metrics.at("perplexity_baseline"), ppl, kPplTol * ppl);
    if (i == 0) {
      EXPECT_TRUE(t.kl_per_position.empty());
      for (int l = 0; l < 2; ++l) {
        EXPECT_EQ(t.q[l], base.capture->q(l));
        EXPECT_EQ(t.k[l], base.capture->k(l));
      }
      continue;
    }
    ASSERT_EQ(t.kl_per_position.size(), static_cast<size_t>(T));
    ASSERT_EQ(t.top1_agree.size(), static_cast<size_t>(T));
    ASSERT_EQ(t.layer_rel_error.size(), 2u);
    double kl_sum = 0;
    for (float x : t.kl_per_position) kl_sum += x;
    EXPECT_NEAR(t.metrics.at("kl_mean"), kl_sum / T, 1e-12);
    EXPECT_NEAR(t.metrics.at("delta_perplexity"),
                t.metrics.at("perplexity") - t.metrics.at("perplexity_baseline"), 1e-12);
  }
  // The baseline spec as a variant reproduces the baseline exactly.
  const Trace& same = traces[1];
  for (int p = 0; p < T; ++p) {
    EXPECT_EQ(same.kl_per_position[p], 0.0f) << p;
    EXPECT_EQ(same.top1_agree[p], 1) << p;
  }
  for (float e : same.layer_rel_error) EXPECT_EQ(e, 0.0f);
  EXPECT_NEAR(same.metrics.at("perplexity"), ppl, kPplTol * ppl);
  // Window 4: positions 0..3 see every key in every layer, so they match exactly; later ones
  // lose keys.
  const Trace& win = traces[2];
  for (int p = 0; p < 4; ++p) EXPECT_EQ(win.kl_per_position[p], 0.0f) << p;
  EXPECT_GT(win.metrics.at("kl_max"), 0.0);
  EXPECT_GT(win.layer_rel_error[1], 0.0f);
  EXPECT_EQ(win.mask_density[0].size(), 4u);
  EXPECT_LT(win.mask_density[0][0], 1.0f);
  // StreamingLLM: prefill untouched, decode steps recorded with budgets and lost mass.
  const Trace& sl = traces[3];
  for (int p = 0; p < 12; ++p) EXPECT_EQ(sl.kl_per_position[p], 0.0f) << p;
  ASSERT_EQ(sl.kv_steps.size(), static_cast<size_t>(decode));
  for (int s = 0; s < decode; ++s) {
    ASSERT_EQ(sl.kv_steps[s].size(), 2u);
    for (const KvStep& ks : sl.kv_steps[s]) {
      EXPECT_EQ(ks.position, 12 + s);
      EXPECT_EQ(ks.budgets.size(), 2u);
      for (float lost : ks.lost_mass) {
        EXPECT_GE(lost, 0.0f);
        EXPECT_LE(lost, 1.0f + 1e-6f);
      }
    }
  }
  EXPECT_LT(sl.timings.at("kv_cache_bytes"), traces[0].timings.at("kv_cache_bytes"));
  // MQA: one pooled KV head, K recorded at that width.
  const Trace& mqa = traces[4];
  for (int l = 0; l < 2; ++l) {
    EXPECT_EQ(mqa.k_heads[l], 1);
    EXPECT_EQ(mqa.groups[l].n_kv, 1);
  }
  // Progress ends at 1 and never goes back.
  ASSERT_FALSE(fractions.empty());
  EXPECT_DOUBLE_EQ(fractions.back(), 1.0);
  for (size_t i = 1; i < fractions.size(); ++i) EXPECT_GE(fractions[i], fractions[i - 1]);
}

TEST(RunVariants, RejectsTooLongAndCancels) {
  auto model = tiny_model();
  RunOptions opt;
  opt.decode_steps = 10;
  try {
    run_variants(model, prompt_tokens(60), {}, opt);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput);
    EXPECT_NE(std::string(e.what()).find("context"), std::string::npos) << e.what();
  }
  std::atomic<bool> cancel{true};
  opt.decode_steps = 2;
  opt.cancel = &cancel;
  try {
    run_variants(model, prompt_tokens(8), {VariantSpec::parse("pattern=window:w=2")}, opt);
    ADD_FAILURE() << "expected cancellation";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Runtime);
    EXPECT_NE(std::string(e.what()).find("cancelled"), std::string::npos) << e.what();
  }
}

TEST(VariantEngine, StringParamsFromPositionPart) {
  auto model = tiny_model();
  auto rope = make_position_part(VariantSpec::baseline().positions, *model);
  EXPECT_FALSE(string_params_of(*rope, 1000).active());
  auto str = make_position_part(VariantSpec::parse("positions=string:shift=30,window=7").positions,
                                *model);
  const StringParams s = string_params_of(*str, 1000);
  EXPECT_EQ(s.shift, 30);
  EXPECT_EQ(s.window, 7);
}

// SQA: the kept query heads are recorded per layer (prefill and every decode step) and survive
// a save/load round trip; a dropped head's map is still computed (its attention exists, only
// its output is zeroed), so its full-resolution rows are probability distributions.
TEST(RunVariants, SqaActiveHeadsRecordedAndRoundTrip) {
  auto model = tiny_model();
  RunOptions opt;
  opt.decode_steps = 3;
  const VariantSpec sqa = VariantSpec::parse("grouping=sqa:heads=2,choose=weights");
  const auto traces = run_variants(model, prompt_tokens(12), {sqa}, opt);
  ASSERT_EQ(traces.size(), 2u);
  const Trace& t = traces[1];
  ASSERT_EQ(t.groups.size(), 2u);
  for (int l = 0; l < 2; ++l) {
    const auto& a = t.groups[l].active_query_heads;
    ASSERT_EQ(a.size(), 2u) << "layer " << l;
    EXPECT_LT(a[0], a[1]);
    EXPECT_GE(a[0], 0);
    EXPECT_LT(a[1], 4);
    ASSERT_EQ(t.group_steps.size(), 3u);
    for (const auto& step : t.group_steps) EXPECT_EQ(step[l].active_query_heads.size(), 2u);
  }
  const auto dir = std::filesystem::temp_directory_path() /
                   ("attnscope_sqa_trace_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  save_trace(t, dir);
  const Trace back = load_trace(dir);
  std::filesystem::remove_all(dir);
  for (int l = 0; l < 2; ++l) {
    EXPECT_EQ(back.groups[l].active_query_heads, t.groups[l].active_query_heads);
    for (size_t s = 0; s < t.group_steps.size(); ++s)
      EXPECT_EQ(back.group_steps[s][l].active_query_heads, t.group_steps[s][l].active_query_heads);
  }
  // A dropped head (not in the active list) still has a map whose rows sum to 1.
  const auto& a = t.groups[0].active_query_heads;
  int dropped = 0;
  while (std::find(a.begin(), a.end(), dropped) != a.end()) ++dropped;
  MapRequest req;
  req.layer = 0;
  req.head = dropped;
  req.out_rows = req.out_cols = t.n_tokens();
  req.reduce = MapRequest::Mean;
  const PooledMap m = compute_map(t, req);
  for (int r = 0; r < m.rows; ++r) {
    double sum = 0;
    for (int c = 0; c < m.cols; ++c) sum += m.values[static_cast<size_t>(r) * m.cols + c];
    EXPECT_NEAR(sum, 1.0, 1e-5) << "dropped head " << dropped << " row " << r;
  }
}

// Block top-k chooses decode-row blocks afresh at every step (the prefill masks do not cover
// them): compute_map at full resolution on decode rows equals the attention recomputed with the
// mask a fresh pattern part returns for that decode row (blocktopk is stateless, so the same
// mask the engine used), and the recorded step masks differ from what the prefill masks give.
TEST(RunVariants, BlockTopkDecodeRowsUseTheStepMasks) {
  auto model = tiny_model();
  const int n_prompt = 20, decode = 8, T = n_prompt + decode;
  const int H = 4, Hkv = 2, d = 8;
  RunOptions opt;
  opt.decode_steps = decode;
  const VariantSpec spec = VariantSpec::parse("pattern=blocktopk:block=4,k=2,init=1,local=1");
  const auto traces = run_variants(model, prompt_tokens(n_prompt), {spec}, opt);
  ASSERT_EQ(traces.size(), 2u);
  const Trace& t = traces[1];
  ASSERT_EQ(t.n_tokens(), T);
  ASSERT_EQ(t.mask_steps.size(), static_cast<size_t>(decode));
  EXPECT_TRUE(traces[0].mask_steps.empty()) << "the identity pattern records no step masks";
  auto part = make_pattern_part(spec.pattern, *model);
  // Softmax of the same fp32 logits in another summation order.
  constexpr double kRowTol = 1e-6;
  double worst = 0;
  int differs_from_prefill = 0;
  for (int l = 0; l < 2; ++l) {
    ASSERT_EQ(t.k_heads[l], Hkv);
    for (int h = 0; h < H; ++h) {
      MapRequest req;
      req.layer = l;
      req.head = h;
      req.out_rows = req.out_cols = T;
      req.reduce = MapRequest::Mean;
      const PooledMap m = compute_map(t, req);
      ASSERT_EQ(m.rows, T);
      ASSERT_EQ(m.cols, T);
      for (int i = n_prompt; i < T; ++i) {
        LayerContext ctx;
        ctx.config = &model->config;
        ctx.layer = l;
        ctx.shape = {1, i, H, Hkv, d};
        ctx.q = t.q[l].data() + static_cast<size_t>(i) * H * d;
        ctx.k = t.k[l].data();
        const PatternResult pr = part->mask(ctx);
        ASSERT_EQ(pr.heads.size(), static_cast<size_t>(H));
        VariantRowSpec rs;
        rs.mask = &pr.heads[h];
        rs.rope_theta = model->config.rope_theta;
        std::vector<float> want(static_cast<size_t>(T)), prefill_mask(static_cast<size_t>(T));
        const int kv = h / 2;
        const float* qi = t.q[l].data() + (static_cast<size_t>(i) * H + h) * d;
        variant_attention_row(qi, i, t.k[l].data(), Hkv, kv, d, rs, want.data());
        rs.mask = &t.masks[l][h];
        variant_attention_row(qi, i, t.k[l].data(), Hkv, kv, d, rs, prefill_mask.data());
        bool differs = false;
        for (int j = 0; j <= i; ++j) {
          const double got = m.values[static_cast<size_t>(i) * T + j];
          worst = std::max(worst, std::abs(got - want[j]));
          EXPECT_NEAR(got, want[j], kRowTol)
              << "layer " << l << " head " << h << " row " << i << " key " << j;
          differs = differs || std::abs(prefill_mask[j] - want[j]) > 1e-3;
        }
        differs_from_prefill += differs;
      }
    }
  }
  EXPECT_GT(differs_from_prefill, 0) << "the test needs decode rows the prefill masks get wrong";
  RecordProperty("worst_abs_error", std::to_string(worst));
  // The step masks survive a save/load round trip.
  const auto dir = std::filesystem::temp_directory_path() /
                   ("attnscope_btk_trace_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  save_trace(t, dir);
  const Trace back = load_trace(dir);
  std::filesystem::remove_all(dir);
  ASSERT_EQ(back.mask_steps.size(), t.mask_steps.size());
  for (size_t s = 0; s < t.mask_steps.size(); ++s)
    for (int l = 0; l < 2; ++l)
      for (int h = 0; h < H; ++h) {
        const HeadMask &x = t.mask_steps[s][l][h], &y = back.mask_steps[s][l][h];
        EXPECT_EQ(x.blocks, y.blocks);
        EXPECT_EQ(x.n_qblocks, y.n_qblocks);
        EXPECT_EQ(x.n_kblocks, y.n_kblocks);
        EXPECT_EQ(x.block, y.block);
        EXPECT_EQ(x.all_blocks, y.all_blocks);
      }
}

}  // namespace
}  // namespace attnscope
