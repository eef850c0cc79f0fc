// Variant specs: the short text form shared by the CLI, the GUI and trace files
// ("grouping=kdgqa;pattern=window:w=256;kv=snapkv:budget=512,window=32"), and the registry of
// every part with its parameters, defaults, valid ranges and a training-free/simulation label.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace attnscope {

enum class PartKind { Grouping, Pattern, Positions, Kv };
const char* part_kind_name(PartKind kind);  // "grouping", "pattern", "positions", "kv"

enum class ParamType { Int, Float, Choice, Bool, IntList };

struct ParamSpec {
  std::string name;
  ParamType type = ParamType::Int;
  std::string default_value;         // text form, e.g. "256", "0.9", "avg", "true", "3+7+11"
                                     // (IntList: '+' separated; ',' also accepted here; "" = empty)
  double min = 0, max = 0;           // inclusive range for Int/Float (and each IntList item)
  std::vector<std::string> choices;  // for Choice
  std::string help;                  // one line: meaning + which source the default follows
};

struct PartSpec {
  PartKind kind = PartKind::Grouping;
  std::string name;   // "kdgqa"
  std::string title;  // "Key-driven GQA (KDGQA)"
  // "training-free", "training-free + calibration", "simulation (needs training)"
  std::string label;
  std::string summary;  // one or two sentences
  std::vector<ParamSpec> params;
};

// Builders for registry entries, shared by every *_part_specs(). Ranges are inclusive.
ParamSpec int_param(const std::string& name, int default_value, double min, double max,
                    const std::string& help);
ParamSpec float_param(const std::string& name, const std::string& default_value, double min,
                      double max, const std::string& help);
ParamSpec choice_param(const std::string& name, const std::string& default_value,
                       std::vector<std::string> choices, const std::string& help);
ParamSpec bool_param(const std::string& name, bool default_value, const std::string& help);

// Registry pieces, each defined beside its parts (grouping_parts.cpp, pattern_parts.cpp for the
// pattern and positions kinds, kv_policies.cpp); variant_registry() concatenates them.
std::vector<PartSpec> grouping_part_specs();
std::vector<PartSpec> pattern_part_specs();
std::vector<PartSpec> position_part_specs();
std::vector<PartSpec> kv_part_specs();

// Every part, in display order. Names are unique within a kind.
const std::vector<PartSpec>& variant_registry();
const PartSpec* find_part(PartKind kind, std::string_view name);

// One chosen part with its parameters, all present (defaults filled in) and validated.
struct PartConfig {
  std::string name;
  std::map<std::string, std::string> params;
  int get_int(const std::string& key) const;
  double get_double(const std::string& key) const;
  bool get_bool(const std::string& key) const;
  const std::string& get_choice(const std::string& key) const;
  std::vector<int> get_int_list(const std::string& key) const;
};

struct VariantSpec {
  PartConfig grouping;   // default "native"
  PartConfig pattern;    // default "full"
  PartConfig positions;  // default "rope"
  PartConfig kv;         // default "full"

  // Parses the text form. Parts omitted take their defaults; parameters omitted take theirs.
  // Throws Error(Usage) naming the part and parameter: "variant 'kv=snapkv:budget=-1':
  // snapkv.budget: expected an integer in [1, 1048576], got -1".
  static VariantSpec parse(std::string_view text);
  static VariantSpec baseline();
  // Canonical text with every parameter spelled out, so parse(to_string()) == *this.
  std::string to_string() const;
  // Short human name, e.g. "snapkv(budget=512)" listing only non-default parameters.
  std::string display_name() const;
  bool is_baseline() const;     // every part is the identity part
  bool needs_training() const;  // some part is labelled simulation
  const PartConfig& part(PartKind kind) const;
  bool operator==(const VariantSpec& other) const;
};

// ---------------------------------------------------------------------------------------------
// Additions (additive to the contract above). Text form, precisely:
//   spec   := [part (';' part)*]            empty parts (";;", trailing ';') are ignored
//   part   := kind '=' name [':' param (',' param)*]
//   param  := key '=' value                 whitespace around every token is ignored
// Kinds: grouping | pattern | positions | kv, each at most once; omitted kinds take the identity
// parts native | full | rope | full. Values: Int = decimal integer; Float = finite decimal number;
// Bool = true|false|1|0; Choice = one of the listed choices; IntList = integers separated by '+'
// ("global_layers=3+7+11"; "" = empty list; for convenience "3,7,11" is also read, since an item
// without '=' after an IntList parameter continues it). to_string() writes kinds in the order
// above, every parameter in registry order, values normalised (Bool as true/false, Float as the
// shortest text that reads back to the same double, IntList with '+').

// Identity part of each kind ("native", "full", "rope", "full").
const char* default_part_name(PartKind kind);
// Inverse of part_kind_name; throws Error(Usage) listing the kinds.
PartKind part_kind_from_name(std::string_view name);
const char* param_type_name(ParamType type);  // "int", "float", "choice", "bool", "int_list"

// The operations above against an explicit registry (tests and tools may bring their own); the
// member functions of VariantSpec use variant_registry(). Parts absent from `registry` (e.g. a
// spec read from an old trace) are written with their parameters in stored order.
const PartSpec* find_part(const std::vector<PartSpec>& registry, PartKind kind,
                          std::string_view name);
VariantSpec parse_variant_spec(std::string_view text, const std::vector<PartSpec>& registry);
VariantSpec baseline_variant_spec(const std::vector<PartSpec>& registry);
std::string variant_spec_to_string(const VariantSpec& spec, const std::vector<PartSpec>& registry);
std::string variant_display_name(const VariantSpec& spec, const std::vector<PartSpec>& registry);
bool variant_needs_training(const VariantSpec& spec, const std::vector<PartSpec>& registry);

// Validates one value against its ParamSpec and returns it normalised; throws Error(Usage)
// "<part>.<param>: expected <what>, got <value>".
std::string normalize_param_value(const std::string& part_name, const ParamSpec& param,
                                  std::string_view value);

// Checks a registry is usable: names unique within a kind, the identity parts present, choices
// non-empty, ranges ordered (Int ranges within int), every default valid. Throws Error(Runtime).
void validate_registry(const std::vector<PartSpec>& registry);

// For the CLI `variants` command: a plain-text table (kind, name, label, title, summary, then one
// row per parameter with type, default, range or choices, help) and the same as JSON text.
std::string registry_table();
std::string registry_table(const std::vector<PartSpec>& registry);
std::string registry_json();
std::string registry_json(const std::vector<PartSpec>& registry);

}  // namespace attnscope
