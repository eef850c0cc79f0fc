// Field-by-field comparison of needle results, throughput sweeps and whole sessions (traces
// through trace_compare.h) for round-trip tests; failures name the result, point or trial.
#pragma once

#include <vector>

#include "attnscope/needle.h"
#include "attnscope/session_io.h"
#include "attnscope/throughput.h"

namespace attnscope::test {

// Each records a gtest failure for every field where `a` and `b` differ; doubles, seeds and
// texts must be identical, not merely close.
void expect_same(const std::vector<NeedleResult>& a, const std::vector<NeedleResult>& b);
void expect_same(const ThroughputResult& a, const ThroughputResult& b);
void expect_same(const Session& a, const Session& b);

}  // namespace attnscope::test
