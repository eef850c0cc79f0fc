// load_gguf_model on tiny llama/qwen2 files written by the test writer: config from metadata,
// weights of mixed types equal to their format-defined values, llama.cpp's Q/K row
// permutation undone (HF half-split layout), tied embeddings, tokenizer, and clear errors for
// wrong shapes, missing tensors/metadata and unsupported settings.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <optional>
#include <random>
#include <set>

#include "attnscope/error.h"
#include "attnscope/gguf_file.h"
#include "attnscope/gguf_tokenizer.h"
#include "attnscope/model.h"
#include "gguf_writer.h"
#include "test_support.h"

namespace attnscope {
namespace {

using namespace attnscope::test;

constexpr int kLayers = 2, kEmbd = 32, kHeads = 4, kHeadsKv = 2, kHeadDim = 8, kFf = 64;
const std::vector<std::string> kTokens = {"<unk>", "<s>", "</s>", "a", "b", "ab", "Ġ", "Ġab"};

// llama.cpp convert_hf_to_gguf permute(), as numpy writes it for w: [n_head * d, cols]:
//   w.reshape(n_head, 2, d/2, cols).swapaxes(1, 2).reshape(n_head * d, cols)
// i.e. output row (h, j, s) (index h*d + 2j + s) is input row (h, s, j) (index h*d + s*d/2 + j).
std::vector<float> llama_cpp_permute(const std::vector<float>& w, int n_head, size_t cols) {
  const size_t d = w.size() / cols / static_cast<size_t>(n_head), half = d / 2;
  std::vector<float> out(w.size());
  for (size_t h = 0; h < static_cast<size_t>(n_head); ++h)
    for (size_t j = 0; j < half; ++j)
      for (size_t s = 0; s < 2; ++s)
        for (size_t c = 0; c < cols; ++c)
          out[(h * d + 2 * j + s) * cols + c] = w[(h * d + s * half + j) * cols + c];
  return out;
}

std::vector<float> random_values(std::mt19937& rng, size_t n, float scale = 0.5f) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = normal(rng);
  return v;
}

// Expected HF-layout weights of the tiny model, and the file that stores them.
struct TinyModel {
  std::map<std::string, std::vector<float>> expected;  // by GGUF tensor name, HF layout
  GgufWriter writer;
};

struct TinyOptions {
  std::string arch = "llama";
  bool tied = true;
  bool bias = false;
  // Metadata: replace a key's value, or drop the key (nullopt).
  std::map<std::string, std::optional<GgufWValue>> meta;
  std::map<std::string, std::vector<uint64_t>> dims;  // tensor name -> declared dims instead
  std::set<std::string> drop_tensors;
};

TinyModel make_tiny(const TinyOptions& opt, uint32_t seed = 42) {
  std::mt19937 rng(seed);
  TinyModel m;
  // Writes metadata through opt.meta so that tests can change or drop any key.
  struct MetaWriter {
    GgufWriter& out;
    const TinyOptions& opt;
    std::set<std::string> seen;
    void add(const std::string& key, GgufWValue v) {
      seen.insert(key);
      const auto it = opt.meta.find(key);
      if (it == opt.meta.end()) return out.add(key, std::move(v));
      if (it->second) out.add(key, *it->second);
    }
    void add_u32(const std::string& key, uint32_t v) { add(key, gv_u32(v)); }
    void add_f32(const std::string& key, float v) { add(key, gv_f32(v)); }
    void add_string(const std::string& key, const std::string& v) { add(key, gv_string(v)); }
    void add_bool(const std::string& key, bool v) { add(key, gv_bool(v)); }
  } w{m.writer, opt};
  const std::string& a = opt.arch;
  w.add_string("general.architecture", a);
  w.add_string("general.name", "tiny");
  w.add_u32("general.file_type", 7);
  w.add_u32(a + ".block_count", kLayers);
  w.add_u32(a + ".embedding_length", kEmbd);
  w.add_u32(a + ".feed_forward_length", kFf);
  w.add_u32(a + ".attention.head_count", kHeads);
  w.add_u32(a + ".attention.head_count_kv", kHeadsKv);
  w.add_u32(a + ".context_length", 128);
  w.add_f32(a + ".rope.freq_base", 100000.0f);
  w.add_f32(a + ".attention.layer_norm_rms_epsilon", 1e-6f);
  w.add_u32(a + ".rope.dimension_count", kHeadDim);
  w.add_string("tokenizer.ggml.model", "gpt2");
  w.add_string("tokenizer.ggml.pre", "smollm");
  w.add("tokenizer.ggml.tokens", gv_string_array(kTokens));
  w.add("tokenizer.ggml.token_type", gv_i32_array({2, 3, 3, 1, 1, 1, 1, 1}));
  w.add("tokenizer.ggml.merges", gv_string_array({"a b", "Ġ ab"}));
  w.add_u32("tokenizer.ggml.bos_token_id", 1);
  w.add_u32("tokenizer.ggml.eos_token_id", 2);
  w.add_u32("tokenizer.ggml.unknown_token_id", 0);
  w.add_u32("tokenizer.ggml.padding_token_id", 2);
  w.add_bool("tokenizer.ggml.add_bos_token", true);
  for (const auto& [key, value] : opt.meta) {  // keys the defaults do not write
    if (value && w.seen.count(key) == 0) m.writer.add(key, *value);
  }

  const bool permute = a == "llama";
  const auto V = static_cast<uint64_t>(kTokens.size()), D = uint64_t{kEmbd}, F = uint64_t{kFf};
  const uint64_t q_rows = kHeads * kHeadDim, kv_rows = kHeadsKv * kHeadDim;
  // type: 0 F32, 1 F16, 8 Q8_0, 3 Q4_1, 6 Q5_0. `heads` > 0: stored permuted like llama.cpp.
  auto add = [&](const std::string& name, std::vector<uint64_t> dims, uint32_t type, int heads) {
    if (opt.drop_tensors.count(name) != 0) return;
    if (const auto it = opt.dims.find(name); it != opt.dims.end()) dims = it->second;
    uint64_t n = 1;
    for (auto d : dims) n *= d;
    const std::vector<float> hf = random_values(rng, n);
    Quantized q;
    switch (type) {
      case 1:
        q = quantize_f16(hf);
        break;
      case 8:
        q = quantize_q8_0(hf);
        break;
      case 3:
        q = quantize_q4_1(hf);
        break;
      case 6:
        q = quantize_q5_0(hf);
        break;
      default:
        q = {"", hf};
        break;
    }
    std::vector<float> stored = q.expected;  // what the file holds, in HF row order
    if (permute && heads > 0)
      stored = llama_cpp_permute(stored, heads, dims.size() == 2 ? dims[0] : 1);
    std::string bytes = q.bytes;
    if (type == 0) {
      bytes.resize(stored.size() * 4);
      std::memcpy(bytes.data(), stored.data(), bytes.size());
    }
    m.expected[name] = q.expected;
    m.writer.add_tensor({name, std::move(dims), type, std::move(bytes), std::nullopt});
  };
  add("token_embd.weight", {D, V}, 8, 0);
  add("output_norm.weight", {D}, 0, 0);
  if (!opt.tied) add("output.weight", {D, V}, 1, 0);
  for (int i = 0; i < kLayers; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    add(p + "attn_norm.weight", {D}, 0, 0);
    add(p + "attn_q.weight", {D, q_rows}, 0, kHeads);  // F32: un-permutation checked exactly
    add(p + "attn_k.weight", {D, kv_rows}, 0, kHeadsKv);
    add(p + "attn_v.weight", {D, kv_rows}, 3, 0);
    add(p + "attn_output.weight", {q_rows, D}, 6, 0);
    add(p + "ffn_norm.weight", {D}, 0, 0);
    add(p + "ffn_gate.weight", {D, F}, 8, 0);
    add(p + "ffn_up.weight", {D, F}, 1, 0);
    add(p + "ffn_down.weight", {F, D}, 3, 0);
    if (opt.bias) {
      add(p + "attn_q.bias", {q_rows}, 0, kHeads);
      add(p + "attn_k.bias", {kv_rows}, 0, kHeadsKv);
      add(p + "attn_v.bias", {kv_rows}, 0, 0);
    }
  }
  return m;
}

std::filesystem::path write_model(const GgufWriter& w, const std::string& name) {
  static const auto dir = make_temp_dir("gguf-model");
  const auto path = dir / name;
  w.write(path);
  return path;
}

void expect_weights(const Model& model, const TinyModel& tiny) {
  auto check = [&](const std::string& name, const std::vector<float>& got) {
    const auto it = tiny.expected.find(name);
    ASSERT_NE(it, tiny.expected.end()) << name;
    ASSERT_EQ(got.size(), it->second.size()) << name;
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      if (got[i] != it->second[i] && bad++ == 0) first = i;
    }
    EXPECT_EQ(bad, 0u) << name << ": " << bad << " values differ, first at " << first << " (got "
                       << got[first] << ", expected " << it->second[first] << ")";
  };
  check("token_embd.weight", model.token_embd);
  check("output_norm.weight", model.output_norm);
  if (!model.config.tied_embeddings) check("output.weight", model.output);
  for (int i = 0; i < kLayers; ++i) {
    const LayerWeights& L = model.layers[static_cast<size_t>(i)];
    const std::string p = "blk." + std::to_string(i) + ".";
    check(p + "attn_norm.weight", L.attn_norm);
    check(p + "attn_q.weight", L.wq);
    check(p + "attn_k.weight", L.wk);
    check(p + "attn_v.weight", L.wv);
    check(p + "attn_output.weight", L.wo);
    check(p + "ffn_norm.weight", L.ffn_norm);
    check(p + "ffn_gate.weight", L.w_gate);
    check(p + "ffn_up.weight", L.w_up);
    check(p + "ffn_down.weight", L.w_down);
    if (model.config.qkv_bias) {
      check(p + "attn_q.bias", L.bq);
      check(p + "attn_k.bias", L.bk);
      check(p + "attn_v.bias", L.bv);
    }
  }
}

