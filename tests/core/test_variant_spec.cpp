// Variant spec tests: text form parsing against a hand-made registry (defaults, canonical text,
// round trips, every error class with its message, value normalisation, IntList forms, display
// names, labels), a seeded fuzz loop, the CLI listings, and the real registry's consistency.
#include <gtest/gtest.h>

#include <charconv>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "attnscope/error.h"
#include "attnscope/variant_spec.h"

namespace attnscope {
namespace {

ParamSpec int_param(const std::string& name, const std::string& def, double lo, double hi) {
  ParamSpec p;
  p.name = name;
  p.type = ParamType::Int;
  p.default_value = def;
  p.min = lo;
  p.max = hi;
  p.help = "int " + name;
  return p;
}

ParamSpec float_param(const std::string& name, const std::string& def, double lo, double hi) {
  ParamSpec p = int_param(name, def, lo, hi);
  p.type = ParamType::Float;
  p.help = "float " + name;
  return p;
}

ParamSpec choice_param(const std::string& name, const std::string& def,
                       std::vector<std::string> choices) {
  ParamSpec p;
  p.name = name;
  p.type = ParamType::Choice;
  p.default_value = def;
  p.choices = std::move(choices);
  p.help = "choice " + name;
  return p;
}

ParamSpec bool_param(const std::string& name, const std::string& def) {
  ParamSpec p;
  p.name = name;
  p.type = ParamType::Bool;
  p.default_value = def;
  p.help = "bool " + name;
  return p;
}

ParamSpec list_param(const std::string& name, const std::string& def, double lo, double hi) {
  ParamSpec p = int_param(name, def, lo, hi);
  p.type = ParamType::IntList;
  p.help = "list " + name;
  return p;
}

PartSpec part(PartKind kind, const std::string& name, const std::string& label,
              std::vector<ParamSpec> params = {}) {
  PartSpec s;
  s.kind = kind;
  s.name = name;
  s.title = "Title of " + name;
  s.label = label;
  s.summary = "Summary of " + name + ".";
  s.params = std::move(params);
  return s;
}

const char* kTF = "training-free";
const char* kSim = "simulation (needs training)";

// A registry in the shape the real pieces have, declared deliberately out of kind order in
// places the parser must not care about.
const std::vector<PartSpec>& test_registry() {
  static const std::vector<PartSpec> reg = {
      part(PartKind::Grouping, "native", kTF),
      part(PartKind::Grouping, "kdgqa", kTF, {int_param("groups", "3", 1, 64)}),
      part(PartKind::Grouping, "pgqa", kTF,
           {float_param("sigma", "0.5", 0, 10), int_param("seed", "0", 0, 2147483647)}),
      part(PartKind::Grouping, "sqa", kSim, {int_param("query_heads", "3", 1, 64)}),
      part(PartKind::Pattern, "full", kTF),
      part(PartKind::Pattern, "window", kTF, {int_param("w", "256", 1, 1048576)}),
      part(PartKind::Pattern, "hybrid", kTF,
           {list_param("global_layers", "3,7,11", 0, 1023), int_param("window", "128", 1, 65536),
            bool_param("rope_global", "false")}),
      part(PartKind::Positions, "rope", kTF),
      part(PartKind::Positions, "string", kTF,
           {int_param("shift", "0", 0, 1048576), int_param("local", "128", 0, 1048576)}),
      part(PartKind::Kv, "full", kTF),
      part(PartKind::Kv, "snapkv", kTF,
           {int_param("budget", "512", 1, 1048576), int_param("window", "32", 1, 4096),
            int_param("kernel", "5", 1, 63), choice_param("pool", "avg", {"avg", "max"}),
            choice_param("reduce", "mean", {"mean", "max"})}),
      part(PartKind::Kv, "h2o", kTF,
           {float_param("heavy", "0.1", 0, 1), float_param("recent", "0.1", 0, 1)}),
  };
  return reg;
}

VariantSpec P(const std::string& text) {
  return parse_variant_spec(text, test_registry());
}
std::string S(const VariantSpec& v) {
  return variant_spec_to_string(v, test_registry());
}
std::string D(const std::string& text) {
  return variant_display_name(P(text), test_registry());
}

// The Error(Usage) message of parsing `text`, or "NO ERROR".
std::string usage_error(const std::string& text) {
  try {
    P(text);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage) << "spec: " << text << " message: " << e.what();
    return e.what();
  }
  return "NO ERROR";
}

const char* kBaselineText = "grouping=native;pattern=full;positions=rope;kv=full";

TEST(VariantSpec, EmptyTextIsTheBaseline) {
  for (const char* text : {"", "   ", ";", " ; ;; ", kBaselineText}) {
    const VariantSpec v = P(text);
    EXPECT_EQ(v.grouping.name, "native") << text;
    EXPECT_EQ(v.pattern.name, "full") << text;
    EXPECT_EQ(v.positions.name, "rope") << text;
    EXPECT_EQ(v.kv.name, "full") << text;
    EXPECT_TRUE(v.is_baseline()) << text;
    EXPECT_EQ(S(v), kBaselineText) << text;
    EXPECT_EQ(variant_display_name(v, test_registry()), "baseline") << text;
    EXPECT_FALSE(variant_needs_training(v, test_registry())) << text;
    EXPECT_TRUE(v == baseline_variant_spec(test_registry())) << text;
  }
}

TEST(VariantSpec, DefaultsFilledFromRegistry) {
  const VariantSpec v = P("kv=snapkv");
  const std::map<std::string, std::string> want = {
      {"budget", "512"}, {"window", "32"}, {"kernel", "5"}, {"pool", "avg"}, {"reduce", "mean"}};
  EXPECT_EQ(v.kv.params, want);
  EXPECT_EQ(v.kv.get_int("budget"), 512);
  EXPECT_EQ(v.kv.get_choice("pool"), "avg");
  // Only some given: the rest still take defaults.
  const VariantSpec w = P("kv=snapkv:budget=64");
  EXPECT_EQ(w.kv.get_int("budget"), 64);
  EXPECT_EQ(w.kv.get_int("window"), 32);
  // IntList default written with ',' in the registry is read and normalised to '+'.
  const VariantSpec h = P("pattern=hybrid");
  EXPECT_EQ(h.pattern.params.at("global_layers"), "3+7+11");
  EXPECT_EQ(h.pattern.get_int_list("global_layers"), (std::vector<int>{3, 7, 11}));
  EXPECT_FALSE(h.pattern.get_bool("rope_global"));
}

TEST(VariantSpec, IssueExampleCanonicalText) {
  const VariantSpec v =
      P("grouping=kdgqa;pattern=window:w=256;kv=snapkv:budget=512,window=32,kernel=5,pool=avg");
  EXPECT_EQ(S(v),
            "grouping=kdgqa:groups=3;pattern=window:w=256;positions=rope;"
            "kv=snapkv:budget=512,window=32,kernel=5,pool=avg,reduce=mean");
}

TEST(VariantSpec, CanonicalOrderIsKindOrderThenRegistryOrder) {
  // Kinds given in reverse, params in an order that is neither registry nor alphabetical.
  const VariantSpec v =
      P("kv=snapkv:reduce=max,pool=max,budget=64;positions=string:local=8,"
        "shift=2;grouping=pgqa:seed=7");
  EXPECT_EQ(S(v),
            "grouping=pgqa:sigma=0.5,seed=7;pattern=full;positions=string:shift=2,local=8;"
            "kv=snapkv:budget=64,window=32,kernel=5,pool=max,reduce=max");
}

TEST(VariantSpec, RoundTripsOnManySpecs) {
  const std::vector<std::string> specs = {
      "",
      "grouping=kdgqa",
      "grouping=kdgqa:groups=1",
      "grouping=pgqa:sigma=0.001,seed=2147483647",
      "grouping=sqa:query_heads=64;kv=h2o:heavy=0.25,recent=0",
      "pattern=window:w=1",
      "pattern=hybrid:global_layers=",
      "pattern=hybrid:global_layers=0+1023,window=65536,rope_global=1",
      "pattern=hybrid:global_layers=5",
      "positions=string:shift=1048576,local=0",
      "kv=snapkv:budget=1,window=4096,kernel=63,pool=max,reduce=max",
      "grouping=pgqa:sigma=1e-7;pattern=window:w=7;positions=string;kv=h2o:heavy=1,recent=1",
      "kv=h2o:heavy=0.30000000000000004",
  };
  for (const auto& text : specs) {
    const VariantSpec v = P(text);
    const std::string canon = S(v);
    const VariantSpec again = P(canon);
    EXPECT_TRUE(again == v) << "spec: " << text << " canonical: " << canon;
    EXPECT_EQ(S(again), canon) << "spec: " << text;
  }
}

// Random valid specs built from the registry: every value survives to_string/parse exactly.
TEST(VariantSpec, RandomValidSpecsRoundTrip) {
  const unsigned seed = 1234;
  std::mt19937 rng(seed);
  const auto& reg = test_registry();
  for (int iter = 0; iter < 500; ++iter) {
    std::string text;
    std::map<std::string, std::string> expect_values;  // "kind.param" -> typed value text
    for (PartKind kind :
         {PartKind::Kv, PartKind::Grouping, PartKind::Positions, PartKind::Pattern}) {
      if (rng() % 3 == 0) continue;
      std::vector<const PartSpec*> options;
      for (const auto& p : reg)
        if (p.kind == kind) options.push_back(&p);
      const PartSpec* chosen = options[rng() % options.size()];
      text += std::string(part_kind_name(kind)) + "=" + chosen->name;
      std::string params;
      for (const auto& p : chosen->params) {
        if (rng() % 2 == 0) continue;
        std::string value;
        switch (p.type) {
          case ParamType::Int: {
            std::uniform_int_distribution<long long> d(static_cast<long long>(p.min),
                                                       static_cast<long long>(p.max));
            value = std::to_string(d(rng));
            break;
          }
          case ParamType::Float: {
            std::uniform_real_distribution<double> d(p.min, p.max);
            char buf[64];
            const double x = d(rng);
            value = std::string(buf, std::to_chars(buf, buf + 64, x).ptr);
            break;
          }
          case ParamType::Bool:
            value = rng() % 2 ? "true" : "false";
            break;
          case ParamType::Choice:
            value = p.choices[rng() % p.choices.size()];
            break;
          case ParamType::IntList: {
            const int n = static_cast<int>(rng() % 4);
            for (int i = 0; i < n; ++i)
              value += (i ? "+" : "") + std::to_string(rng() % static_cast<unsigned>(p.max + 1));
            break;
          }
        }
        params += (params.empty() ? "" : ",") + p.name + "=" + value;
        expect_values[std::string(part_kind_name(kind)) + "." + p.name] = value;
      }
      if (!params.empty()) text += ":" + params;
      text += ";";
    }
    const VariantSpec v = P(text);
    for (const auto& [key, value] : expect_values) {
      const std::string kind_name = key.substr(0, key.find('.'));
      const std::string param = key.substr(key.find('.') + 1);
      const PartConfig& cfg = v.part(part_kind_from_name(kind_name));
      EXPECT_EQ(cfg.params.at(param), value) << "seed " << seed << " iter " << iter << ": " << text;
    }
    const VariantSpec again = P(S(v));
    ASSERT_TRUE(again == v) << "seed " << seed << " iter " << iter << ": " << text << " -> "
                            << S(v);
  }
}

TEST(VariantSpec, WhitespaceAroundTokensIsIgnored) {
  const VariantSpec tight =
      P("grouping=pgqa:sigma=0.5,seed=3;kv=snapkv:budget=64,pool=max;"
        "pattern=hybrid:global_layers=1+2");
  const VariantSpec loose =
      P("  grouping = pgqa : sigma = 0.5 ,\tseed=3 ;\n kv= snapkv :budget =64 , pool = max ; "
        "pattern = hybrid : global_layers = 1 + 2 ;  ");
  EXPECT_TRUE(tight == loose) << S(loose);
  // Whitespace inside a name is not tolerated.
  EXPECT_NE(usage_error("kv=snap kv").find("unknown kv part 'snap kv'"), std::string::npos);
}

TEST(VariantSpec, FloatValuesAreNormalisedToShortestRoundTrip) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"0.10", "0.1"}, {"1e-3", "0.001"}, {"5E0", "5"},
      {".5", "0.5"},   {"10.000", "10"},  {"0", "0"},
      {"-0", "0"},     {"1e-7", "1e-07"}, {"0.30000000000000004", "0.30000000000000004"},
      {"2.50", "2.5"},
  };
  for (const auto& [in, out] : cases) {
    const VariantSpec v = P("grouping=pgqa:sigma=" + in);
    EXPECT_EQ(v.grouping.params.at("sigma"), out) << "input " << in;
    EXPECT_EQ(v.grouping.get_double("sigma"), std::stod(in)) << "input " << in;
  }
  for (const char* bad :
       {"nan", "inf", "-inf", "1e400", "0x1p3", "1.5x", "", "1..2", "11", "-0.5", " 1 2"}) {
    const std::string msg = usage_error(std::string("grouping=pgqa:sigma=") + bad);
    EXPECT_NE(msg.find("pgqa.sigma: expected a finite number in [0, 10], got"), std::string::npos)
        << "value '" << bad << "': " << msg;
  }
}

