// run_variants: the full-attention baseline, then each variant on the same tokens (teacher
// forcing the baseline's greedy continuation), each producing a Trace; quality per position
// against the baseline; model identities (SHA-256 of the model file, cached).
//
// Memory design: the baseline's full logits [T, vocab] and per-layer attention outputs
// [n_layer, T, H*d] are what every variant is compared against, and for long prompts they do
// not fit (8192 x 49152 floats = 1.6 GB). They go to a RowStore: kept in memory up to
// kInMemoryBytes, otherwise in an unlinked temporary file read back one logit block (<= 128
// rows, as the session reports them) at a time. A variant's own logits are reduced on arrival
// (top-k, KL, agreement, NLL), so no run ever holds more than two blocks of logits.
#include "attnscope/run.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "attnscope/error.h"
#include "attnscope/metrics.h"
#include "attnscope/session.h"
#include "attnscope/variant_engine.h"
#include "json_fields.h"
#include "sha256.h"

namespace attnscope {
namespace {

// Baseline rows up to this size stay in memory; beyond, a temporary file holds them.
constexpr size_t kInMemoryBytes = size_t{256} << 20;

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Rows of floats ([n_rows, row_len]) written once and read back by row ranges.
class RowStore {
 public:
  RowStore(size_t n_rows, size_t row_len) : m_rows(n_rows), m_len(row_len) {
    const size_t bytes = n_rows * row_len * sizeof(float);
    if (bytes <= kInMemoryBytes) {
      m_mem.assign(n_rows * row_len, 0.0f);
    } else {
      m_file = std::tmpfile();  // unlinked: removed by the OS however the run ends
      if (m_file == nullptr) {
        throw_runtime("run: cannot create a temporary file for " + std::to_string(bytes >> 20) +
                      " MB of baseline data");
      }
    }
  }
  ~RowStore() {
    if (m_file != nullptr) std::fclose(m_file);
  }
  RowStore(const RowStore&) = delete;
  RowStore& operator=(const RowStore&) = delete;

  // data: [n, row_len] stored as rows row0 .. row0+n-1.
  void write(size_t row0, size_t n, const float* data) {
    check(row0, n);
    if (m_file == nullptr) {
      std::copy(data, data + n * m_len, m_mem.begin() + row0 * m_len);
      return;
    }
    const size_t bytes = n * m_len * sizeof(float);
    const char* p = reinterpret_cast<const char*>(data);
    size_t done = 0;
    while (done < bytes) {
      const ssize_t w = ::pwrite(fileno(m_file), p + done, bytes - done,
                                 static_cast<off_t>(row0 * m_len * sizeof(float) + done));
      if (w <= 0)
        throw_runtime("run: writing baseline data to a temporary file failed (disk full?)");
      done += static_cast<size_t>(w);
    }
  }
  // out: [n, row_len] = rows row0 .. row0+n-1.
  void read(size_t row0, size_t n, float* out) const {
    check(row0, n);
    if (m_file == nullptr) {
      std::copy(m_mem.begin() + row0 * m_len, m_mem.begin() + (row0 + n) * m_len, out);
      return;
    }
    const size_t bytes = n * m_len * sizeof(float);
    char* p = reinterpret_cast<char*>(out);
    size_t done = 0;
    while (done < bytes) {
      const ssize_t r = ::pread(fileno(m_file), p + done, bytes - done,
                                static_cast<off_t>(row0 * m_len * sizeof(float) + done));
      if (r <= 0) throw_runtime("run: reading baseline data back from a temporary file failed");
      done += static_cast<size_t>(r);
    }
  }

