// Byte-level BPE tokenizer: builds from a TokenizerSpec (GGUF metadata) or an HF
// tokenizer.json, matches added/special tokens first, pre-tokenizes with PCRE2 regexes,
// spells pieces in the GPT-2 byte alphabet and applies ranked BPE merges. Mirrors HF
// `tokenizers` as transformers builds it from GGUF metadata, except that the pre-tokenizer is
// the model's own (e.g. SmolLM2's Digits step; see scripts/golden/make_tokenizer_golden.py).
#include "attnscope/tokenizer.h"

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "attnscope/error.h"
#include "attnscope/file_util.h"
#include "bpe_merges.h"
#include "byte_level.h"
#include "pretokenizer.h"

namespace attnscope {

namespace {

using detail::BpeMerge;
using detail::BpeModel;
using detail::ByteLevelAlphabet;
using detail::PreTokenizer;
using detail::PreTokenizerStep;

// A token matched whole in the text before pre-tokenization (HF AddedToken).
struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool lstrip = false;      // the match swallows whitespace on its left
  bool rstrip = false;      // ... and on its right
  bool normalized = false;  // HF matches these in a second pass (no normalizer here)
};

// Everything a tokenizer is made of, whichever file it came from.
struct TokenizerParts {
  TokenizerSpec spec;
  std::unordered_map<std::string, int32_t> vocab;  // BPE vocabulary (byte-level spelling)
  std::vector<BpeMerge> merges;
  std::vector<PreTokenizerStep> steps;
  std::vector<AddedToken> added;
  bool ignore_merges = false;
  int32_t bpe_unk_id = -1;  // the BPE model's unk (HF model.unk_token), not spec.unk_id
};

// The Unicode White_Space property (PropList.txt), which HF's lstrip/rstrip use.
bool is_white_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

std::string where_of(const std::string& source, const std::string& field) {
  return source.empty() ? field : source + ": " + field;
}

// A piece of the input: plain text to pre-tokenize (id < 0) or one added token.
struct Segment {
  size_t begin = 0;
  size_t end = 0;
  int32_t id = -1;
};

class BpeTokenizer final : public Tokenizer {
 public:
  explicit BpeTokenizer(TokenizerParts parts)
      : m_spec(std::move(parts.spec)),
        m_bpe(std::move(parts.vocab), parts.merges, parts.ignore_merges, parts.bpe_unk_id),
        m_pre(std::move(parts.steps), where_of(m_spec.source, "pre-tokenizer")),
        m_added(std::move(parts.added)) {
    const auto& alphabet = ByteLevelAlphabet::get();
    m_bytes.reserve(m_spec.tokens.size());
    for (const auto& t : m_spec.tokens) {
      std::string raw;
      alphabet.decode(t, raw);
      m_bytes.push_back(std::move(raw));
    }
    // Longest first inside each first-byte bucket, so the first hit is leftmost-longest.
    std::stable_sort(m_added.begin(), m_added.end(), [](const AddedToken& a, const AddedToken& b) {
      return a.content.size() > b.content.size();
    });
    for (size_t i = 0; i < m_added.size(); ++i) {
      if (m_added[i].content.empty()) continue;
      auto& bucket = m_added[i].normalized ? m_by_first_normalized : m_by_first_raw;
      bucket[static_cast<unsigned char>(m_added[i].content.front())].push_back(i);
    }
  }

  std::vector<int32_t> encode(std::string_view text, bool add_special) const override {
    size_t bad = 0;
    if (!is_valid_utf8(text, &bad)) {
      throw_bad_input("text", "invalid UTF-8 at byte " + std::to_string(bad));
    }
    std::vector<int32_t> ids;
    ids.reserve(text.size() / 3 + 4);
    if (add_special && m_spec.add_bos && m_spec.bos_id >= 0) ids.push_back(m_spec.bos_id);

    // HF: tokens not normalized are matched on the raw text first, then normalized ones in
    // what is left (there is no normalizer, so both see the same characters).
    std::vector<Segment> first;
    split_added(text, Segment{0, text.size(), -1}, m_by_first_raw, first);
    std::vector<Segment> segments;
    for (const auto& s : first) {
      if (s.id >= 0) {
        segments.push_back(s);
      } else {
        split_added(text, s, m_by_first_normalized, segments);
      }
    }

    const auto& alphabet = ByteLevelAlphabet::get();
    std::vector<std::string> pieces;
    std::string spelled;
    for (const auto& s : segments) {
      if (s.id >= 0) {
        ids.push_back(s.id);
        continue;
      }
      pieces.clear();
      m_pre.split(text.substr(s.begin, s.end - s.begin), pieces);
      for (const auto& piece : pieces) {
        spelled.clear();
        alphabet.encode(piece, spelled);
        m_bpe.encode_word(spelled, ids);
      }
    }
    if (add_special && m_spec.add_eos && m_spec.eos_id >= 0) ids.push_back(m_spec.eos_id);
    return ids;
  }

