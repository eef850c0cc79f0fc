// The HF directory loader against the GGUF loader on the real default model: its fp32 weights
// are written as a 2-shard F32 safetensors directory (config.json derived from the GGUF
// config, the committed SmolLM2 tokenizer.json) and loaded back; config, every weight, the
// tokenizer's ids and (when the forward pass is built) the logits must be identical.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "attnscope/error.h"
#include "attnscope/model.h"
#include "safetensors_writer.h"
#include "test_support.h"

// The forward pass lives in core/src/session.cpp; until it exists the logits check is skipped.
#if __has_include("../../core/src/session.cpp")
#define ATTNSCOPE_HAVE_SESSION 1
#include "attnscope/session.h"
#endif

namespace attnscope {
namespace {

using json = nlohmann::json;

constexpr int kShards = 2;

// Builds the HF directory once for all tests of the suite.
class HfVsGgufTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      build();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "building the HF copy of " << test::default_model()
                    << " failed: " << e.what();
    }
  }

  static void build() {
    const auto tokenizer_json = test::data_dir() / "smollm2_tokenizer.json";
    if (!std::filesystem::exists(tokenizer_json)) {
      ADD_FAILURE() << tokenizer_json << " missing (committed with the tokenizer)";
      return;
    }
    s_root = test::make_temp_dir("attnscope-hf-vs-gguf");
    s_dir = s_root / "SmolLM2-135M-Instruct-hf";
    std::filesystem::create_directories(s_dir);
    s_gguf = load_gguf_model(test::default_model());
    const Model& g = *s_gguf;
    const ModelConfig& c = g.config;

    const json config = {
        {"architectures", {"LlamaForCausalLM"}},
        {"model_type", "llama"},
        {"hidden_size", c.n_embd},
        {"intermediate_size", c.n_ff},
        {"num_hidden_layers", c.n_layer},
        {"num_attention_heads", c.n_head},
        {"num_key_value_heads", c.n_head_kv},
        {"head_dim", c.head_dim},
        {"max_position_embeddings", c.context_length},
        // float -> double -> JSON text -> double -> float is exact (shortest round-trip text).
        {"rope_theta", static_cast<double>(c.rope_theta)},
        {"rms_norm_eps", static_cast<double>(c.rms_norm_eps)},
        {"vocab_size", c.vocab_size},
        {"tie_word_embeddings", c.tied_embeddings},
        {"attention_bias", false},
        {"hidden_act", "silu"},
        {"rope_scaling", nullptr}};
    test::write_binary_file(s_dir / "config.json", config.dump(2));
    std::filesystem::copy_file(tokenizer_json, s_dir / "tokenizer.json");

    const uint64_t D = static_cast<uint64_t>(c.n_embd), F = static_cast<uint64_t>(c.n_ff);
    const uint64_t V = static_cast<uint64_t>(c.vocab_size);
    const uint64_t q = static_cast<uint64_t>(c.n_head * c.head_dim);
    const uint64_t kv = static_cast<uint64_t>(c.n_head_kv * c.head_dim);
    {
      std::vector<test::SafetensorsTensor> t;
      t.push_back(test::f32_tensor("model.embed_tokens.weight", {V, D}, g.token_embd));
      for (int l = 0; l < c.n_layer; ++l) {
        const auto& L = g.layers[static_cast<size_t>(l)];
        const std::string p = "model.layers." + std::to_string(l) + ".";
        t.push_back(test::f32_tensor(p + "input_layernorm.weight", {D}, L.attn_norm));
        t.push_back(test::f32_tensor(p + "self_attn.q_proj.weight", {q, D}, L.wq));
        t.push_back(test::f32_tensor(p + "self_attn.k_proj.weight", {kv, D}, L.wk));
        t.push_back(test::f32_tensor(p + "self_attn.v_proj.weight", {kv, D}, L.wv));
        t.push_back(test::f32_tensor(p + "self_attn.o_proj.weight", {D, q}, L.wo));
        t.push_back(test::f32_tensor(p + "post_attention_layernorm.weight", {D}, L.ffn_norm));
        t.push_back(test::f32_tensor(p + "mlp.gate_proj.weight", {F, D}, L.w_gate));
        t.push_back(test::f32_tensor(p + "mlp.up_proj.weight", {F, D}, L.w_up));
        t.push_back(test::f32_tensor(p + "mlp.down_proj.weight", {D, F}, L.w_down));
      }
      t.push_back(test::f32_tensor("model.norm.weight", {D}, g.output_norm));
      if (!c.tied_embeddings) t.push_back(test::f32_tensor("lm_head.weight", {V, D}, g.output));
      s_n_tensors = static_cast<int>(t.size());
      s_shards = test::write_sharded_safetensors(s_dir, t, kShards);
    }  // frees the ~0.5 GB of serialised weights before loading them back
    s_hf = load_hf_model(s_dir);
  }

  static void TearDownTestSuite() {
    s_gguf.reset();
    s_hf.reset();
    std::error_code ec;
    std::filesystem::remove_all(s_root, ec);
  }

  void SetUp() override {
    ASSERT_NE(s_gguf, nullptr);
    ASSERT_NE(s_hf, nullptr);
  }

  static inline std::filesystem::path s_root, s_dir;
  static inline std::shared_ptr<const Model> s_gguf, s_hf;
  static inline std::vector<std::string> s_shards;
  static inline int s_n_tensors = 0;
};