 private:
  void check(size_t row0, size_t n) const {
    if (row0 > m_rows || n > m_rows - row0) {
      throw_runtime("run: baseline row range " + std::to_string(row0) + "+" + std::to_string(n) +
                    " outside " + std::to_string(m_rows) + " rows");
    }
  }
  size_t m_rows, m_len;
  std::vector<float> m_mem;
  FILE* m_file = nullptr;
};

// What the baseline leaves for the variants to compare against.
struct BaselineData {
  BaselineData(size_t T, const ModelConfig& c)
      : logits(T, static_cast<size_t>(c.vocab_size)),
        attention(static_cast<size_t>(c.n_layer) * T, static_cast<size_t>(c.n_head) * c.head_dim) {}
  RowStore logits;              // [T, vocab]
  RowStore attention;           // [n_layer * T, H*d], row = layer * T + position
  std::vector<int32_t> argmax;  // [T]
};

struct ProgressReporter {
  const RunOptions* options = nullptr;
  int n_runs = 1;
  int run = 0;
  double units_per_run = 1;  // prompt tokens + decode steps
  std::string name;
  void report(double units_done, const std::string& what) const {
    if (!options->progress) return;
    const double f = (run + std::min(1.0, units_done / units_per_run)) / n_runs;
    options->progress(std::min(1.0, f), name + ": " + what);
  }
};

// Collects one run's Q/K, logits-derived quantities and attention timing; for a variant, also
// compares against the baseline position by position as the rows arrive.
class RunCapture final : public Capture {
 public:
  RunCapture(const ModelConfig& c, Trace& trace, BaselineData& base, bool is_baseline,
             const std::vector<int32_t>& tokens, int n_prompt, int T, bool store_q, bool store_k,
             const ProgressReporter& progress)
      : m_c(c),
        m_trace(trace),
        m_base(base),
        m_is_baseline(is_baseline),
        m_tokens(tokens),
        m_n_prompt(n_prompt),
        m_T(T),
        m_store_q(store_q),
        m_store_k(store_k),
        m_progress(progress) {
    // Reserved to the final length: growing by doubling during decode would transiently hold
    // twice the largest arrays of a trace (q of an 8192-token run is 566 MB).
    const size_t q_row = static_cast<size_t>(c.n_head) * c.head_dim;
    const size_t k_row = static_cast<size_t>(c.n_head_kv) * c.head_dim;
    if (store_q) {
      trace.q.assign(c.n_layer, {});
      for (auto& q : trace.q) q.reserve(static_cast<size_t>(T) * q_row);
    }
    if (store_k) {
      trace.k.assign(c.n_layer, {});
      for (auto& k : trace.k) k.reserve(static_cast<size_t>(T) * k_row);
    }
    trace.next_token.assign(T, TopKDistribution{});
    if (!is_baseline) {
      trace.kl_per_position.assign(T, 0.0f);
      trace.top1_agree.assign(T, 0);
    }
    m_err_sum.assign(c.n_layer, 0.0);
    m_err_count.assign(c.n_layer, 0);
  }

  void on_qkv(int layer, int pos0, int n, const float* q, const float* k, const float*) override {
    if (layer == 0 || layer % 6 == 0) {
      if (pos0 == 0) {
        m_progress.report(
            static_cast<double>(m_n_prompt) * layer / m_c.n_layer,
            "prefill layer " + std::to_string(layer + 1) + "/" + std::to_string(m_c.n_layer));
      } else if (layer == 0) {
        m_progress.report(pos0, "decode step " + std::to_string(pos0 - m_n_prompt + 1) + "/" +
                                    std::to_string(m_T - m_n_prompt));
      }
    }
    const size_t q_row = static_cast<size_t>(m_c.n_head) * m_c.head_dim;
    const size_t k_row = static_cast<size_t>(m_c.n_head_kv) * m_c.head_dim;
    if (m_store_q) append(m_trace.q[layer], pos0, n, q_row, q);
    if (m_store_k) append(m_trace.k[layer], pos0, n, k_row, k);
    m_attention_start = Clock::now();
  }

  void on_attention_output(int layer, int pos0, int n, const float* out) override {
    m_attention_seconds += seconds_since(m_attention_start);
    const size_t row = static_cast<size_t>(m_c.n_head) * m_c.head_dim;
    const size_t at = static_cast<size_t>(layer) * m_T + pos0;
    if (m_is_baseline) {
      m_base.attention.write(at, n, out);
      return;
    }
    m_block.resize(static_cast<size_t>(n) * row);
    m_base.attention.read(at, n, m_block.data());
    for (int r = 0; r < n; ++r) {
      double diff = 0, ref = 0;
      const float* o = out + r * row;
      const float* f = m_block.data() + r * row;
      for (size_t e = 0; e < row; ++e) {
        const double dlt = static_cast<double>(o[e]) - f[e];
        diff += dlt * dlt;
        ref += static_cast<double>(f[e]) * f[e];
      }
      // A zero reference output only happens for degenerate weights; count it as exact when
      // the variant agrees and skip it otherwise rather than divide by zero.
      if (ref > 0) {
        m_err_sum[layer] += std::sqrt(diff / ref);
        ++m_err_count[layer];
      } else if (diff == 0) {
        ++m_err_count[layer];
      }
    }
  }

