// A small fixed pool of worker threads with a blocking parallel_for over an index range; the
// calling thread takes part, so a pool of N threads uses N-1 workers.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace attnscope {

class ThreadPool {
 public:
  // n_threads <= 0 uses std::thread::hardware_concurrency().
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return m_n_threads; }

  // Splits [begin, end) into chunks of at most `grain` indices and calls fn(lo, hi) for each,
  // on the pool's threads and the caller; returns when all chunks are done. The first
  // exception thrown by fn is rethrown here. Not reentrant: fn must not call parallel_for.
  void parallel_for(int begin, int end, int grain, const std::function<void(int, int)>& fn);

 private:
  void worker_loop();
  void run_chunks();

  int m_n_threads = 1;
  std::vector<std::thread> m_workers;
  std::mutex m_mutex;
  std::condition_variable m_wake;
  std::condition_variable m_done;
  std::mutex m_call_mutex;  // serialises parallel_for calls from different threads
  // State of the current job, guarded by m_mutex.
  const std::function<void(int, int)>* m_fn = nullptr;
  int m_next = 0, m_end = 0, m_grain = 1;
  int m_active = 0;  // workers inside run_chunks
  unsigned m_generation = 0;
  bool m_stop = false;
  std::exception_ptr m_error;
};

}  // namespace attnscope
