// Error type shared by every layer: one message naming the file/field and what was expected,
// plus a kind that the CLI maps to its exit code (2 usage, 3 bad input, 4 runtime).
#pragma once

#include <stdexcept>
#include <string>

namespace attnscope {

enum class ErrorKind {
  Usage,     // wrong command-line use or invalid parameter
  BadInput,  // a file, a text or a value from outside is malformed
  Runtime,   // the input was fine but the work failed (out of memory, device error)
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), m_kind(kind) {}
  ErrorKind kind() const { return m_kind; }

 private:
  ErrorKind m_kind;
};

// "where: what" — `where` names the file and field, `what` says what was expected.
[[noreturn]] inline void throw_bad_input(const std::string& where, const std::string& what) {
  throw Error(ErrorKind::BadInput, where + ": " + what);
}
[[noreturn]] inline void throw_usage(const std::string& message) {
  throw Error(ErrorKind::Usage, message);
}
[[noreturn]] inline void throw_runtime(const std::string& message) {
  throw Error(ErrorKind::Runtime, message);
}

// CLI exit status for an error kind.
inline int exit_code_for(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::Usage: return 2;
    case ErrorKind::BadInput: return 3;
    case ErrorKind::Runtime: return 4;
  }
  return 4;
}

}  // namespace attnscope
