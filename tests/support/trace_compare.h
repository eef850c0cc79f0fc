// Field-by-field comparison of two traces for round-trip tests (save/load, sessions): every
// field, floats bit for bit, NaN metrics equal to NaN; failures name the field.
#pragma once

#include "attnscope/trace.h"

namespace attnscope::test {

// Records a gtest failure for every field where `a` and `b` differ.
void expect_same(const Trace& a, const Trace& b);

}  // namespace attnscope::test