TEST(VariantSpec, IntValuesStrict) {
  EXPECT_EQ(P("kv=snapkv:budget=0064").kv.params.at("budget"), "64");
  EXPECT_EQ(usage_error("kv=snapkv:budget=-1"),
            "variant 'kv=snapkv:budget=-1': snapkv.budget: expected an integer in [1, 1048576], "
            "got -1");
  for (const char* bad :
       {"12abc", "1.5", "+5", "0x10", "1e3", "99999999999999999999", "1048577", "0", "", "5 5"}) {
    const std::string msg = usage_error(std::string("kv=snapkv:budget=") + bad);
    EXPECT_NE(msg.find("snapkv.budget: expected an integer in [1, 1048576], got"),
              std::string::npos)
        << "value '" << bad << "': " << msg;
  }
  EXPECT_NE(usage_error("kv=snapkv:budget=").find("got ''"), std::string::npos);
  // Bounds print as plain integers; the function used by the parser is public.
  const ParamSpec big = int_param("n", "1", 0, 1e6);
  EXPECT_EQ(normalize_param_value("mine", big, " 1000000 "), "1000000");
  try {
    normalize_param_value("mine", big, "1000001");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "mine.n: expected an integer in [0, 1000000], got 1000001");
  }
  const ParamSpec frac = float_param("f", "0.5", 0.001, 2.5);
  EXPECT_NE(usage_error("grouping=pgqa:sigma=11").find("[0, 10]"), std::string::npos);
  try {
    normalize_param_value("mine", frac, "3");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "mine.f: expected a finite number in [0.001, 2.5], got 3");
  }
}

