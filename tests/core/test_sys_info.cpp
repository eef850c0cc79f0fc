// Process memory readings: the resident size is positive, grows when pages are touched, and
// the peak includes it.
#include <gtest/gtest.h>

#include <vector>

#include "attnscope/sys_info.h"

namespace {

TEST(SysInfo, ResidentSizeTracksTouchedMemory) {
  const uint64_t before = attnscope::current_rss_bytes();
  ASSERT_GT(before, 0u);
  constexpr size_t kBytes = size_t{64} << 20;
  std::vector<char> block(kBytes, 1);  // every page written
  const uint64_t after = attnscope::current_rss_bytes();
  EXPECT_GE(after, before + kBytes / 2) << "64 MiB touched";
  // The kernel updates the high-water mark lazily (per-thread counters are batched), so the
  // peak may trail the current reading by a few pages; it must still hold the 64 MiB block.
  EXPECT_GE(attnscope::peak_rss_bytes(), before + kBytes / 2);
  EXPECT_EQ(block[kBytes - 1], 1);
}

}  // namespace
