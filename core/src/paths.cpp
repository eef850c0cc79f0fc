// Default model location: $ATTNSCOPE_MODELS or ~/.cache/attnscope/models.
#include "attnscope/paths.h"

#include <cstdlib>

namespace attnscope {

std::filesystem::path models_directory() {
  if (const char* env = std::getenv("ATTNSCOPE_MODELS"); env != nullptr && *env != '\0') {
    return env;
  }
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0') {
    return std::filesystem::path(xdg) / "attnscope" / "models";
  }
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home != nullptr ? home : ".") / ".cache" / "attnscope" / "models";
}

std::filesystem::path default_model_path() { return models_directory() / kDefaultModelFile; }

}  // namespace attnscope
