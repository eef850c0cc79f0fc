// Unit tests of the byte-level BPE tokenizer on tiny hand-made vocabularies: byte alphabet,
// merge order, pre-tokenizer splits, special tokens, UTF-8 and spec validation errors, and
// tokenizer.json parsing. Expected ids are worked out by hand from the BPE/GPT-2 definitions.
#include <gtest/gtest.h>

#include <fstream>

#include "attnscope/error.h"
#include "attnscope/tokenizer.h"
#include "test_support.h"

namespace attnscope {
namespace {

// UTF-8 of a code point (test-local, so the alphabet below does not reuse library code).
std::string utf8(char32_t c) {
  std::string s;
  if (c < 0x80) {
    s += static_cast<char>(c);
  } else if (c < 0x800) {
    s += static_cast<char>(0xC0 | (c >> 6));
    s += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    s += static_cast<char>(0xE0 | (c >> 12));
    s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (c & 0x3F));
  }
  return s;
}

// GPT-2's bytes_to_unicode, from its definition: bytes '!'..'~', 0xA1..0xAC, 0xAE..0xFF map
// to themselves, the rest to U+0100.. in increasing byte order.
std::vector<std::string> gpt2_alphabet() {
  std::vector<std::string> out(256);
  char32_t next = 0x100;
  for (int b = 0; b < 256; ++b) {
    const bool keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    out[static_cast<size_t>(b)] = utf8(keep ? static_cast<char32_t>(b) : next++);
  }
  return out;
}

// Spec whose ids 0..255 are the 256 byte tokens (id == byte value), followed by `extra`.
TokenizerSpec byte_spec(const std::vector<std::string>& extra = {},
                        const std::vector<std::string>& merges = {},
                        const std::string& pre = "gpt2") {
  TokenizerSpec spec;
  spec.pre = pre;
  spec.tokens = gpt2_alphabet();
  spec.tokens.insert(spec.tokens.end(), extra.begin(), extra.end());
  spec.merges = merges;
  spec.source = "unit.gguf";
  return spec;
}

int32_t id_of(const Tokenizer& tok, const std::string& token_text) {
  for (int32_t i = 0; i < tok.vocab_size(); ++i) {
    if (tok.token_text(i) == token_text) return i;
  }
  ADD_FAILURE() << "no token " << token_text;
  return -1;
}

std::vector<int32_t> bytes_of(std::string_view s) {
  std::vector<int32_t> ids;
  for (const char c : s) ids.push_back(static_cast<unsigned char>(c));
  return ids;
}

// Runs f, expecting Error(BadInput) whose message contains every string in `parts`.
template <typename F>
void expect_bad_input(F f, std::initializer_list<std::string> parts) {
  try {
    f();
    ADD_FAILURE() << "expected Error(BadInput)";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput) << e.what();
    for (const auto& p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

TEST(TokenizerUnit, AlphabetKnownValues) {
  const auto a = gpt2_alphabet();
  EXPECT_EQ(a[0x20], "\xC4\xA0");  // ' ' -> U+0120 'Ġ'
  EXPECT_EQ(a[0x0A], "\xC4\x8A");  // '\n' -> U+010A 'Ċ'
  EXPECT_EQ(a[0x00], "\xC4\x80");  // U+0100
  EXPECT_EQ(a[0xAD], "\xC5\x83");  // soft hyphen -> U+0143, the last shifted byte
  EXPECT_EQ(a['A'], "A");
}

TEST(TokenizerUnit, AllBytesRoundTrip) {
  const auto tok = Tokenizer::from_spec(byte_spec());
  for (int b = 0; b < 256; ++b) {
    EXPECT_EQ(tok->token_bytes(b), std::string(1, static_cast<char>(b))) << "byte " << b;
  }
  // Valid UTF-8 covering every ASCII byte and lead/continuation bytes of 2-, 3-, 4-byte forms;
  // with no merges every byte is its own token.
  std::string text;
  for (int b = 0; b < 128; ++b) text += static_cast<char>(b);
  text += "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xDF\xBF\xEF\xBF\xBD\xF4\x8F\xBF\xBF";
  const auto ids = tok->encode(text);
  EXPECT_EQ(ids, bytes_of(text));
  EXPECT_EQ(tok->decode(ids), text);
}

TEST(TokenizerUnit, MergeRankOrder) {
  // "abc": pairs (a,b) and (b,c). Rank decides which merges first and thus the result.
  {
    const auto tok = Tokenizer::from_spec(byte_spec({"ab", "bc"}, {"b c", "a b"}));
    EXPECT_EQ(tok->encode("abc"), (std::vector<int32_t>{'a', id_of(*tok, "bc")}));
  }
  {
    const auto tok = Tokenizer::from_spec(byte_spec({"ab", "bc"}, {"a b", "b c"}));
    EXPECT_EQ(tok->encode("abc"), (std::vector<int32_t>{id_of(*tok, "ab"), 'c'}));
  }
  // hello: ll (rank 0) -> h e ll o; he (1) -> he ll o; he+ll (2) -> hell o; hell+o (3).
  const auto tok = Tokenizer::from_spec(
      byte_spec({"ll", "he", "hell", "hello", "lo"}, {"l l", "h e", "he ll", "hell o", "l o"}));
  EXPECT_EQ(tok->encode("hello"), (std::vector<int32_t>{id_of(*tok, "hello")}));
  // "lol": only "l o" applies. "llo": ll (rank 0) beats lo (rank 4) -> [ll, o].
  EXPECT_EQ(tok->encode("lol"), (std::vector<int32_t>{id_of(*tok, "lo"), 'l'}));
  EXPECT_EQ(tok->encode("llo"), (std::vector<int32_t>{id_of(*tok, "ll"), 'o'}));
  // Equal ranks: leftmost first. "lll" -> [ll, l]; "llll" -> [ll, ll].
  EXPECT_EQ(tok->encode("lll"), (std::vector<int32_t>{id_of(*tok, "ll"), 'l'}));
  EXPECT_EQ(tok->encode("llll"), (std::vector<int32_t>{id_of(*tok, "ll"), id_of(*tok, "ll")}));
}

TEST(TokenizerUnit, Gpt2RegexSplitsWhitespace) {
  // GPT-2 regex: "\s+(?!\S)" leaves the last space of a run to prefix the next word.
  const auto tok = Tokenizer::from_spec(byte_spec({"\xC4\xA0\xC4\xA0",
                                                   "\xC4\xA0"
                                                   "b"},
                                                  {"\xC4\xA0 \xC4\xA0", "\xC4\xA0 b"}));
  const int32_t sp2 = id_of(*tok, "\xC4\xA0\xC4\xA0");
  const int32_t sp_b = id_of(*tok,
                             "\xC4\xA0"
                             "b");
  EXPECT_EQ(tok->encode("a  b"), (std::vector<int32_t>{'a', ' ', sp_b}));
  EXPECT_EQ(tok->encode("a   b"), (std::vector<int32_t>{'a', sp2, sp_b}));
  EXPECT_EQ(tok->encode("a  "), (std::vector<int32_t>{'a', sp2}));
  // U+180E is not White_Space (HF/Oniguruma \s), though PCRE2's UCP \s matches it: the run
  // "  \u180E" must split as " " + " \u180E", never merging the two spaces.
  EXPECT_EQ(tok->encode("x  \xE1\xA0\x8E"),
            (std::vector<int32_t>{'x', ' ', ' ', 0xE1, 0xA0, 0x8E}));
  // U+3000 is White_Space: "  \u3000" is one piece, whose two spaces merge.
  EXPECT_EQ(tok->encode("x  \xE3\x80\x80"), (std::vector<int32_t>{'x', sp2, 0xE3, 0x80, 0x80}));
}

TEST(TokenizerUnit, PreTokenizerNamesSplitDigits) {
  // merges: 34 first, then 12, then 12+3.
  const std::vector<std::string> extra{"34", "12", "123"};
  const std::vector<std::string> merges{"3 4", "1 2", "12 3"};
  // gpt2: "1234" is one piece -> 1 2 34 -> 12 34.
  auto gpt2 = Tokenizer::from_spec(byte_spec(extra, merges, "gpt2"));
  EXPECT_EQ(gpt2->encode("1234"), (std::vector<int32_t>{id_of(*gpt2, "12"), id_of(*gpt2, "34")}));
  // llama-bpe: \p{N}{1,3} -> "123" + "4" -> 123, 4.
  auto llama = Tokenizer::from_spec(byte_spec(extra, merges, "llama-bpe"));
  EXPECT_EQ(llama->encode("1234"), (std::vector<int32_t>{id_of(*llama, "123"), '4'}));
  // qwen2: every digit alone.
  auto qwen = Tokenizer::from_spec(byte_spec(extra, merges, "qwen2"));
  EXPECT_EQ(qwen->encode("1234"), bytes_of("1234"));
  // llama-bpe contractions are case-insensitive; gpt2's are not ("'S" splits as ' + S).
  auto llama_s = Tokenizer::from_spec(byte_spec({"'S"}, {"' S"}, "llama-bpe"));
  EXPECT_EQ(llama_s->encode("'S"), (std::vector<int32_t>{id_of(*llama_s, "'S")}));
  auto gpt2_s = Tokenizer::from_spec(byte_spec({"'S"}, {"' S"}, "gpt2"));
  EXPECT_EQ(gpt2_s->encode("'S"), bytes_of("'S"));
}

TEST(TokenizerUnit, SmollmIsolatesNumeralsBeforeGpt2Regex) {
  // "smollm" = SmolLM2's tokenizer.json: Digits(individual_digits) isolates every numeric
  // (\p{N}) code point, then the GPT-2 regex splits the rest. Plain "gpt2" differs wherever a
  // space precedes a numeral. Byte-level spellings: ' ' -> U+0120 'Ġ', 0xC2 -> 'Â', 0xE2 -> 'â'.
  const std::string sp = utf8(0x120);
  const std::vector<std::string> extra{sp + sp, sp + sp + sp, sp + "1", sp + utf8(0xC2),
                                       sp + utf8(0xE2)};
  const std::vector<std::string> merges{sp + " " + sp, sp + sp + " " + sp, sp + " 1",
                                        sp + " " + utf8(0xC2), sp + " " + utf8(0xE2)};
  const auto smol = Tokenizer::from_spec(byte_spec(extra, merges, "smollm"));
  const auto gpt2 = Tokenizer::from_spec(byte_spec(extra, merges, "gpt2"));
  const int32_t sp2 = id_of(*smol, sp + sp);
  const int32_t sp3 = id_of(*smol, sp + sp + sp);
  const int32_t sp_1 = id_of(*smol, sp + "1");
  const int32_t sp_c2 = id_of(*smol, sp + utf8(0xC2));
  const int32_t sp_e2 = id_of(*smol, sp + utf8(0xE2));

  // "a   1": smollm pieces "a" | "   " | "1"; gpt2 pieces "a" | "  " | " 1".
  EXPECT_EQ(smol->encode("a   1"), (std::vector<int32_t>{'a', sp3, '1'}));
  EXPECT_EQ(gpt2->encode("a   1"), (std::vector<int32_t>{'a', sp2, sp_1}));
  // "x ½ ①" (U+00BD = C2 BD, No; U+2460 = E2 91 A0, No): smollm pieces "x" | " " | "½" | " " |
  // "①"; gpt2 pieces "x" | " ½" | " ①".
  const std::string text = "x \xC2\xBD \xE2\x91\xA0";
  EXPECT_EQ(smol->encode(text),
            (std::vector<int32_t>{'x', ' ', 0xC2, 0xBD, ' ', 0xE2, 0x91, 0xA0}));
  EXPECT_EQ(gpt2->encode(text), (std::vector<int32_t>{'x', sp_c2, 0xBD, sp_e2, 0x91, 0xA0}));
  // Digits are isolated one by one, so " 12" never becomes " 1" + "2".
  EXPECT_EQ(smol->encode(" 12"), (std::vector<int32_t>{' ', '1', '2'}));
  EXPECT_EQ(gpt2->encode(" 12"), (std::vector<int32_t>{sp_1, '2'}));
  // U+10D40 (Garay digit zero, Unicode 16, Nd) is numeric to HF Digits (Rust is_numeric) though
  // PCRE2 10.42's tables predate it: smollm isolates it, so the three spaces stay one piece.
  EXPECT_EQ(smol->encode("a   \xF0\x90\xB5\x80"),
            (std::vector<int32_t>{'a', sp3, 0xF0, 0x90, 0xB5, 0x80}));
  EXPECT_EQ(smol->decode(smol->encode(text)), text);
}

TEST(TokenizerUnit, SpecialTokensMatchedWhole) {
  auto spec = byte_spec({"<|end|>", "<|endoftext|>", "<think>", "<x>"});
  spec.token_types.assign(spec.tokens.size(), TokenType::Normal);
  spec.token_types[256] = TokenType::Control;
  spec.token_types[257] = TokenType::Control;
  spec.token_types[258] = TokenType::UserDefined;  // added, matched whole, not special
  spec.bos_id = 256;
  const auto tok = Tokenizer::from_spec(spec);
  EXPECT_EQ(tok->encode("a<|endoftext|>b"), (std::vector<int32_t>{'a', 257, 'b'}));
  EXPECT_EQ(tok->encode("<|end|><|end|>"), (std::vector<int32_t>{256, 256}));
  EXPECT_EQ(tok->encode("<think>hi"), (std::vector<int32_t>{258, 'h', 'i'}));
  // Not matched: a Normal token and an incomplete special.
  EXPECT_EQ(tok->encode("<x>"), bytes_of("<x>"));
  EXPECT_EQ(tok->encode("<|end"), bytes_of("<|end"));
  // Text around a special is pre-tokenized on its own (" " before it stays a piece).
  EXPECT_EQ(tok->encode(" <|end|> "), (std::vector<int32_t>{' ', 256, ' '}));
  EXPECT_EQ(tok->decode(std::vector<int32_t>{'a', 257, 'b'}), "a<|endoftext|>b");
}

TEST(TokenizerUnit, BosEosAddedWhenAsked) {
  auto spec = byte_spec({"<s>", "</s>"});
  spec.token_types.assign(spec.tokens.size(), TokenType::Normal);
  spec.token_types[256] = spec.token_types[257] = TokenType::Control;
  spec.bos_id = 256, spec.eos_id = 257, spec.add_bos = true, spec.add_eos = true;
  const auto tok = Tokenizer::from_spec(spec);
  EXPECT_EQ(tok->encode("hi"), (std::vector<int32_t>{256, 'h', 'i', 257}));
  EXPECT_EQ(tok->encode("hi", false), (std::vector<int32_t>{'h', 'i'}));
  EXPECT_EQ(tok->encode(""), (std::vector<int32_t>{256, 257}));
  EXPECT_EQ(tok->bos_id(), 256);
  EXPECT_EQ(tok->eos_id(), 257);
}

TEST(TokenizerUnit, EmptyText) {
  const auto tok = Tokenizer::from_spec(byte_spec());
  EXPECT_TRUE(tok->encode("").empty());
  EXPECT_EQ(tok->decode({}), "");
}

TEST(TokenizerUnit, InvalidUtf8NamesOffset) {
  const auto tok = Tokenizer::from_spec(byte_spec());
  expect_bad_input([&] { (void)tok->encode("abc\xFFz"); }, {"text", "invalid UTF-8 at byte 3"});
  expect_bad_input([&] { (void)tok->encode("ok \xC3"); }, {"invalid UTF-8 at byte 3"});
  expect_bad_input([&] { (void)tok->encode("\xED\xA0\x80"); }, {"at byte 0"});  // surrogate
}

TEST(TokenizerUnit, DecodeRejectsBadIds) {
  const auto tok = Tokenizer::from_spec(byte_spec());
  expect_bad_input(
      [&] {
        (void)tok->decode(std::vector<int32_t>{1, 256});
      },
      {"256", "out of range"});
  expect_bad_input([&] { (void)tok->token_text(-1); }, {"out of range"});
}

TEST(TokenizerUnit, SpecValidation) {
  expect_bad_input(
      [] {
        (void)Tokenizer::from_spec(byte_spec({"ab"}, {"a b", "a zz"}));
      },
      {"unit.gguf", "tokenizer.ggml.merges[1]", "not in the vocabulary"});
  expect_bad_input([] { (void)Tokenizer::from_spec(byte_spec({}, {"a b"})); },  // "ab" missing
                   {"tokenizer.ggml.merges[0]", "merged token"});
  expect_bad_input([] { (void)Tokenizer::from_spec(byte_spec({}, {"ab"})); },
                   {"tokenizer.ggml.merges[0]"});
  auto types = byte_spec();
  types.token_types.assign(10, TokenType::Normal);
  expect_bad_input([&] { (void)Tokenizer::from_spec(types); },
                   {"tokenizer.ggml.token_type", "256", "got 10"});
  auto bos = byte_spec();
  bos.bos_id = 256;
  expect_bad_input([&] { (void)Tokenizer::from_spec(bos); },
                   {"tokenizer.ggml.bos_token_id", "256"});
  auto add_bos = byte_spec();
  add_bos.add_bos = true;
  expect_bad_input([&] { (void)Tokenizer::from_spec(add_bos); }, {"tokenizer.ggml.add_bos_token"});
  auto model = byte_spec();
  model.model = "llama";
  expect_bad_input([&] { (void)Tokenizer::from_spec(model); }, {"tokenizer.ggml.model", "llama"});
  auto empty = byte_spec();
  empty.tokens.clear();
  expect_bad_input([&] { (void)Tokenizer::from_spec(empty); }, {"tokenizer.ggml.tokens"});
}

// A minimal tokenizer.json: byte vocabulary + "ab", one merge, an added special token, BOS
// through TemplateProcessing, Digits + ByteLevel pre-tokenizer.
std::string tiny_tokenizer_json(const std::string& merges_json) {
  std::string vocab;
  const auto a = gpt2_alphabet();
  for (size_t b = 0; b < a.size(); ++b) {
    std::string escaped = a[b];
    if (escaped == "\"" || escaped == "\\") escaped = "\\" + escaped;
    vocab += "\"" + escaped + "\":" + std::to_string(b) + ",";
  }
  vocab += "\"ab\":256,\"12\":257";
  return R"({"version":"1.0","added_tokens":[{"id":258,"content":"<s>","single_word":false,)"
         R"("lstrip":false,"rstrip":true,"normalized":false,"special":true}],"normalizer":null,)"
         R"("pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Digits",)"
         R"("individual_digits":true},{"type":"ByteLevel","add_prefix_space":false,)"
         R"("trim_offsets":true,"use_regex":true}]},"post_processor":{"type":)"
         R"("TemplateProcessing","single":[{"SpecialToken":{"id":"<s>","type_id":0}},)"
         R"({"Sequence":{"id":"A","type_id":0}}],"pair":[],"special_tokens":{"<s>":)"
         R"({"id":"<s>","ids":[258],"tokens":["<s>"]}}},"decoder":{"type":"ByteLevel"},)"
         R"("model":{"type":"BPE","dropout":null,"unk_token":null,)"
         R"("continuing_subword_prefix":null,"end_of_word_suffix":null,"fuse_unk":false,)"
         R"("byte_fallback":false,"vocab":{)" +
         vocab + "},\"merges\":" + merges_json + "}}";
}

TEST(TokenizerUnit, TokenizerJsonBothMergeFormats) {
  const auto dir = test::make_temp_dir("tok-json");
  for (const std::string merges : {R"(["a b","1 2"])", R"([["a","b"],["1","2"]])"}) {
    const auto path = dir / "tokenizer.json";
    std::ofstream(path) << tiny_tokenizer_json(merges);
    const auto tok = Tokenizer::from_tokenizer_json(path);
    EXPECT_EQ(tok->vocab_size(), 259);
    EXPECT_TRUE(tok->spec().add_bos);
    EXPECT_EQ(tok->bos_id(), 258);
    // BOS, "ab" merged, Digits splits "12" so "1 2" never applies; "<s>" rstrip eats " ".
    EXPECT_EQ(tok->encode("ab12<s>  c"), (std::vector<int32_t>{258, 256, '1', '2', 258, 'c'}))
        << merges;
    EXPECT_EQ(tok->encode("ab", false), (std::vector<int32_t>{256}));
  }
  // Sibling tokenizer_config.json can turn BOS off.
  std::ofstream(dir / "tokenizer_config.json") << R"({"add_bos_token": false})";
  const auto tok = Tokenizer::from_tokenizer_json(dir / "tokenizer.json");
  EXPECT_EQ(tok->encode("ab"), (std::vector<int32_t>{256}));
}

TEST(TokenizerUnit, TokenizerJsonErrors) {
  const auto dir = test::make_temp_dir("tok-json-bad");
  const auto path = dir / "tokenizer.json";
  std::ofstream(path) << tiny_tokenizer_json(R"(["a b","x yz"])");
  expect_bad_input([&] { (void)Tokenizer::from_tokenizer_json(path); },
                   {"model.merges[1]", "not in the vocabulary"});
  std::ofstream(path) << "{\"model\": ";
  expect_bad_input([&] { (void)Tokenizer::from_tokenizer_json(path); }, {"tokenizer.json"});
  expect_bad_input([&] { (void)Tokenizer::from_tokenizer_json(dir / "missing.json"); },
                   {"missing.json"});
}

}  // namespace
}  // namespace attnscope
