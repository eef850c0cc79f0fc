// Variant spec text form (parse, canonical text, display name), parameter validation and the
// registry of parts (concatenation, lookup, validation, table/JSON listing for the CLI).
#include "attnscope/variant_spec.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <climits>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>
#include <system_error>

#include "attnscope/error.h"

namespace attnscope {
namespace {

constexpr std::array<PartKind, 4> kKinds = {PartKind::Grouping, PartKind::Pattern,
                                            PartKind::Positions, PartKind::Kv};

size_t kind_index(PartKind kind) {
  return static_cast<size_t>(kind);
}

std::string_view trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n\f\v";
  const size_t b = s.find_first_not_of(kSpace);
  if (b == std::string_view::npos) return {};
  const size_t e = s.find_last_not_of(kSpace);
  return s.substr(b, e - b + 1);
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    const size_t at = s.find(sep, start);
    if (at == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, at - start));
    start = at + 1;
  }
}

std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += sep;
    out += items[i];
  }
  return out;
}

// Shortest text that reads back to the same double (std::to_chars without a format).
std::string format_double(double v) {
  if (v == 0) v = 0;  // write -0 as 0
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, r.ptr);
}

// Whole-text decimal integer: optional '-', digits, nothing else.
bool parse_long(std::string_view s, long long* out) {
  if (s.empty()) return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool parse_int_text(std::string_view s, int* out) {
  long long v = 0;
  if (!parse_long(s, &v) || v < INT_MIN || v > INT_MAX) return false;
  *out = static_cast<int>(v);
  return true;
}

// Whole-text finite decimal number (no "inf"/"nan", no hex, no trailing garbage).
bool parse_finite(std::string_view s, double* out) {
  if (s.empty()) return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), *out, std::chars_format::general);
  return r.ec == std::errc() && r.ptr == s.data() + s.size() && std::isfinite(*out);
}

bool parse_bool_text(std::string_view s, bool* out) {
  if (s == "true" || s == "1") {
    *out = true;
    return true;
  }
  if (s == "false" || s == "0") {
    *out = false;
    return true;
  }
  return false;
}

// Items of an IntList value: separated by '+' (spec text) or ',' (registry defaults).
bool parse_int_list_text(std::string_view s, std::vector<int>* out) {
  out->clear();
  s = trim(s);
  if (s.empty()) return true;
  size_t start = 0;
  while (true) {
    const size_t at = s.find_first_of("+,", start);
    const std::string_view item =
        trim(s.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
    int v = 0;
    if (!parse_int_text(item, &v)) return false;
    out->push_back(v);
    if (at == std::string_view::npos) return true;
    start = at + 1;
  }
}

std::string shown(std::string_view value) {
  return value.empty() ? std::string("''") : std::string(value);
}

// Range bounds read better as plain integers ("1000000", not "1e+06") where they are integral.
std::string format_bound(double v) {
  constexpr double kExactIntLimit = 1e15;  // well inside double's exact-integer range
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < kExactIntLimit)
    return std::to_string(static_cast<long long>(v));
  return format_double(v);
}

std::string range_text(const ParamSpec& p) {
  return "[" + format_bound(p.min) + ", " + format_bound(p.max) + "]";
}

std::string expected_text(const ParamSpec& p) {
  switch (p.type) {
    case ParamType::Int:
      return "an integer in " + range_text(p);
    case ParamType::Float:
      return "a finite number in " + range_text(p);
    case ParamType::Bool:
      return "true, false, 1 or 0";
    case ParamType::Choice:
      return "one of " + join(p.choices, ", ");
    case ParamType::IntList:
      return "integers in " + range_text(p) + " separated by '+'";
  }
  return "a value";
}

bool in_range(const ParamSpec& p, double v) {
  return v >= p.min && v <= p.max;
}

std::string names_of_kind(const std::vector<PartSpec>& registry, PartKind kind) {
  std::vector<std::string> names;
  for (const auto& p : registry)
    if (p.kind == kind) names.push_back(p.name);
  return names.empty() ? std::string("none registered") : join(names, ", ");
}

std::string kind_list() {
  std::vector<std::string> names;
  for (PartKind k : kKinds) names.emplace_back(part_kind_name(k));
  return join(names, ", ");
}

