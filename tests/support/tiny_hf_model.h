// Test helper: a tiny llama-style model as a Hugging Face directory (config.json, F32
// model.safetensors, a byte-level BPE tokenizer.json of 260 tokens: 256 bytes + "he", "ll",
// "hell", <|endoftext|>), with seeded random weights. Small enough that the GUI and engine tests
// run whole prompts and variants in milliseconds, real enough to go through the HF loader.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace attnscope::test {

inline constexpr int kTinyTokenizerVocab = 260;

// GPT-2 byte -> unicode map of byte b (printable bytes map to themselves, the other 68 to
// U+0100.. in byte order), as UTF-8.
std::string byte_token(int b);
// The 260-token byte-level BPE tokenizer.json described above.
void write_tiny_tokenizer(const std::filesystem::path& path);

struct TinyHfSpec {
  int n_layer = 2;
  int n_head = 4;
  int n_head_kv = 2;
  int head_dim = 8;
  int n_embd = 32;
  int n_ff = 64;
  int context = 4096;  // max_position_embeddings
  uint32_t seed = 7;
};

// Writes config.json, model.safetensors and tokenizer.json into `dir` (created if needed).
void write_tiny_hf_model(const std::filesystem::path& dir, const TinyHfSpec& spec = {});

}  // namespace attnscope::test
