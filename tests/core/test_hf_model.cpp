// HF directory loader: a tiny llama/qwen2 written as config.json + safetensors (F32, BF16 and
// F16 tensors, single file or sharded) + a tiny byte-level tokenizer.json is loaded back with
// exactly the written config and weights; malformed directories give errors naming the field.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "attnscope/error.h"
#include "attnscope/model.h"
#include "safetensors_writer.h"
#include "test_support.h"
#include "tiny_hf_model.h"

namespace attnscope {
namespace {

using json = nlohmann::json;

constexpr uint32_t kSeed = 1234;

using test::write_tiny_tokenizer;
constexpr int kTokenizerVocab = test::kTinyTokenizerVocab;

// IEEE half bits of a float that is exactly representable as a normal half (or zero).
uint16_t exact_half_bits(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000);
  if ((u & 0x7FFFFFFF) == 0) return sign;
  const int exp = static_cast<int>((u >> 23) & 0xFF) - 127 + 15;
  return static_cast<uint16_t>(sign | (exp << 10) | ((u >> 13) & 0x3FF));
}
uint16_t exact_bf16_bits(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  return static_cast<uint16_t>(u >> 16);
}

struct TinySpec {
  std::string model_type = "llama";
  int n_layer = 2, n_embd = 8, n_head = 2, n_head_kv = 1, n_ff = 12, vocab = 262;
  bool write_lm_head = true;
  bool bias = false;  // write q/k/v biases
};

struct TinyModel {
  TinySpec spec;
  json config;
  // name -> (shape, values); values are k/64 with |k| <= 64, exact in F32, F16 and BF16.
  std::map<std::string, std::pair<std::vector<uint64_t>, std::vector<float>>> tensors;
};

TinyModel make_tiny(const TinySpec& s) {
  TinyModel m;
  m.spec = s;
  m.config = {
      {"architectures", {s.model_type == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM"}},
      {"model_type", s.model_type},
      {"hidden_size", s.n_embd},
      {"intermediate_size", s.n_ff},
      {"num_hidden_layers", s.n_layer},
      {"num_attention_heads", s.n_head},
      {"num_key_value_heads", s.n_head_kv},
      {"head_dim", s.n_embd / s.n_head},
      {"max_position_embeddings", 96},
      {"rope_theta", 100000.0},
      {"rms_norm_eps", 1e-5},
      {"vocab_size", s.vocab},
      {"tie_word_embeddings", !s.write_lm_head},
      {"rope_scaling", nullptr},
      {"hidden_act", "silu"},
      {"torch_dtype", "bfloat16"}};
  std::mt19937 rng(kSeed);
  auto add = [&](const std::string& name, std::vector<uint64_t> shape) {
    uint64_t n = 1;
    for (auto d : shape) n *= d;
    std::vector<float> v(n);
    for (auto& x : v) x = static_cast<float>(static_cast<int>(rng() % 129) - 64) / 64.0f;
    m.tensors[name] = {std::move(shape), std::move(v)};
  };
  const uint64_t D = s.n_embd, F = s.n_ff, V = s.vocab, d = s.n_embd / s.n_head;
  const uint64_t q = s.n_head * d, kv = s.n_head_kv * d;
  add("model.embed_tokens.weight", {V, D});
  add("model.norm.weight", {D});
  if (s.write_lm_head) add("lm_head.weight", {V, D});
  for (int l = 0; l < s.n_layer; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {D});
    add(p + "self_attn.q_proj.weight", {q, D});
    add(p + "self_attn.k_proj.weight", {kv, D});
    add(p + "self_attn.v_proj.weight", {kv, D});
    add(p + "self_attn.o_proj.weight", {D, q});
    if (s.bias) {
      add(p + "self_attn.q_proj.bias", {q});
      add(p + "self_attn.k_proj.bias", {kv});
      add(p + "self_attn.v_proj.bias", {kv});
    }
    add(p + "post_attention_layernorm.weight", {D});
    add(p + "mlp.gate_proj.weight", {F, D});
    add(p + "mlp.up_proj.weight", {F, D});
    add(p + "mlp.down_proj.weight", {D, F});
  }
  return m;
}

// Tensors in name order; dtypes cycle F32, BF16, F16 so every conversion is exercised.
std::vector<test::SafetensorsTensor> to_safetensors(const TinyModel& m) {
  std::vector<test::SafetensorsTensor> out;
  int i = 0;
  for (const auto& [name, sv] : m.tensors) {
    const auto& [shape, values] = sv;
    std::vector<uint16_t> bits(values.size());
    switch (i++ % 3) {
      case 0:
        out.push_back(test::f32_tensor(name, shape, values));
        break;
      case 1:
        for (size_t k = 0; k < values.size(); ++k) bits[k] = exact_bf16_bits(values[k]);
        out.push_back(test::u16_tensor(name, "BF16", shape, bits));
        break;
      default:
        for (size_t k = 0; k < values.size(); ++k) bits[k] = exact_half_bits(values[k]);
        out.push_back(test::u16_tensor(name, "F16", shape, bits));
        break;
    }
  }
  return out;
}

void write_config(const std::filesystem::path& dir, const json& config) {
  test::write_binary_file(dir / "config.json", config.dump(2));
}

void write_dir(const std::filesystem::path& dir, const TinyModel& m, int n_shards) {
  write_config(dir, m.config);
  write_tiny_tokenizer(dir / "tokenizer.json");
  if (n_shards == 0) {
    test::write_safetensors(dir / "model.safetensors", to_safetensors(m), {{"format", "pt"}});
  } else {
    test::write_sharded_safetensors(dir, to_safetensors(m), n_shards);
  }
}

void expect_bad_input(const std::function<void()>& fn, const std::vector<std::string>& fragments) {
  try {
    fn();
    ADD_FAILURE() << "expected Error(BadInput) with " << (fragments.empty() ? "" : fragments[0]);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput) << e.what();
    for (const auto& f : fragments) {
      EXPECT_NE(std::string(e.what()).find(f), std::string::npos)
          << "message '" << e.what() << "' lacks '" << f << "'";
    }
  }
}

class HfModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    m_root = test::make_temp_dir("attnscope-hf");
    m_dir = m_root / "tiny-llama";
    std::filesystem::create_directories(m_dir);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(m_root, ec);
  }
  // Every weight of `model` equals the written values bit for bit.
  void expect_weights(const Model& model, const TinyModel& m) {
    auto check = [&](const std::vector<float>& actual, const std::string& name) {
      const auto it = m.tensors.find(name);
      ASSERT_NE(it, m.tensors.end()) << name;
      const auto& expected = it->second.second;
      ASSERT_EQ(actual.size(), expected.size()) << name;
      size_t mismatches = 0, first = 0;
      for (size_t i = 0; i < actual.size(); ++i) {
        if (std::memcmp(&actual[i], &expected[i], 4) != 0 && mismatches++ == 0) first = i;
      }
      EXPECT_EQ(mismatches, 0u) << name << " (seed " << kSeed << "): first mismatch at " << first
                                << ": " << actual[first] << " vs " << expected[first];
    };
    check(model.token_embd, "model.embed_tokens.weight");
    check(model.output_norm, "model.norm.weight");
    if (m.spec.write_lm_head) {
      check(model.output, "lm_head.weight");
    } else {
      EXPECT_TRUE(model.output.empty());
    }
    ASSERT_EQ(model.layers.size(), static_cast<size_t>(m.spec.n_layer));
    for (int l = 0; l < m.spec.n_layer; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      const LayerWeights& L = model.layers[static_cast<size_t>(l)];
      check(L.attn_norm, p + "input_layernorm.weight");
      check(L.wq, p + "self_attn.q_proj.weight");
      check(L.wk, p + "self_attn.k_proj.weight");
      check(L.wv, p + "self_attn.v_proj.weight");
      check(L.wo, p + "self_attn.o_proj.weight");
      check(L.ffn_norm, p + "post_attention_layernorm.weight");
      check(L.w_gate, p + "mlp.gate_proj.weight");
      check(L.w_up, p + "mlp.up_proj.weight");
      check(L.w_down, p + "mlp.down_proj.weight");
      if (m.spec.bias) {
        check(L.bq, p + "self_attn.q_proj.bias");
        check(L.bk, p + "self_attn.k_proj.bias");
        check(L.bv, p + "self_attn.v_proj.bias");
      } else {
        EXPECT_TRUE(L.bq.empty() && L.bk.empty() && L.bv.empty());
      }
    }
  }
  std::filesystem::path m_root, m_dir;
};

