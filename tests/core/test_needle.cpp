// Passkey task without the real model: filler determinism, pass keys, exact prompt lengths,
// needle placement at the requested depth (within one sentence), with a byte-level tokenizer
// (one token per byte, so positions can be checked by hand) and the committed SmolLM2
// tokenizer.json; run_needle mechanics (records, cells, progress, cancel, errors) on a tiny
// random model.
#include <gtest/gtest.h>

#include <atomic>
#include <cctype>
#include <cmath>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "attnscope/error.h"
#include "attnscope/needle.h"
#include "attnscope/session.h"
#include "test_support.h"
#include "tiny_models.h"

namespace attnscope {
namespace {

using test::byte_tokenizer;
using test::tiny_byte_model;

std::shared_ptr<const Tokenizer> smollm2_tokenizer() {
  return Tokenizer::from_tokenizer_json(test::data_dir() / "smollm2_tokenizer.json");
}

template <typename F>
void expect_error(ErrorKind kind, F&& f, const std::string& needle = "") {
  try {
    f();
    ADD_FAILURE() << "expected an attnscope::Error";
  } catch (const Error& e) {
    EXPECT_EQ(static_cast<int>(e.kind()), static_cast<int>(kind)) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Needle, FillerIsDeterministicClassicAndDigitFree) {
  const auto a = needle_filler_sentences(3, 200);
  EXPECT_EQ(a, needle_filler_sentences(3, 200));
  const std::vector<std::string> classic = {"The grass is green.", "The sky is blue.",
                                            "The sun is yellow.", "Here we go.",
                                            "There and back again."};
  EXPECT_EQ(std::vector<std::string>(a.begin(), a.begin() + 5), classic);
  EXPECT_NE(a, needle_filler_sentences(4, 200)) << "seeds 3 and 4 gave the same filler";
  std::set<std::string> distinct(a.begin(), a.end());
  EXPECT_GT(distinct.size(), 10u) << "seed 3: the filler barely varies";
  for (const auto& s : a) {
    for (char c : s) ASSERT_FALSE(std::isdigit(static_cast<unsigned char>(c))) << s;
  }
}

TEST(Needle, PasskeyFiveDigitsDeterministic) {
  std::set<std::string> keys;
  for (uint64_t seed = 0; seed < 50; ++seed) {
    const std::string k = needle_passkey(seed);
    ASSERT_EQ(k.size(), 5u) << "seed " << seed;
    EXPECT_GE(std::stoi(k), 10000);
    EXPECT_EQ(k, needle_passkey(seed));
    keys.insert(k);
  }
  EXPECT_GT(keys.size(), 45u);  // 50 draws from 90000 values: collisions are rare
  std::set<uint64_t> seeds;
  for (int l = 0; l < 3; ++l) {
    for (int d = 0; d < 3; ++d) {
      for (int t = 0; t < 3; ++t) seeds.insert(needle_trial_seed(9, l, d, t));
    }
  }
  EXPECT_EQ(seeds.size(), 27u);
}

// With one token per byte the prompt text is the token sequence, so placement is exact.
TEST(Needle, ByteTokenizerExactLengthAndDepth) {
  const auto tok = byte_tokenizer();
  for (int length : {400, 1000, 2500}) {
    for (double depth : {0.0, 0.1, 0.25, 0.5, 0.9, 1.0}) {
      const uint64_t seed = 17 + length;
      const NeedlePrompt p = build_needle_prompt(*tok, length, depth, seed);
      const std::string what = "length " + std::to_string(length) + " depth " +
                               std::to_string(depth) + " seed " + std::to_string(seed);
      ASSERT_EQ(static_cast<int>(p.tokens.size()), length) << what;
      const std::string text = tok->decode(p.tokens);
      const std::string needle =
          " The pass key is " + p.passkey + ". Remember it. " + p.passkey + " is the pass key.";
      EXPECT_EQ(text.substr(p.needle_begin, p.needle_end - p.needle_begin), needle) << what;
      EXPECT_EQ(text.rfind(" What is the pass key? The pass key is"),
                text.size() - std::string(" What is the pass key? The pass key is").size())
          << what;
      EXPECT_EQ(text.find("There is an important info hidden"), 0u) << what;
      // The pass key appears only in the needle (twice).
      EXPECT_EQ(text.find(p.passkey), static_cast<size_t>(p.needle_begin) + 17) << what;
      EXPECT_EQ(text.find(p.passkey, p.needle_end), std::string::npos) << what;
      // Placement: at a sentence start (a filler sentence begins with " The"/" Here"/..., i.e.
      // the byte before the needle is '.' or the instruction's end), at or before the target,
      // by less than the longest filler sentence (" There and back again." = 22 bytes).
      const int before = p.needle_begin - p.haystack_begin;
      const int target = static_cast<int>(std::llround(depth * p.haystack_tokens));
      EXPECT_LE(before, target) << what;
      EXPECT_LT(target - before, 23) << what;
      EXPECT_EQ(text[p.needle_begin - 1], '.') << what;
      EXPECT_NEAR(p.actual_depth, depth, 23.0 / p.haystack_tokens) << what;
      if (depth == 0.0) {
        EXPECT_EQ(p.needle_begin, p.haystack_begin) << what;
      }
      if (depth == 1.0) {
        // Right before the question, or before the last (cut) filler sentence.
        EXPECT_LT(length - 38 - p.needle_end, 23) << what;
      }
      // Filler accounting: everything between instruction and question except the needle.
      EXPECT_EQ(p.haystack_begin + p.haystack_tokens + (p.needle_end - p.needle_begin) + 38, length)
          << what;
    }
  }
}

TEST(Needle, PromptDeterministicPerSeed) {
  const auto tok = byte_tokenizer();
  const NeedlePrompt a = build_needle_prompt(*tok, 600, 0.5, 5);
  const NeedlePrompt b = build_needle_prompt(*tok, 600, 0.5, 5);
  const NeedlePrompt c = build_needle_prompt(*tok, 600, 0.5, 6);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.passkey, b.passkey);
  EXPECT_NE(a.tokens, c.tokens);
}

TEST(Needle, SmolLm2TokenizerLengthsAndDepths) {
  const auto tok = smollm2_tokenizer();
  const std::vector<int32_t> question =
      tok->encode(" What is the pass key? The pass key is", false);
  for (int length : {128, 256, 1000, 4096}) {
    for (double depth : {0.0, 0.1, 0.5, 0.9, 1.0}) {
      const uint64_t seed = 99 + length;
      const NeedlePrompt p = build_needle_prompt(*tok, length, depth, seed);
      const std::string what = "smollm2 length " + std::to_string(length) + " depth " +
                               std::to_string(depth) + " seed " + std::to_string(seed);
      ASSERT_EQ(static_cast<int>(p.tokens.size()), length) << what;
      const std::vector<int32_t> nt(p.tokens.begin() + p.needle_begin,
                                    p.tokens.begin() + p.needle_end);
      EXPECT_EQ(tok->decode(nt), " The pass key is " + p.passkey + ". Remember it. " + p.passkey +
                                     " is the pass key.")
          << what;
      EXPECT_TRUE(std::equal(question.begin(), question.end(), p.tokens.end() - question.size()))
          << what;
      // At or before the target, within one filler sentence (at most 8 SmolLM2 tokens).
      const int before = p.needle_begin - p.haystack_begin;
      const int target = static_cast<int>(std::llround(depth * p.haystack_tokens));
      EXPECT_LE(before, target) << what;
      EXPECT_LT(target - before, 8) << what;
      // The decoded prompt holds the key exactly twice (both in the needle).
      const std::string text = tok->decode(p.tokens);
      const size_t first = text.find(p.passkey);
      ASSERT_NE(first, std::string::npos) << what;
      const size_t second = text.find(p.passkey, first + 1);
      ASSERT_NE(second, std::string::npos) << what;
      EXPECT_EQ(text.find(p.passkey, second + 1), std::string::npos) << what;
    }
  }
}

TEST(Needle, PromptErrors) {
  const auto tok = byte_tokenizer();
  expect_error(
      ErrorKind::Usage, [&] { build_needle_prompt(*tok, 100, 0.5, 1); }, "too short");
  expect_error(
      ErrorKind::Usage, [&] { build_needle_prompt(*tok, 1000, 1.5, 1); }, "depth");
  expect_error(
      ErrorKind::Usage, [&] { build_needle_prompt(*tok, 1000, -0.1, 1); }, "depth");
}

TEST(Needle, RunMechanicsOnTinyModel) {
  const auto model = tiny_byte_model(1024);
  NeedleOptions o;
  o.lengths = {300, 500};
  o.depths = {0.2, 0.8};
  o.trials = 2;
  o.seed = 7;
  o.decode_budget = 4;
  std::vector<double> fractions;
  o.progress = [&](double f, const std::string&) { fractions.push_back(f); };
  const NeedleResult r = run_needle(model, VariantSpec::baseline(), o);
  ASSERT_EQ(r.cells.size(), 4u);
  ASSERT_EQ(r.trials.size(), 8u);
  EXPECT_EQ(r.variant, VariantSpec::baseline().to_string());
  int successes = 0;
  for (size_t i = 0; i < r.trials.size(); ++i) {
    const NeedleTrial& t = r.trials[i];
    EXPECT_EQ(t.length, o.lengths[i / 4]);
    EXPECT_EQ(t.depth, o.depths[(i / 2) % 2]);
    EXPECT_EQ(t.trial, static_cast<int>(i % 2));
    EXPECT_EQ(t.seed, needle_trial_seed(7, static_cast<int>(i / 4), static_cast<int>((i / 2) % 2),
                                        static_cast<int>(i % 2)));
    EXPECT_LE(t.generated_tokens.size(), 4u);
    EXPECT_EQ(t.generated, model->tokenizer->decode(t.generated_tokens));
    EXPECT_EQ(t.success, t.generated.find(t.passkey) != std::string::npos);
    successes += t.success ? 1 : 0;
    // Independent replay: the same prompt through a plain session's greedy generate().
    const NeedlePrompt p = build_needle_prompt(*model->tokenizer, t.length, t.depth, t.seed);
    EXPECT_EQ(t.passkey, p.passkey);
    EXPECT_EQ(t.needle_token, p.needle_begin);
    InferenceSession s(model);
    EXPECT_EQ(generate(s, p.tokens, 4, {}).tokens, t.generated_tokens) << "trial " << i;
  }
  int cell_successes = 0;
  for (const NeedleCell& c : r.cells) {
    EXPECT_EQ(c.trials, 2);
    cell_successes += c.successes;
  }
  EXPECT_EQ(cell_successes, successes);
  EXPECT_NEAR(r.accuracy(), successes / 8.0, 1e-12);
  ASSERT_NE(r.cell(500, 0.8), nullptr);
  EXPECT_EQ(r.cell(500, 0.3), nullptr);
  ASSERT_FALSE(fractions.empty());
  EXPECT_EQ(fractions.back(), 1.0);
  for (size_t i = 1; i < fractions.size(); ++i) EXPECT_GE(fractions[i], fractions[i - 1]);
}

// A variant whose settings are the identity (window >= prompt + generated tokens) must decode
// exactly what the baseline decodes; a restrictive one runs through the hook at prefill and
// every decode step and keeps its records consistent.
TEST(Needle, VariantsGenerateThroughTheHook) {
  const auto model = tiny_byte_model(1024);
  NeedleOptions o;
  o.lengths = {300};
  o.depths = {0.3, 0.7};
  o.trials = 1;
  o.seed = 8;
  o.decode_budget = 6;
  const NeedleResult base = run_needle(model, VariantSpec::baseline(), o);
  const NeedleResult same = run_needle(model, VariantSpec::parse("pattern=window:w=1024"), o);
  ASSERT_EQ(same.trials.size(), base.trials.size());
  for (size_t i = 0; i < base.trials.size(); ++i) {
    EXPECT_EQ(same.trials[i].generated_tokens, base.trials[i].generated_tokens) << "trial " << i;
    EXPECT_EQ(same.trials[i].passkey, base.trials[i].passkey);
  }
  const VariantSpec narrow = VariantSpec::parse("pattern=window:w=8");
  const NeedleResult n = run_needle(model, narrow, o);
  EXPECT_EQ(n.variant, narrow.to_string());
  bool differs = false;
  for (size_t i = 0; i < n.trials.size(); ++i) {
    const NeedleTrial& t = n.trials[i];
    EXPECT_EQ(t.generated, model->tokenizer->decode(t.generated_tokens));
    EXPECT_EQ(t.success, t.generated.find(t.passkey) != std::string::npos);
    differs = differs || t.generated_tokens != base.trials[i].generated_tokens;
  }
  // An 8-token window over a 300-token prompt changes the continuation of a random model.
  EXPECT_TRUE(differs) << "seed 8: window 8 decoded exactly the baseline tokens";
}

TEST(Needle, RunErrorsAndCancel) {
  const auto model = tiny_byte_model(512);
  NeedleOptions o;
  o.lengths = {300};
  o.depths = {0.5};
  o.decode_budget = 8;
  o.lengths = {510};  // 510 + 8 > 512
  expect_error(
      ErrorKind::Usage, [&] { run_needle(model, VariantSpec::baseline(), o); }, "context");
  o.lengths = {300};
  o.depths = {};
  expect_error(
      ErrorKind::Usage, [&] { run_needle(model, VariantSpec::baseline(), o); }, "depths");
  o.depths = {0.5};
  o.trials = 0;
  expect_error(
      ErrorKind::Usage, [&] { run_needle(model, VariantSpec::baseline(), o); }, "trials");
  o.trials = 1;
  std::atomic<bool> cancel{true};
  o.cancel = &cancel;
  expect_error(
      ErrorKind::Runtime, [&] { run_needle(model, VariantSpec::baseline(), o); }, "cancelled");
}

}  // namespace
}  // namespace attnscope
