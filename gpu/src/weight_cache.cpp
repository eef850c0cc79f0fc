// Weight cache implementation: fingerprinting, upload-once and eviction on out-of-memory.
#include "weight_cache.h"

#include <cstring>

#include "cuda_check.h"

namespace attnscope::gpu {

namespace {

// Sampled elements per fingerprint: enough to notice a different tensor at a reused address,
// few enough (a few hundred bytes read) to be free next to a GEMM.
constexpr std::size_t kFingerprintSamples = 64;

}  // namespace

std::uint64_t WeightCache::fingerprint(const float* host, std::size_t count) {
  // FNV-1a over the bit patterns of evenly spread elements, always including first and last.
  std::uint64_t hash = 1469598103934665603ull;
  const auto mix = [&hash](const float value) {
    std::uint32_t bits = 0;
    std::memcpy(&bits, &value, sizeof(bits));
    for (int i = 0; i < 4; ++i) {
      hash ^= (bits >> (8 * i)) & 0xffu;
      hash *= 1099511628211ull;
    }
  };
  const std::size_t samples = count < kFingerprintSamples ? count : kFingerprintSamples;
  for (std::size_t s = 0; s < samples; ++s) {
    const std::size_t index = samples == 1 ? 0 : s * (count - 1) / (samples - 1);
    mix(host[index]);
  }
  return hash;
}

std::size_t WeightCache::bytes() const {
  std::size_t total = 0;
  for (const auto& [key, entry] : m_entries) total += entry.buffer.bytes();
  return total;
}

void WeightCache::evict_unused() {
  for (auto it = m_entries.begin(); it != m_entries.end();) {
    if (it->second.last_used != m_generation) {
      it = m_entries.erase(it);
    } else {
      ++it;
    }
  }
}

const float* WeightCache::get(const float* host, std::size_t count, cudaStream_t stream) {
  const Key key{host, count};
  const std::uint64_t print = fingerprint(host, count);
  auto it = m_entries.find(key);
  if (it != m_entries.end() && it->second.fingerprint == print) {
    it->second.last_used = m_generation;
    return it->second.buffer.data();
  }
  if (it == m_entries.end()) it = m_entries.emplace(key, Entry{}).first;
  Entry& entry = it->second;
  entry.last_used = m_generation;
  if (!entry.buffer.try_reserve(count)) {
    evict_unused();  // `entry` is used by this op, so it survives
    entry.buffer.reserve(count, "a model weight");
  }
  ATTNSCOPE_CUDA_CHECK(cudaMemcpyAsync(entry.buffer.data(), host, count * sizeof(float),
                                       cudaMemcpyHostToDevice, stream));
  // Only record the fingerprint once the copy was issued, so a failed upload is retried.
  entry.fingerprint = print;
  return entry.buffer.data();
}

}  // namespace attnscope::gpu
