// Runs the built attnscope-cli from tests and checks its error contract (exit code plus exactly
// one "attnscope-cli: error: ..." line on stderr), shared by every CLI test suite.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace attnscope::test {

struct CliResult {
  int code = -1;  // exit status, or 128 + signal number when killed
  std::string out;
  std::string err;
};

// Whole file as bytes ("" when unreadable).
std::string slurp(const std::filesystem::path& path);

// Runs attnscope-cli with `args` (each shell-quoted), capturing stdout/stderr through files in
// `scratch_dir`.
CliResult run_cli(const std::vector<std::string>& args, const std::filesystem::path& scratch_dir);

// The error contract: exit `code`, exactly one stderr line "attnscope-cli: error: ..."
// containing every entry of `needles`. `what` names the case in failure messages.
void expect_cli_error(const CliResult& r, int code, const std::vector<std::string>& needles,
                      const std::string& what);

}  // namespace attnscope::test
