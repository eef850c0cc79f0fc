// End-to-end tests of the built attnscope-cli on the default model: JSON fields against the
// model card, token ids / greedy tokens / attention probabilities / perplexity against golden
// values from HF transformers (scripts/golden/cli_reference.py), and every bad-input case
// with its exit code and one-line message.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "attnscope/npy.h"
#include "cli_runner.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace {

using attnscope::test::CliResult;
using attnscope::test::slurp;

// HF eager attention and our CPU path use the same dequantized fp32 weights; they differ only
// in summation order, which moves probabilities by ~1e-6 after 4 layers.
constexpr double kAttentionTolerance = 1e-4;
// Each softmax row is normalised in fp32; T=6..40 terms keep the row sum within a few ulps.
constexpr double kRowSumTolerance = 1e-5;
// %.9g round-trips a float, so CSV and NPY must agree to float precision.
constexpr double kCsvTolerance = 1e-7;
// Perplexity = exp(mean NLL over 26 tokens); fp32 vs fp64 log-softmax moves it by < 0.1%.
constexpr double kPerplexityRelTolerance = 1e-3;

class CliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { s_dir = new fs::path(attnscope::test::make_temp_dir("cli")); }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*s_dir, ec);
    delete s_dir;
    s_dir = nullptr;
  }

  static fs::path dir() { return *s_dir; }
  static fs::path model() { return attnscope::test::default_model(); }

  // Runs the CLI with `args`, capturing stdout and stderr through files.
  static CliResult run(const std::vector<std::string>& args) {
    return attnscope::test::run_cli(args, dir());
  }

  static fs::path write_file(const std::string& name, const std::string& bytes) {
    const fs::path p = dir() / name;
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }

  static void expect_error(const CliResult& r, int code, const std::vector<std::string>& needles,
                           const std::string& what) {
    attnscope::test::expect_cli_error(r, code, needles, what);
  }

 private:
  static fs::path* s_dir;
};

fs::path* CliTest::s_dir = nullptr;

TEST_F(CliTest, InfoReportsTheDefaultModelsHyperParameters) {
  const CliResult r = run({"info", "--model", model().string()});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  // Values from the model card / GGUF metadata of SmolLM2-135M-Instruct.
  EXPECT_EQ(j.at("architecture"), "llama");
  EXPECT_EQ(j.at("n_layer"), 30);
  EXPECT_EQ(j.at("n_head"), 9);
  EXPECT_EQ(j.at("n_head_kv"), 3);
  EXPECT_EQ(j.at("head_dim"), 64);
  EXPECT_EQ(j.at("n_embd"), 576);
  EXPECT_EQ(j.at("n_ff"), 1536);
  EXPECT_EQ(j.at("context_length"), 8192);
  EXPECT_EQ(j.at("vocab_size"), 49152);
  EXPECT_DOUBLE_EQ(j.at("rope").at("theta").get<double>(), 100000.0);
  EXPECT_EQ(j.at("rope").at("type"), "half-split");
  EXPECT_EQ(j.at("rope").at("dimension_count"), 64);
  EXPECT_NEAR(j.at("rms_norm_eps").get<double>(), 1e-5, 1e-9);
  EXPECT_EQ(j.at("tied_embeddings"), true);
  EXPECT_EQ(j.at("qkv_bias"), false);
  EXPECT_EQ(j.at("tensor_types"), (nlohmann::json{{"Q4_1", 210}, {"F32", 61}, {"Q8_0", 1}}));
  EXPECT_EQ(j.at("file_size").get<uint64_t>(), fs::file_size(model()));
  EXPECT_EQ(j.at("format"), "gguf");
  EXPECT_EQ(fs::path(j.at("path").get<std::string>()), model());
}

