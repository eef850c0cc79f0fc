// Field-by-field comparison of needle results, throughput sweeps and whole sessions for
// round-trip tests (doubles and seeds exactly, texts byte for byte).
#include "session_compare.h"

#include <gtest/gtest.h>

#include "trace_compare.h"

namespace attnscope::test {

void expect_same(const std::vector<NeedleResult>& a, const std::vector<NeedleResult>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].variant, b[i].variant);
    ASSERT_EQ(a[i].cells.size(), b[i].cells.size());
    for (size_t c = 0; c < a[i].cells.size(); ++c) {
      const NeedleCell &x = a[i].cells[c], &y = b[i].cells[c];
      EXPECT_TRUE(x.length == y.length && x.depth == y.depth && x.trials == y.trials &&
                  x.successes == y.successes)
          << "result " << i << " cell " << c;
    }
    ASSERT_EQ(a[i].trials.size(), b[i].trials.size());
    for (size_t t = 0; t < a[i].trials.size(); ++t) {
      const NeedleTrial &x = a[i].trials[t], &y = b[i].trials[t];
      SCOPED_TRACE("result " + std::to_string(i) + " trial " + std::to_string(t));
      EXPECT_EQ(x.length, y.length);
      EXPECT_EQ(x.depth, y.depth);
      EXPECT_EQ(x.trial, y.trial);
      EXPECT_EQ(x.seed, y.seed);
      EXPECT_EQ(x.passkey, y.passkey);
      EXPECT_EQ(x.needle_token, y.needle_token);
      EXPECT_EQ(x.actual_depth, y.actual_depth);
      EXPECT_EQ(x.generated_tokens, y.generated_tokens);
      EXPECT_EQ(x.generated, y.generated);
      EXPECT_EQ(x.success, y.success);
      EXPECT_EQ(x.seconds, y.seconds);
    }
  }
}

void expect_same(const ThroughputResult& a, const ThroughputResult& b) {
  EXPECT_EQ(a.device, b.device);
  EXPECT_EQ(a.backend, b.backend);
  EXPECT_EQ(a.model_name, b.model_name);
  EXPECT_EQ(a.model_sha256, b.model_sha256);
  EXPECT_EQ(a.created_at, b.created_at);
  EXPECT_EQ(a.attnscope_version, b.attnscope_version);
  EXPECT_EQ(a.repeat, b.repeat);
  EXPECT_EQ(a.lengths, b.lengths);
  ASSERT_EQ(a.points.size(), b.points.size());
  for (size_t i = 0; i < a.points.size(); ++i) {
    const ThroughputPoint &x = a.points[i], &y = b.points[i];
    SCOPED_TRACE("point " + std::to_string(i));
    EXPECT_EQ(x.spec, y.spec);
    EXPECT_EQ(x.display_name, y.display_name);
    EXPECT_EQ(x.baseline, y.baseline);
    EXPECT_EQ(x.length, y.length);
    EXPECT_EQ(x.decode_steps, y.decode_steps);
    EXPECT_EQ(x.prefill_seconds, y.prefill_seconds);
    EXPECT_EQ(x.decode_seconds, y.decode_seconds);
    EXPECT_EQ(x.prefill_tokens_per_second, y.prefill_tokens_per_second);
    EXPECT_EQ(x.decode_tokens_per_second, y.decode_tokens_per_second);
    EXPECT_EQ(x.attention_seconds, y.attention_seconds);
    EXPECT_EQ(x.kv_cache_bytes, y.kv_cache_bytes);
  }
}

void expect_same(const Session& a, const Session& b) {
  EXPECT_EQ(a.prompt, b.prompt);
  EXPECT_EQ(a.decode_steps, b.decode_steps);
  EXPECT_EQ(a.run_seconds, b.run_seconds);
  ASSERT_EQ(a.traces.size(), b.traces.size());
  for (size_t i = 0; i < a.traces.size(); ++i) {
    SCOPED_TRACE("trace " + std::to_string(i));
    expect_same(*a.traces[i], *b.traces[i]);
  }
  expect_same(a.needle, b.needle);
  ASSERT_EQ(a.throughput.size(), b.throughput.size());
  for (size_t i = 0; i < a.throughput.size(); ++i) expect_same(a.throughput[i], b.throughput[i]);
}

}  // namespace attnscope::test
