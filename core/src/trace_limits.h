// Trace structural limits and field-name helpers shared by trace_io.cpp (reading, writing) and
// trace_validate.cpp (consistency checks). Internal to core.
#pragma once

#include <cstdint>
#include <string>

#include "attnscope/variant_parts.h"

namespace attnscope::trace_detail {

// Structural bounds: far above any real model, low enough that sizes computed from a
// hand-edited file cannot overflow or trigger absurd allocations before the npy check.
constexpr int64_t kMaxHeads = 4096;
constexpr int64_t kMaxLayers = 4096;
constexpr int64_t kMaxHeadDim = 65536;
constexpr int64_t kMaxVocab = int64_t{1} << 24;
constexpr int64_t kMaxTokens = int64_t{1} << 24;
constexpr int64_t kMaxBlocks = int64_t{1} << 20;      // per mask side
constexpr int64_t kMaxBlockCells = int64_t{1} << 28;  // per mask
constexpr int kMaxReason = static_cast<int>(KeepReason::Window);

inline std::string idx(const std::string& base, size_t i) {
  return base + "[" + std::to_string(i) + "]";
}

}  // namespace attnscope::trace_detail
