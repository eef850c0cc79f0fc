// mask_density: the exact fraction of causal (query, key) pairs a HeadMask makes visible, by
// merging per query row the intervals of its three rules (sinks, window, block bitmap) instead
// of testing every pair, so a 2048-token prompt costs O(rows x blocks) per head.
#include <algorithm>
#include <utility>
#include <vector>

#include "attnscope/error.h"
#include "attnscope/variant_parts.h"

namespace attnscope {

double mask_density(const HeadMask& mask, int pos0, int n_query) {
  if (pos0 < 0 || n_query < 0) {
    throw_runtime("mask_density: expected pos0 >= 0 and n_query >= 0");
  }
  if (n_query == 0) return 1.0;  // no pairs: nothing is hidden
  if (mask.all_blocks) return 1.0;
  if (mask.block < 1 || mask.n_qblocks < 0 || mask.n_kblocks < 0 ||
      mask.blocks.size() != static_cast<size_t>(mask.n_qblocks) * mask.n_kblocks) {
    throw_runtime("mask_density: block mask expected block >= 1 and " +
                  std::to_string(mask.n_qblocks) + " x " + std::to_string(mask.n_kblocks) +
                  " entries, got " + std::to_string(mask.blocks.size()));
  }
  long long visible = 0, total = 0;
  std::vector<std::pair<long long, long long>> iv;  // half-open [a, b) key intervals
  for (int r = 0; r < n_query; ++r) {
    const long long i = static_cast<long long>(pos0) + r;
    total += i + 1;
    iv.clear();
    if (mask.sink_tokens > 0) iv.emplace_back(0, std::min<long long>(mask.sink_tokens, i + 1));
    if (mask.window > 0) iv.emplace_back(std::max<long long>(0, i - mask.window + 1), i + 1);
    const long long qb = i / mask.block;
    if (qb < mask.n_qblocks) {
      const uint8_t* row = &mask.blocks[static_cast<size_t>(qb) * mask.n_kblocks];
      for (int kb = 0; kb < mask.n_kblocks; ++kb) {
        const long long a = static_cast<long long>(kb) * mask.block;
        if (a > i) break;
        if (row[kb]) iv.emplace_back(a, std::min<long long>(a + mask.block, i + 1));
      }
    }
    std::sort(iv.begin(), iv.end());
    long long end = 0;
    for (const auto& [a, b] : iv) {
      const long long lo = std::max(a, end);
      if (b > lo) {
        visible += b - lo;
        end = b;
      }
    }
  }
  return static_cast<double>(visible) / static_cast<double>(total);
}

}  // namespace attnscope
