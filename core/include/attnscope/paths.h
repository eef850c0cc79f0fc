// Where the default model lives: $ATTNSCOPE_MODELS (default ~/.cache/attnscope/models).
#pragma once

#include <filesystem>
#include <string>

namespace attnscope {

inline constexpr const char* kDefaultModelFile = "SmolLM2-135M-Instruct.Q4_1.gguf";

std::filesystem::path models_directory();
std::filesystem::path default_model_path();

}  // namespace attnscope
