// The worker pool behind the CPU attention, maps and metrics: every index runs exactly once,
// the first exception reaches the caller, and a job that threw leaves the pool usable -- no
// worker waking late for it may run a leftover chunk (a cancelled map or metrics job throws
// from inside parallel_for, and the next job starts at once).
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

#include "../../core/src/thread_pool.h"

namespace attnscope {
namespace {

TEST(ThreadPool, RunsEveryIndexOnce) {
  ThreadPool pool(4);
  std::vector<std::atomic<int>> hits(1000);
  pool.parallel_for(0, 1000, 7, [&](int lo, int hi) {
    for (int i = lo; i < hi; ++i) ++hits[static_cast<size_t>(i)];
  });
  for (const auto& h : hits) ASSERT_EQ(h.load(), 1);
}

TEST(ThreadPool, ThrowingJobsRethrowAndLeaveThePoolUsable) {
  ThreadPool pool(4);
  // Many short jobs that throw early, each followed by a normal one: the race a late worker
  // could lose shows up within a few hundred rounds when it exists.
  for (int round = 0; round < 3000; ++round) {
    bool thrown = false;
    try {
      pool.parallel_for(0, 64, 1, [&](int lo, int) {
        if (lo == 0) throw std::runtime_error("cancelled");
      });
    } catch (const std::runtime_error& e) {
      thrown = std::string(e.what()) == "cancelled";
    }
    ASSERT_TRUE(thrown) << "round " << round;
    std::atomic<int> sum{0};
    pool.parallel_for(0, 32, 1, [&](int lo, int hi) {
      for (int i = lo; i < hi; ++i) sum += i;
    });
    ASSERT_EQ(sum.load(), 31 * 32 / 2) << "round " << round;
  }
}

}  // namespace
}  // namespace attnscope