// Bitwise equality of two weight vectors; reports the first difference.
void expect_identical(const std::vector<float>& hf, const std::vector<float>& gguf,
                      const std::string& name) {
  ASSERT_EQ(hf.size(), gguf.size()) << name;
  size_t n_diff = 0, first = 0;
  for (size_t i = 0; i < hf.size(); ++i) {
    if (std::memcmp(&hf[i], &gguf[i], sizeof(float)) != 0 && n_diff++ == 0) first = i;
  }
  EXPECT_EQ(n_diff, 0u) << name << " [" << hf.size() << "]: first difference at " << first << ": "
                        << (n_diff ? hf[first] : 0.0f) << " vs " << (n_diff ? gguf[first] : 0.0f);
}

TEST_F(HfVsGgufTest, ConfigAndSourceMatch) {
  const ModelConfig& h = s_hf->config;
  const ModelConfig& g = s_gguf->config;
  EXPECT_EQ(h.architecture, g.architecture);
  EXPECT_EQ(h.name, "SmolLM2-135M-Instruct-hf");
  EXPECT_EQ(h.n_layer, g.n_layer);
  EXPECT_EQ(h.n_head, g.n_head);
  EXPECT_EQ(h.n_head_kv, g.n_head_kv);
  EXPECT_EQ(h.head_dim, g.head_dim);
  EXPECT_EQ(h.n_embd, g.n_embd);
  EXPECT_EQ(h.n_ff, g.n_ff);
  EXPECT_EQ(h.context_length, g.context_length);
  EXPECT_EQ(h.vocab_size, g.vocab_size);
  EXPECT_EQ(h.rope_theta, g.rope_theta);
  EXPECT_EQ(h.rms_norm_eps, g.rms_norm_eps);
  EXPECT_EQ(h.tied_embeddings, g.tied_embeddings);
  EXPECT_EQ(h.qkv_bias, g.qkv_bias);
  // The default model's known shape, so a wrong GGUF reading cannot hide behind equality.
  EXPECT_EQ(h.n_layer, 30);
  EXPECT_EQ(h.n_head_kv, 3);
  EXPECT_TRUE(h.tied_embeddings);

  EXPECT_EQ(s_hf->source.format, "safetensors");
  EXPECT_EQ(s_hf->source.path, s_dir);
  uint64_t total = 0;
  for (const auto& s : s_shards) total += std::filesystem::file_size(s_dir / s);
  EXPECT_EQ(s_hf->source.file_size, total);
  EXPECT_EQ(s_hf->source.tensor_type_counts, (std::map<std::string, int>{{"F32", s_n_tensors}}));
}

TEST_F(HfVsGgufTest, EveryWeightIdentical) {
  const Model& h = *s_hf;
  const Model& g = *s_gguf;
  expect_identical(h.token_embd, g.token_embd, "token_embd");
  expect_identical(h.output_norm, g.output_norm, "output_norm");
  expect_identical(h.output_weights(), g.output_weights(), "output_weights");
  ASSERT_EQ(h.layers.size(), g.layers.size());
  for (size_t l = 0; l < h.layers.size(); ++l) {
    const auto& a = h.layers[l];
    const auto& b = g.layers[l];
    const std::string p = "layer " + std::to_string(l) + " ";
    expect_identical(a.attn_norm, b.attn_norm, p + "attn_norm");
    expect_identical(a.wq, b.wq, p + "wq");
    expect_identical(a.wk, b.wk, p + "wk");
    expect_identical(a.wv, b.wv, p + "wv");
    expect_identical(a.wo, b.wo, p + "wo");
    expect_identical(a.bq, b.bq, p + "bq");
    expect_identical(a.bk, b.bk, p + "bk");
    expect_identical(a.bv, b.bv, p + "bv");
    expect_identical(a.ffn_norm, b.ffn_norm, p + "ffn_norm");
    expect_identical(a.w_gate, b.w_gate, p + "w_gate");
    expect_identical(a.w_up, b.w_up, p + "w_up");
    expect_identical(a.w_down, b.w_down, p + "w_down");
  }
}

// The GGUF tokenizer metadata and the HF tokenizer.json describe the same tokenizer.
TEST_F(HfVsGgufTest, TokenizersAgree) {
  ASSERT_NE(s_hf->tokenizer, nullptr);
  ASSERT_NE(s_gguf->tokenizer, nullptr);
  EXPECT_EQ(s_hf->tokenizer->vocab_size(), s_gguf->tokenizer->vocab_size());
  const std::string text = "The capital of France is Paris. 12345 tokens, naïve café!\n\tDone.";
  EXPECT_EQ(s_hf->tokenizer->encode(text, false), s_gguf->tokenizer->encode(text, false));
}

TEST_F(HfVsGgufTest, LogitsIdentical) {
#ifdef ATTNSCOPE_HAVE_SESSION
  const std::vector<int32_t> ids = s_gguf->tokenizer->encode("The capital of France is", false);
  ASSERT_FALSE(ids.empty());
  InferenceSession from_gguf(s_gguf);
  InferenceSession from_hf(s_hf);
  const auto lg = from_gguf.forward(ids);
  const auto lh = from_hf.forward(ids);
  ASSERT_EQ(lg.size(), static_cast<size_t>(s_gguf->config.vocab_size));
  ASSERT_EQ(lh.size(), lg.size());
  // Same weights and the same code path: the logits must be bit-identical.
  float worst = 0.0f;
  size_t worst_at = 0;
  for (size_t i = 0; i < lg.size(); ++i) {
    const float d = std::fabs(lg[i] - lh[i]);
    if (!(d <= worst)) worst = d, worst_at = i;
  }
  EXPECT_EQ(worst, 0.0f) << "prompt of " << ids.size() << " tokens, vocab " << lg.size()
                         << ": worst |diff| " << worst << " at id " << worst_at;
#else
  GTEST_SKIP() << "core/src/session.cpp not present: forward pass not built yet";
#endif
}

}  // namespace
}  // namespace attnscope