TEST(VariantSpec, BoolAndChoiceValues) {
  EXPECT_EQ(P("pattern=hybrid:rope_global=1").pattern.params.at("rope_global"), "true");
  EXPECT_EQ(P("pattern=hybrid:rope_global=0").pattern.params.at("rope_global"), "false");
  EXPECT_TRUE(P("pattern=hybrid:rope_global=true").pattern.get_bool("rope_global"));
  EXPECT_EQ(usage_error("pattern=hybrid:rope_global=yes"),
            "variant 'pattern=hybrid:rope_global=yes': hybrid.rope_global: expected true, false, "
            "1 or 0, got yes");
  EXPECT_EQ(usage_error("kv=snapkv:pool=median"),
            "variant 'kv=snapkv:pool=median': snapkv.pool: expected one of avg, max, got median");
  EXPECT_NE(usage_error("kv=snapkv:pool=AVG").find("expected one of avg, max"), std::string::npos);
}

TEST(VariantSpec, IntListForms) {
  const auto layers = [](const std::string& value) {
    return P("pattern=hybrid:global_layers=" + value).pattern.get_int_list("global_layers");
  };
  EXPECT_EQ(layers("3+7+11"), (std::vector<int>{3, 7, 11}));
  EXPECT_EQ(layers("3, 7, 11"), (std::vector<int>{3, 7, 11}));  // ',' continuation form
  EXPECT_EQ(layers("3+7,11"), (std::vector<int>{3, 7, 11}));
  EXPECT_EQ(layers("1023"), (std::vector<int>{1023}));
  EXPECT_EQ(layers(""), (std::vector<int>{}));
  EXPECT_EQ(layers(",4"), (std::vector<int>{4}));  // continuation of an empty value
  EXPECT_EQ(S(P("pattern=hybrid:global_layers=3,7,window=9")),
            "grouping=native;pattern=hybrid:global_layers=3+7,window=9,rope_global=false;"
            "positions=rope;kv=full");
  EXPECT_EQ(S(P("pattern=hybrid:global_layers=")),
            "grouping=native;pattern=hybrid:global_layers=,window=128,rope_global=false;"
            "positions=rope;kv=full");
  for (const char* bad : {"3++7", "3+x", "3+2000", "-1", "+3", "3+", "1.5"}) {
    const std::string msg = usage_error(std::string("pattern=hybrid:global_layers=") + bad);
    EXPECT_NE(msg.find("hybrid.global_layers: expected integers in [0, 1023] separated by '+'"),
              std::string::npos)
        << "value '" << bad << "': " << msg;
  }
  // A bare item after a non-list parameter is an error, not a continuation.
  EXPECT_EQ(usage_error("pattern=window:w=5,6"),
            "variant 'pattern=window:w=5,6': window: expected key=value, got 6");
}

