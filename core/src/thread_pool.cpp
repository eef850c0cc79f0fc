// Fixed worker pool used by the CPU backend for attention across heads and rows.
#include "thread_pool.h"

#include <algorithm>
#include <exception>

namespace attnscope {

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = static_cast<int>(std::thread::hardware_concurrency());
  m_n_threads = std::max(1, n_threads);
  for (int i = 1; i < m_n_threads; ++i) m_workers.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_stop = true;
  }
  m_wake.notify_all();
  for (auto& t : m_workers) t.join();
}

void ThreadPool::run_chunks() {
  // Called with m_mutex NOT held; grabs chunks until the range is exhausted.
  for (;;) {
    int lo = 0, hi = 0;
    const std::function<void(int, int)>* fn = nullptr;
    {
      std::lock_guard<std::mutex> lock(m_mutex);
      if (m_next >= m_end || m_error || m_fn == nullptr) return;
      lo = m_next;
      hi = std::min(m_end, lo + m_grain);
      m_next = hi;
      fn = m_fn;
    }
    try {
      (*fn)(lo, hi);
    } catch (...) {
      std::lock_guard<std::mutex> lock(m_mutex);
      if (!m_error) m_error = std::current_exception();
    }
  }
}

void ThreadPool::worker_loop() {
  unsigned seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(m_mutex);
      m_wake.wait(lock, [&] { return m_stop || m_generation != seen; });
      if (m_stop) return;
      seen = m_generation;
      ++m_active;
    }
    run_chunks();
    {
      std::lock_guard<std::mutex> lock(m_mutex);
      --m_active;
    }
    m_done.notify_all();
  }
}

void ThreadPool::parallel_for(int begin, int end, int grain,
                              const std::function<void(int, int)>& fn) {
  if (end <= begin) return;
  grain = std::max(1, grain);
  if (m_workers.empty() || end - begin <= grain) {
    fn(begin, end);
    return;
  }
  std::lock_guard<std::mutex> call_lock(m_call_mutex);
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_fn = &fn;
    m_next = begin;
    m_end = end;
    m_grain = grain;
    m_error = nullptr;
    ++m_generation;
  }
  m_wake.notify_all();
  run_chunks();
  std::exception_ptr error;
  {
    std::unique_lock<std::mutex> lock(m_mutex);
    // Workers that woke for this generation finish their chunk before we return; a worker
    // that has not woken yet will find the range exhausted and do nothing.
    m_done.wait(lock, [&] { return m_active == 0 && (m_next >= m_end || m_error); });
    // After an exception chunks may be left: mark the range exhausted before clearing the job,
    // or a worker that wakes late for this generation would run a chunk with no function.
    m_next = m_end;
    m_fn = nullptr;
    error = m_error;
    m_error = nullptr;
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace attnscope