TEST(GgufModel, TinyLlamaConfigWeightsAndTokenizer) {
  const TinyModel tiny = make_tiny({});
  const auto path = write_model(tiny.writer, "tiny-llama.gguf");
  const auto model = load_gguf_model(path);
  const ModelConfig& c = model->config;
  EXPECT_EQ(c.architecture, "llama");
  EXPECT_EQ(c.name, "tiny");
  EXPECT_EQ(c.n_layer, kLayers);
  EXPECT_EQ(c.n_embd, kEmbd);
  EXPECT_EQ(c.n_head, kHeads);
  EXPECT_EQ(c.n_head_kv, kHeadsKv);
  EXPECT_EQ(c.head_dim, kHeadDim);
  EXPECT_EQ(c.n_ff, kFf);
  EXPECT_EQ(c.context_length, 128);
  EXPECT_EQ(c.vocab_size, static_cast<int>(kTokens.size()));  // from the token list
  EXPECT_EQ(c.rope_theta, 100000.0f);
  EXPECT_EQ(c.rms_norm_eps, 1e-6f);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_EQ(&model->output_weights(), &model->token_embd);
  expect_weights(*model, tiny);

  EXPECT_EQ(model->source.format, "gguf");
  EXPECT_EQ(model->source.path, path);
  EXPECT_EQ(model->source.file_size, std::filesystem::file_size(path));
  EXPECT_EQ(model->source.file_type, "MOSTLY_Q8_0");
  const std::map<std::string, int> counts = {
      {"F32", kLayers * 4 + 1}, {"Q8_0", 1 + 2}, {"Q4_1", 4}, {"Q5_0", 2}, {"F16", 2}};
  EXPECT_EQ(model->source.tensor_type_counts, counts);

  ASSERT_NE(model->tokenizer, nullptr);
  EXPECT_EQ(model->tokenizer->vocab_size(), static_cast<int>(kTokens.size()));
  EXPECT_EQ(model->tokenizer->bos_id(), 1);
  EXPECT_EQ(model->tokenizer->eos_id(), 2);
  EXPECT_EQ(model->tokenizer->spec().pre, "smollm");
  EXPECT_TRUE(model->tokenizer->spec().add_bos);
}