TEST(VariantSpec, StructuralErrorsNameTheirPlace) {
  EXPECT_EQ(usage_error("pattren=window"),
            "variant 'pattren=window': unknown kind 'pattren' (expected one of grouping, pattern, "
            "positions, kv)");
  EXPECT_EQ(usage_error("kv=snapkvv"),
            "variant 'kv=snapkvv': unknown kv part 'snapkvv' (expected one of full, snapkv, h2o)");
  EXPECT_EQ(usage_error("kv="),
            "variant 'kv=': unknown kv part '' (expected one of full, snapkv, h2o)");
  EXPECT_EQ(usage_error("kv=snapkv:bugdet=5"),
            "variant 'kv=snapkv:bugdet=5': snapkv.bugdet: unknown parameter (expected one of "
            "budget, window, kernel, pool, reduce)");
  EXPECT_EQ(usage_error("kv=full:budget=5"),
            "variant 'kv=full:budget=5': full.budget: unknown parameter (full has no parameters)");
  EXPECT_EQ(usage_error("kv=full;kv=snapkv"), "variant 'kv=full;kv=snapkv': kind 'kv' given twice");
  EXPECT_EQ(usage_error("kv=snapkv:budget=5,budget=6"),
            "variant 'kv=snapkv:budget=5,budget=6': snapkv.budget: given twice");
  EXPECT_EQ(usage_error("snapkv"),
            "variant 'snapkv': expected kind=name with kind one of grouping, pattern, positions, "
            "kv, got snapkv");
  EXPECT_EQ(usage_error("kv=snapkv:=5"),
            "variant 'kv=snapkv:=5': snapkv: expected key=value, got =5");
  EXPECT_EQ(usage_error("kv=snapkv:budget=5,,window=3"),
            "variant 'kv=snapkv:budget=5,,window=3': snapkv: expected key=value, got ''");
  // A part name that exists only in another kind is not accepted.
  EXPECT_NE(usage_error("grouping=snapkv")
                .find("unknown grouping part 'snapkv' (expected one of "
                      "native, kdgqa, pgqa, sqa)"),
            std::string::npos);
}

