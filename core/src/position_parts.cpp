// Position parts: RoPE as trained (identity distances) and STRING (shifted relative distances:
// r' = r for r < S, else r - S + W), with their registry entries and make_position_part.
// STRING's default shift is resolved against the model: round(0.33 x context_length).
#include <cmath>

#include "attnscope/error.h"
#include "attnscope/variant_parts.h"
#include "pattern_internal.h"

namespace attnscope {
namespace {

constexpr const char* kKind = "positions";
constexpr double kStringShiftFraction = 0.33;  // STRING: S = 0.33 * trained length
constexpr int kStringWindowDefault = 128;      // STRING: local window W = 128

class RopePositions final : public PositionPart {
 public:
  int effective_distance(int r) const override { return r; }
};

class StringPositions final : public PositionPart {
 public:
  StringPositions(int shift, int window) : m_shift(shift), m_window(window) {}
  int effective_distance(int r) const override { return r < m_shift ? r : r - m_shift + m_window; }
  int shift() const override { return m_shift; }
  int window() const override { return m_window; }

 private:
  int m_shift, m_window;
};

// A non-negative token count or distance.
ParamSpec distance_param(const std::string& name, int def, const std::string& help) {
  return int_param(name, def, 0, pattern_detail::kMaxTokens, help);
}

}  // namespace

std::vector<PartSpec> position_part_specs() {
  std::vector<PartSpec> specs;
  {
    PartSpec s;
    s.kind = PartKind::Positions;
    s.name = "rope";
    s.title = "RoPE as trained";
    s.label = "training-free";
    s.summary = "Relative distances enter the scores unchanged (identity).";
    specs.push_back(s);
  }
  {
    PartSpec s;
    s.kind = PartKind::Positions;
    s.name = "string";
    s.title = "STRING (shifted RoPE distances)";
    s.label = "training-free";
    s.summary =
        "Distances r >= S are replaced by r - S + W, reusing the well-trained smaller "
        "distances; exact positions within S. No effect on prompts shorter than S.";
    s.params = {
        distance_param("shift", 0,
                  "S in tokens; 0 = round(0.33 x the model's trained context length) (STRING "
                  "default 0.33 Lt, range 0.25-0.4; 2703 for SmolLM2's 8192); S >= the run's "
                  "length is the identity"),
        distance_param("window", kStringWindowDefault,
                  "local window W < S kept exact (STRING default 128; try 256-512 if output "
                  "degrades)"),
    };
    specs.push_back(s);
  }
  return specs;
}

std::unique_ptr<PositionPart> make_position_part(const PartConfig& config, const Model& model) {
  using pattern_detail::param_int;
  if (config.name == "rope") return std::make_unique<RopePositions>();
  if (config.name == "string") {
    int shift = param_int(config, kKind, "shift", 0, 0, pattern_detail::kMaxTokens);
    const int window =
        param_int(config, kKind, "window", kStringWindowDefault, 0, pattern_detail::kMaxTokens);
    if (shift == 0) {
      const int ctx = model.config.context_length;
      if (ctx <= 0) {
        throw_usage(
            "positions string.shift: the model has no context length; give shift "
            "explicitly");
      }
      shift = static_cast<int>(std::lround(kStringShiftFraction * ctx));
    }
    if (window >= shift) {
      throw_usage("positions string.window: expected W < S = " + std::to_string(shift) + ", got " +
                  std::to_string(window));
    }
    return std::make_unique<StringPositions>(shift, window);
  }
  throw_usage("positions '" + config.name + "': unknown positions part (expected rope or string)");
}

}  // namespace attnscope