  std::string decode(std::span<const int32_t> ids) const override {
    std::string out;
    for (const int32_t id : ids) out += m_bytes[checked(id, "ids")];
    return out;
  }

  std::string token_bytes(int32_t id) const override { return m_bytes[checked(id, "id")]; }
  const std::string& token_text(int32_t id) const override {
    return m_spec.tokens[checked(id, "id")];
  }
  int32_t vocab_size() const override { return static_cast<int32_t>(m_spec.tokens.size()); }
  int32_t bos_id() const override { return m_spec.bos_id; }
  int32_t eos_id() const override { return m_spec.eos_id; }
  const TokenizerSpec& spec() const override { return m_spec; }

 private:
  size_t checked(int32_t id, const char* what) const {
    if (id < 0 || id >= vocab_size()) {
      throw_bad_input(what, "token id " + std::to_string(id) + " out of range [0, " +
                                std::to_string(vocab_size()) + ")");
    }
    return static_cast<size_t>(id);
  }

  // Splits text[seg.begin, seg.end) into plain segments and added-token segments using the
  // tokens in `buckets` (leftmost-longest, non-overlapping, as HF's Aho-Corasick does).
  void split_added(std::string_view text, Segment seg,
                   const std::array<std::vector<size_t>, 256>& buckets,
                   std::vector<Segment>& out) const {
    size_t plain_start = seg.begin;  // start of the pending plain text
    size_t pos = seg.begin;
    while (pos < seg.end) {
      const auto& bucket = buckets[static_cast<unsigned char>(text[pos])];
      const AddedToken* hit = nullptr;
      for (const size_t k : bucket) {
        const auto& c = m_added[k].content;
        if (c.size() <= seg.end - pos && text.compare(pos, c.size(), c) == 0) {
          hit = &m_added[k];
          break;
        }
      }
      if (!hit) {
        ++pos;
        continue;
      }
      size_t start = pos;
      size_t stop = pos + hit->content.size();
      if (hit->lstrip) {  // back over whitespace, never before the previous match
        size_t b = start;
        while (b > plain_start) {
          size_t lead = b - 1;
          while (lead > plain_start && (static_cast<unsigned char>(text[lead]) & 0xC0) == 0x80) {
            --lead;
          }
          char32_t c = 0;
          detail::next_utf8(text, lead, &c);
          if (!is_white_space(c)) break;
          b = lead;
        }
        start = b;
      }
      if (hit->rstrip) {
        while (stop < seg.end) {
          char32_t c = 0;
          const size_t len = detail::next_utf8(text, stop, &c);
          if (!is_white_space(c) || stop + len > seg.end) break;
          stop += len;
        }
      }
      if (start > plain_start) out.push_back(Segment{plain_start, start, -1});
      out.push_back(Segment{start, stop, hit->id});
      plain_start = pos = stop;
    }
    if (plain_start < seg.end) out.push_back(Segment{plain_start, seg.end, -1});
  }

