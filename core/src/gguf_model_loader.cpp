// GGUF -> Model for llama-family architectures ("llama", "qwen2"): hyper-parameters from
// `<arch>.*` metadata, every tensor's shape checked against them, weights dequantized to fp32
// once (in parallel across tensors) and llama.cpp's Q/K row permutation undone so that the
// Model holds HF layout. Also builds the TokenizerSpec from `tokenizer.ggml.*`.
#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>

#include "attnscope/error.h"
#include "attnscope/gguf_file.h"
#include "attnscope/gguf_tokenizer.h"
#include "attnscope/model.h"

namespace attnscope {
namespace {

std::string quote_name(const std::string& s) {
  return "'" + s + "'";
}

[[noreturn]] void fail_key(const GgufFile& f, const std::string& key, const std::string& what) {
  throw_bad_input(f.path().string() + ": metadata " + quote_name(key), what);
}

// An integer hyper-parameter that must lie in [lo, hi].
int int_in_range(const GgufFile& f, const std::string& key, int64_t value, int64_t lo, int64_t hi) {
  if (value < lo || value > hi) {
    fail_key(
        f, key,
        std::to_string(value) + ", expected " + std::to_string(lo) + ".." + std::to_string(hi));
  }
  return static_cast<int>(value);
}

int require_count(const GgufFile& f, const std::string& key, int64_t hi) {
  return int_in_range(f, key, f.require_int(key), 1, hi);
}

// llama.cpp's file_type numbering (llama_ftype), for display only.
std::string file_type_name(int64_t ft) {
  switch (ft) {
    case 0:
      return "ALL_F32";
    case 1:
      return "MOSTLY_F16";
    case 2:
      return "MOSTLY_Q4_0";
    case 3:
      return "MOSTLY_Q4_1";
    case 7:
      return "MOSTLY_Q8_0";
    case 8:
      return "MOSTLY_Q5_0";
    case 9:
      return "MOSTLY_Q5_1";
    case 10:
      return "MOSTLY_Q2_K";
    case 11:
      return "MOSTLY_Q3_K_S";
    case 12:
      return "MOSTLY_Q3_K_M";
    case 13:
      return "MOSTLY_Q3_K_L";
    case 14:
      return "MOSTLY_Q4_K_S";
    case 15:
      return "MOSTLY_Q4_K_M";
    case 16:
      return "MOSTLY_Q5_K_S";
    case 17:
      return "MOSTLY_Q5_K_M";
    case 18:
      return "MOSTLY_Q6_K";
    case 32:
      return "MOSTLY_BF16";
    default:
      return "file_type " + std::to_string(ft);
  }
}

// One tensor to load: expected ggml dims (dims[0] = row length), destination, and the number
// of heads whose rows must be un-permuted (0 = keep as stored).
struct Job {
  const GgufTensorInfo* info = nullptr;
  std::vector<uint64_t> dims;
  std::vector<float>* dst = nullptr;
  int unpermute_heads = 0;
};

std::string dims_text(const uint64_t* dims, size_t n) {
  std::string s = "[";
  for (size_t i = 0; i < n; ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

// Inverse of llama.cpp's convert_hf_to_gguf permute(): the converter maps HF row
// (h, s * d/2 + j) to GGUF row (h, 2j + s), s in {0, 1}, so its interleaved RoPE pairs
// (2j, 2j+1) are HF's half-split pairs (j, j + d/2). Here HF[h][s*d/2 + j] = GGUF[h][2j + s].
// w: [n_heads * d, cols] row-major (cols = 1 for a bias), rewritten in place.
void unpermute_rows(std::vector<float>& w, int n_heads, size_t cols) {
  const size_t rows = w.size() / cols;
  const size_t d = rows / static_cast<size_t>(n_heads);
  const size_t half = d / 2;
  std::vector<float> out(w.size());
  for (size_t h = 0; h < static_cast<size_t>(n_heads); ++h) {
    for (size_t s = 0; s < 2; ++s) {
      for (size_t j = 0; j < half; ++j) {
        const float* src = w.data() + (h * d + 2 * j + s) * cols;
        std::copy(src, src + cols, out.data() + (h * d + s * half + j) * cols);
      }
    }
  }
  w.swap(out);
}

void run_jobs(const GgufFile& f, std::vector<Job>& jobs) {
  // Largest tensors first so that threads finish together.
  std::sort(jobs.begin(), jobs.end(),
            [](const Job& a, const Job& b) { return a.info->n_elements > b.info->n_elements; });
  const unsigned hw = std::max(2u, std::thread::hardware_concurrency());
  const size_t n_threads = std::min<size_t>({hw, size_t{8}, std::max<size_t>(jobs.size(), 1)});
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&]() {
    for (size_t i = next++; i < jobs.size(); i = next++) {
      try {
        Job& job = jobs[i];
        *job.dst = f.dequantize_tensor(*job.info);
        if (job.unpermute_heads > 0) {
          const size_t cols = job.dims.size() == 2 ? job.dims[0] : 1;
          unpermute_rows(*job.dst, job.unpermute_heads, cols);
        }
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
      }
    }
  };
  std::vector<std::thread> threads;
  for (size_t t = 1; t < n_threads; ++t) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace

TokenizerSpec tokenizer_spec_from_gguf(const GgufFile& f) {
  TokenizerSpec spec;
  spec.source = f.path().string();
  spec.model = f.require_string("tokenizer.ggml.model");
  spec.pre = f.optional_string("tokenizer.ggml.pre").value_or("default");
  spec.tokens = f.require_string_array("tokenizer.ggml.tokens");
  const auto types = f.optional_int_array("tokenizer.ggml.token_type");
  if (!types.empty()) {
    if (types.size() != spec.tokens.size()) {
      fail_key(f, "tokenizer.ggml.token_type",
               std::to_string(types.size()) + " entries, expected one per token (" +
                   std::to_string(spec.tokens.size()) + ")");
    }
    spec.token_types.reserve(types.size());
    for (size_t i = 0; i < types.size(); ++i) {
      // 0 is llama.cpp's "undefined" type; treat it as a normal token.
      if (types[i] < 0 || types[i] > 6) {
        fail_key(
            f, "tokenizer.ggml.token_type",
            "element " + std::to_string(i) + " is " + std::to_string(types[i]) + ", expected 0..6");
      }
      spec.token_types.push_back(types[i] == 0 ? TokenType::Normal
                                               : static_cast<TokenType>(types[i]));
    }
  }
  if (f.find("tokenizer.ggml.merges") != nullptr) {
    spec.merges = f.require_string_array("tokenizer.ggml.merges");
  }
  auto id = [&](const std::string& key) -> int32_t {
    const auto v = f.optional_int(key);
    if (!v) return -1;
    if (*v < 0 || *v >= static_cast<int64_t>(spec.tokens.size())) {
      fail_key(
          f, key,
          std::to_string(*v) + ", expected a token id below " + std::to_string(spec.tokens.size()));
    }
    return static_cast<int32_t>(*v);
  };
  spec.bos_id = id("tokenizer.ggml.bos_token_id");
  spec.eos_id = id("tokenizer.ggml.eos_token_id");
  spec.unk_id = id("tokenizer.ggml.unknown_token_id");
  spec.pad_id = id("tokenizer.ggml.padding_token_id");
  auto flag = [&](const std::string& key) {
    const GgufValue* v = f.find(key);
    if (v == nullptr) return false;
    if (const auto* b = std::get_if<bool>(&v->value)) return *b;
    fail_key(f, key, "expected a bool");
  };
  spec.add_bos = flag("tokenizer.ggml.add_bos_token");
  spec.add_eos = flag("tokenizer.ggml.add_eos_token");
  return spec;
}

std::shared_ptr<const Model> load_gguf_model(const std::filesystem::path& path) {
  const auto file = GgufFile::open(path);
  const GgufFile& f = *file;
  const std::string where = path.string();
  auto model = std::make_shared<Model>();
  ModelConfig& c = model->config;

  c.architecture = f.require_string("general.architecture");
  const std::string& arch = c.architecture;
  if (arch != "llama" && arch != "qwen2") {
    fail_key(f, "general.architecture",
             "unsupported architecture " + quote_name(arch) + ", expected 'llama' or 'qwen2'");
  }
  const bool permuted_qk = arch == "llama";  // llama.cpp permutes Q/K only for llama
  c.name = f.optional_string("general.name").value_or(path.stem().string());
  c.n_layer = require_count(f, arch + ".block_count", 1024);
  c.n_embd = require_count(f, arch + ".embedding_length", 65536);
  c.n_ff = require_count(f, arch + ".feed_forward_length", 1 << 20);
  c.n_head = require_count(f, arch + ".attention.head_count", 4096);
  const std::string kv_key = arch + ".attention.head_count_kv";
  c.n_head_kv = int_in_range(f, kv_key, f.optional_int(kv_key).value_or(c.n_head), 1, c.n_head);
  if (c.n_head % c.n_head_kv != 0) {
    fail_key(
        f, kv_key,
        std::to_string(c.n_head_kv) + " does not divide head_count " + std::to_string(c.n_head));
  }
  c.context_length = require_count(f, arch + ".context_length", 1 << 24);
  const std::string theta_key = arch + ".rope.freq_base";
  const double theta = f.optional_double(theta_key).value_or(10000.0);
  if (!(theta > 0.0 && theta < 1e12)) fail_key(f, theta_key, "expected a positive number");
  c.rope_theta = static_cast<float>(theta);
  const std::string eps_key = arch + ".attention.layer_norm_rms_epsilon";
  const double eps = f.require_double(eps_key);
  if (!(eps > 0.0 && eps < 1.0)) fail_key(f, eps_key, "expected a number in (0, 1)");
  c.rms_norm_eps = static_cast<float>(eps);
  if (c.n_embd % c.n_head != 0) {
    fail_key(
        f, arch + ".embedding_length",
        std::to_string(c.n_embd) + " is not a multiple of head_count " + std::to_string(c.n_head));
  }
  c.head_dim = c.n_embd / c.n_head;
  if (c.head_dim % 2 != 0) {
    fail_key(f, arch + ".embedding_length",
             "head_dim " + std::to_string(c.head_dim) + " is odd, RoPE needs an even head_dim");
  }
  const std::string rope_dim_key = arch + ".rope.dimension_count";
  if (const auto rd = f.optional_int(rope_dim_key); rd && *rd != c.head_dim) {
    fail_key(f, rope_dim_key,
             "unsupported: partial RoPE (" + std::to_string(*rd) + " dims), expected head_dim " +
                 std::to_string(c.head_dim));
  }
  const std::string scaling_key = arch + ".rope.scaling.type";
  if (const auto st = f.optional_string(scaling_key); st && *st != "none") {
    fail_key(f, scaling_key, "unsupported RoPE scaling " + quote_name(*st) + ", expected 'none'");
  }
  if (f.find_tensor("rope_freqs.weight") != nullptr) {
    throw_bad_input(where + ": tensor 'rope_freqs.weight'",
                    "unsupported: per-dimension RoPE frequency factors (Llama-3.1 scaling)");
  }

  TokenizerSpec spec = tokenizer_spec_from_gguf(f);
  const std::string vocab_key = arch + ".vocab_size";
  if (const auto vs = f.optional_int(vocab_key)) {
    c.vocab_size = int_in_range(f, vocab_key, *vs, 1, 4 << 20);
  } else {
    c.vocab_size = static_cast<int>(std::min<size_t>(spec.tokens.size(), size_t{4} << 20));
  }
  if (c.vocab_size < static_cast<int>(spec.tokens.size())) {
    fail_key(f, vocab_key,
             std::to_string(c.vocab_size) + " is smaller than the " +
                 std::to_string(spec.tokens.size()) + " tokens of the tokenizer");
  }

  // Source description.
  ModelSource& src = model->source;
  src.path = path;
  src.format = "gguf";
  src.file_size = f.file_size();
  for (const auto& t : f.tensors()) ++src.tensor_type_counts[ggml_type_name(t.type_id)];
  if (const auto ft = f.optional_int("general.file_type")) src.file_type = file_type_name(*ft);

  // Tensors: check every shape before dequantizing anything.
  const auto D = static_cast<uint64_t>(c.n_embd), F = static_cast<uint64_t>(c.n_ff);
  const auto V = static_cast<uint64_t>(c.vocab_size);
  const auto q_rows = static_cast<uint64_t>(c.n_head) * static_cast<uint64_t>(c.head_dim);
  const auto kv_rows = static_cast<uint64_t>(c.n_head_kv) * static_cast<uint64_t>(c.head_dim);
  std::vector<Job> jobs;
  auto add = [&](const std::string& name, std::vector<uint64_t> dims, std::vector<float>* dst,
                 int unpermute_heads, bool required) {
    const GgufTensorInfo* info = f.find_tensor(name);
    if (info == nullptr) {
      if (required) throw_bad_input(where + ": tensor " + quote_name(name), "missing");
      return false;
    }
    const bool match =
        info->n_dims == dims.size() && std::equal(dims.begin(), dims.end(), info->dims);
    if (!match) {
      throw_bad_input(where + ": tensor " + quote_name(name),
                      "expected shape " + dims_text(dims.data(), dims.size()) + ", got " +
                          dims_text(info->dims, info->n_dims) + " (ggml order, row length first)");
    }
    jobs.push_back(Job{info, std::move(dims), dst, unpermute_heads});
    return true;
  };
  const int q_perm = permuted_qk ? c.n_head : 0;
  const int k_perm = permuted_qk ? c.n_head_kv : 0;
  add("token_embd.weight", {D, V}, &model->token_embd, 0, true);
  add("output_norm.weight", {D}, &model->output_norm, 0, true);
  c.tied_embeddings = !add("output.weight", {D, V}, &model->output, 0, false);
  model->layers.resize(static_cast<size_t>(c.n_layer));
  for (int i = 0; i < c.n_layer; ++i) {
    LayerWeights& L = model->layers[static_cast<size_t>(i)];
    const std::string p = "blk." + std::to_string(i) + ".";
    add(p + "attn_norm.weight", {D}, &L.attn_norm, 0, true);
    add(p + "attn_q.weight", {D, q_rows}, &L.wq, q_perm, true);
    add(p + "attn_k.weight", {D, kv_rows}, &L.wk, k_perm, true);
    add(p + "attn_v.weight", {D, kv_rows}, &L.wv, 0, true);
    add(p + "attn_output.weight", {q_rows, D}, &L.wo, 0, true);
    add(p + "ffn_norm.weight", {D}, &L.ffn_norm, 0, true);
    add(p + "ffn_gate.weight", {D, F}, &L.w_gate, 0, true);
    add(p + "ffn_up.weight", {D, F}, &L.w_up, 0, true);
    add(p + "ffn_down.weight", {F, D}, &L.w_down, 0, true);
    // qwen2 always has Q/K/V biases; a llama file may carry them too (then permuted like Q/K).
    const bool need_bias = arch == "qwen2";
    const bool has_bq = add(p + "attn_q.bias", {q_rows}, &L.bq, q_perm, need_bias);
    const bool has_bk = add(p + "attn_k.bias", {kv_rows}, &L.bk, k_perm, need_bias);
    const bool has_bv = add(p + "attn_v.bias", {kv_rows}, &L.bv, 0, need_bias);
    if (has_bq != has_bk || has_bk != has_bv) {
      throw_bad_input(where + ": tensor '" + p + "attn_{q,k,v}.bias'",
                      "expected all three Q/K/V biases or none");
    }
    if (i == 0) {
      c.qkv_bias = has_bq;
    } else if (has_bq != c.qkv_bias) {
      throw_bad_input(where + ": tensor '" + p + "attn_q.bias'",
                      "expected the same Q/K/V bias presence in every layer");
    }
  }
  run_jobs(f, jobs);

  model->tokenizer = Tokenizer::from_spec(std::move(spec));
  validate_model(*model, where);
  return model;
}

}  // namespace attnscope