TEST(VariantSpec, RegistryWithoutIdentityPartIsAClearError) {
  std::vector<PartSpec> reg = test_registry();
  reg.erase(reg.begin() + 7);  // positions "rope"
  ASSERT_EQ(find_part(reg, PartKind::Positions, "rope"), nullptr);
  try {
    parse_variant_spec("kv=snapkv", reg);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "variant 'kv=snapkv': the registry has no positions part 'rope' (the default when "
              "the kind is omitted)");
  }
  // Naming the kind explicitly still works.
  EXPECT_EQ(parse_variant_spec("positions=string", reg).positions.name, "string");
  EXPECT_THROW(validate_registry(reg), Error);
}

TEST(VariantSpec, DisplayNames) {
  EXPECT_EQ(D(""), "baseline");
  EXPECT_EQ(D("kv=snapkv"), "snapkv");
  EXPECT_EQ(D("kv=snapkv:budget=512"), "snapkv");  // the default is not listed
  EXPECT_EQ(D("grouping=kdgqa;kv=snapkv:budget=512"), "kdgqa + snapkv");
  EXPECT_EQ(D("kv=snapkv:pool=max,budget=64;grouping=kdgqa"),
            "kdgqa + snapkv(budget=64, pool=max)");
  EXPECT_EQ(D("grouping=pgqa:sigma=0.25;pattern=window:w=1024;positions=string:shift=64"),
            "pgqa(sigma=0.25) + window(w=1024) + string(shift=64)");
  EXPECT_EQ(D("grouping=pgqa:sigma=0.50"), "pgqa");  // normalised before comparing
}