  TokenizerSpec m_spec;
  BpeModel m_bpe;
  PreTokenizer m_pre;
  std::vector<AddedToken> m_added;
  std::array<std::vector<size_t>, 256> m_by_first_raw;         // indices into m_added
  std::array<std::vector<size_t>, 256> m_by_first_normalized;  // indices into m_added
  std::vector<std::string> m_bytes;                            // id -> raw bytes
};

void check_id(const TokenizerSpec& spec, int32_t id, const char* field) {
  const auto n = static_cast<int64_t>(spec.tokens.size());
  if (id < -1 || id >= n) {
    throw_bad_input(
        where_of(spec.source, field),
        "expected -1 or a token id in [0, " + std::to_string(n) + "), got " + std::to_string(id));
  }
}

// Checks the spec fields that do not depend on where it came from.
void validate_common(const TokenizerSpec& spec) {
  if (spec.model != "gpt2") {
    throw_bad_input(where_of(spec.source, "tokenizer.ggml.model"),
                    "expected \"gpt2\" (byte-level BPE), got \"" + spec.model + "\"");
  }
  if (spec.tokens.empty()) {
    throw_bad_input(where_of(spec.source, "tokenizer.ggml.tokens"), "expected at least one token");
  }
  if (spec.tokens.size() > static_cast<size_t>(INT32_MAX)) {
    throw_bad_input(where_of(spec.source, "tokenizer.ggml.tokens"), "too many tokens");
  }
  if (!spec.token_types.empty() && spec.token_types.size() != spec.tokens.size()) {
    throw_bad_input(where_of(spec.source, "tokenizer.ggml.token_type"),
                    "expected " + std::to_string(spec.tokens.size()) +
                        " entries (one per token), got " + std::to_string(spec.token_types.size()));
  }
  check_id(spec, spec.bos_id, "tokenizer.ggml.bos_token_id");
  check_id(spec, spec.eos_id, "tokenizer.ggml.eos_token_id");
  check_id(spec, spec.unk_id, "tokenizer.ggml.unknown_token_id");
  check_id(spec, spec.pad_id, "tokenizer.ggml.padding_token_id");
  if (spec.add_bos && spec.bos_id < 0) {
    throw_bad_input(where_of(spec.source, "tokenizer.ggml.add_bos_token"),
                    "is true but there is no tokenizer.ggml.bos_token_id");
  }
  if (spec.add_eos && spec.eos_id < 0) {
    throw_bad_input(where_of(spec.source, "tokenizer.ggml.add_eos_token"),
                    "is true but there is no tokenizer.ggml.eos_token_id");
  }
  for (size_t i = 0; i < spec.tokens.size(); ++i) {
    if (!is_valid_utf8(spec.tokens[i])) {
      throw_bad_input(where_of(spec.source, "tokenizer.ggml.tokens[" + std::to_string(i) + "]"),
                      "expected valid UTF-8");
    }
  }
}

// Resolves merge `index` (left, right) against the vocabulary.
BpeMerge resolve_merge(const std::unordered_map<std::string, int32_t>& vocab,
                       const std::string& left, const std::string& right, size_t index,
                       const std::string& where) {
  const auto a = vocab.find(left);
  const auto b = vocab.find(right);
  const auto r = vocab.find(left + right);
  const char* missing = a == vocab.end()   ? "left part"
                        : b == vocab.end() ? "right part"
                        : r == vocab.end() ? "merged token"
                                           : nullptr;
  if (missing) {
    throw_bad_input(where + "[" + std::to_string(index) + "]", std::string("merge \"") + left +
                                                                   " " + right + "\": " + missing +
                                                                   " is not in the vocabulary");
  }
  return BpeMerge{a->second, b->second, r->second};
}

}  // namespace

std::shared_ptr<const Tokenizer> Tokenizer::from_spec(TokenizerSpec spec) {
  validate_common(spec);
  TokenizerParts parts;
  const auto& alphabet = ByteLevelAlphabet::get();
  // transformers respells a token written outside the byte alphabet (e.g. real spaces) into
  // it; later duplicates win, as in its {token: index} dict.
  std::string respelled;
  for (size_t i = 0; i < spec.tokens.size(); ++i) {
    const auto& t = spec.tokens[i];
    const auto id = static_cast<int32_t>(i);
    if (alphabet.all_in_alphabet(t)) {
      parts.vocab.insert_or_assign(t, id);
    } else {
      respelled.clear();
      alphabet.encode(t, respelled);
      parts.vocab.insert_or_assign(respelled, id);
    }
  }
  const std::string merges_where = where_of(spec.source, "tokenizer.ggml.merges");
  parts.merges.reserve(spec.merges.size());
  for (size_t i = 0; i < spec.merges.size(); ++i) {
    const auto& m = spec.merges[i];
    const size_t space = m.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 >= m.size() ||
        m.find(' ', space + 1) != std::string::npos) {
      throw_bad_input(merges_where + "[" + std::to_string(i) + "]",
                      "expected \"left right\" (two tokens, one space), got \"" + m + "\"");
    }
    parts.merges.push_back(
        resolve_merge(parts.vocab, m.substr(0, space), m.substr(space + 1), i, merges_where));
  }

  // As transformers' GGUF conversion: Control tokens spelled in the byte alphabet become
  // special added tokens, UserDefined tokens plain added tokens; bos/eos/unk/pad are special.
  std::vector<bool> is_added(spec.tokens.size(), false);
  auto add = [&](int32_t id) {
    if (id < 0 || is_added[static_cast<size_t>(id)]) return;
    is_added[static_cast<size_t>(id)] = true;
    parts.added.push_back(AddedToken{spec.tokens[static_cast<size_t>(id)], id});
  };
  for (size_t i = 0; i < spec.token_types.size(); ++i) {
    const auto& t = spec.tokens[i];
    const auto type = spec.token_types[i];
    if ((type == TokenType::Control && alphabet.all_in_alphabet(t)) ||
        (type == TokenType::UserDefined && parts.vocab.count(t) != 0)) {
      add(static_cast<int32_t>(i));
    }
  }
  for (const int32_t id : {spec.bos_id, spec.eos_id, spec.unk_id, spec.pad_id}) add(id);

  parts.steps = detail::steps_for_pre_name(spec.pre);
  parts.spec = std::move(spec);
  return std::make_shared<BpeTokenizer>(std::move(parts));
}