TEST_F(HfModelTest, LoadsTinyLlamaExactly) {
  const TinyModel m = make_tiny({});
  write_dir(m_dir, m, 0);
  const auto model = load_hf_model(m_dir);
  const ModelConfig& c = model->config;
  EXPECT_EQ(c.architecture, "llama");
  EXPECT_EQ(c.name, "tiny-llama");
  EXPECT_EQ(c.n_layer, 2);
  EXPECT_EQ(c.n_embd, 8);
  EXPECT_EQ(c.n_head, 2);
  EXPECT_EQ(c.n_head_kv, 1);
  EXPECT_EQ(c.head_dim, 4);
  EXPECT_EQ(c.n_ff, 12);
  EXPECT_EQ(c.vocab_size, 262);
  EXPECT_EQ(c.context_length, 96);
  EXPECT_EQ(c.rope_theta, 100000.0f);
  EXPECT_EQ(c.rms_norm_eps, 1e-5f);
  EXPECT_FALSE(c.tied_embeddings);
  EXPECT_FALSE(c.qkv_bias);
  expect_weights(*model, m);
  EXPECT_EQ(&model->output_weights(), &model->output);

  EXPECT_EQ(model->source.format, "safetensors");
  EXPECT_EQ(model->source.path, m_dir);
  EXPECT_EQ(model->source.file_size, std::filesystem::file_size(m_dir / "model.safetensors"));
  // 3 + 2 * 9 = 21 tensors, dtypes cycling F32, BF16, F16 in name order: 7 of each.
  EXPECT_EQ(model->source.tensor_type_counts,
            (std::map<std::string, int>{{"BF16", 7}, {"F16", 7}, {"F32", 7}}));

  ASSERT_NE(model->tokenizer, nullptr);
  EXPECT_EQ(model->tokenizer->vocab_size(), kTokenizerVocab);
  EXPECT_EQ(model->tokenizer->token_text(258), "hell");
}

