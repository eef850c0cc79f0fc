// JSON helpers shared by core's file formats (traces, sessions, needle and throughput results):
// base64 and byte-exact text fields, and a reader that checks every field's type and range and
// fails with Error(BadInput) "<file>: <field>: expected ..., got ...". Internal to core.
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace attnscope {

// Base64 (RFC 4648, with padding).
std::string base64_encode(const uint8_t* p, size_t n);
// Returns false on any character outside the alphabet, bad padding or a length not % 4.
bool base64_decode(const std::string& s, std::vector<uint8_t>& out);

// A byte string as JSON: the string itself when it is valid UTF-8, else {"base64": "..."}, so
// texts cut inside a UTF-8 sequence survive a round trip byte for byte.
nlohmann::json text_json(const std::string& s);

// "a.b" / "a[3]" field paths.
inline std::string field_key(const std::string& base, const std::string& key) {
  return base.empty() ? key : base + "." + key;
}
inline std::string field_index(const std::string& base, size_t i) {
  return base + "[" + std::to_string(i) + "]";
}

// Reads fields of one JSON document, named `file` in messages. Every accessor checks the type
// and range and throws Error(BadInput) "<file>: <field>: expected ..., got <value>".
class JsonFields {
 public:
  explicit JsonFields(std::string file) : m_file(std::move(file)) {}
  const std::string& file() const { return m_file; }

  [[noreturn]] void fail(const std::string& field, const std::string& what) const;
  // fail(field, expected + ", got " + a short rendering of v).
  [[noreturn]] void fail_got(const std::string& field, const std::string& expected,
                             const nlohmann::json& v) const;

  // The member `key` of object `obj` (itself at `field`): missing -> "missing required field".
  const nlohmann::json& at(const nlohmann::json& obj, const std::string& field,
                           const std::string& key) const;
  // The member or null when absent (obj must still be an object).
  const nlohmann::json* find(const nlohmann::json& obj, const std::string& field,
                             const std::string& key) const;
  const nlohmann::json& object(const nlohmann::json& v, const std::string& field) const;
  const nlohmann::json& array(const nlohmann::json& v, const std::string& field) const;

  int64_t integer(const nlohmann::json& v, const std::string& field, int64_t lo, int64_t hi) const;
  int i32(const nlohmann::json& v, const std::string& field,
          int64_t lo = std::numeric_limits<int32_t>::min(),
          int64_t hi = std::numeric_limits<int32_t>::max()) const {
    return static_cast<int>(integer(v, field, lo, hi));
  }
  // Any unsigned 64-bit integer, exactly (no detour through double).
  uint64_t u64(const nlohmann::json& v, const std::string& field) const;
  // A finite number in [lo, hi].
  double number(const nlohmann::json& v, const std::string& field,
                double lo = -std::numeric_limits<double>::max(),
                double hi = std::numeric_limits<double>::max()) const;
  std::string str(const nlohmann::json& v, const std::string& field) const;
  bool boolean(const nlohmann::json& v, const std::string& field) const;
  // A text_json value: a string or {"base64": ...}.
  std::string text(const nlohmann::json& v, const std::string& field) const;

 private:
  std::string m_file;
};

// Parses `text` as the document `fields` names and returns read(root, fields); a syntax error,
// or anything the accessors missed (a json exception), becomes Error(BadInput) naming it.
template <typename Read>
auto read_json_document(const std::string& text, const JsonFields& fields, Read&& read) {
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fields.fail("", std::string("expected valid JSON (") + e.what() + ")");
  }
  try {
    return read(static_cast<const nlohmann::json&>(root), fields);
  } catch (const nlohmann::json::exception& e) {
    fields.fail("", std::string("unexpected content (") + e.what() + ")");
  }
}

// The current time as ISO 8601 UTC ("2026-11-24T07:00:00Z"), for created_at fields.
std::string utc_now_iso8601();

// Short, single-line rendering of a JSON value for messages ("got ...").
std::string json_preview(const nlohmann::json& v);

}  // namespace attnscope