namespace {

using nlohmann::json;

const json& member(const json& obj, const char* key, const std::string& where) {
  if (!obj.is_object() || !obj.contains(key)) {
    throw_bad_input(where, std::string("expected a field \"") + key + "\"");
  }
  return obj.at(key);
}

bool flag(const json& obj, const char* key, bool fallback) {
  if (!obj.is_object() || !obj.contains(key) || obj.at(key).is_null()) return fallback;
  return obj.at(key).get<bool>();
}

// Converts one HF pre-tokenizer entry into steps.
void add_pre_steps(const json& pt, const std::string& where, std::vector<PreTokenizerStep>& out) {
  using Kind = PreTokenizerStep::Kind;
  const std::string type = member(pt, "type", where).get<std::string>();
  if (type == "Sequence") {
    const auto& list = member(pt, "pretokenizers", where);
    for (size_t i = 0; i < list.size(); ++i) {
      add_pre_steps(list.at(i), where + ".pretokenizers[" + std::to_string(i) + "]", out);
    }
  } else if (type == "ByteLevel") {
    out.push_back(PreTokenizerStep{Kind::ByteLevel, "", flag(pt, "add_prefix_space", false),
                                   flag(pt, "use_regex", true)});
  } else if (type == "Digits") {
    // HF Digits: each numeric code point alone, or runs of them kept together.
    const std::string cls = detail::kNumericClass;
    out.push_back(PreTokenizerStep{
        Kind::Split, flag(pt, "individual_digits", false) ? cls : cls + "+", false, false});
  } else if (type == "Split") {
    const std::string behavior = member(pt, "behavior", where).get<std::string>();
    if (behavior != "Isolated" || flag(pt, "invert", false)) {
      throw_bad_input(where,
                      "only Split with behavior \"Isolated\" and invert false is "
                      "supported, got \"" +
                          behavior + "\"");
    }
    const auto& pattern = member(pt, "pattern", where);
    std::string regex;
    if (pattern.contains("Regex")) {
      regex = pattern.at("Regex").get<std::string>();
    } else if (pattern.contains("String")) {
      regex = "\\Q" + pattern.at("String").get<std::string>() + "\\E";
    } else {
      throw_bad_input(where + ".pattern", "expected {\"Regex\": ...} or {\"String\": ...}");
    }
    out.push_back(PreTokenizerStep{Kind::Split, regex, false, false});
  } else {
    throw_bad_input(where, "unsupported pre-tokenizer type \"" + type +
                               "\" (expected ByteLevel, Split, Digits or Sequence)");
  }
}

int32_t token_id_of(const TokenizerParts& parts, const std::string& token,
                    const std::string& where) {
  for (const auto& a : parts.added) {
    if (a.content == token) return a.id;
  }
  const auto it = parts.vocab.find(token);
  if (it == parts.vocab.end())
    throw_bad_input(where, "token \"" + token + "\" is not in the vocabulary");
  return it->second;
}

// BOS/EOS from the post-processor: TemplateProcessing "single", Roberta/Bert cls/sep.
void read_post_processor(const json& pp, const std::string& where, TokenizerParts& parts) {
  if (pp.is_null()) return;
  const std::string type = member(pp, "type", where).get<std::string>();
  auto& spec = parts.spec;
  if (type == "Sequence") {
    const auto& list = member(pp, "processors", where);
    for (size_t i = 0; i < list.size(); ++i) {
      read_post_processor(list.at(i), where + ".processors[" + std::to_string(i) + "]", parts);
    }
  } else if (type == "ByteLevel") {
    // Offsets only; ids unchanged.
  } else if (type == "TemplateProcessing") {
    const auto& single = member(pp, "single", where);
    bool seen_sequence = false;
    for (size_t i = 0; i < single.size(); ++i) {
      const auto& item = single.at(i);
      const std::string item_where = where + ".single[" + std::to_string(i) + "]";
      if (item.contains("Sequence")) {
        seen_sequence = true;
        continue;
      }
      const auto& special = member(item, "SpecialToken", item_where);
      const std::string name = member(special, "id", item_where).get<std::string>();
      const auto& ids =
          member(member(member(pp, "special_tokens", where), name.c_str(), where), "ids", where);
      if (ids.size() != 1) throw_bad_input(item_where, "expected a special token with one id");
      const int32_t id = ids.at(0).get<int32_t>();
      if (!seen_sequence && !spec.add_bos) {
        spec.add_bos = true, spec.bos_id = id;
      } else if (seen_sequence && !spec.add_eos) {
        spec.add_eos = true, spec.eos_id = id;
      } else {
        throw_bad_input(item_where,
                        "expected at most one special token before and one after "
                        "the sequence");
      }
    }
  } else if (type == "RobertaProcessing" || type == "BertProcessing") {
    spec.add_bos = true, spec.bos_id = member(pp, "cls", where).at(1).get<int32_t>();
    spec.add_eos = true, spec.eos_id = member(pp, "sep", where).at(1).get<int32_t>();
  } else {
    throw_bad_input(where, "unsupported post-processor type \"" + type + "\"");
  }
}

// Optional sibling tokenizer_config.json: names of bos/eos and add_bos/add_eos flags.
void read_tokenizer_config(const std::filesystem::path& path, TokenizerParts& parts) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return;
  const json cfg = json::parse(read_text_file(path));
  const std::string where = path.string();
  auto token_of = [&](const char* key) -> std::string {
    if (!cfg.contains(key) || cfg.at(key).is_null()) return {};
    const auto& v = cfg.at(key);
    return v.is_string() ? v.get<std::string>()
                         : member(v, "content", where + ": " + key).get<std::string>();
  };
  auto& spec = parts.spec;
  if (const auto bos = token_of("bos_token"); !bos.empty() && spec.bos_id < 0) {
    spec.bos_id = token_id_of(parts, bos, where + ": bos_token");
  }
  if (const auto eos = token_of("eos_token"); !eos.empty() && spec.eos_id < 0) {
    spec.eos_id = token_id_of(parts, eos, where + ": eos_token");
  }
  if (cfg.contains("add_bos_token") && cfg.at("add_bos_token").is_boolean()) {
    spec.add_bos = cfg.at("add_bos_token").get<bool>() && spec.bos_id >= 0;
  }
  if (cfg.contains("add_eos_token") && cfg.at("add_eos_token").is_boolean()) {
    spec.add_eos = cfg.at("add_eos_token").get<bool>() && spec.eos_id >= 0;
  }
}

