// CompressKV's offline calibration on a built-in needle-in-a-haystack text: semantic retrieval
// head scores (attention mass on the needle span at answer steps whose token is a needle
// token) and per-layer SnapKV eviction error (output error after W_O) for layer budgets.
// The answer is teacher-forced (appended to the prompt) instead of generated, so a small model
// that would not retrieve the passkey still yields scores; the reference averages only over
// successful generations.
#include <cmath>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "attnscope/capture.h"
#include "attnscope/error.h"
#include "attnscope/kv_policies.h"
#include "attnscope/session.h"
#include "kv_policy_common.h"

namespace attnscope {

namespace {

// The classic passkey-retrieval filler and needle (Mohtashami & Jaggi style).
const char* const kFiller[] = {" The grass is green.",        " The sky is blue.",
                               " The sun is yellow.",         " Here we go.",
                               " There and back again.",      " The river flows to the sea.",
                               " Birds sing in the morning.", " The road is long and quiet."};

struct CalibrationText {
  std::vector<int32_t> ids;
  int needle_begin = 0, needle_end = 0;  // needle span [begin, end)
  int prompt_len = 0;                    // tokens before the teacher-forced answer
};

CalibrationText make_text(const Tokenizer& tok, int n_tokens, int seed) {
  std::mt19937_64 rng(static_cast<uint64_t>(seed) * 0x9E3779B97F4A7C15ull + 12345u);
  const int passkey = 10000 + static_cast<int>(rng() % 90000);
  const double depth = 0.2 + 0.6 * static_cast<double>(rng() % 1000) / 1000.0;
  const std::string key = std::to_string(passkey);
  const auto intro = tok.encode(
      "There is an important piece of information hidden inside a lot of irrelevant text. "
      "Find it and memorize it.",
      true);
  const auto needle =
      tok.encode(" The pass key is " + key + ". Remember it. " + key + " is the pass key.", false);
  const auto question = tok.encode(" What is the pass key? The pass key is", false);
  const auto answer = tok.encode(" " + key, false);
  const int fixed =
      static_cast<int>(intro.size() + needle.size() + question.size() + answer.size());
  const int filler_budget = n_tokens - fixed;
  if (filler_budget < 16)
    throw_usage("kv.compresskv.calib_tokens: expected room for filler text (need more than " +
                std::to_string(fixed + 16) + " tokens)");
  CalibrationText t;
  t.ids = intro;
  const int needle_at = static_cast<int>(depth * filler_budget);
  int filler = 0;
  bool placed = false;
  for (;;) {
    if (!placed && filler >= needle_at) {
      t.needle_begin = static_cast<int>(t.ids.size());
      t.ids.insert(t.ids.end(), needle.begin(), needle.end());
      t.needle_end = static_cast<int>(t.ids.size());
      placed = true;
    }
    const auto s = tok.encode(kFiller[rng() % (sizeof(kFiller) / sizeof(kFiller[0]))], false);
    if (filler + static_cast<int>(s.size()) > filler_budget) break;
    t.ids.insert(t.ids.end(), s.begin(), s.end());
    filler += static_cast<int>(s.size());
  }
  if (!placed) {
    t.needle_begin = static_cast<int>(t.ids.size());
    t.ids.insert(t.ids.end(), needle.begin(), needle.end());
    t.needle_end = static_cast<int>(t.ids.size());
  }
  t.ids.insert(t.ids.end(), question.begin(), question.end());
  t.prompt_len = static_cast<int>(t.ids.size());
  t.ids.insert(t.ids.end(), answer.begin(), answer.end());
  return t;
}

std::shared_ptr<const CompressKvCalibration> calibrate(const Model& model, int n_tokens, int seed,
                                                       int budget, int window, int kernel,
                                                       bool max_pool) {
  if (!model.tokenizer) throw_runtime("kv.compresskv: the model has no tokenizer to calibrate");
  const ModelConfig& cfg = model.config;
  const CalibrationText text = make_text(*model.tokenizer, n_tokens, seed);
  const int n = static_cast<int>(text.ids.size());
  // Non-owning handle: the session lives only inside this call.
  std::shared_ptr<const Model> handle(std::shared_ptr<const Model>{}, &model);
  InferenceSession session(handle, nullptr, n);
  RecordedCapture cap(cfg, false);
  session.forward(text.ids, &cap);

  // Answer steps: query at position p predicts ids[p + 1]; scored when that token also occurs
  // in the needle span.
  std::set<int32_t> needle_tokens(text.ids.begin() + text.needle_begin,
                                  text.ids.begin() + text.needle_end);
  std::vector<int> steps;
  for (int p = text.prompt_len - 1; p + 1 < n; ++p)
    if (needle_tokens.count(text.ids[static_cast<size_t>(p + 1)])) steps.push_back(p);
  if (steps.empty())
    for (int p = text.prompt_len - 1; p + 1 < n; ++p) steps.push_back(p);

  auto cal = std::make_shared<CompressKvCalibration>();
  cal->n_layer = cfg.n_layer;
  cal->n_head = cfg.n_head;
  cal->n_calibration_tokens = n;
  cal->n_answer_steps = static_cast<int>(steps.size());
  cal->head_scores.assign(static_cast<size_t>(cfg.n_layer) * cfg.n_head, 0.0f);
  for (int l = 0; l < cfg.n_layer; ++l)
    for (int h = 0; h < cfg.n_head; ++h) {
      double s = 0.0;
      for (int p : steps) {
        const auto row = cap.attention_row(l, h, p);
        for (int j = text.needle_begin; j < text.needle_end && j <= p; ++j)
          s += row[static_cast<size_t>(j)];
      }
      cal->head_scores[static_cast<size_t>(l) * cfg.n_head + h] =
          static_cast<float>(s / static_cast<double>(steps.size()));
    }

  // Layer error: SnapKV (uniform budget) on the prompt, then the answer-step queries attend the
  // selected prompt positions plus every later position; error of the W_O-projected output
  // against full attention, Frobenius over steps.
  const int P = text.prompt_len;
  if (P < budget) return cal;  // nothing would be evicted: uniform budgets
  PartConfig snap;
  snap.name = "snapkv";
  snap.params = {{"budget", std::to_string(budget)},
                 {"window", std::to_string(window)},
                 {"kernel", std::to_string(kernel)},
                 {"pool", max_pool ? "max" : "avg"}};
  auto policy = kvp::make_snapkv_policy(kvp::Params(snap));
  const int H = cfg.n_head, Hkv = cfg.n_head_kv, d = cfg.head_dim, g = H / Hkv, D = cfg.n_embd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  std::vector<double> err(static_cast<size_t>(cfg.n_layer), 0.0);
  double total = 0.0;
  for (int l = 0; l < cfg.n_layer; ++l) {
    LayerContext ctx;
    ctx.config = &cfg;
    ctx.layer = l;
    ctx.shape = {P, 0, H, Hkv, d};
    ctx.q = cap.q(l).data();
    ctx.k = cap.k(l).data();
    ctx.v = cap.v(l).data();
    policy->after_prefill(ctx);
    const KvDecision& dec = policy->decision(l);
    const auto& wo = model.layers[static_cast<size_t>(l)].wo;  // [D, H*d]
    double num = 0.0, den = 0.0;
    std::vector<float> row(static_cast<size_t>(n));
    std::vector<float> o_full(static_cast<size_t>(H) * d), o_sel(static_cast<size_t>(H) * d);
    for (int p : steps) {
      const int nk = p + 1;
      for (int h = 0; h < H; ++h) {
        const int kv = h / g;
        std::vector<uint8_t> keep(static_cast<size_t>(nk), 1);
        const auto& r = dec.reasons[static_cast<size_t>(kv)];
        for (int j = 0; j < nk && j < P; ++j)
          keep[static_cast<size_t>(j)] = r[static_cast<size_t>(j)] != KeepReason::Evicted;
        for (int pass = 0; pass < 2; ++pass) {
          kvp::dot_block(ctx.q + (static_cast<size_t>(p) * H + h) * d, H * d, 1,
                         ctx.k + static_cast<size_t>(kv) * d, Hkv * d, nk, d, scale, row.data());
          kvp::masked_softmax(row.data(), nk, nk, pass == 0 ? nullptr : keep.data());
          float* o = (pass == 0 ? o_full : o_sel).data() + static_cast<size_t>(h) * d;
          std::fill(o, o + d, 0.0f);
          for (int j = 0; j < nk; ++j) {
            if (row[static_cast<size_t>(j)] == 0.0f) continue;
            const float* vj = ctx.v + (static_cast<size_t>(j) * Hkv + kv) * d;
            for (int c = 0; c < d; ++c) o[c] += row[static_cast<size_t>(j)] * vj[c];
          }
        }
      }
      for (int i = 0; i < D; ++i) {
        double yf = 0.0, ys = 0.0;
        const float* w = wo.data() + static_cast<size_t>(i) * H * d;
        for (int c = 0; c < H * d; ++c) {
          yf += static_cast<double>(w[c]) * o_full[static_cast<size_t>(c)];
          ys += static_cast<double>(w[c]) * o_sel[static_cast<size_t>(c)];
        }
        num += (ys - yf) * (ys - yf);
        den += yf * yf;
      }
    }
    err[static_cast<size_t>(l)] = den > 0 ? std::sqrt(num / den) : 0.0;
    total += err[static_cast<size_t>(l)];
  }
  if (total > 0) {
    cal->layer_error.resize(static_cast<size_t>(cfg.n_layer));
    for (int l = 0; l < cfg.n_layer; ++l)
      cal->layer_error[static_cast<size_t>(l)] =
          static_cast<float>(err[static_cast<size_t>(l)] / total);
  }
  return cal;
}

}  // namespace

std::shared_ptr<const CompressKvCalibration> compresskv_calibrate(const Model& model, int n_tokens,
                                                                  int seed, int budget, int window,
                                                                  int kernel, bool max_pool) {
  // The path and size guard against a new model reusing a freed model's address.
  using Key = std::tuple<const Model*, std::string, uint64_t, int, int, int, int, int, bool>;
  static std::mutex mutex;
  static std::map<Key, std::shared_ptr<const CompressKvCalibration>> cache;
  const Key key{&model,
                model.source.path.string(),
                model.source.file_size,
                n_tokens,
                seed,
                budget,
                window,
                kernel,
                max_pool};
  {
    std::lock_guard<std::mutex> lock(mutex);
    const auto it = cache.find(key);
    if (it != cache.end()) return it->second;
  }
  auto cal = calibrate(model, n_tokens, seed, budget, window, kernel, max_pool);
  std::lock_guard<std::mutex> lock(mutex);
  cache[key] = cal;
  return cal;
}

}  // namespace attnscope