TEST_F(HfModelTest, LoadsShardedQwen2WithBiasAndTiedEmbeddings) {
  TinySpec s;
  s.model_type = "qwen2";
  s.bias = true;
  s.write_lm_head = false;
  const TinyModel m = make_tiny(s);
  write_dir(m_dir, m, 2);
  const auto model = load_hf_model(m_dir);
  EXPECT_EQ(model->config.architecture, "qwen2");
  EXPECT_TRUE(model->config.qkv_bias);
  EXPECT_TRUE(model->config.tied_embeddings);
  expect_weights(*model, m);
  EXPECT_EQ(&model->output_weights(), &model->token_embd);
  EXPECT_EQ(model->source.file_size,
            std::filesystem::file_size(m_dir / "model-00001-of-00002.safetensors") +
                std::filesystem::file_size(m_dir / "model-00002-of-00002.safetensors"));
}

TEST_F(HfModelTest, TiedConfigIgnoresLmHeadAndMissingLmHeadMeansTied) {
  TinyModel m = make_tiny({});
  m.config["tie_word_embeddings"] = true;
  write_dir(m_dir, m, 0);
  auto model = load_hf_model(m_dir);
  EXPECT_TRUE(model->config.tied_embeddings);
  EXPECT_TRUE(model->output.empty());

  TinySpec s;
  s.write_lm_head = false;
  TinyModel m2 = make_tiny(s);
  m2.config.erase("tie_word_embeddings");  // untied by default, but no lm_head to use
  write_dir(m_dir, m2, 0);
  model = load_hf_model(m_dir);
  EXPECT_TRUE(model->config.tied_embeddings);
}

