// Runs the built attnscope-cli from tests and checks its error contract.
#include "cli_runner.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "test_support.h"

namespace attnscope::test {

namespace {

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (const char c : s) {
    if (c == '\'') {
      q += "'\\''";
    } else {
      q += c;
    }
  }
  return q + "'";
}

}  // namespace

std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

CliResult run_cli(const std::vector<std::string>& args, const std::filesystem::path& scratch_dir) {
  const auto out = scratch_dir / "stdout.txt";
  const auto err = scratch_dir / "stderr.txt";
  std::string command = shell_quote(cli_path().string());
  // Appends only: GCC 12 warns falsely (-Wrestrict) on `"literal" + std::string`.
  for (const auto& a : args) command.append(" ").append(shell_quote(a));
  command.append(" >").append(shell_quote(out.string()));
  command.append(" 2>").append(shell_quote(err.string()));
  const int status = std::system(command.c_str());
  CliResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

void expect_cli_error(const CliResult& r, int code, const std::vector<std::string>& needles,
                      const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_EQ(r.code, code) << "stderr: " << r.err;
  const std::string prefix = "attnscope-cli: error: ";
  EXPECT_EQ(r.err.rfind(prefix, 0), 0u) << "stderr: " << r.err;
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.back(), '\n');
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "more than one line: " << r.err;
  for (const auto& needle : needles) {
    EXPECT_NE(r.err.find(needle), std::string::npos) << "missing '" << needle << "' in " << r.err;
  }
}

}  // namespace attnscope::test