TEST(VariantSpec, BaselineAndTrainingLabels) {
  // A window as long as any prompt behaves like full attention but is not the baseline spec.
  const VariantSpec wide = P("pattern=window:w=1048576");
  EXPECT_FALSE(wide.is_baseline());
  EXPECT_EQ(variant_display_name(wide, test_registry()), "window(w=1048576)");
  EXPECT_FALSE(P("kv=snapkv").is_baseline());
  EXPECT_FALSE(P("positions=string").is_baseline());
  EXPECT_FALSE(P("grouping=kdgqa").is_baseline());
  EXPECT_TRUE(P("grouping=native;kv=full").is_baseline());

  EXPECT_TRUE(variant_needs_training(P("grouping=sqa"), test_registry()));
  EXPECT_TRUE(variant_needs_training(P("grouping=sqa;kv=snapkv"), test_registry()));
  EXPECT_FALSE(variant_needs_training(P("grouping=kdgqa;kv=snapkv"), test_registry()));
}

TEST(VariantSpec, PartAccessAndEquality) {
  const VariantSpec v = P("grouping=kdgqa;pattern=window;positions=string;kv=h2o");
  EXPECT_EQ(v.part(PartKind::Grouping).name, "kdgqa");
  EXPECT_EQ(v.part(PartKind::Pattern).name, "window");
  EXPECT_EQ(v.part(PartKind::Positions).name, "string");
  EXPECT_EQ(v.part(PartKind::Kv).name, "h2o");
  EXPECT_FALSE(v == P("grouping=kdgqa;pattern=window;positions=string;kv=h2o:heavy=0.2"));
  EXPECT_TRUE(v == P("kv=h2o:heavy=0.1;positions=string;pattern=window:w=256;grouping=kdgqa"));
  for (PartKind k : {PartKind::Grouping, PartKind::Pattern, PartKind::Positions, PartKind::Kv})
    EXPECT_EQ(part_kind_from_name(part_kind_name(k)), k);
  EXPECT_THROW(part_kind_from_name("Kv"), Error);
  EXPECT_STREQ(default_part_name(PartKind::Positions), "rope");
  EXPECT_EQ(find_part(test_registry(), PartKind::Pattern, "full")->kind, PartKind::Pattern);
  EXPECT_EQ(find_part(test_registry(), PartKind::Kv, "full")->kind, PartKind::Kv);
  EXPECT_EQ(find_part(test_registry(), PartKind::Kv, "window"), nullptr);
}

TEST(VariantSpec, PartConfigGettersCheckKeyAndType) {
  PartConfig c;
  c.name = "mine";
  c.params = {{"n", "12"}, {"x", "0.25"}, {"flag", "1"}, {"mode", "avg"}, {"list", "1,2+3"}};
  EXPECT_EQ(c.get_int("n"), 12);
  EXPECT_EQ(c.get_double("x"), 0.25);
  EXPECT_EQ(c.get_double("n"), 12.0);
  EXPECT_TRUE(c.get_bool("flag"));
  EXPECT_EQ(c.get_choice("mode"), "avg");
  EXPECT_EQ(c.get_int_list("list"), (std::vector<int>{1, 2, 3}));
  const auto message = [&](auto&& call) -> std::string {
    try {
      call();
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Usage);
      return e.what();
    }
    return "NO ERROR";
  };
  EXPECT_EQ(message([&] { c.get_int("missing"); }),
            "mine.missing: no such parameter (has flag, list, mode, n, x)");
  EXPECT_EQ(message([&] { c.get_int("x"); }), "mine.x: expected an integer, got 0.25");
  EXPECT_EQ(message([&] { c.get_int("mode"); }), "mine.mode: expected an integer, got avg");
  EXPECT_EQ(message([&] { c.get_double("mode"); }), "mine.mode: expected a finite number, got avg");
  c.params["nan"] = "nan";  // getters check finiteness themselves, with no range to lean on
  EXPECT_EQ(message([&] { c.get_double("nan"); }), "mine.nan: expected a finite number, got nan");
  c.params.erase("nan");
  EXPECT_EQ(message([&] { c.get_bool("n"); }), "mine.n: expected true, false, 1 or 0, got 12");
  EXPECT_EQ(message([&] { c.get_int_list("mode"); }),
            "mine.mode: expected integers separated by '+', got avg");
  EXPECT_EQ(message([&] { c.get_choice("nope"); }),
            "mine.nope: no such parameter (has flag, list, mode, n, x)");
  PartConfig empty;
  empty.name = "bare";
  EXPECT_EQ(message([&] { empty.get_bool("b"); }), "bare.b: no such parameter (it has none)");
}

