// Process memory readings for status displays and benchmarks (Linux /proc and getrusage;
// 0 where unavailable). Readings, never limits: nothing in core decides on them.
#pragma once

#include <cstdint>

namespace attnscope {

// Resident set size of this process now, in bytes (/proc/self/statm).
uint64_t current_rss_bytes();
// Largest resident set size this process has had, in bytes (getrusage ru_maxrss).
uint64_t peak_rss_bytes();

}  // namespace attnscope