TEST_F(HfModelTest, DefaultsForOptionalFields) {
  TinyModel m = make_tiny({});
  for (const char* k : {"num_key_value_heads", "head_dim", "rope_theta", "rms_norm_eps",
                        "hidden_act", "rope_scaling", "architectures"}) {
    m.config.erase(k);
  }
  m.config["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 500000.0}};
  write_dir(m_dir, m, 0);
  std::filesystem::remove(m_dir / "model.safetensors");
  // k/v projections must now be [n_head*head_dim, D]: rewrite them to match n_head_kv = n_head.
  TinyModel mha = m;
  for (int l = 0; l < 2; ++l) {
    for (const char* w : {"k_proj", "v_proj"}) {
      auto& [shape, values] =
          mha.tensors["model.layers." + std::to_string(l) + ".self_attn." + w + ".weight"];
      shape = {8, 8};
      values.assign(64, 0.5f);
    }
  }
  test::write_safetensors(m_dir / "model.safetensors", to_safetensors(mha));
  const auto model = load_hf_model(m_dir);
  EXPECT_EQ(model->config.n_head_kv, 2);
  EXPECT_EQ(model->config.head_dim, 4);
  EXPECT_EQ(model->config.rope_theta, 500000.0f);  // from rope_parameters
  EXPECT_EQ(model->config.rms_norm_eps, 1e-6f);    // LlamaConfig default
  expect_weights(*model, mha);
}

// Mistral applies its sliding window always; within the window that equals full attention, so
// the usable context is limited to the window instead of computing something else.
TEST_F(HfModelTest, MistralSlidingWindowLimitsContext) {
  TinyModel m = make_tiny({});
  m.config["model_type"] = "mistral";
  m.config["architectures"] = {"MistralForCausalLM"};
  m.config["sliding_window"] = 64;
  write_dir(m_dir, m, 0);
  auto model = load_hf_model(m_dir);
  EXPECT_EQ(model->config.architecture, "llama");
  EXPECT_EQ(model->config.context_length, 64);
  expect_weights(*model, m);
  m.config["sliding_window"] = nullptr;
  write_config(m_dir, m.config);
  EXPECT_EQ(load_hf_model(m_dir)->config.context_length, 96);
}

TEST_F(HfModelTest, MissingConfig) {
  write_tiny_tokenizer(m_dir / "tokenizer.json");
  try {
    load_hf_model(m_dir);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput);
    EXPECT_EQ(std::string(e.what()),
              m_dir.string() + ": no config.json (expected a Hugging Face model directory)");
  }
  expect_bad_input([&] { load_hf_model(m_dir / "absent"); }, {"absent", "not a directory"});
}

TEST_F(HfModelTest, BadConfigFieldTypesNameTheField) {
  const TinyModel m = make_tiny({});
  write_dir(m_dir, m, 0);
  struct Case {
    std::string key;
    json value;
    std::string fragment;
  };
  const std::vector<Case> cases = {
      {"hidden_size", "8", "expected an integer"},
      {"num_hidden_layers", 2.5, "expected an integer"},
      {"num_attention_heads", -2, "expected an integer in"},
      {"num_attention_heads", 0, "expected an integer in [1, "},
      {"hidden_size", 0, "expected an integer in [1, "},
      {"num_key_value_heads", 0, "expected an integer in [1, "},
      {"num_hidden_layers", 18446744073709551615ull, "expected an integer in [1, "},
      {"intermediate_size", nullptr, "missing"},
      {"vocab_size", json::array(), "expected an integer"},
      {"tie_word_embeddings", "yes", "expected true or false"},
      {"rope_theta", "1e5", "expected a number"},
      {"rms_norm_eps", -1.0, "expected a positive number"},
      {"model_type", 3, "expected a string"},
      {"model_type", "gpt2", "unsupported model type \"gpt2\""},
      {"architectures", {"LlamaForSequenceClassification"}, "ForCausalLM"},
      {"head_dim", 8, "expected hidden_size / num_attention_heads = 4"},
      {"num_key_value_heads", 3, "does not divide"},
      {"rope_scaling", {{"rope_type", "linear"}, {"factor", 2.0}}, "unsupported RoPE scaling"},
      {"rope_parameters", {{"rope_type", "yarn"}}, "unsupported rope_type"},
      {"hidden_act", "gelu", "unsupported"},
      {"attention_bias", true, "o_proj bias"},
      {"mlp_bias", true, "unsupported"},
  };
  for (const auto& c : cases) {
    json config = m.config;
    config[c.key] = c.value;
    write_config(m_dir, config);
    SCOPED_TRACE(c.key + " = " + c.value.dump());
    expect_bad_input([&] { load_hf_model(m_dir); },
                     {"config.json: field '" + c.key + "'", c.fragment});
  }
  test::write_binary_file(m_dir / "config.json", "{\"hidden_size\": ");
  expect_bad_input([&] { load_hf_model(m_dir); }, {"config.json", "invalid JSON"});
}