// Random strings made of the text form's own pieces: each either parses (and then round-trips)
// or throws Error(Usage); nothing else may escape and nothing may crash.
TEST(VariantSpec, FuzzParseNeverCrashes) {
  const unsigned seed = 20261124;
  std::mt19937 rng(seed);
  const std::vector<std::string> pieces = {
      "grouping", "pattern", "positions", "kv",
      "native",   "full",    "rope",      "snapkv",
      "h2o",      "hybrid",  "window",    "string",
      "pgqa",     "sigma",   "budget",    "global_layers",
      "pool",     "avg",     "=",         "=",
      ";",        ":",       ",",         "+",
      " ",        "\t",      "0",         "1",
      "-1",       "7",       "1e3",       ".5",
      "nan",      "true",    "\xff",      "99999999999999999999",
      "w",        "",        "|",         "\n",
      "=:",       ";;"};
  int parsed = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string text;
    const int n = static_cast<int>(rng() % 14);
    for (int i = 0; i < n; ++i) {
      if (rng() % 10 == 0)
        text += static_cast<char>(rng() % 256);
      else
        text += pieces[rng() % pieces.size()];
    }
    try {
      const VariantSpec v = P(text);
      ++parsed;
      const VariantSpec again = P(S(v));
      ASSERT_TRUE(again == v) << "seed " << seed << " iter " << iter << " text '" << text << "'";
    } catch (const Error& e) {
      ASSERT_EQ(e.kind(), ErrorKind::Usage)
          << "seed " << seed << " iter " << iter << " text '" << text << "': " << e.what();
      ASSERT_EQ(std::string(e.what()).rfind("variant '", 0), 0u) << e.what();
    } catch (const std::exception& e) {
      FAIL() << "seed " << seed << " iter " << iter << " text '" << text
             << "' threw a non-attnscope exception: " << e.what();
    }
  }
  // The generator must exercise both outcomes, or the test says nothing.
  EXPECT_GT(parsed, 100) << "seed " << seed;
  EXPECT_LT(parsed, 19000) << "seed " << seed;
}

TEST(VariantSpec, ValidateRegistryCatchesMistakes) {
  EXPECT_NO_THROW(validate_registry(test_registry()));
  const auto broken = [](auto&& edit) {
    std::vector<PartSpec> reg = test_registry();
    edit(reg);
    try {
      validate_registry(reg);
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Runtime);
      return std::string(e.what());
    }
    return std::string("NO ERROR");
  };
  // reg[10] is kv "snapkv", its params: budget, window, kernel, pool, reduce.
  EXPECT_NE(broken([](auto& r) { r[10].params[0].default_value = "0"; })
                .find("kv part 'snapkv': parameter 'budget': a valid default: snapkv.budget: "
                      "expected an integer in [1, 1048576], got 0"),
            std::string::npos);
  EXPECT_NE(broken([](auto& r) { r[11].name = "snapkv"; }).find("used twice"), std::string::npos);
  EXPECT_NE(broken([](auto& r) { r[10].params[1].name = "budget"; }).find("used twice"),
            std::string::npos);
  EXPECT_NE(broken([](auto& r) { r[10].params[3].choices.clear(); }).find("at least one choice"),
            std::string::npos);
  EXPECT_NE(broken([](auto& r) { r[10].params[0].max = 0.5; }).find("min <= max"),
            std::string::npos);
  EXPECT_NE(broken([](auto& r) { r[10].params[0].max = 1e12; }).find("within int"),
            std::string::npos);
  EXPECT_NE(broken([](auto& r) { r[1].name = "kd gqa"; }).find("a name without spaces"),
            std::string::npos);
  EXPECT_NE(broken([](auto& r) { r[1].label.clear(); }).find("a label"), std::string::npos);
  EXPECT_NE(broken([](auto& r) { r.erase(r.begin()); }).find("no grouping part 'native'"),
            std::string::npos);
}

