// Unit tests of the position parts: RoPE is the identity on distances; STRING maps r to r for
// r < S and to r - S + W beyond (checked against a hand-written table), resolves its default
// shift from the model's trained length, and rejects W >= S.
#include <gtest/gtest.h>

#include <set>

#include "attnscope/error.h"
#include "attnscope/variant_parts.h"

namespace attnscope {
namespace {

PartConfig config(const std::string& name, std::map<std::string, std::string> params = {}) {
  PartConfig c;
  c.name = name;
  c.params = std::move(params);
  return c;
}

Model model_with_context(int n) {
  Model m;
  m.config.context_length = n;
  return m;
}

TEST(PositionParts, RopeIsIdentity) {
  auto part = make_position_part(config("rope"), model_with_context(8192));
  for (int r = 0; r < 20000; ++r) ASSERT_EQ(part->effective_distance(r), r);
  EXPECT_EQ(part->shift(), 0);
  EXPECT_EQ(part->window(), 0);
}

TEST(PositionParts, StringDistanceTable) {
  auto part = make_position_part(config("string", {{"shift", "10"}, {"window", "3"}}),
                                 model_with_context(8192));
  // r < S unchanged; r >= S -> r - 10 + 3.
  const int table[][2] = {{0, 0}, {1, 1}, {9, 9}, {10, 3}, {11, 4}, {20, 13}, {100, 93}};
  for (const auto& row : table) {
    EXPECT_EQ(part->effective_distance(row[0]), row[1]) << "r=" << row[0];
  }
  EXPECT_EQ(part->shift(), 10);
  EXPECT_EQ(part->window(), 3);
}

TEST(PositionParts, StringDefaultShiftFromTrainedLength) {
  // round(0.33 * 8192) = round(2703.36) = 2703; round(0.33 * 2048) = round(675.84) = 676.
  auto a = make_position_part(config("string"), model_with_context(8192));
  EXPECT_EQ(a->shift(), 2703);
  EXPECT_EQ(a->window(), 128);
  auto b = make_position_part(config("string", {{"shift", "0"}}), model_with_context(2048));
  EXPECT_EQ(b->shift(), 676);
  // S beyond every distance of a run is the identity on that run.
  auto c = make_position_part(config("string", {{"shift", "5000"}}), model_with_context(8192));
  for (int r = 0; r < 5000; ++r) ASSERT_EQ(c->effective_distance(r), r);
}

TEST(PositionParts, StringErrors) {
  EXPECT_THROW(make_position_part(config("string"), model_with_context(0)), Error);
  EXPECT_THROW(make_position_part(config("string", {{"shift", "100"}, {"window", "100"}}),
                                  model_with_context(8192)),
               Error);
  EXPECT_THROW(make_position_part(config("string", {{"shift", "-1"}}), model_with_context(8192)),
               Error);
  EXPECT_THROW(make_position_part(config("nope"), model_with_context(8192)), Error);
}

TEST(PositionParts, Registry) {
  std::set<std::string> names;
  for (const PartSpec& s : position_part_specs()) {
    EXPECT_EQ(s.kind, PartKind::Positions);
    EXPECT_EQ(s.label, "training-free");
    names.insert(s.name);
    PartConfig c = config(s.name);
    for (const ParamSpec& p : s.params) c.params[p.name] = p.default_value;
    EXPECT_NO_THROW(make_position_part(c, model_with_context(8192))) << s.name;
  }
  EXPECT_EQ(names, (std::set<std::string>{"rope", "string"}));
}

}  // namespace
}  // namespace attnscope
