// Byte-level BPE model: vocabulary lookup and ranked merges applied lowest rank first
// (leftmost on ties) with a priority queue, as HF `tokenizers` does; per-word result cache.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace attnscope::detail {

struct BpeMerge {
  int32_t left = 0;    // token id of the left part
  int32_t right = 0;   // token id of the right part
  int32_t result = 0;  // token id of left+right
};

class BpeModel {
 public:
  // vocab: byte-level token text -> id. merges: in rank order (index = rank); a later
  // duplicate of a pair overrides the earlier one, as in HF. unk_id < 0: characters missing
  // from the vocabulary are dropped (HF with no unk_token); otherwise they become unk_id.
  BpeModel(std::unordered_map<std::string, int32_t> vocab, const std::vector<BpeMerge>& merges,
           bool ignore_merges, int32_t unk_id);
  BpeModel(BpeModel&& other) noexcept;

  // Appends the ids of one pre-tokenized word already spelled in the byte-level alphabet.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  // Id of a byte-level token text, or -1.
  int32_t find(std::string_view token) const;

 private:
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;

  struct RankedMerge {
    int32_t rank;
    int32_t result;
  };
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }

  std::unordered_map<std::string, int32_t> m_vocab;
  std::unordered_map<uint64_t, RankedMerge> m_merges;
  bool m_ignore_merges = false;
  int32_t m_unk_id = -1;

  // Words repeat a lot in real text; caching their ids makes encoding near-linear.
  mutable std::mutex m_cache_mutex;
  mutable std::unordered_map<std::string, std::vector<int32_t>> m_cache;
};

}  // namespace attnscope::detail
