// Shared test helpers: paths to test data and the default model, temp directories.
#pragma once

#include <filesystem>
#include <string>

namespace attnscope::test {

std::filesystem::path data_dir();           // tests/data
std::filesystem::path default_model();      // fails the test (ADD_FAILURE) if absent
std::filesystem::path cli_path();           // built attnscope-cli
// A fresh empty directory under the system temp dir, removed at process exit.
std::filesystem::path make_temp_dir(const std::string& prefix);

}  // namespace attnscope::test