TEST_F(CliTest, TokenizeMatchesHfIdsAndRoundTrips) {
  const std::string text = "Hello, world! Caf\u00e9 na\u00efve \u4f60\u597d \U0001F642 x=42;";
  // HF tokenizer built from the same GGUF (scripts/golden/cli_reference.py).
  const std::vector<int32_t> expected = {19556, 28,  905,   17,  48031, 2756, 15486,
                                         46494, 216, 18645, 250, 48392, 138,  47526,
                                         1792,  45,  36,    34,  43};
  const CliResult r = run({"tokenize", "--model", model().string(), "--text", text});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("ids").get<std::vector<int32_t>>(), expected);
  EXPECT_EQ(j.at("count"), expected.size());
  EXPECT_EQ(j.at("decoded"), text);
  ASSERT_EQ(j.at("tokens").size(), expected.size());
  EXPECT_EQ(j.at("tokens")[0], "Hello");
  EXPECT_EQ(j.at("tokens")[1], ",");
  EXPECT_EQ(j.at("tokens")[2], " world");

  // The same text from a file gives the same ids.
  const fs::path file = write_file("tok.txt", text);
  const CliResult f = run({"tokenize", "--model", model().string(), "--text-file", file.string()});
  ASSERT_EQ(f.code, 0) << f.err;
  EXPECT_EQ(nlohmann::json::parse(f.out).at("ids").get<std::vector<int32_t>>(), expected);
}

TEST_F(CliTest, GreedyGenerationMatchesHfReference) {
  // HF greedy continuation of the same prompt (smallest top-2 logit margin 0.22).
  const std::vector<int32_t> expected = {7042, 30, 198, 198, 504, 2988, 314, 42};
  const std::string expected_text = " Paris.\n\nThe answer is:";
  const std::string prompt = "The capital of France is";

  const CliResult j = run(
      {"generate", "--model", model().string(), "--prompt", prompt, "--max-tokens", "8", "--json"});
  ASSERT_EQ(j.code, 0) << j.err;
  const auto json = nlohmann::json::parse(j.out);
  EXPECT_EQ(json.at("prompt_ids").get<std::vector<int32_t>>(),
            (std::vector<int32_t>{504, 3575, 282, 4649, 314}));
  EXPECT_EQ(json.at("ids").get<std::vector<int32_t>>(), expected);
  EXPECT_EQ(json.at("text"), expected_text);

  // Streaming mode prints the same text (plus a final newline); speed goes to stderr.
  const CliResult s = run({"generate", "--model", model().string(), "--prompt", prompt,
                           "--max-tokens", "8", "--seed", "7"});
  ASSERT_EQ(s.code, 0) << s.err;
  EXPECT_EQ(s.out, expected_text + "\n");
  EXPECT_NE(s.err.find("prefill: 5 tokens"), std::string::npos) << s.err;
  EXPECT_NE(s.err.find("tok/s"), std::string::npos) << s.err;
}

TEST_F(CliTest, StreamingHoldsBackCharactersSplitAcrossTokens) {
  // Greedy output of this prompt has CJK characters split over 2-3 byte-level tokens (e.g.
  // ids 178, 246, 229). Streaming must print exactly what decoding all ids at once gives.
  const std::string prompt = "\u4e2d\u6587\uff1a\u4f60\u597d\uff0c\u4e16\u754c\u3002\u6211\u4eec";
  const CliResult j = run({"generate", "--model", model().string(), "--prompt", prompt,
                           "--max-tokens", "12", "--json"});
  ASSERT_EQ(j.code, 0) << j.err;
  const std::string text = nlohmann::json::parse(j.out).at("text");
  ASSERT_EQ(text.find("\xEF\xBF\xBD"), std::string::npos) << "decoded text has U+FFFD: " << text;
  const CliResult s =
      run({"generate", "--model", model().string(), "--prompt", prompt, "--max-tokens", "12"});
  ASSERT_EQ(s.code, 0) << s.err;
  EXPECT_EQ(s.out, text + "\n");
}