// One literal instance of the permutation, independent of the index formulas: with d = 8
// the converter stores HF rows of a head in the order 0,4,1,5,2,6,3,7.
TEST(GgufModel, UnpermutationLiteralRowOrder) {
  TinyModel tiny = make_tiny({});
  const auto model = load_gguf_model(write_model(tiny.writer, "tiny-order.gguf"));
  const auto f = GgufFile::open(model->source.path);
  const auto raw = f->dequantize_tensor(*f->find_tensor("blk.0.attn_q.weight"));
  const size_t cols = kEmbd;
  const size_t stored_order[8] = {0, 4, 1, 5, 2, 6, 3, 7};  // file row r holds HF row order[r]
  for (size_t h = 0; h < static_cast<size_t>(kHeads); ++h) {
    for (size_t r = 0; r < 8; ++r) {
      for (size_t col = 0; col < cols; ++col) {
        ASSERT_EQ(raw[(h * 8 + r) * cols + col],
                  model->layers[0].wq[(h * 8 + stored_order[r]) * cols + col])
            << "head " << h << " file row " << r << " col " << col;
      }
    }
  }
}

TEST(GgufModel, UntiedOutputAndLoadModelDispatch) {
  const TinyModel tiny = make_tiny({"llama", false, false});
  const auto model = load_model(write_model(tiny.writer, "tiny-untied.gguf"));
  EXPECT_FALSE(model->config.tied_embeddings);
  EXPECT_EQ(&model->output_weights(), &model->output);
  expect_weights(*model, tiny);
}

