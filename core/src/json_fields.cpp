// Base64, byte-exact text fields and the checked JSON field reader shared by core's formats.
#include "json_fields.h"

#include <cmath>
#include <cstdio>
#include <ctime>

#include "attnscope/error.h"
#include "attnscope/file_util.h"

namespace attnscope {

using json = nlohmann::json;

namespace {

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

}  // namespace

std::string base64_encode(const uint8_t* p, size_t n) {
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  for (size_t i = 0; i < n; i += 3) {
    const uint32_t b = (uint32_t{p[i]} << 16) | (i + 1 < n ? uint32_t{p[i + 1]} << 8 : 0) |
                       (i + 2 < n ? uint32_t{p[i + 2]} : 0);
    out += kB64[(b >> 18) & 63];
    out += kB64[(b >> 12) & 63];
    out += i + 1 < n ? kB64[(b >> 6) & 63] : '=';
    out += i + 2 < n ? kB64[b & 63] : '=';
  }
  return out;
}

bool base64_decode(const std::string& s, std::vector<uint8_t>& out) {
  out.clear();
  if (s.size() % 4 != 0) return false;
  auto val = [](char ch) -> int {
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+') return 62;
    if (ch == '/') return 63;
    return -1;
  };
  out.reserve(s.size() / 4 * 3);
  for (size_t i = 0; i < s.size(); i += 4) {
    const bool last = i + 4 == s.size();
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      if (s[i + k] == '=' && last && k >= 2) {
        v[k] = 0;
        ++pad;
      } else {
        if (pad > 0) return false;
        v[k] = val(s[i + k]);
        if (v[k] < 0) return false;
      }
    }
    const uint32_t b =
        (uint32_t(v[0]) << 18) | (uint32_t(v[1]) << 12) | (uint32_t(v[2]) << 6) | uint32_t(v[3]);
    out.push_back(static_cast<uint8_t>(b >> 16));
    if (pad < 2) out.push_back(static_cast<uint8_t>((b >> 8) & 255));
    if (pad < 1) out.push_back(static_cast<uint8_t>(b & 255));
  }
  return true;
}

json text_json(const std::string& s) {
  if (is_valid_utf8(s)) return s;
  return json{{"base64", base64_encode(reinterpret_cast<const uint8_t*>(s.data()), s.size())}};
}

std::string utc_now_iso8601() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string json_preview(const json& v) {
  constexpr size_t kMaxPreview = 60;  // enough to recognise a value, short enough for one line
  std::string s = v.dump(-1, ' ', true, json::error_handler_t::replace);
  if (s.size() > kMaxPreview) s = s.substr(0, kMaxPreview) + "...";
  return s;
}

void JsonFields::fail(const std::string& field, const std::string& what) const {
  throw_bad_input(field.empty() ? m_file : m_file + ": " + field, what);
}

void JsonFields::fail_got(const std::string& field, const std::string& expected,
                          const json& v) const {
  fail(field, expected + ", got " + json_preview(v));
}

const json& JsonFields::object(const json& v, const std::string& field) const {
  if (!v.is_object()) fail_got(field, "expected an object", v);
  return v;
}

const json& JsonFields::array(const json& v, const std::string& field) const {
  if (!v.is_array()) fail_got(field, "expected an array", v);
  return v;
}

const json& JsonFields::at(const json& obj, const std::string& field,
                           const std::string& key) const {
  const json* v = find(obj, field, key);
  if (v == nullptr) fail(field_key(field, key), "missing required field");
  return *v;
}

const json* JsonFields::find(const json& obj, const std::string& field,
                             const std::string& key) const {
  object(obj, field);
  const auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

int64_t JsonFields::integer(const json& v, const std::string& field, int64_t lo, int64_t hi) const {
  // Appended piece by piece: GCC 12 warns (-Wrestrict, a false positive) on "[" + to_string().
  std::string expected = "expected an integer in [";
  expected += std::to_string(lo);
  expected += ", ";
  expected += std::to_string(hi);
  expected += "]";
  int64_t x = 0;
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(hi)) fail_got(field, expected, v);
    x = static_cast<int64_t>(u);
  } else if (v.is_number_integer()) {
    x = v.get<int64_t>();
  } else {
    fail_got(field, expected, v);
  }
  if (x < lo || x > hi) fail_got(field, expected, v);
  return x;
}

uint64_t JsonFields::u64(const json& v, const std::string& field) const {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0)
    return static_cast<uint64_t>(v.get<int64_t>());
  fail_got(field, "expected an unsigned 64-bit integer", v);
}

double JsonFields::number(const json& v, const std::string& field, double lo, double hi) const {
  if (!v.is_number()) fail_got(field, "expected a number", v);
  const double x = v.get<double>();
  if (!std::isfinite(x) || x < lo || x > hi) {
    const bool has_lo = lo > -std::numeric_limits<double>::max();
    const bool has_hi = hi < std::numeric_limits<double>::max();
    char buf[96] = "";
    if (has_lo && has_hi) {
      std::snprintf(buf, sizeof buf, " in [%.9g, %.9g]", lo, hi);
    } else if (has_lo) {
      std::snprintf(buf, sizeof buf, " >= %.9g", lo);
    } else if (has_hi) {
      std::snprintf(buf, sizeof buf, " <= %.9g", hi);
    }
    fail_got(field, std::string("expected a finite number") + buf, v);
  }
  return x;
}

std::string JsonFields::str(const json& v, const std::string& field) const {
  if (!v.is_string()) fail_got(field, "expected a string", v);
  return v.get<std::string>();
}

bool JsonFields::boolean(const json& v, const std::string& field) const {
  if (!v.is_boolean()) fail_got(field, "expected true or false", v);
  return v.get<bool>();
}

std::string JsonFields::text(const json& v, const std::string& field) const {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.size() == 1 && v.contains("base64")) {
    std::vector<uint8_t> bytes;
    if (!base64_decode(str(v.at("base64"), field + ".base64"), bytes)) {
      fail(field + ".base64", "expected base64 text");
    }
    return std::string(bytes.begin(), bytes.end());
  }
  fail_got(field, "expected a string or {\"base64\": ...}", v);
}

}  // namespace attnscope