TEST_F(CliTest, AttentionNpyAndCsvMatchHfEagerAttention) {
  // HF eager attention probabilities, layer 3 head 2, prompt "One two three four five six".
  const double expected[6][6] = {{1.0, 0, 0, 0, 0, 0},
                                 {0.9793185, 0.0206816, 0, 0, 0, 0},
                                 {0.8095661, 0.0871764, 0.1032575, 0, 0, 0},
                                 {0.6922475, 0.0098147, 0.1724943, 0.1254436, 0, 0},
                                 {0.6086707, 0.00016, 0.0063534, 0.2540548, 0.1307612, 0},
                                 {0.6014264, 9.5e-06, 8.23e-05, 0.0115659, 0.3494076, 0.0375083}};
  const std::string prompt = "One two three four five six";
  const fs::path npy = dir() / "attn.npy";
  const CliResult r = run({"attention", "--model", model().string(), "--prompt", prompt, "--layer",
                           "3", "--head", "2", "--out", npy.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("6 x 6"), std::string::npos) << r.err;
  const auto a = attnscope::read_npy_f32(npy);
  ASSERT_EQ(a.shape, (std::vector<int64_t>{6, 6}));
  double worst = 0;
  for (int i = 0; i < 6; ++i) {
    double sum = 0;
    for (int j = 0; j < 6; ++j) {
      const float p = a.data[static_cast<size_t>(i * 6 + j)];
      sum += p;
      if (j > i) {
        EXPECT_EQ(p, 0.0f) << "not causal at (" << i << ", " << j << ")";
      }
      worst = std::max(worst, std::abs(p - expected[i][j]));
    }
    EXPECT_NEAR(sum, 1.0, kRowSumTolerance) << "row " << i;
  }
  EXPECT_LE(worst, kAttentionTolerance) << "layer 3 head 2, shape [6, 6], worst |diff| vs HF";

  const fs::path csv = dir() / "attn.csv";
  const CliResult c = run({"attention", "--model", model().string(), "--prompt", prompt, "--layer",
                           "3", "--head", "2", "--out", csv.string()});
  ASSERT_EQ(c.code, 0) << c.err;
  std::istringstream lines(slurp(csv));
  std::string line;
  int row = 0;
  while (std::getline(lines, line)) {
    ASSERT_LT(row, 6) << "too many CSV rows";
    std::istringstream cells(line);
    std::string cell;
    int col = 0;
    while (std::getline(cells, cell, ',')) {
      ASSERT_LT(col, 6) << "too many CSV columns in row " << row;
      EXPECT_NEAR(std::stod(cell), a.data[static_cast<size_t>(row * 6 + col)], kCsvTolerance)
          << "(" << row << ", " << col << ")";
      ++col;
    }
    EXPECT_EQ(col, 6) << "row " << row;
    ++row;
  }
  EXPECT_EQ(row, 6);
}

TEST_F(CliTest, EvalPerplexityMatchesHfReference) {
  const fs::path text = write_file(
      "eval.txt",
      "The quick brown fox jumps over the lazy dog. A journey of a thousand miles begins with "
      "a single step. Knowledge is power.\n");
  const CliResult r = run({"eval", "--model", model().string(), "--text-file", text.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("n_tokens"), 27);
  EXPECT_EQ(j.at("n_predicted"), 26);
  const double ppl = j.at("perplexity").get<double>();
  const double expected = 25.233939263641698;  // HF, fp64 log-softmax over fp32 logits
  EXPECT_NEAR(ppl, expected, expected * kPerplexityRelTolerance);
  EXPECT_GT(j.at("tokens_per_second").get<double>(), 0.0);
  EXPECT_GT(j.at("seconds").get<double>(), 0.0);
}

TEST_F(CliTest, HelpAndUsageErrors) {
  const CliResult help = run({"attention", "--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("--layer"), std::string::npos) << help.out;

  expect_error(run({}), 2, {}, "no subcommand");
  expect_error(run({"info", "--no-such-option"}), 2, {"--no-such-option"}, "unknown option");
  expect_error(run({"frobnicate"}), 2, {"frobnicate"}, "unknown subcommand");
  expect_error(run({"attention", "--prompt", "x", "--layer", "-1", "--head", "0", "--out",
                    (dir() / "a.npy").string()}),
               2, {"--layer"}, "negative layer");
  expect_error(run({"attention", "--prompt", "x", "--layer", "0", "--head", "0", "--out",
                    (dir() / "a.txt").string()}),
               2, {"--out", ".npy"}, "unknown output extension");
  expect_error(run({"generate", "--prompt", "x", "--backend", "tpu"}), 2, {"--backend"},
               "unknown backend");
  expect_error(run({"tokenize", "--model", model().string()}), 2, {"--text"},
               "tokenize without text");
}

TEST_F(CliTest, LayerOrHeadOutOfRangeIsAUsageError) {
  const fs::path out = dir() / "range.npy";
  expect_error(run({"attention", "--model", model().string(), "--prompt", "Hi", "--layer", "99",
                    "--head", "0", "--out", out.string()}),
               2, {"--layer", "0..29", "99"}, "layer 99");
  expect_error(run({"attention", "--model", model().string(), "--prompt", "Hi", "--layer", "0",
                    "--head", "9", "--out", out.string()}),
               2, {"--head", "0..8"}, "head 9");
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(CliTest, BadModelPathsAreBadInput) {
  const std::string missing = (dir() / "no-such-model.gguf").string();
  expect_error(run({"info", "--model", missing}), 3, {missing}, "non-existent model");

  const fs::path empty_dir = dir() / "not-a-model";
  fs::create_directories(empty_dir);
  expect_error(run({"info", "--model", empty_dir.string()}), 3, {"config.json"},
               "directory without config.json");

  // Truncated copies: inside the tensor data, and inside the metadata (vocabulary).
  const std::string bytes = slurp(model());
  ASSERT_GT(bytes.size(), 1000000u);
  const fs::path half = write_file("half.gguf", bytes.substr(0, bytes.size() / 2));
  expect_error(run({"info", "--model", half.string()}), 3, {"half.gguf"}, "truncated data");
  const fs::path head = write_file("head.gguf", bytes.substr(0, 100000));
  expect_error(run({"info", "--model", head.string()}), 3, {"head.gguf"}, "truncated metadata");
  const fs::path junk = write_file("junk.gguf", "this is not a model file\n");
  expect_error(run({"info", "--model", junk.string()}), 3, {"junk.gguf"}, "not GGUF");
}

TEST_F(CliTest, BadTextAndTooLongPromptsAreBadInput) {
  const fs::path bad = write_file("bad-utf8.txt", std::string("abc \xff\xfe def"));
  expect_error(run({"tokenize", "--model", model().string(), "--text-file", bad.string()}), 3,
               {"bad-utf8.txt", "UTF-8", "byte 4"}, "non-UTF-8 text file");
  expect_error(run({"tokenize", "--model", model().string(), "--text", "caf\xE9"}), 3,
               {"--text", "UTF-8", "byte 3"}, "Latin-1 text on the command line");
  expect_error(run({"eval", "--model", model().string(), "--text-file", bad.string()}), 3,
               {"bad-utf8.txt", "UTF-8"}, "non-UTF-8 eval file");
  expect_error(run({"generate", "--model", model().string(), "--prompt", "x", "--prompt-file",
                    bad.string()}),
               2, {"--prompt"}, "both prompt and prompt file");
  expect_error(
      run({"eval", "--model", model().string(), "--text-file", (dir() / "missing.txt").string()}),
      3, {"missing.txt"}, "unreadable text file");

  const std::string prompt = "One two three four five six seven eight";
  expect_error(run({"attention", "--model", model().string(), "--prompt", prompt, "--layer", "0",
                    "--head", "0", "--context", "4", "--out", (dir() / "ctx.npy").string()}),
               3, {"--prompt", "exceed the context of 4"}, "prompt longer than --context");
  expect_error(run({"generate", "--model", model().string(), "--prompt", prompt, "--context", "4"}),
               3, {"--prompt", "exceed the context of 4"}, "generate prompt longer than --context");

  // Longer than the model's own context (8192 tokens): each " word" is one token.
  std::string long_text;
  for (int i = 0; i < 9000; ++i) long_text += " word";
  const fs::path long_file = write_file("long.txt", long_text);
  expect_error(run({"generate", "--model", model().string(), "--prompt-file", long_file.string(),
                    "--max-tokens", "1"}),
               3, {"long.txt", "exceed the context of 8192"}, "prompt longer than the model");
}

// Documented choice (README, exit codes): an output that cannot be written is a runtime
// failure (4), like a full disk; the inputs themselves were fine.
TEST_F(CliTest, UnwritableOutputIsARuntimeFailure) {
  // A regular file as the parent directory cannot be written even by root.
  const fs::path file = write_file("plain-file", "x");
  const std::string out = (file / "attn.npy").string();
  expect_error(run({"attention", "--model", model().string(), "--prompt", "Hi", "--layer", "0",
                    "--head", "0", "--out", out}),
               4, {out, "cannot write"}, "unwritable --out");
}

TEST_F(CliTest, CudaBackendEitherRunsOrFailsCleanly) {
  const CliResult r = run({"generate", "--model", model().string(), "--prompt", "Hi",
                           "--max-tokens", "1", "--backend", "cuda"});
  if (r.code == 0) {
    EXPECT_NE(r.err.find("backend: cuda"), std::string::npos) << r.err;
  } else {
    expect_error(r, 4, {"CUDA"}, "cuda backend without a GPU");
  }
}

}  // namespace