TEST_F(HfModelTest, TensorProblemsNameTheTensor) {
  TinyModel m = make_tiny({});
  write_dir(m_dir, m, 0);
  const auto write_weights = [&](const TinyModel& t) {
    test::write_safetensors(m_dir / "model.safetensors", to_safetensors(t));
  };

  TinyModel wrong_shape = m;
  wrong_shape.tensors["model.layers.1.self_attn.q_proj.weight"].first = {4, 16};
  write_weights(wrong_shape);
  expect_bad_input([&] { load_hf_model(m_dir); },
                   {"model.safetensors: tensor 'model.layers.1.self_attn.q_proj.weight'",
                    "shape [4, 16], expected [8, 8]"});

  TinyModel missing = m;
  missing.tensors.erase("model.layers.1.mlp.down_proj.weight");
  write_weights(missing);
  expect_bad_input([&] { load_hf_model(m_dir); },
                   {"tensor 'model.layers.1.mlp.down_proj.weight'", "missing"});

  TinyModel biased = make_tiny({.bias = true});
  write_weights(biased);
  expect_bad_input([&] { load_hf_model(m_dir); }, {"q_proj.bias", "unexpected bias"});

  TinySpec three;
  three.n_layer = 3;
  write_weights(make_tiny(three));  // config still says 2 layers
  expect_bad_input([&] { load_hf_model(m_dir); },
                   {"field 'num_hidden_layers'", "model.layers.2.input_layernorm.weight"});

  TinyModel qwen = make_tiny({});  // no biases
  qwen.config["model_type"] = "qwen2";
  write_dir(m_dir, qwen, 0);
  expect_bad_input([&] { load_hf_model(m_dir); }, {"q_proj.bias", "missing"});
}

TEST_F(HfModelTest, TokenizerProblems) {
  const TinyModel m = make_tiny({});
  write_dir(m_dir, m, 0);
  std::filesystem::remove(m_dir / "tokenizer.json");
  expect_bad_input([&] { load_hf_model(m_dir); }, {"no tokenizer.json"});

  write_tiny_tokenizer(m_dir / "tokenizer.json");
  json config = m.config;
  config["vocab_size"] = 200;  // fewer rows than the tokenizer has tokens
  write_config(m_dir, config);
  TinySpec small;
  small.vocab = 200;
  test::write_safetensors(m_dir / "model.safetensors", to_safetensors(make_tiny(small)));
  expect_bad_input([&] { load_hf_model(m_dir); },
                   {"tokenizer.json", "260 tokens", "vocab_size 200"});
}

TEST_F(HfModelTest, LoadModelDispatchesDirectories) {
  const TinyModel m = make_tiny({});
  write_dir(m_dir, m, 2);
  const auto model = load_model(m_dir);
  EXPECT_EQ(model->source.format, "safetensors");
  expect_weights(*model, m);
}

}  // namespace
}  // namespace attnscope