  void on_logits(int pos0, int n, const float* logits) override {
    const size_t V = static_cast<size_t>(m_c.vocab_size);
    if (m_is_baseline) {
      m_base.logits.write(pos0, n, logits);
    } else {
      m_block.resize(static_cast<size_t>(n) * V);
      m_base.logits.read(pos0, n, m_block.data());
    }
    for (int r = 0; r < n; ++r) {
      const int pos = pos0 + r;
      const std::span<const float> row(logits + r * V, V);
      m_trace.next_token[pos] = top_k_distribution(row, kTraceTopK);
      const int32_t am = argmax(row);
      int32_t next = -1;
      if (m_is_baseline) {
        if (static_cast<int>(m_base.argmax.size()) < pos + 1) m_base.argmax.resize(pos + 1);
        m_base.argmax[pos] = am;
        // The token after a prompt position is known; after that it is this greedy choice.
        if (pos + 1 < m_T) next = pos + 1 < m_n_prompt ? m_tokens[pos + 1] : am;
      } else {
        const std::span<const float> base(m_block.data() + r * V, V);
        m_trace.kl_per_position[pos] = static_cast<float>(kl_divergence_from_logits(base, row));
        m_trace.top1_agree[pos] = am == m_base.argmax.at(pos) ? 1 : 0;
        if (pos + 1 < m_T) next = m_tokens[pos + 1];
      }
      if (next >= 0) {
        m_nll_sum -= log_prob_of(row, next);
        ++m_nll_count;
      }
    }
  }

  bool wants_all_logits() const override { return true; }

  double attention_seconds() const { return m_attention_seconds; }
  double perplexity() const { return m_nll_count > 0 ? std::exp(m_nll_sum / m_nll_count) : 0.0; }
  std::vector<float> layer_rel_error() const {
    std::vector<float> e(m_err_sum.size(), 0.0f);
    for (size_t l = 0; l < e.size(); ++l) {
      if (m_err_count[l] > 0) e[l] = static_cast<float>(m_err_sum[l] / m_err_count[l]);
    }
    return e;
  }

 private:
  static void append(std::vector<float>& dst, int pos0, int n, size_t row, const float* src) {
    dst.resize(static_cast<size_t>(pos0) * row);  // a rewind drops stale rows
    dst.insert(dst.end(), src, src + static_cast<size_t>(n) * row);
  }