TEST(VariantSpec, RegistryListings) {
  const std::string table = registry_table(test_registry());
  for (const auto& p : test_registry()) {
    EXPECT_NE(table.find(p.name), std::string::npos) << p.name;
    EXPECT_NE(table.find(p.title), std::string::npos) << p.title;
    for (const auto& q : p.params) {
      EXPECT_NE(table.find(q.help), std::string::npos) << q.name;
    }
  }
  EXPECT_NE(table.find("[1, 1048576]"), std::string::npos);
  EXPECT_NE(table.find("avg|max"), std::string::npos);
  EXPECT_NE(table.find("3+7+11"), std::string::npos);
  EXPECT_NE(table.find(kSim), std::string::npos);
  // Columns line up: a parameter row starts its name under PARAM, a part row its kind at 0.
  std::vector<std::string> lines;
  for (size_t start = 0, end; (end = table.find('\n', start)) != std::string::npos; start = end + 1)
    lines.push_back(table.substr(start, end - start));
  ASSERT_GT(lines.size(), 2u);
  const size_t param_col = lines[0].find("PARAM");
  const size_t help_col = lines[0].find("HELP");
  size_t budget_rows = 0;
  for (const auto& line : lines) {
    if (line.find("int budget") != std::string::npos) {
      ++budget_rows;
      EXPECT_EQ(line.find("budget"), param_col) << line;
      EXPECT_EQ(line.find("int budget"), help_col) << line;
    }
    if (line.rfind("kv ", 0) == 0) {
      EXPECT_NE(line.find("Title of"), std::string::npos) << line;
    }
  }
  EXPECT_EQ(budget_rows, 1u) << table;

  const auto j = nlohmann::json::parse(registry_json(test_registry()));
  ASSERT_EQ(j.at("parts").size(), test_registry().size());
  ASSERT_EQ(j.at("kinds").size(), 4u);
  EXPECT_EQ(j["kinds"][3]["kind"], "kv");
  EXPECT_EQ(j["kinds"][3]["default"], "full");
  const auto& snap = j["parts"][10];
  EXPECT_EQ(snap["kind"], "kv");
  EXPECT_EQ(snap["name"], "snapkv");
  EXPECT_EQ(snap["needs_training"], false);
  EXPECT_EQ(snap["params"][0]["name"], "budget");
  EXPECT_EQ(snap["params"][0]["type"], "int");
  EXPECT_EQ(snap["params"][0]["default"], "512");
  EXPECT_EQ(snap["params"][0]["max"], 1048576.0);
  EXPECT_EQ(snap["params"][3]["choices"], (nlohmann::json{"avg", "max"}));
  EXPECT_EQ(j["parts"][3]["needs_training"], true);  // sqa
  EXPECT_EQ(j["parts"][6]["params"][0]["default"], "3+7+11");
}

// The real registry (pieces defined beside the parts): usable, every part parses by name alone
// and round-trips, and the no-argument members agree with the explicit-registry functions.
TEST(VariantSpec, RealRegistryIsConsistent) {
  const auto& reg = variant_registry();
  ASSERT_NO_THROW(validate_registry(reg));
  EXPECT_EQ(&reg, &variant_registry());  // built once
  for (size_t i = 1; i < reg.size(); ++i)
    EXPECT_LE(static_cast<int>(reg[i - 1].kind), static_cast<int>(reg[i].kind)) << reg[i].name;
  EXPECT_TRUE(VariantSpec::baseline().is_baseline());
  EXPECT_EQ(VariantSpec::baseline().display_name(), "baseline");
  for (const auto& p : reg) {
    const std::string text = std::string(part_kind_name(p.kind)) + "=" + p.name;
    const VariantSpec v = VariantSpec::parse(text);
    EXPECT_EQ(v.part(p.kind).name, p.name);
    EXPECT_EQ(v.part(p.kind).params.size(), p.params.size()) << text;
    EXPECT_TRUE(VariantSpec::parse(v.to_string()) == v) << text << " -> " << v.to_string();
    EXPECT_EQ(v.needs_training(), p.label.rfind("simulation", 0) == 0) << text;
    EXPECT_EQ(find_part(p.kind, p.name), &p);
  }
}

}  // namespace
}  // namespace attnscope
