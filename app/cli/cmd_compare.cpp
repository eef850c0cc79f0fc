// `attnscope-cli compare DIR_A DIR_B`: the whole-trace figures of two traces side by side
// (quality against the baseline, timings, mean lost KV mass, mean mask density) with B - A.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <set>

#include "attnscope/error.h"
#include "attnscope/trace_io.h"
#include "cli_common.h"

namespace attnscope::cli {

namespace {

struct CompareOptions {
  std::string a, b;
  bool json = false;
};

nlohmann::json number_or_null(const std::map<std::string, double>& m, const std::string& key) {
  const auto it = m.find(key);
  if (it == m.end() || !std::isfinite(it->second)) return nullptr;
  return it->second;
}

std::string cell(const nlohmann::json& v) {
  if (v.is_null()) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v.get<double>());
  return buf;
}

int run_compare(const CompareOptions& o) {
  const Trace a = load_trace(o.a);
  const Trace b = load_trace(o.b);
  const auto sa = trace_summary(a), sb = trace_summary(b);
  std::set<std::string> keys;
  for (const auto& [k, v] : sa) keys.insert(k);
  for (const auto& [k, v] : sb) keys.insert(k);
  nlohmann::json metrics = nlohmann::json::object();
  for (const auto& k : keys) {
    const nlohmann::json va = number_or_null(sa, k), vb = number_or_null(sb, k);
    nlohmann::json delta = nullptr;
    if (!va.is_null() && !vb.is_null()) delta = vb.get<double>() - va.get<double>();
    metrics[k] = {{"a", va}, {"b", vb}, {"delta", delta}};
  }
  const bool same_tokens = a.tokens == b.tokens;
  if (o.json) {
    auto side = [](const std::string& dir, const Trace& t) {
      return nlohmann::json{{"dir", dir},
                            {"spec", t.variant.to_string()},
                            {"display_name", t.variant.display_name()},
                            {"needs_training", t.variant.needs_training()},
                            {"model_sha256", t.model.sha256}};
    };
    print_json({{"a", side(o.a, a)},
                {"b", side(o.b, b)},
                {"same_tokens", same_tokens},
                {"metrics", metrics}});
    return 0;
  }
  std::cout << "A: " << sanitize_utf8(a.variant.display_name()) << "  (" << o.a << ")\n"
            << "B: " << sanitize_utf8(b.variant.display_name()) << "  (" << o.b << ")\n";
  if (!same_tokens) std::cout << "note: the traces hold different tokens\n";
  char line[256];
  std::snprintf(line, sizeof line, "%-36s %14s %14s %14s\n", "metric", "A", "B", "B - A");
  std::cout << line;
  for (const auto& k : keys) {
    const auto& m = metrics[k];
    std::snprintf(line, sizeof line, "%-36s %14s %14s %14s\n", k.c_str(), cell(m["a"]).c_str(),
                  cell(m["b"]).c_str(), cell(m["delta"]).c_str());
    std::cout << line;
  }
  return 0;
}

}  // namespace

Command add_compare_command(CLI::App& parent) {
  auto o = std::make_shared<CompareOptions>();
  CLI::App* app = parent.add_subcommand("compare", "Compare the metrics of two trace directories");
  app->add_option("dir_a", o->a, "First trace directory")->required();
  app->add_option("dir_b", o->b, "Second trace directory")->required();
  app->add_flag("--json", o->json, "Print JSON instead of a table");
  return {app, [o] { return run_compare(*o); }};
}

}  // namespace attnscope::cli