const ParamSpec* find_param(const PartSpec& part, std::string_view name) {
  for (const auto& p : part.params)
    if (p.name == name) return &p;
  return nullptr;
}

// Value written for `key` of `config` by to_string: normalised when the spec knows it.
std::string written_value(const PartConfig& config, const ParamSpec* spec,
                          const std::string& value) {
  if (!spec) return value;
  try {
    return normalize_param_value(config.name, *spec, value);
  } catch (const Error&) {
    return value;  // a hand-made config with a bad value: write it as it is, parse will say why
  }
}

// Keys of `config` in registry order, then any the registry does not know in stored order.
std::vector<std::string> ordered_keys(const PartConfig& config, const PartSpec* part) {
  std::vector<std::string> keys;
  if (part)
    for (const auto& p : part->params)
      if (config.params.count(p.name)) keys.push_back(p.name);
  for (const auto& [key, value] : config.params)
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
  return keys;
}

bool is_identity(PartKind kind, const PartConfig& config) {
  return config.name == default_part_name(kind);
}

bool bad_token_char(const std::string& s) {
  return s.find_first_of("=;:,+ \t\r\n") != std::string::npos;
}

const std::string& config_value(const PartConfig& config, const std::string& key) {
  const auto it = config.params.find(key);
  if (it == config.params.end()) {
    std::vector<std::string> keys;
    for (const auto& [k, v] : config.params) keys.push_back(k);
    throw_usage(config.name + "." + key + ": no such parameter (" +
                (keys.empty() ? std::string("it has none") : "has " + join(keys, ", ")) + ")");
  }
  return it->second;
}

