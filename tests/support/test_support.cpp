// Shared test helpers.
#include "test_support.h"

#include <gtest/gtest.h>

#include <random>

#include "attnscope/paths.h"

namespace attnscope::test {

std::filesystem::path data_dir() { return ATTNSCOPE_TEST_DATA_DIR; }

std::filesystem::path default_model() {
  const auto path = attnscope::default_model_path();
  if (!std::filesystem::exists(path)) {
    ADD_FAILURE() << "default model missing at " << path
                  << " (run scripts/setup.sh or set ATTNSCOPE_MODELS)";
  }
  return path;
}

std::filesystem::path cli_path() { return ATTNSCOPE_CLI_PATH; }

std::filesystem::path make_temp_dir(const std::string& prefix) {
  std::random_device rd;
  auto dir = std::filesystem::temp_directory_path() /
             (prefix + "-" + std::to_string(rd()) + std::to_string(rd() % 10000));
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace attnscope::test
