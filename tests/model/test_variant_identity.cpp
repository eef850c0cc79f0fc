// Identity settings of every variant part reproduce full attention exactly on the real default
// model (~40-token prompt + 8 decode steps): through the engine hook (native grouping forced
// through the hook, window >= length, STRING shift >= length, KV budgets >= length) the logits
// are bit-identical, and run_variants reports KL 0, full top-1 agreement and zero layer error;
// a real variant differs. Also the model identity hash against an independent sha256sum.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "attnscope/model.h"
#include "attnscope/run.h"
#include "attnscope/session.h"
#include "attnscope/variant_engine.h"
#include "test_support.h"

namespace attnscope {
namespace {

constexpr int kDecode = 8;
constexpr const char* kPrompt =
    "The lighthouse keeper climbed the spiral stairs every evening, counting the steps and "
    "listening to the waves, until one night the lamp refused to light.";

class VariantIdentity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const auto path = test::default_model();
    if (std::filesystem::exists(path)) s_model = load_model(path);
  }
  static void TearDownTestSuite() { s_model.reset(); }
  static std::shared_ptr<const Model> s_model;
};
std::shared_ptr<const Model> VariantIdentity::s_model;

// All logits of prompt + teacher-forced tokens (greedy when `forced` is empty).
std::vector<float> logits_of(std::shared_ptr<const Model> model,
                             std::shared_ptr<AttentionHook> hook,
                             const std::vector<int32_t>& prompt, std::vector<int32_t>& tokens,
                             bool greedy) {
  InferenceSession session(model, nullptr, static_cast<int>(prompt.size()) + kDecode);
  session.set_attention_hook(std::move(hook));
  RecordedCapture cap(model->config, true);
  std::vector<float> last = session.forward(prompt, &cap);
  if (greedy) tokens = prompt;
  for (int s = 0; s < kDecode; ++s) {
    if (greedy) {
      tokens.push_back(
          static_cast<int32_t>(std::max_element(last.begin(), last.end()) - last.begin()));
    }
    const int32_t tok = tokens[prompt.size() + s];
    last = session.forward(std::span<const int32_t>(&tok, 1), &cap);
  }
  return cap.logits();
}

TEST_F(VariantIdentity, HookPathIdentitiesGiveIdenticalLogits) {
  ASSERT_TRUE(s_model);
  const auto prompt = s_model->tokenizer->encode(kPrompt, true);
  ASSERT_GE(prompt.size(), 25u);
  ASSERT_LE(prompt.size(), 60u);
  std::vector<int32_t> tokens;
  const auto base = logits_of(s_model, nullptr, prompt, tokens, true);
  const char* specs[] = {
      // Every part at once, through the hook (native grouping included).
      "grouping=native;pattern=window:w=256;positions=string:shift=200,window=64;"
      "kv=streamingllm:budget=256",
      "kv=h2o:budget=256",
      "kv=snapkv:budget=256",
  };
  for (const char* text : specs) {
    Trace trace;
    VariantEngineOptions opt;
    opt.force_hook = true;
    auto hook = std::make_shared<VariantAttention>(VariantSpec::parse(text), s_model, &trace, opt);
    const auto got = logits_of(s_model, hook, prompt, tokens, false);
    ASSERT_EQ(got.size(), base.size()) << text;
    size_t n_diff = 0;
    double worst = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      n_diff += got[i] != base[i];
      worst = std::max(worst, static_cast<double>(std::abs(got[i] - base[i])));
    }
    EXPECT_EQ(n_diff, 0u) << text << ": T " << tokens.size() << ", worst diff " << worst;
  }
}

TEST_F(VariantIdentity, RunVariantsReportsExactAgreementForIdentities) {
  ASSERT_TRUE(s_model);
  const auto prompt = s_model->tokenizer->encode(kPrompt, true);
  RunOptions opt;
  opt.decode_steps = kDecode;
  const std::vector<VariantSpec> variants = {
      VariantSpec::parse("pattern=window:w=1024;kv=tova:budget=1024"),
      VariantSpec::parse("positions=string:shift=500,window=100"),
      VariantSpec::parse("pattern=window:w=8;kv=streamingllm:budget=16,sinks=4")};
  const auto traces = run_variants(s_model, prompt, variants, opt);
  ASSERT_EQ(traces.size(), 4u);
  const int T = static_cast<int>(prompt.size()) + kDecode;
  for (int v = 1; v <= 2; ++v) {
    const Trace& t = traces[v];
    ASSERT_EQ(t.kl_per_position.size(), static_cast<size_t>(T));
    for (int p = 0; p < T; ++p) {
      EXPECT_EQ(t.kl_per_position[p], 0.0f) << "variant " << v << " position " << p;
      EXPECT_EQ(t.top1_agree[p], 1) << "variant " << v << " position " << p;
      EXPECT_EQ(t.next_token[p].ids, traces[0].next_token[p].ids);
    }
    for (float e : t.layer_rel_error) EXPECT_EQ(e, 0.0f) << "variant " << v;
    EXPECT_EQ(t.metrics.at("perplexity"), t.metrics.at("perplexity_baseline"));
  }
  // A real restriction changes the distributions and records evictions.
  const Trace& lossy = traces[3];
  EXPECT_GT(lossy.metrics.at("kl_mean"), 0.0);
  ASSERT_EQ(lossy.kv_steps.size(), static_cast<size_t>(kDecode));
  double lost = 0;
  for (const auto& step : lossy.kv_steps) {
    for (const auto& ks : step) {
      for (float x : ks.lost_mass) lost += x;
    }
  }
  EXPECT_GT(lost, 0.0);
  EXPECT_EQ(traces[0].model.sha256.size(), 64u);
  EXPECT_EQ(traces[0].model.n_layer, 30);
}

TEST_F(VariantIdentity, ModelIdentityMatchesSha256sum) {
  ASSERT_TRUE(s_model);
  // Independent reference: coreutils sha256sum, when present.
  const std::string cmd = "sha256sum '" + s_model->source.path.string() + "' 2>/dev/null";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), &pclose);
  if (!pipe) GTEST_SKIP() << "cannot run sha256sum";
  char buf[65] = {0};
  if (std::fread(buf, 1, 64, pipe.get()) != 64) GTEST_SKIP() << "sha256sum not available";
  const ModelIdentity id = model_identity(*s_model);
  EXPECT_EQ(id.sha256, std::string(buf, 64));
  EXPECT_EQ(model_identity(*s_model).sha256, id.sha256);  // cached path
}

}  // namespace
}  // namespace attnscope
