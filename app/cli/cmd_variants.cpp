// `attnscope-cli variants`: the registry of attention-variant parts (grouping, pattern,
// positions, KV policy) with their parameters, defaults, ranges and labels, as a table or JSON.
#include <iostream>
#include <memory>

#include "attnscope/variant_spec.h"
#include "cli_common.h"

namespace attnscope::cli {

Command add_variants_command(CLI::App& parent) {
  auto json = std::make_shared<bool>(false);
  CLI::App* app = parent.add_subcommand(
      "variants", "List every variant part with its parameters (spec: kind=name:param=value;...)");
  app->add_flag("--json", *json, "Print the registry as JSON");
  return {app, [json] {
            std::string text = *json ? registry_json() : registry_table();
            if (text.empty() || text.back() != '\n') text += '\n';
            std::cout << sanitize_utf8(text);
            std::cout.flush();
            return 0;
          }};
}

}  // namespace attnscope::cli