[[noreturn]] void bad_config_value(const PartConfig& config, const std::string& key,
                                   const std::string& what, const std::string& value) {
  throw_usage(config.name + "." + key + ": expected " + what + ", got " + shown(value));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Names

const char* part_kind_name(PartKind kind) {
  switch (kind) {
    case PartKind::Grouping:
      return "grouping";
    case PartKind::Pattern:
      return "pattern";
    case PartKind::Positions:
      return "positions";
    case PartKind::Kv:
      return "kv";
  }
  return "?";
}

const char* default_part_name(PartKind kind) {
  switch (kind) {
    case PartKind::Grouping:
      return "native";
    case PartKind::Pattern:
      return "full";
    case PartKind::Positions:
      return "rope";
    case PartKind::Kv:
      return "full";
  }
  return "?";
}

PartKind part_kind_from_name(std::string_view name) {
  for (PartKind k : kKinds)
    if (name == part_kind_name(k)) return k;
  throw_usage("unknown kind '" + std::string(name) + "' (expected one of " + kind_list() + ")");
}

const char* param_type_name(ParamType type) {
  switch (type) {
    case ParamType::Int:
      return "int";
    case ParamType::Float:
      return "float";
    case ParamType::Choice:
      return "choice";
    case ParamType::Bool:
      return "bool";
    case ParamType::IntList:
      return "int_list";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------
// Registry

const std::vector<PartSpec>& variant_registry() {
  // A function-local static: built once, thread-safe initialisation (C++11 magic statics).
  static const std::vector<PartSpec> registry = [] {
    std::vector<PartSpec> all;
    for (auto* piece :
         {&grouping_part_specs, &pattern_part_specs, &position_part_specs, &kv_part_specs}) {
      auto parts = piece();
      all.insert(all.end(), std::make_move_iterator(parts.begin()),
                 std::make_move_iterator(parts.end()));
    }
    // Kind order whatever file a part was declared in; order within a kind is kept.
    std::stable_sort(all.begin(), all.end(), [](const PartSpec& a, const PartSpec& b) {
      return kind_index(a.kind) < kind_index(b.kind);
    });
    return all;
  }();
  return registry;
}

const PartSpec* find_part(const std::vector<PartSpec>& registry, PartKind kind,
                          std::string_view name) {
  for (const auto& p : registry)
    if (p.kind == kind && p.name == name) return &p;
  return nullptr;
}

const PartSpec* find_part(PartKind kind, std::string_view name) {
  return find_part(variant_registry(), kind, name);
}

std::string normalize_param_value(const std::string& part_name, const ParamSpec& param,
                                  std::string_view raw) {
  const std::string_view value = trim(raw);
  const auto fail = [&]() -> std::string {
    throw_usage(part_name + "." + param.name + ": expected " + expected_text(param) + ", got " +
                shown(value));
  };
  switch (param.type) {
    case ParamType::Int: {
      long long v = 0;
      if (!parse_long(value, &v) || v < INT_MIN || v > INT_MAX ||
          !in_range(param, static_cast<double>(v)))
        return fail();
      return std::to_string(v);
    }
    case ParamType::Float: {
      double v = 0;
      if (!parse_finite(value, &v) || !in_range(param, v)) return fail();
      return format_double(v);
    }
    case ParamType::Bool: {
      bool v = false;
      if (!parse_bool_text(value, &v)) return fail();
      return v ? "true" : "false";
    }
    case ParamType::Choice: {
      for (const auto& c : param.choices)
        if (value == c) return c;
      return fail();
    }
    case ParamType::IntList: {
      std::vector<int> items;
      if (!parse_int_list_text(value, &items)) return fail();
      std::string out;
      for (size_t i = 0; i < items.size(); ++i) {
        if (!in_range(param, items[i])) return fail();
        if (i) out += '+';
        out += std::to_string(items[i]);
      }
      return out;
    }
  }
  return fail();
}

void validate_registry(const std::vector<PartSpec>& registry) {
  for (size_t i = 0; i < registry.size(); ++i) {
    const PartSpec& part = registry[i];
    const std::string where = std::string("variant registry: ") + part_kind_name(part.kind) +
                              " part '" + part.name + "': ";
    const auto fail = [&](const std::string& what) { throw_runtime(where + what); };
    if (part.name.empty() || bad_token_char(part.name))
      fail("a name without spaces or any of = ; : , +");
    for (size_t j = 0; j < i; ++j)
      if (registry[j].kind == part.kind && registry[j].name == part.name)
        fail("the name is used twice in this kind");
    if (part.label.empty()) fail("a label (training-free or simulation ...)");
    for (size_t a = 0; a < part.params.size(); ++a) {
      const ParamSpec& p = part.params[a];
      const std::string pw = "parameter '" + p.name + "': ";
      if (p.name.empty() || bad_token_char(p.name))
        fail(pw + "a name without spaces or any of = ; : , +");
      for (size_t b = 0; b < a; ++b)
        if (part.params[b].name == p.name) fail(pw + "the name is used twice");
      if (p.type == ParamType::Choice) {
        if (p.choices.empty()) fail(pw + "at least one choice");
        for (const auto& c : p.choices)
          if (c.empty() || bad_token_char(c)) fail(pw + "choices without spaces or = ; : , +");
      }
      if (p.type == ParamType::Int || p.type == ParamType::Float || p.type == ParamType::IntList) {
        if (!std::isfinite(p.min) || !std::isfinite(p.max) || p.min > p.max)
          fail(pw + "a finite range with min <= max");
        if (p.type != ParamType::Float &&
            (p.min != std::floor(p.min) || p.max != std::floor(p.max) || p.min < INT_MIN ||
             p.max > INT_MAX))
          fail(pw + "an integer range within int");
      }
      try {
        normalize_param_value(part.name, p, p.default_value);
      } catch (const Error& e) {
        fail(pw + "a valid default: " + e.what());
      }
    }
  }
  for (PartKind k : kKinds)
    if (!find_part(registry, k, default_part_name(k)))
      throw_runtime(std::string("variant registry: no ") + part_kind_name(k) + " part '" +
                    default_part_name(k) + "' (the identity part, used when the kind is omitted)");
}

// ---------------------------------------------------------------------------------------------
// PartConfig

int PartConfig::get_int(const std::string& key) const {
  const std::string& v = config_value(*this, key);
  int out = 0;
  if (!parse_int_text(trim(v), &out)) bad_config_value(*this, key, "an integer", v);
  return out;
}

double PartConfig::get_double(const std::string& key) const {
  const std::string& v = config_value(*this, key);
  double out = 0;
  if (!parse_finite(trim(v), &out)) bad_config_value(*this, key, "a finite number", v);
  return out;
}

bool PartConfig::get_bool(const std::string& key) const {
  const std::string& v = config_value(*this, key);
  bool out = false;
  if (!parse_bool_text(trim(v), &out)) bad_config_value(*this, key, "true, false, 1 or 0", v);
  return out;
}

const std::string& PartConfig::get_choice(const std::string& key) const {
  return config_value(*this, key);
}

std::vector<int> PartConfig::get_int_list(const std::string& key) const {
  const std::string& v = config_value(*this, key);
  std::vector<int> out;
  if (!parse_int_list_text(v, &out)) bad_config_value(*this, key, "integers separated by '+'", v);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Parsing

namespace {

// Parses "key=value,key=value" of one part into `given` (raw values), checking names.
void parse_params(std::string_view text, const PartSpec& part,
                  std::map<std::string, std::string>* given) {
  if (trim(text).empty()) return;
  const ParamSpec* last = nullptr;
  for (std::string_view token : split(text, ',')) {
    token = trim(token);
    const size_t eq = token.find('=');
    if (eq == std::string_view::npos) {
      // "global_layers=3,7,11": an item without '=' continues the IntList before it.
      if (last && last->type == ParamType::IntList && !token.empty()) {
        std::string& list = (*given)[last->name];
        list += (list.empty() ? "" : "+") + std::string(token);
        continue;
      }
      throw_usage(part.name + ": expected key=value, got " + shown(token));
    }
    const std::string key(trim(token.substr(0, eq)));
    if (key.empty()) throw_usage(part.name + ": expected key=value, got " + shown(token));
    const ParamSpec* spec = find_param(part, key);
    if (!spec) {
      std::vector<std::string> names;
      for (const auto& p : part.params) names.push_back(p.name);
      throw_usage(part.name + "." + key + ": unknown parameter (" +
                  (names.empty() ? part.name + " has no parameters"
                                 : "expected one of " + join(names, ", ")) +
                  ")");
    }
    if (given->count(key)) throw_usage(part.name + "." + key + ": given twice");
    (*given)[key] = std::string(trim(token.substr(eq + 1)));
    last = spec;
  }
}

PartConfig& part_ref(VariantSpec& spec, PartKind kind) {
  return const_cast<PartConfig&>(static_cast<const VariantSpec&>(spec).part(kind));
}

}  // namespace

VariantSpec parse_variant_spec(std::string_view text, const std::vector<PartSpec>& registry) {
  try {
    std::array<const PartSpec*, 4> chosen{};
    std::array<std::map<std::string, std::string>, 4> given;
    for (std::string_view segment : split(text, ';')) {
      segment = trim(segment);
      if (segment.empty()) continue;
      const size_t eq = segment.find('=');
      if (eq == std::string_view::npos)
        throw_usage("expected kind=name with kind one of " + kind_list() + ", got " +
                    shown(segment));
      const PartKind kind = part_kind_from_name(trim(segment.substr(0, eq)));
      const size_t ki = kind_index(kind);
      if (chosen[ki]) throw_usage(std::string("kind '") + part_kind_name(kind) + "' given twice");
      const std::string_view rest = segment.substr(eq + 1);
      const size_t colon = rest.find(':');
      const std::string_view name = trim(rest.substr(0, colon));
      const PartSpec* part = find_part(registry, kind, name);
      if (!part)
        throw_usage(std::string("unknown ") + part_kind_name(kind) + " part '" + std::string(name) +
                    "' (expected one of " + names_of_kind(registry, kind) + ")");
      chosen[ki] = part;
      if (colon != std::string_view::npos) parse_params(rest.substr(colon + 1), *part, &given[ki]);
    }

    VariantSpec spec;
    for (PartKind kind : kKinds) {
      const size_t ki = kind_index(kind);
      const PartSpec* part = chosen[ki];
      if (!part) {
        part = find_part(registry, kind, default_part_name(kind));
        if (!part)
          throw_runtime(std::string("the registry has no ") + part_kind_name(kind) + " part '" +
                        default_part_name(kind) + "' (the default when the kind is omitted)");
      }
      PartConfig& config = part_ref(spec, kind);
      config.name = part->name;
      for (const ParamSpec& p : part->params) {
        const auto it = given[ki].find(p.name);
        if (it != given[ki].end()) {
          config.params[p.name] = normalize_param_value(part->name, p, it->second);
          continue;
        }
        try {
          config.params[p.name] = normalize_param_value(part->name, p, p.default_value);
        } catch (const Error& e) {
          throw_runtime(std::string("registry default is invalid: ") + e.what());
        }
      }
    }
    return spec;
  } catch (const Error& e) {
    throw Error(e.kind(), "variant '" + std::string(text) + "': " + e.what());
  }
}

VariantSpec baseline_variant_spec(const std::vector<PartSpec>& registry) {
  return parse_variant_spec("", registry);
}

// ---------------------------------------------------------------------------------------------
// Writing

std::string variant_spec_to_string(const VariantSpec& spec, const std::vector<PartSpec>& registry) {
  std::vector<std::string> parts;
  for (PartKind kind : kKinds) {
    const PartConfig& config = spec.part(kind);
    const PartSpec* part = find_part(registry, kind, config.name);
    std::string text = std::string(part_kind_name(kind)) + "=" + config.name;
    std::vector<std::string> params;
    for (const auto& key : ordered_keys(config, part))
      params.push_back(
          key + "=" +
          written_value(config, part ? find_param(*part, key) : nullptr, config.params.at(key)));
    if (!params.empty()) text += ":" + join(params, ",");
    parts.push_back(std::move(text));
  }
  return join(parts, ";");
}

std::string variant_display_name(const VariantSpec& spec, const std::vector<PartSpec>& registry) {
  std::vector<std::string> shown_parts;
  for (PartKind kind : kKinds) {
    const PartConfig& config = spec.part(kind);
    const PartSpec* part = find_part(registry, kind, config.name);
    std::vector<std::string> changed;
    for (const auto& key : ordered_keys(config, part)) {
      const ParamSpec* p = part ? find_param(*part, key) : nullptr;
      const std::string value = written_value(config, p, config.params.at(key));
      if (p && value == written_value(config, p, p->default_value)) continue;
      changed.push_back(key + "=" + value);
    }
    if (is_identity(kind, config) && changed.empty()) continue;
    shown_parts.push_back(config.name +
                          (changed.empty() ? std::string() : "(" + join(changed, ", ") + ")"));
  }
  return shown_parts.empty() ? std::string("baseline") : join(shown_parts, " + ");
}

bool variant_needs_training(const VariantSpec& spec, const std::vector<PartSpec>& registry) {
  for (PartKind kind : kKinds) {
    const PartSpec* part = find_part(registry, kind, spec.part(kind).name);
    if (part && part->label.rfind("simulation", 0) == 0) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// VariantSpec members (against the global registry)

VariantSpec VariantSpec::parse(std::string_view text) {
  return parse_variant_spec(text, variant_registry());
}

VariantSpec VariantSpec::baseline() {
  return baseline_variant_spec(variant_registry());
}

std::string VariantSpec::to_string() const {
  return variant_spec_to_string(*this, variant_registry());
}

std::string VariantSpec::display_name() const {
  return variant_display_name(*this, variant_registry());
}

bool VariantSpec::is_baseline() const {
  for (PartKind kind : kKinds)
    if (!is_identity(kind, part(kind))) return false;
  return true;
}

bool VariantSpec::needs_training() const {
  return variant_needs_training(*this, variant_registry());
}

const PartConfig& VariantSpec::part(PartKind kind) const {
  switch (kind) {
    case PartKind::Grouping:
      return grouping;
    case PartKind::Pattern:
      return pattern;
    case PartKind::Positions:
      return positions;
    case PartKind::Kv:
      return kv;
  }
  return grouping;
}

bool VariantSpec::operator==(const VariantSpec& other) const {
  for (PartKind kind : kKinds) {
    const PartConfig& a = part(kind);
    const PartConfig& b = other.part(kind);
    if (a.name != b.name || a.params != b.params) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Listing for the CLI

namespace {

std::string range_or_choices(const ParamSpec& p) {
  switch (p.type) {
    case ParamType::Choice:
      return join(p.choices, "|");
    case ParamType::Bool:
      return "true|false";
    default:
      return range_text(p);
  }
}

std::string default_shown(const PartSpec& part, const ParamSpec& p) {
  std::string v;
  try {
    v = normalize_param_value(part.name, p, p.default_value);
  } catch (const Error&) {
    v = p.default_value;
  }
  return v.empty() ? std::string("(empty)") : v;
}

}  // namespace

std::string registry_table(const std::vector<PartSpec>& registry) {
  using Row = std::array<std::string, 8>;
  std::vector<Row> rows;
  rows.push_back({"KIND", "NAME", "LABEL", "PARAM", "TYPE", "DEFAULT", "RANGE", "HELP"});
  for (const auto& part : registry) {
    rows.push_back({part_kind_name(part.kind), part.name, part.label, "", "", "", "",
                    part.title + (part.summary.empty() ? "" : ": " + part.summary)});
    for (const auto& p : part.params)
      rows.push_back({"", "", "", p.name, param_type_name(p.type), default_shown(part, p),
                      range_or_choices(p), p.help});
  }
  std::array<size_t, 8> width{};
  for (const auto& r : rows)
    for (size_t c = 0; c < r.size(); ++c) width[c] = std::max(width[c], r[c].size());
  std::ostringstream out;
  for (const auto& r : rows) {
    std::string line;
    for (size_t c = 0; c < r.size(); ++c) {
      line += r[c];
      if (c + 1 < r.size()) line += std::string(width[c] - r[c].size() + 2, ' ');
    }
    line.erase(line.find_last_not_of(' ') + 1);  // no trailing padding (header row is never blank)
    out << line << '\n';
  }
  out << "\nSpec text: kind=name[:param=value,...] joined by ';' (kinds: " << kind_list()
      << "; omitted kinds are native, full, rope, full). int_list values use '+': 3+7+11.\n";
  return out.str();
}

std::string registry_table() {
  return registry_table(variant_registry());
}

std::string registry_json(const std::vector<PartSpec>& registry) {
  nlohmann::ordered_json kinds = nlohmann::ordered_json::array();
  for (PartKind k : kKinds)
    kinds.push_back({{"kind", part_kind_name(k)}, {"default", default_part_name(k)}});
  nlohmann::ordered_json parts = nlohmann::ordered_json::array();
  for (const auto& part : registry) {
    nlohmann::ordered_json params = nlohmann::ordered_json::array();
    for (const auto& p : part.params) {
      nlohmann::ordered_json jp;
      jp["name"] = p.name;
      jp["type"] = param_type_name(p.type);
      std::string def;
      try {
        def = normalize_param_value(part.name, p, p.default_value);
      } catch (const Error&) {
        def = p.default_value;
      }
      jp["default"] = def;
      if (p.type == ParamType::Int || p.type == ParamType::Float || p.type == ParamType::IntList) {
        jp["min"] = p.min;
        jp["max"] = p.max;
      }
      if (p.type == ParamType::Choice) jp["choices"] = p.choices;
      jp["help"] = p.help;
      params.push_back(std::move(jp));
    }
    nlohmann::ordered_json jpart;
    jpart["kind"] = part_kind_name(part.kind);
    jpart["name"] = part.name;
    jpart["title"] = part.title;
    jpart["label"] = part.label;
    jpart["needs_training"] = part.label.rfind("simulation", 0) == 0;
    jpart["identity"] = part.name == default_part_name(part.kind);
    jpart["summary"] = part.summary;
    jpart["params"] = std::move(params);
    parts.push_back(std::move(jpart));
  }
  nlohmann::ordered_json root;
  root["kinds"] = std::move(kinds);
  root["parts"] = std::move(parts);
  return root.dump(2);
}

std::string registry_json() {
  return registry_json(variant_registry());
}

ParamSpec int_param(const std::string& name, int default_value, double min, double max,
                    const std::string& help) {
  ParamSpec p;
  p.name = name;
  p.type = ParamType::Int;
  p.default_value = std::to_string(default_value);
  p.min = min;
  p.max = max;
  p.help = help;
  return p;
}

ParamSpec float_param(const std::string& name, const std::string& default_value, double min,
                      double max, const std::string& help) {
  ParamSpec p = int_param(name, 0, min, max, help);
  p.type = ParamType::Float;
  p.default_value = default_value;
  return p;
}

ParamSpec choice_param(const std::string& name, const std::string& default_value,
                       std::vector<std::string> choices, const std::string& help) {
  ParamSpec p;
  p.name = name;
  p.type = ParamType::Choice;
  p.default_value = default_value;
  p.choices = std::move(choices);
  p.help = help;
  return p;
}

ParamSpec bool_param(const std::string& name, bool default_value, const std::string& help) {
  ParamSpec p;
  p.name = name;
  p.type = ParamType::Bool;
  p.default_value = default_value ? "true" : "false";
  p.help = help;
  return p;
}

}  // namespace attnscope