TEST(GgufModel, LlamaBiasesArePermutedToo) {
  const TinyModel tiny = make_tiny({"llama", true, true});
  const auto model = load_gguf_model(write_model(tiny.writer, "tiny-llama-bias.gguf"));
  EXPECT_TRUE(model->config.qkv_bias);
  expect_weights(*model, tiny);
}

TEST(GgufModel, Qwen2IsNotPermutedAndHasBiases) {
  const TinyModel tiny = make_tiny({"qwen2", true, true});
  const auto model = load_gguf_model(write_model(tiny.writer, "tiny-qwen2.gguf"));
  EXPECT_EQ(model->config.architecture, "qwen2");
  EXPECT_TRUE(model->config.qkv_bias);
  expect_weights(*model, tiny);  // make_tiny stores qwen2 Q/K unpermuted
}

std::string load_error(const GgufWriter& w, const std::string& name) {
  try {
    load_gguf_model(write_model(w, name));
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput) << e.what();
    return e.what();
  }
  return "(loaded without error)";
}

void expect_contains(const std::string& msg, const std::vector<std::string>& parts) {
  for (const auto& p : parts)
    EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
}

TEST(GgufModel, QwenWithoutBiasesIsRejected) {
  const TinyModel tiny = make_tiny({"qwen2", true, false});
  expect_contains(load_error(tiny.writer, "qwen-nobias.gguf"),
                  {"qwen-nobias.gguf", "'blk.0.attn_q.bias'", "missing"});
}

TEST(GgufModel, ShapeMismatchNamesTensorAndShapes) {
  TinyOptions opt;
  opt.dims["blk.1.attn_k.weight"] = {kEmbd, 3 * kHeadDim};
  expect_contains(
      load_error(make_tiny(opt).writer, "shape.gguf"),
      {"shape.gguf", "'blk.1.attn_k.weight'", "expected shape [32, 16]", "got [32, 24]"});
  TinyOptions opt2;
  opt2.dims["output_norm.weight"] = {kEmbd, 1};
  expect_contains(load_error(make_tiny(opt2).writer, "shape2.gguf"),
                  {"'output_norm.weight'", "expected shape [32]", "got [32, 1]"});
  TinyOptions opt3;  // vocabulary of the embedding differs from the token list
  opt3.dims["token_embd.weight"] = {kEmbd, 9};
  expect_contains(load_error(make_tiny(opt3).writer, "shape3.gguf"),
                  {"'token_embd.weight'", "expected shape [32, 8]"});
}

TEST(GgufModel, MissingTensorIsNamed) {
  TinyOptions opt;
  opt.drop_tensors = {"blk.1.ffn_down.weight"};
  expect_contains(load_error(make_tiny(opt).writer, "missing-tensor.gguf"),
                  {"missing-tensor.gguf", "'blk.1.ffn_down.weight'", "missing"});
}

TEST(GgufModel, MissingOrBadMetadataIsNamed) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> dropped = {
      {"llama.block_count", {"'llama.block_count'", "missing"}},
      {"llama.embedding_length", {"'llama.embedding_length'", "missing"}},
      {"llama.attention.head_count", {"'llama.attention.head_count'", "missing"}},
      {"llama.attention.layer_norm_rms_epsilon", {"layer_norm_rms_epsilon", "missing"}},
      {"general.architecture", {"'general.architecture'", "missing"}},
      {"tokenizer.ggml.tokens", {"'tokenizer.ggml.tokens'", "missing"}},
      {"tokenizer.ggml.model", {"'tokenizer.ggml.model'", "missing"}},
  };
  for (const auto& [key, parts] : dropped) {
    TinyOptions opt;
    opt.meta[key] = std::nullopt;
    expect_contains(load_error(make_tiny(opt).writer, "nometa.gguf"), parts);
  }
  const std::vector<std::tuple<std::string, GgufWValue, std::vector<std::string>>> changed = {
      {"general.architecture", gv_string("gpt2"), {"unsupported architecture 'gpt2'"}},
      {"llama.rope.dimension_count", gv_u32(4), {"'llama.rope.dimension_count'", "unsupported"}},
      {"llama.attention.head_count_kv", gv_u32(3), {"head_count_kv", "does not divide"}},
      {"llama.attention.head_count", gv_u32(6), {"'llama.embedding_length'", "multiple"}},
      {"llama.block_count", gv_u32(0), {"'llama.block_count'", "expected 1.."}},
      {"llama.block_count", gv_string("2"), {"'llama.block_count'", "integer"}},
      {"llama.attention.layer_norm_rms_epsilon", gv_f32(-1.0f), {"layer_norm_rms_epsilon"}},
      {"tokenizer.ggml.bos_token_id", gv_u32(99), {"'tokenizer.ggml.bos_token_id'", "99"}},
      {"tokenizer.ggml.token_type", gv_i32_array({1}), {"'tokenizer.ggml.token_type'"}},
      {"tokenizer.ggml.merges", gv_string_array({"a zz"}), {"tokenizer.ggml.merges"}},
      {"llama.vocab_size", gv_u32(4), {"'llama.vocab_size'"}},
  };
  for (const auto& [key, value, parts] : changed) {
    TinyOptions opt;
    opt.meta[key] = value;
    const std::string msg = load_error(make_tiny(opt).writer, "badmeta.gguf");
    expect_contains(msg, parts);
    expect_contains(msg, {"badmeta.gguf"});
  }
}

