// BPE merge loop: symbols in a doubly linked list, candidate merges in a min-heap keyed by
// (rank, position); stale candidates are skipped when popped. O(n log n) per word.
#include "bpe_merges.h"

#include <queue>

#include "byte_level.h"

namespace attnscope::detail {

namespace {

// Cache bound: enough for the distinct words of a long document, small enough to not matter.
constexpr size_t kMaxCacheEntries = 100000;
// Longer words are rare and would bloat the cache; they are merged every time.
constexpr size_t kMaxCachedWordBytes = 256;

struct Symbol {
  int32_t id;
  int32_t prev;  // index of the previous live symbol, -1 at the start
  int32_t next;  // index of the next live symbol, -1 at the end
  bool live;
};

struct Candidate {
  int32_t rank;
  int32_t pos;  // index of the left symbol
  int32_t result;
  // std::priority_queue is a max-heap: "less" means lower priority = higher rank, then
  // further right.
  bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

}  // namespace

BpeModel::BpeModel(std::unordered_map<std::string, int32_t> vocab,
                   const std::vector<BpeMerge>& merges, bool ignore_merges, int32_t unk_id)
    : m_vocab(std::move(vocab)), m_ignore_merges(ignore_merges), m_unk_id(unk_id) {
  m_merges.reserve(merges.size() * 2);
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& m = merges[rank];
    m_merges.insert_or_assign(pair_key(m.left, m.right),
                              RankedMerge{static_cast<int32_t>(rank), m.result});
  }
}

BpeModel::BpeModel(BpeModel&& other) noexcept
    : m_vocab(std::move(other.m_vocab)),
      m_merges(std::move(other.m_merges)),
      m_ignore_merges(other.m_ignore_merges),
      m_unk_id(other.m_unk_id) {}

int32_t BpeModel::find(std::string_view token) const {
  const auto it = m_vocab.find(std::string(token));
  return it == m_vocab.end() ? -1 : it->second;
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (m_ignore_merges) {
    const int32_t id = find(word);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(m_cache_mutex);
    const auto it = m_cache.find(std::string(word));
    if (it != m_cache.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  merge_word(word, ids);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(m_cache_mutex);
    if (m_cache.size() >= kMaxCacheEntries) m_cache.clear();
    m_cache.emplace(std::string(word), std::move(ids));
  }
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  // One symbol per character; a character missing from the vocabulary becomes unk, or is
  // dropped when there is no unk (HF BPE without unk_token does the same).
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  std::string ch;
  size_t i = 0;
  while (i < word.size()) {
    char32_t c = 0;
    const size_t len = next_utf8(word, i, &c);
    ch.assign(word.substr(i, len));
    i += len;
    const auto it = m_vocab.find(ch);
    int32_t id = -1;
    if (it != m_vocab.end()) {
      id = it->second;
    } else if (m_unk_id >= 0) {
      id = m_unk_id;
    } else {
      continue;
    }
    const auto n = static_cast<int32_t>(symbols.size());
    symbols.push_back(Symbol{id, n - 1, -1, true});
    if (n > 0) symbols[static_cast<size_t>(n - 1)].next = n;
  }

  std::priority_queue<Candidate> queue;
  auto push_pair = [&](int32_t left) {
    const Symbol& a = symbols[static_cast<size_t>(left)];
    if (a.next < 0) return;
    const Symbol& b = symbols[static_cast<size_t>(a.next)];
    const auto it = m_merges.find(pair_key(a.id, b.id));
    if (it != m_merges.end()) queue.push(Candidate{it->second.rank, left, it->second.result});
  };
  for (int32_t k = 0; k + 1 < static_cast<int32_t>(symbols.size()); ++k) push_pair(k);

  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[static_cast<size_t>(top.pos)];
    if (!left.live || left.next < 0) continue;
    Symbol& right = symbols[static_cast<size_t>(left.next)];
    // Stale if either side changed since the candidate was pushed.
    const auto it = m_merges.find(pair_key(left.id, right.id));
    if (it == m_merges.end() || it->second.result != top.result) continue;
    left.id = top.result;
    right.live = false;
    left.next = right.next;
    if (right.next >= 0) symbols[static_cast<size_t>(right.next)].prev = top.pos;
    if (left.prev >= 0) push_pair(left.prev);
    push_pair(top.pos);
  }
  for (const auto& s : symbols) {
    if (s.live) out.push_back(s.id);
  }
}

}  // namespace attnscope::detail