TokenizerParts parse_tokenizer_json(const std::filesystem::path& path) {
  const std::string where = path.string();
  const json root = json::parse(read_text_file(path));
  TokenizerParts parts;
  auto& spec = parts.spec;
  spec.source = where;
  spec.pre = "tokenizer.json";

  const auto& model = member(root, "model", where);
  const std::string model_where = where + ": model";
  const std::string type = member(model, "type", model_where).get<std::string>();
  if (type != "BPE")
    throw_bad_input(model_where + ".type", "expected \"BPE\", got \"" + type + "\"");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(key) && !model.at(key).is_null() &&
        !model.at(key).get<std::string>().empty()) {
      throw_bad_input(model_where + "." + key, "expected null or empty");
    }
  }
  if (flag(model, "byte_fallback", false)) {
    throw_bad_input(model_where + ".byte_fallback", "expected false (byte-level BPE)");
  }
  parts.ignore_merges = flag(model, "ignore_merges", false);

  // id -> token over the vocabulary and the added tokens (which may extend it).
  const auto& vocab = member(model, "vocab", model_where);
  std::vector<std::string> tokens;
  std::vector<bool> present;
  auto place = [&](int64_t id, const std::string& token, const std::string& field) {
    if (id < 0 || id >= (int64_t{1} << 24)) {
      throw_bad_input(field, "token id " + std::to_string(id) + " out of range");
    }
    const auto u = static_cast<size_t>(id);
    if (u >= tokens.size()) tokens.resize(u + 1), present.resize(u + 1, false);
    tokens[u] = token;
    present[u] = true;
  };
  for (const auto& [token, id] : vocab.items()) {
    place(id.get<int64_t>(), token, model_where + ".vocab");
    parts.vocab.insert_or_assign(token, id.get<int32_t>());
  }
  const auto& added = root.contains("added_tokens") ? root.at("added_tokens") : json::array();
  std::vector<TokenType> types;
  for (size_t i = 0; i < added.size(); ++i) {
    const auto& a = added.at(i);
    const std::string a_where = where + ": added_tokens[" + std::to_string(i) + "]";
    if (flag(a, "single_word", false)) throw_bad_input(a_where, "single_word is not supported");
    AddedToken t{member(a, "content", a_where).get<std::string>(),
                 member(a, "id", a_where).get<int32_t>(), flag(a, "lstrip", false),
                 flag(a, "rstrip", false), flag(a, "normalized", false)};
    place(t.id, t.content, a_where);
    parts.added.push_back(t);
  }
  for (size_t id = 0; id < tokens.size(); ++id) {
    if (!present[id]) {
      throw_bad_input(model_where + ".vocab",
                      "token ids are not contiguous: id " + std::to_string(id) + " is missing");
    }
  }
  spec.tokens = std::move(tokens);
  spec.token_types.assign(spec.tokens.size(), TokenType::Normal);
  for (size_t i = 0; i < added.size(); ++i) {
    spec.token_types[static_cast<size_t>(parts.added[i].id)] =
        flag(added.at(i), "special", false) ? TokenType::Control : TokenType::UserDefined;
  }

  if (model.contains("unk_token") && !model.at("unk_token").is_null()) {
    parts.bpe_unk_id =
        token_id_of(parts, model.at("unk_token").get<std::string>(), model_where + ".unk_token");
    spec.unk_id = parts.bpe_unk_id;
  }

  // Merges: "a b" strings (older files) or [a, b] pairs (newer files).
  const auto& merges = member(model, "merges", model_where);
  const std::string merges_where = model_where + ".merges";
  parts.merges.reserve(merges.size());
  spec.merges.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const auto& m = merges.at(i);
    std::string left, right;
    if (m.is_string()) {
      const auto s = m.get<std::string>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        throw_bad_input(merges_where + "[" + std::to_string(i) + "]",
                        "expected \"left right\", got \"" + s + "\"");
      }
      left = s.substr(0, space), right = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2) {
      left = m.at(0).get<std::string>(), right = m.at(1).get<std::string>();
    } else {
      throw_bad_input(merges_where + "[" + std::to_string(i) + "]",
                      "expected \"left right\" or [left, right]");
    }
    parts.merges.push_back(resolve_merge(parts.vocab, left, right, i, merges_where));
    spec.merges.push_back(left + " " + right);
  }

  const auto& normalizer = root.contains("normalizer") ? root.at("normalizer") : json();
  if (!normalizer.is_null()) {
    throw_bad_input(where + ": normalizer", "expected null (normalizers are not supported)");
  }
  const auto& pre = root.contains("pre_tokenizer") ? root.at("pre_tokenizer") : json();
  if (pre.is_null())
    throw_bad_input(where + ": pre_tokenizer", "expected a ByteLevel pre-tokenizer");
  add_pre_steps(pre, where + ": pre_tokenizer", parts.steps);
  const auto& decoder = root.contains("decoder") ? root.at("decoder") : json();
  if (decoder.is_null() || member(decoder, "type", where + ": decoder") != "ByteLevel") {
    throw_bad_input(where + ": decoder", "expected a ByteLevel decoder");
  }
  read_post_processor(root.contains("post_processor") ? root.at("post_processor") : json(),
                      where + ": post_processor", parts);
  read_tokenizer_config(path.parent_path() / "tokenizer_config.json", parts);
  return parts;
}

}  // namespace

std::shared_ptr<const Tokenizer> Tokenizer::from_tokenizer_json(const std::filesystem::path& path) {
  TokenizerParts parts;
  try {
    parts = parse_tokenizer_json(path);
  } catch (const nlohmann::json::exception& e) {
    throw_bad_input(path.string(), std::string("malformed tokenizer JSON (") + e.what() + ")");
  }
  validate_common(parts.spec);
  return std::make_shared<BpeTokenizer>(std::move(parts));
}

}  // namespace attnscope
