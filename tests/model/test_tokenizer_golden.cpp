// Golden test: token ids of the default model's tokenizer must equal HF `tokenizers` configured
// as SmolLM2's own tokenizer.json (vocab/merges from the GGUF via transformers, pre-tokenizer
// Digits(individual) + ByteLevel, which transformers' GGUF conversion would drop) for every
// corpus entry, built both from the GGUF through the model loader and from the committed
// tokenizer.json; decode must round-trip.
// Reference data: scripts/golden/make_tokenizer_golden.py -> tests/data/tokenizer_golden.json.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "attnscope/file_util.h"
#include "attnscope/model.h"
#include "attnscope/tokenizer.h"
#include "test_support.h"

namespace attnscope {
namespace {

struct GoldenCase {
  std::string text;
  std::vector<int32_t> ids;
};

struct Golden {
  bool add_special = true;
  std::vector<GoldenCase> cases;
};

const Golden& golden() {
  static const Golden g = [] {
    Golden out;
    const auto root =
        nlohmann::json::parse(read_text_file(test::data_dir() / "tokenizer_golden.json"));
    out.add_special = root.at("reference").at("add_special_tokens").get<bool>();
    for (const auto& c : root.at("cases")) {
      out.cases.push_back(
          {c.at("text").get<std::string>(), c.at("ids").get<std::vector<int32_t>>()});
    }
    return out;
  }();
  return g;
}

std::string join(const std::vector<int32_t>& ids) {
  std::ostringstream s;
  for (size_t i = 0; i < ids.size(); ++i) s << (i ? " " : "") << ids[i];
  return s.str();
}

// Text with control characters escaped so a failure message stays readable.
std::string printable(const std::string& text) {
  std::string out;
  for (const char c : text.substr(0, 200)) {
    if (c == '\n')
      out += "\\n";
    else if (c == '\r')
      out += "\\r";
    else if (c == '\t')
      out += "\\t";
    else
      out += c;
  }
  return out + (text.size() > 200 ? "..." : "");
}

// Every golden entry encodes to the golden ids and decodes back to its text; reports the first
// differing entry with the position of the first differing id and both sequences.
void expect_matches_golden(const Tokenizer& tok) {
  const auto& g = golden();
  ASSERT_GE(g.cases.size(), 300u) << "golden file has too few cases";
  size_t mismatches = 0;
  size_t roundtrip_failures = 0;
  for (size_t i = 0; i < g.cases.size(); ++i) {
    const auto& c = g.cases[i];
    const auto got = tok.encode(c.text, g.add_special);
    if (got != c.ids) {
      if (mismatches == 0) {
        size_t pos = 0;
        while (pos < got.size() && pos < c.ids.size() && got[pos] == c.ids[pos]) ++pos;
        ADD_FAILURE() << "first mismatch: golden entry " << i << " \"" << printable(c.text)
                      << "\" differs at id position " << pos << "\n  got:    " << join(got)
                      << "\n  golden: " << join(c.ids);
      }
      ++mismatches;
    }
    const std::string decoded = tok.decode(got);
    if (decoded != c.text) {
      if (roundtrip_failures == 0) {
        ADD_FAILURE() << "round trip failed for golden entry " << i << ": \"" << printable(c.text)
                      << "\" decoded as \"" << printable(decoded) << "\"";
      }
      ++roundtrip_failures;
    }
  }
  EXPECT_EQ(mismatches, 0u) << "entries whose ids differ from HF, of " << g.cases.size();
  EXPECT_EQ(roundtrip_failures, 0u) << "entries that do not round-trip, of " << g.cases.size();
}

TEST(TokenizerGolden, FromGgufMatchesHf) {
  const auto model = load_gguf_model(test::default_model());
  ASSERT_TRUE(model->tokenizer) << "model loader built no tokenizer";
  const auto& tok = *model->tokenizer;
  EXPECT_EQ(tok.vocab_size(), 49152);
  EXPECT_EQ(tok.spec().pre, "smollm");
  EXPECT_FALSE(tok.spec().add_bos) << "SmolLM2 metadata says add_bos false";
  expect_matches_golden(tok);
}

TEST(TokenizerGolden, FromTokenizerJsonMatchesHf) {
  const auto tok = Tokenizer::from_tokenizer_json(test::data_dir() / "smollm2_tokenizer.json");
  EXPECT_EQ(tok->vocab_size(), 49152);
  EXPECT_EQ(tok->token_text(1), "<|im_start|>");
  expect_matches_golden(*tok);
}

}  // namespace
}  // namespace attnscope
