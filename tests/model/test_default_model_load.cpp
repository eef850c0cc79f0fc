// The real default model (SmolLM2-135M-Instruct Q4_1 GGUF): config from metadata, tensor type
// counts, finite weights, and dequantized tensors against golden values from the `gguf` Python
// package, Q/K in HF layout against transformers' reverse permutation
// (tests/data/gguf_golden.json, scripts/golden/make_gguf_golden.py).
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "attnscope/file_util.h"
#include "attnscope/gguf_file.h"
#include "attnscope/model.h"
#include "test_support.h"

namespace attnscope {
namespace {

// fp64 sums over millions of values are accumulated in a different order than numpy's
// pairwise sum; allow that rounding difference and nothing more.
constexpr double kSumRelTol = 1e-9;

std::shared_ptr<const Model> default_model() {
  static const std::shared_ptr<const Model> model = load_model(test::default_model());
  return model;
}

nlohmann::json golden() {
  return nlohmann::json::parse(read_text_file(test::data_dir() / "gguf_golden.json"));
}

TEST(DefaultModelLoad, Config) {
  const auto model = default_model();
  const ModelConfig& c = model->config;
  EXPECT_EQ(c.architecture, "llama");
  EXPECT_EQ(c.n_layer, 30);
  EXPECT_EQ(c.n_head, 9);
  EXPECT_EQ(c.n_head_kv, 3);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.n_embd, 576);
  EXPECT_EQ(c.n_ff, 1536);
  EXPECT_EQ(c.context_length, 8192);
  EXPECT_EQ(c.vocab_size, 49152);
  EXPECT_EQ(c.rope_theta, 100000.0f);
  EXPECT_EQ(c.rms_norm_eps, 1e-5f);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_EQ(c.group_size(), 3);

  const ModelSource& s = model->source;
  EXPECT_EQ(s.format, "gguf");
  EXPECT_EQ(s.file_type, "MOSTLY_Q4_1");
  EXPECT_EQ(s.file_size, std::filesystem::file_size(test::default_model()));
  const std::map<std::string, int> counts = {{"Q4_1", 210}, {"F32", 61}, {"Q8_0", 1}};
  EXPECT_EQ(s.tensor_type_counts, counts);

  ASSERT_NE(model->tokenizer, nullptr);
  EXPECT_EQ(model->tokenizer->vocab_size(), 49152);
  EXPECT_EQ(model->tokenizer->spec().pre, "smollm");
  EXPECT_EQ(model->tokenizer->bos_id(), 1);
  EXPECT_EQ(model->tokenizer->eos_id(), 2);
}

TEST(DefaultModelLoad, AllWeightsFinite) {
  const auto model = default_model();
  auto check = [](const std::string& name, const std::vector<float>& v) {
    ASSERT_FALSE(v.empty()) << name;
    for (size_t i = 0; i < v.size(); ++i) {
      ASSERT_TRUE(std::isfinite(v[i])) << name << "[" << i << "] = " << v[i];
    }
  };
  check("token_embd", model->token_embd);
  check("output_norm", model->output_norm);
  for (size_t l = 0; l < model->layers.size(); ++l) {
    const LayerWeights& L = model->layers[l];
    const std::string p = "layer " + std::to_string(l) + " ";
    for (const auto& [n, v] : {std::pair{"attn_norm", &L.attn_norm},
                               {"wq", &L.wq},
                               {"wk", &L.wk},
                               {"wv", &L.wv},
                               {"wo", &L.wo},
                               {"ffn_norm", &L.ffn_norm},
                               {"w_gate", &L.w_gate},
                               {"w_up", &L.w_up},
                               {"w_down", &L.w_down}}) {
      check(p + n, *v);
    }
  }
}

// Raw GGUF order (before un-permutation) against gguf.quants.dequantize.
TEST(DefaultModelLoad, RawTensorsMatchGgufPython) {
  const auto g = golden();
  const auto file = GgufFile::open(test::default_model());
  for (const auto& [name, entry] : g.at("raw").items()) {
    const GgufTensorInfo* info = file->find_tensor(name);
    ASSERT_NE(info, nullptr) << name;
    EXPECT_EQ(ggml_type_name(info->type_id), entry.at("type").get<std::string>()) << name;
    const std::vector<float> v = file->dequantize_tensor(*info);
    ASSERT_EQ(v.size(), entry.at("n").get<size_t>()) << name;
    const auto first = entry.at("first").get<std::vector<float>>();
    const auto last = entry.at("last").get<std::vector<float>>();
    for (size_t i = 0; i < first.size(); ++i) EXPECT_EQ(v[i], first[i]) << name << "[" << i << "]";
    for (size_t i = 0; i < last.size(); ++i) {
      const size_t at = v.size() - last.size() + i;
      EXPECT_EQ(v[at], last[i]) << name << "[" << at << "]";
    }
    double sum = 0.0;
    for (float x : v) sum += x;
    const double want = entry.at("sum").get<double>();
    EXPECT_NEAR(sum, want, kSumRelTol * (1.0 + std::fabs(want)) * std::sqrt(double(v.size())))
        << name;
  }
}

// Model Q/K weights (HF half-split layout) against transformers' reverse_permute_weights.
TEST(DefaultModelLoad, QkUnpermutedLikeTransformers) {
  const auto g = golden();
  const auto model = default_model();
  const size_t cols = static_cast<size_t>(model->config.n_embd);
  for (const auto& [name, entry] : g.at("hf_layout").items()) {
    const std::vector<float>& w =
        name == "blk.0.attn_q.weight" ? model->layers[0].wq : model->layers[0].wk;
    const auto shape = entry.at("shape").get<std::vector<size_t>>();
    ASSERT_EQ(shape.size(), 2u);
    ASSERT_EQ(shape[1], cols);
    ASSERT_EQ(w.size(), shape[0] * cols) << name;
    for (const auto& [row_text, values] : entry.at("rows").items()) {
      const size_t row = std::stoul(row_text);
      const auto want = values.get<std::vector<float>>();
      for (size_t c = 0; c < want.size(); ++c) {
        EXPECT_EQ(w[row * cols + c], want[c]) << name << " row " << row << " col " << c;
      }
    }
    const auto sums = entry.at("row_sums").get<std::vector<double>>();
    ASSERT_EQ(sums.size(), shape[0]);
    for (size_t r = 0; r < shape[0]; ++r) {
      double s = 0.0;
      for (size_t c = 0; c < cols; ++c) s += w[r * cols + c];
      EXPECT_NEAR(s, sums[r], kSumRelTol * (1.0 + std::fabs(sums[r])) * 100)
          << name << " row " << r;
    }
  }
}

}  // namespace
}  // namespace attnscope