  const ModelConfig& m_c;
  Trace& m_trace;
  BaselineData& m_base;
  bool m_is_baseline;
  const std::vector<int32_t>& m_tokens;
  int m_n_prompt, m_T;
  bool m_store_q, m_store_k;
  ProgressReporter m_progress;
  Clock::time_point m_attention_start{};
  double m_attention_seconds = 0;
  std::vector<float> m_block;
  std::vector<double> m_err_sum;
  std::vector<int> m_err_count;
  double m_nll_sum = 0;
  int m_nll_count = 0;
};

// Replaces every byte that does not start or continue a well-formed UTF-8 sequence (RFC 3629:
// no overlongs, no surrogates, <= U+10FFFF) with U+FFFD.
std::string valid_utf8(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  const auto* b = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = b[i];
    int len = 0;
    unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c < 0x80)
      len = 1;
    else if (c >= 0xC2 && c <= 0xDF)
      len = 2;
    else if (c == 0xE0)
      len = 3, lo = 0xA0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
      len = 3;
    else if (c == 0xED)
      len = 3, hi = 0x9F;
    else if (c == 0xF0)
      len = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3)
      len = 4;
    else if (c == 0xF4)
      len = 4, hi = 0x8F;
    bool ok = len > 0 && i + len <= n;
    for (int t = 1; ok && t < len; ++t) {
      const unsigned char x = b[i + t];
      ok = t == 1 ? (x >= lo && x <= hi) : (x >= 0x80 && x <= 0xBF);
    }
    if (ok) {
      out.append(s, i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

// Records of a run whose parts are all the identity (no hook installed).
void fill_identity_records(Trace& t, const ModelConfig& c, int n_prompt) {
  const int L = c.n_layer, H = c.n_head;
  GroupStep g;
  g.n_kv = c.n_head_kv;
  for (int h = 0; h < H; ++h) g.kv_of_query.push_back(h / c.group_size());
  t.groups.assign(L, g);
  t.k_heads.assign(L, c.n_head_kv);
  t.masks.assign(L, std::vector<HeadMask>(H));
  t.mask_density.assign(L, std::vector<float>(H, n_prompt > 0 ? 1.0f : 0.0f));
  t.pattern_notes.assign(L, "");
  t.pattern_scores.assign(L, {});
  t.string_shift = t.string_window = 0;
  t.group_steps.clear();
  t.kv_steps.clear();
}

}  // namespace

ModelIdentity model_identity(const Model& model) {
  ModelIdentity id;
  const ModelConfig& c = model.config;
  id.path = model.source.path.string();
  id.architecture = c.architecture;
  id.name = c.name;
  id.n_layer = c.n_layer;
  id.n_head = c.n_head;
  id.n_head_kv = c.n_head_kv;
  id.head_dim = c.head_dim;
  id.vocab_size = c.vocab_size;
  id.rope_theta = c.rope_theta;
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path& path = model.source.path;
  if (path.empty() || !fs::exists(path, ec)) return id;  // built in memory: nothing to hash

  // The files whose bytes identify the model: the GGUF itself, or config.json then the
  // safetensors shards in name order for an HF directory.
  std::vector<fs::path> files;
  if (fs::is_directory(path, ec)) {
    if (fs::exists(path / "config.json", ec)) files.push_back(path / "config.json");
    std::vector<fs::path> shards;
    for (const auto& e : fs::directory_iterator(path, ec)) {
      if (e.path().extension() == ".safetensors") shards.push_back(e.path());
    }
    std::sort(shards.begin(), shards.end());
    files.insert(files.end(), shards.begin(), shards.end());
  } else {
    files.push_back(path);
  }
  // Cached per (file, size, mtime): hashing a model takes a noticeable fraction of a second.
  std::string key;
  for (const auto& f : files) {
    key += f.string() + "|" + std::to_string(fs::file_size(f, ec)) + "|" +
           std::to_string(fs::last_write_time(f, ec).time_since_epoch().count()) + ";";
  }
  static std::mutex mutex;
  static std::map<std::string, std::string> cache;
  {
    std::lock_guard<std::mutex> lock(mutex);
    const auto it = cache.find(key);
    if (it != cache.end()) {
      id.sha256 = it->second;
      return id;
    }
  }
  if (files.size() == 1) {
    id.sha256 = sha256_file_hex(files[0]);
  } else {
    // Digest of the concatenated per-file digests: stable and cheap to recompute by hand.
    std::string digests;
    for (const auto& f : files) digests += sha256_file_hex(f);
    id.sha256 = sha256_hex(digests);
  }
  std::lock_guard<std::mutex> lock(mutex);
  cache[key] = id.sha256;
  return id;
}

std::vector<Trace> run_variants(std::shared_ptr<const Model> model,
                                const std::vector<int32_t>& prompt,
                                const std::vector<VariantSpec>& variants,
                                const RunOptions& options) {
  if (!model) throw_usage("run: no model");
  const ModelConfig& c = model->config;
  if (prompt.empty()) throw_bad_input("prompt", "no tokens");
  if (options.decode_steps < 0) throw_usage("run: decode steps must be >= 0");
  const int n_prompt = static_cast<int>(prompt.size());
  const int64_t total = static_cast<int64_t>(n_prompt) + options.decode_steps;
  const int ctx = c.context_length > 0 ? c.context_length : 2048;
  if (total > ctx) {
    throw_bad_input("prompt", std::to_string(n_prompt) + " tokens + " +
                                  std::to_string(options.decode_steps) +
                                  " decode steps exceed the context length " + std::to_string(ctx));
  }
  const int T = static_cast<int>(total);
  std::shared_ptr<Backend> backend = options.backend ? options.backend : make_cpu_backend();
  InferenceSession session(model, backend, T);

  Trace common;
  common.attnscope_version = ATTNSCOPE_VERSION;
  common.created_at = utc_now_iso8601();
  common.backend = backend->device_name();
  common.model = model_identity(*model);
  common.n_prompt = n_prompt;

  ProgressReporter progress;
  progress.options = &options;
  progress.n_runs = 1 + static_cast<int>(variants.size());
  progress.units_per_run = T;

  std::vector<Trace> traces;
  traces.reserve(variants.size() + 1);
  BaselineData base(static_cast<size_t>(T), c);
  std::vector<int32_t> tokens = prompt;
  const double entry_bytes = 2.0 * c.head_dim * sizeof(float);

  // Baseline: full attention, greedy continuation.
  {
    Trace t = common;
    t.variant = VariantSpec::baseline();
    progress.run = 0;
    progress.name = "baseline";
    RunCapture cap(c, t, base, true, tokens, n_prompt, T, options.store_qk, options.store_qk,
                   progress);
    auto t0 = Clock::now();
    std::vector<float> last = session.forward(prompt, &cap, options.cancel);
    t.timings["prefill_seconds"] = seconds_since(t0);
    double decode = 0;
    for (int s = 0; s < options.decode_steps; ++s) {
      const int32_t tok = argmax(last);
      tokens.push_back(tok);
      t0 = Clock::now();
      last = session.forward(std::span<const int32_t>(&tok, 1), &cap, options.cancel);
      decode += seconds_since(t0);
    }
    t.timings["decode_seconds"] = decode;
    t.timings["attention_seconds"] = cap.attention_seconds();
    t.timings["kv_cache_bytes"] = static_cast<double>(T) * c.n_head_kv * c.n_layer * entry_bytes;
    t.metrics["perplexity"] = cap.perplexity();
    t.metrics["perplexity_baseline"] = cap.perplexity();
    fill_identity_records(t, c, n_prompt);
    traces.push_back(std::move(t));
  }
  for (Trace& t : traces) t.tokens = tokens;

  for (size_t vi = 0; vi < variants.size(); ++vi) {
    const VariantSpec& spec = variants[vi];
    Trace t = common;
    t.variant = spec;
    progress.run = static_cast<int>(vi) + 1;
    progress.name = "variant " + std::to_string(vi + 1) + "/" + std::to_string(variants.size()) +
                    " (" + spec.display_name() + ")";
    std::shared_ptr<VariantAttention> hook;
    if (!spec.is_baseline()) {
      VariantEngineOptions eo;
      eo.record_k = options.store_qk;
      eo.reserve_tokens = T;
      eo.cancel = options.cancel;
      hook = std::make_shared<VariantAttention>(spec, model, &t, eo);
    } else {
      fill_identity_records(t, c, n_prompt);
    }
    const bool capture_k = options.store_qk && !(hook && hook->records_k());
    RunCapture cap(c, t, base, false, tokens, n_prompt, T, options.store_qk, capture_k, progress);
    session.reset();
    session.set_attention_hook(hook);
    try {
      auto t0 = Clock::now();
      session.forward(prompt, &cap, options.cancel);
      t.timings["prefill_seconds"] = seconds_since(t0);
      double decode = 0;
      for (int s = 0; s < options.decode_steps; ++s) {
        t0 = Clock::now();
        session.forward(std::span<const int32_t>(&tokens[n_prompt + s], 1), &cap, options.cancel);
        decode += seconds_since(t0);
      }
      t.timings["decode_seconds"] = decode;
    } catch (...) {
      session.set_attention_hook(nullptr);
      throw;
    }
    session.set_attention_hook(nullptr);
    t.timings["attention_seconds"] = cap.attention_seconds();
    t.timings["kv_cache_bytes"] =
        hook ? hook->kv_cache_bytes()
             : static_cast<double>(T) * c.n_head_kv * c.n_layer * entry_bytes;
    t.tokens = tokens;
    t.layer_rel_error = cap.layer_rel_error();
    double kl_sum = 0, kl_max = 0, agree = 0;
    for (int p = 0; p < T; ++p) {
      kl_sum += t.kl_per_position[p];
      kl_max = std::max(kl_max, static_cast<double>(t.kl_per_position[p]));
      agree += t.top1_agree[p];
    }
    t.metrics["kl_mean"] = kl_sum / T;
    t.metrics["kl_max"] = kl_max;
    t.metrics["top1_agreement"] = agree / T;
    t.metrics["perplexity"] = cap.perplexity();
    t.metrics["perplexity_baseline"] = traces[0].metrics["perplexity"];
    t.metrics["delta_perplexity"] = cap.perplexity() - traces[0].metrics["perplexity"];
    traces.push_back(std::move(t));
  }

  // Token texts, shared by every trace.
  std::vector<std::string> texts(T);
  if (model->tokenizer) {
    for (int i = 0; i < T; ++i) texts[i] = valid_utf8(model->tokenizer->token_bytes(tokens[i]));
  }
  for (Trace& t : traces) {
    t.token_texts = texts;
    const double pf = t.timings["prefill_seconds"], dc = t.timings["decode_seconds"];
    t.timings["prefill_tokens_per_second"] = pf > 0 ? n_prompt / pf : 0.0;
    t.timings["decode_tokens_per_second"] = dc > 0 ? options.decode_steps / dc : 0.0;
  }
  if (options.progress) options.progress(1.0, "done");
  return traces;
}

}  // namespace attnscope