TEST(GgufModel, DefaultsForOptionalMetadata) {
  TinyOptions opt;
  opt.meta["llama.attention.head_count_kv"] = std::nullopt;  // -> head_count (MHA)
  opt.meta["llama.rope.freq_base"] = std::nullopt;           // -> 10000
  opt.meta["llama.vocab_size"] = gv_u32(8);
  opt.dims["blk.0.attn_k.weight"] = {kEmbd, kHeads * kHeadDim};
  opt.dims["blk.0.attn_v.weight"] = {kEmbd, kHeads * kHeadDim};
  opt.dims["blk.1.attn_k.weight"] = {kEmbd, kHeads * kHeadDim};
  opt.dims["blk.1.attn_v.weight"] = {kEmbd, kHeads * kHeadDim};
  const auto model = load_gguf_model(write_model(make_tiny(opt).writer, "defaults.gguf"));
  EXPECT_EQ(model->config.n_head_kv, kHeads);
  EXPECT_EQ(model->config.rope_theta, 10000.0f);
  EXPECT_EQ(model->config.vocab_size, 8);
}

TEST(GgufModel, TokenizerSpecFromGguf) {
  const auto path = write_model(make_tiny({}).writer, "tok.gguf");
  const auto f = GgufFile::open(path);
  const TokenizerSpec spec = tokenizer_spec_from_gguf(*f);
  EXPECT_EQ(spec.model, "gpt2");
  EXPECT_EQ(spec.pre, "smollm");
  EXPECT_EQ(spec.tokens, kTokens);
  ASSERT_EQ(spec.token_types.size(), kTokens.size());
  EXPECT_EQ(spec.token_types[0], TokenType::Unknown);
  EXPECT_EQ(spec.token_types[1], TokenType::Control);
  EXPECT_EQ(spec.token_types[3], TokenType::Normal);
  EXPECT_EQ(spec.merges, (std::vector<std::string>{"a b", "Ġ ab"}));
  EXPECT_EQ(spec.bos_id, 1);
  EXPECT_EQ(spec.eos_id, 2);
  EXPECT_EQ(spec.unk_id, 0);
  EXPECT_EQ(spec.pad_id, 2);
  EXPECT_TRUE(spec.add_bos);
  EXPECT_FALSE(spec.add_eos);
  EXPECT_EQ(spec.source, path.string());
}

TEST(GgufModel, ValidateModelCatchesInconsistentSizes) {
  const auto loaded = load_gguf_model(write_model(make_tiny({}).writer, "validate.gguf"));
  Model m = *loaded;
  EXPECT_NO_THROW(validate_model(m, "copy"));
  m.layers[1].w_up.pop_back();
  try {
    validate_model(m, "copy");
    ADD_FAILURE() << "accepted a short w_up";
  } catch (const Error& e) {
    expect_contains(e.what(), {"copy", "layer 1 w_up", "expected 2048"});
  }
  Model m2 = *loaded;
  m2.config.n_head_kv = 3;
  EXPECT_THROW(validate_model(m2, "copy"), Error);
  Model m3 = *loaded;
  m3.config.n_layer = 2000;
  EXPECT_THROW(validate_model(m3, "copy"), Error);
}

}  // namespace
}  // namespace attnscope
