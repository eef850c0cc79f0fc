// Device copies of model weights, keyed by host pointer + element count and uploaded once:
// Backend::linear receives host weights whose addresses are stable for the model's lifetime,
// so re-sending them every call would dominate decode time. Private to gpu/src.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <utility>

#include "device_buffer.h"

namespace attnscope::gpu {

class WeightCache {
 public:
  // Marks the start of one backend op. Entries used since the last begin_op() are never
  // evicted, so device pointers returned during one op stay valid until the op ends.
  void begin_op() { ++m_generation; }

  // Device copy of host[0 .. count), uploaded on `stream` the first time this (pointer, count)
  // is seen. A cheap fingerprint of sampled elements is re-checked on every call so that a
  // host address reused for different data (model unloaded, another loaded) is re-uploaded
  // rather than silently served stale. count must be > 0 and host non-null.
  // On device out-of-memory it evicts entries unused by the current op and retries once, then
  // throws Error(Runtime) "GPU out of memory: needed N bytes on <device> ...".
  const float* get(const float* host, std::size_t count, cudaStream_t stream);

  // Frees the copies not used by the current op, to make room for something else.
  void evict_unused();

  // Frees every cached copy (e.g. when the caller knows a model was unloaded).
  void clear() { m_entries.clear(); }

  std::size_t bytes() const;
  std::size_t size() const { return m_entries.size(); }

 private:
  struct Entry {
    DeviceBuffer<float> buffer;
    std::uint64_t fingerprint = 0;
    std::uint64_t last_used = 0;  // generation of the last op that used it
  };
  using Key = std::pair<const float*, std::size_t>;

  static std::uint64_t fingerprint(const float* host, std::size_t count);

  std::map<Key, Entry> m_entries;
  std::uint64_t m_generation = 1;
};

}  // namespace attnscope::gpu
