// GGUF writer and block-format quantizers for tests. The quantizers are written from the
// format definition (element -> byte/bit position, value formula) and deliberately do not
// share code with the library's dequantizers.
#include "gguf_writer.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "attnscope/ggml_types.h"

namespace attnscope::test {
namespace {

template <typename T>
std::string le(T v) {
  std::string s(sizeof(T), '\0');
  std::memcpy(s.data(), &v, sizeof(T));
  return s;
}

std::string gguf_string(const std::string& s) {
  return le<uint64_t>(s.size()) + s;
}

// GGUF value-type ids.
enum : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};

// ----- quantizer helpers -----

// Stores an fp16 scale and returns the value the file will really hold.
float put_half(std::string& out, float v) {
  const uint16_t h = fp32_to_fp16(v);
  out += le<uint16_t>(h);
  return fp16_to_fp32(h);
}

float half_round(float v) {
  return fp16_to_fp32(fp32_to_fp16(v));
}

// ORs `value` (nbits wide) into block byte `byte` at bit `shift`.
void put_bits(std::string& block, size_t byte, unsigned shift, unsigned value) {
  block[byte] = static_cast<char>(static_cast<uint8_t>(block[byte]) | (value << shift));
}

int round_clamp(float v, int lo, int hi) {
  if (!std::isfinite(v)) return lo;
  return std::clamp(static_cast<int>(std::lround(v)), lo, hi);
}

float max_abs(const float* x, size_t n) {
  float m = 0.0f;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
  return m;
}

void check_blocks(const std::vector<float>& x, size_t block) {
  if (x.size() % block != 0) throw std::invalid_argument("quantize: not a whole number of blocks");
}

// Legacy 32-element formats. Quant j < 16 is the low nibble of byte j of the nibble array,
// quant j >= 16 the high nibble of byte j - 16; the 5th bit (Q5_*) of quant j is bit j of qh.
Quantized quantize_legacy(const std::vector<float>& x, int bits, bool has_min) {
  check_blocks(x, 32);
  Quantized out;
  const int qmax = (1 << bits) - 1;
  for (size_t b = 0; b < x.size(); b += 32) {
    const float* xb = x.data() + b;
    float d = 0.0f, m = 0.0f;
    std::string header;
    if (has_min) {
      const float lo = *std::min_element(xb, xb + 32), hi = *std::max_element(xb, xb + 32);
      d = put_half(header, (hi - lo) / static_cast<float>(qmax));
      m = put_half(header, lo);
    } else {
      d = put_half(header, max_abs(xb, 32) / static_cast<float>(qmax / 2));
    }
    const int offset = has_min ? 0 : (qmax + 1) / 2;  // Q4_0: q - 8, Q5_0: q - 16
    int q[32];
    for (size_t j = 0; j < 32; ++j) {
      const float t = has_min ? (xb[j] - m) / d : xb[j] / d;
      q[j] = d == 0.0f ? offset : round_clamp(t, -offset, qmax - offset) + offset;
      out.expected.push_back(has_min ? static_cast<float>(q[j]) * d + m
                                     : static_cast<float>(q[j] - offset) * d);
    }
    std::string qh(4, '\0'), qs(16, '\0');
    for (size_t j = 0; j < 32; ++j) {
      put_bits(qs, j % 16, j < 16 ? 0 : 4, static_cast<unsigned>(q[j] & 15));
      if (bits == 5) put_bits(qh, j / 8, j % 8, static_cast<unsigned>(q[j] >> 4));
    }
    out.bytes += header + (bits == 5 ? qh : "") + qs;
  }
  return out;
}

// Per-sub-block asymmetric scale/min for the "d*sc*q - dmin*m" K-formats.
struct ScaleMin {
  std::vector<int> sc, m;
  float d = 0.0f, dmin = 0.0f;  // as stored (fp16-rounded)
};

ScaleMin choose_scale_min(const float* x, size_t n_sub, size_t sub_len, int qmax, int smax) {
  std::vector<float> scale(n_sub), minv(n_sub);
  for (size_t s = 0; s < n_sub; ++s) {
    const float* xs = x + s * sub_len;
    const float lo = std::min(0.0f, *std::min_element(xs, xs + sub_len));
    const float hi = *std::max_element(xs, xs + sub_len);
    scale[s] = (hi - lo) / static_cast<float>(qmax);
    minv[s] = -lo;
  }
  ScaleMin r;
  r.d = half_round(*std::max_element(scale.begin(), scale.end()) / static_cast<float>(smax));
  r.dmin = half_round(*std::max_element(minv.begin(), minv.end()) / static_cast<float>(smax));
  for (size_t s = 0; s < n_sub; ++s) {
    r.sc.push_back(r.d == 0.0f ? 0 : round_clamp(scale[s] / r.d, 0, smax));
    r.m.push_back(r.dmin == 0.0f ? 0 : round_clamp(minv[s] / r.dmin, 0, smax));
  }
  return r;
}

// q for value x in sub-block s of an asymmetric K-format, and the value the format defines.
int quant_asym(const ScaleMin& sm, size_t s, float x, int qmax, float* value) {
  const float step = sm.d * static_cast<float>(sm.sc[s]);
  const float mn = sm.dmin * static_cast<float>(sm.m[s]);
  const int q = step == 0.0f ? 0 : round_clamp((x + mn) / step, 0, qmax);
  *value = step * static_cast<float>(q) - mn;
  return q;
}

// The 12-byte scale/min packing of Q4_K and Q5_K (8 six-bit scales, 8 six-bit mins).
std::string pack_k4_scales(const ScaleMin& sm) {
  std::string s(12, '\0');
  for (size_t j = 0; j < 8; ++j) {
    const auto sc = static_cast<unsigned>(sm.sc[j]), m = static_cast<unsigned>(sm.m[j]);
    if (j < 4) {
      put_bits(s, j, 0, sc);     // bytes 0..3: scale, 6 bits
      put_bits(s, j + 4, 0, m);  // bytes 4..7: min, 6 bits
    } else {
      put_bits(s, j + 4, 0, sc & 15);  // bytes 8..11 low nibble: scale low 4 bits
      put_bits(s, j + 4, 4, m & 15);   // bytes 8..11 high nibble: min low 4 bits
      put_bits(s, j - 4, 6, sc >> 4);  // top 2 bits of bytes 0..3: scale high bits
      put_bits(s, j, 6, m >> 4);       // top 2 bits of bytes 4..7: min high bits
    }
  }
  return s;
}

// Signed per-sub-block scales for the symmetric K-formats (Q3_K, Q6_K), whose quants span
// -qhalf..qhalf-1: the scale's sign is chosen so that the largest-magnitude value maps to
// -qhalf (so scales of both signs occur in random data, exercising the format's sign).
std::vector<int> choose_signed_scales(const float* x, size_t n_sub, size_t sub_len, int qhalf,
                                      int smax, float* d) {
  std::vector<float> scale(n_sub);
  for (size_t s = 0; s < n_sub; ++s) {
    const float* xs = x + s * sub_len;
    float extreme = 0.0f;
    for (size_t i = 0; i < sub_len; ++i) {
      if (std::fabs(xs[i]) > std::fabs(extreme)) extreme = xs[i];
    }
    scale[s] = -extreme / static_cast<float>(qhalf);
  }
  float amax = 0.0f;
  for (float v : scale) amax = std::max(amax, std::fabs(v));
  *d = half_round(amax / static_cast<float>(smax));
  std::vector<int> sc(n_sub);
  for (size_t s = 0; s < n_sub; ++s)
    sc[s] = *d == 0.0f ? 0 : round_clamp(scale[s] / *d, -smax, smax);
  return sc;
}

}  // namespace

// ----- values -----

GgufWValue gv_u8(uint8_t v) {
  return {kU8, le(v)};
}
GgufWValue gv_i8(int8_t v) {
  return {kI8, le(v)};
}
GgufWValue gv_u16(uint16_t v) {
  return {kU16, le(v)};
}
GgufWValue gv_i16(int16_t v) {
  return {kI16, le(v)};
}
GgufWValue gv_u32(uint32_t v) {
  return {kU32, le(v)};
}
GgufWValue gv_i32(int32_t v) {
  return {kI32, le(v)};
}
GgufWValue gv_u64(uint64_t v) {
  return {kU64, le(v)};
}
GgufWValue gv_i64(int64_t v) {
  return {kI64, le(v)};
}
GgufWValue gv_f32(float v) {
  return {kF32, le(v)};
}
GgufWValue gv_f64(double v) {
  return {kF64, le(v)};
}
GgufWValue gv_bool(bool v) {
  return {kBool, le<uint8_t>(v ? 1 : 0)};
}
GgufWValue gv_string(const std::string& v) {
  return {kString, gguf_string(v)};
}

GgufWValue gv_array(uint32_t element_type, const std::vector<GgufWValue>& elements) {
  std::string p = le(element_type) + le<uint64_t>(elements.size());
  for (const auto& e : elements) p += e.payload;
  return {kArray, p};
}
GgufWValue gv_string_array(const std::vector<std::string>& v) {
  std::vector<GgufWValue> e;
  for (const auto& s : v) e.push_back(gv_string(s));
  return gv_array(kString, e);
}
GgufWValue gv_i32_array(const std::vector<int32_t>& v) {
  std::vector<GgufWValue> e;
  for (auto x : v) e.push_back(gv_i32(x));
  return gv_array(kI32, e);
}
GgufWValue gv_f32_array(const std::vector<float>& v) {
  std::vector<GgufWValue> e;
  for (auto x : v) e.push_back(gv_f32(x));
  return gv_array(kF32, e);
}

// ----- writer -----

void GgufWriter::add(const std::string& key, GgufWValue value) {
  m_kv.emplace_back(key, std::move(value));
}

void GgufWriter::set_alignment(uint32_t alignment) {
  m_alignment = alignment;
  add("general.alignment", gv_u32(alignment));
}

void GgufWriter::add_tensor(GgufWTensor tensor) {
  m_tensors.push_back(std::move(tensor));
}

void GgufWriter::add_f32_tensor(const std::string& name, std::vector<uint64_t> dims,
                                const std::vector<float>& values) {
  std::string data(values.size() * 4, '\0');
  std::memcpy(data.data(), values.data(), data.size());
  add_tensor({name, std::move(dims), 0, std::move(data), std::nullopt});
}

std::string GgufWriter::bytes() const {
  const uint64_t align = m_alignment == 0 ? 1 : m_alignment;
  auto pad_to = [&](uint64_t n) { return (align - n % align) % align; };
  std::string out = le<uint32_t>(magic_override.value_or(0x46554747u));
  out += le<uint32_t>(m_version);
  out += le<uint64_t>(tensor_count_override.value_or(m_tensors.size()));
  out += le<uint64_t>(kv_count_override.value_or(m_kv.size()));
  for (const auto& [key, value] : m_kv) out += gguf_string(key) + le(value.type) + value.payload;
  std::string data;
  for (const auto& t : m_tensors) {
    data += std::string(pad_to(data.size()), '\0');
    out += gguf_string(t.name) + le<uint32_t>(static_cast<uint32_t>(t.dims.size()));
    for (auto d : t.dims) out += le<uint64_t>(d);
    out += le<uint32_t>(t.type_id) + le<uint64_t>(t.offset_override.value_or(data.size()));
    data += t.data;
  }
  out += std::string(pad_to(out.size()), '\0');
  return out + data;
}

void GgufWriter::write(const std::filesystem::path& path) const {
  const std::string b = bytes();
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(b.data(), static_cast<std::streamsize>(b.size()));
  if (!f) throw std::runtime_error("cannot write " + path.string());
}

// ----- quantizers -----

Quantized quantize_f16(const std::vector<float>& x) {
  Quantized out;
  for (float v : x) out.expected.push_back(put_half(out.bytes, v));
  return out;
}

Quantized quantize_bf16(const std::vector<float>& x) {
  Quantized out;
  for (float v : x) {
    // bfloat16 is the top half of the fp32 bits, rounded to nearest even.
    const uint32_t bits = std::bit_cast<uint32_t>(v);
    const auto h = static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
    out.bytes += le(h);
    out.expected.push_back(std::bit_cast<float>(static_cast<uint32_t>(h) << 16));
  }
  return out;
}

Quantized quantize_q4_0(const std::vector<float>& x) {
  return quantize_legacy(x, 4, false);
}
Quantized quantize_q4_1(const std::vector<float>& x) {
  return quantize_legacy(x, 4, true);
}
Quantized quantize_q5_0(const std::vector<float>& x) {
  return quantize_legacy(x, 5, false);
}
Quantized quantize_q5_1(const std::vector<float>& x) {
  return quantize_legacy(x, 5, true);
}

// Q8_0: fp16 d, then 32 int8 quants; value = q * d.
Quantized quantize_q8_0(const std::vector<float>& x) {
  check_blocks(x, 32);
  Quantized out;
  for (size_t b = 0; b < x.size(); b += 32) {
    const float d = put_half(out.bytes, max_abs(&x[b], 32) / 127.0f);
    for (size_t j = 0; j < 32; ++j) {
      const int q = d == 0.0f ? 0 : round_clamp(x[b + j] / d, -127, 127);
      out.bytes += le<int8_t>(static_cast<int8_t>(q));
      out.expected.push_back(static_cast<float>(q) * d);
    }
  }
  return out;
}

// Q2_K: scales[16] (per 16 elements: low nibble scale, high nibble min), qs[64], fp16 d,
// fp16 dmin. Quant of element i (2 bits): byte 32*(i/128) + i%32, bit pair (i%128)/32.
// value = d*scale*q - dmin*min.
Quantized quantize_q2_k(const std::vector<float>& x) {
  check_blocks(x, 256);
  Quantized out;
  for (size_t b = 0; b < x.size(); b += 256) {
    const ScaleMin sm = choose_scale_min(&x[b], 16, 16, 3, 15);
    std::string scales(16, '\0'), qs(64, '\0');
    for (size_t s = 0; s < 16; ++s) {
      put_bits(scales, s, 0, static_cast<unsigned>(sm.sc[s]));
      put_bits(scales, s, 4, static_cast<unsigned>(sm.m[s]));
    }
    for (size_t i = 0; i < 256; ++i) {
      float v = 0.0f;
      const int q = quant_asym(sm, i / 16, x[b + i], 3, &v);
      put_bits(qs, 32 * (i / 128) + i % 32, static_cast<unsigned>(2 * ((i % 128) / 32)),
               static_cast<unsigned>(q));
      out.expected.push_back(v);
    }
    out.bytes += scales + qs;
    put_half(out.bytes, sm.d);
    put_half(out.bytes, sm.dmin);
  }
  return out;
}

// Q3_K: hmask[32], qs[64], scales[12], fp16 d. Quant q3 (0..7) of element i: low 2 bits as
// in Q2_K, bit 2 is bit i/32 of hmask[i%32]. Sixteen 6-bit scales stored with +32 offset:
// low 4 bits in the low (s < 8) or high (s >= 8) nibble of byte s%8, high 2 bits in byte
// 8 + s%4 at bit 2*(s/4). value = d * (scale6 - 32) * (q3 - 4).
Quantized quantize_q3_k(const std::vector<float>& x) {
  check_blocks(x, 256);
  Quantized out;
  for (size_t b = 0; b < x.size(); b += 256) {
    float d = 0.0f;
    const std::vector<int> sc = choose_signed_scales(&x[b], 16, 16, 4, 31, &d);
    std::string hmask(32, '\0'), qs(64, '\0'), scales(12, '\0');
    for (size_t s = 0; s < 16; ++s) {
      const auto u = static_cast<unsigned>(sc[s] + 32);
      put_bits(scales, s % 8, s < 8 ? 0 : 4, u & 15);
      put_bits(scales, 8 + s % 4, static_cast<unsigned>(2 * (s / 4)), u >> 4);
    }
    for (size_t i = 0; i < 256; ++i) {
      const float step = d * static_cast<float>(sc[i / 16]);
      const int q = step == 0.0f ? 0 : round_clamp(x[b + i] / step, -4, 3);
      const auto q3 = static_cast<unsigned>(q + 4);
      put_bits(qs, 32 * (i / 128) + i % 32, static_cast<unsigned>(2 * ((i % 128) / 32)), q3 & 3);
      put_bits(hmask, i % 32, static_cast<unsigned>(i / 32), q3 >> 2);
      out.expected.push_back(d * static_cast<float>(sc[i / 16]) * static_cast<float>(q));
    }
    out.bytes += hmask + qs + scales;
    put_half(out.bytes, d);
  }
  return out;
}

// Q4_K: fp16 d, fp16 dmin, scales[12] (pack_k4_scales), qs[128]. Element i: 32-element
// sub-block i/32; its quant is nibble (i/32)%2 of byte 32*(i/64) + i%32.
// value = d*scale*q - dmin*min.
Quantized quantize_q4_k(const std::vector<float>& x) {
  check_blocks(x, 256);
  Quantized out;
  for (size_t b = 0; b < x.size(); b += 256) {
    const ScaleMin sm = choose_scale_min(&x[b], 8, 32, 15, 63);
    std::string qs(128, '\0');
    for (size_t i = 0; i < 256; ++i) {
      float v = 0.0f;
      const int q = quant_asym(sm, i / 32, x[b + i], 15, &v);
      put_bits(qs, 32 * (i / 64) + i % 32, static_cast<unsigned>(4 * ((i / 32) % 2)),
               static_cast<unsigned>(q));
      out.expected.push_back(v);
    }
    put_half(out.bytes, sm.d);
    put_half(out.bytes, sm.dmin);
    out.bytes += pack_k4_scales(sm) + qs;
  }
  return out;
}

// Q5_K: as Q4_K with qh[32] before qs: the 5th bit of element i is bit i/32 of qh[i%32].
Quantized quantize_q5_k(const std::vector<float>& x) {
  check_blocks(x, 256);
  Quantized out;
  for (size_t b = 0; b < x.size(); b += 256) {
    const ScaleMin sm = choose_scale_min(&x[b], 8, 32, 31, 63);
    std::string qh(32, '\0'), qs(128, '\0');
    for (size_t i = 0; i < 256; ++i) {
      float v = 0.0f;
      const int q = quant_asym(sm, i / 32, x[b + i], 31, &v);
      put_bits(qs, 32 * (i / 64) + i % 32, static_cast<unsigned>(4 * ((i / 32) % 2)),
               static_cast<unsigned>(q & 15));
      put_bits(qh, i % 32, static_cast<unsigned>(i / 32), static_cast<unsigned>(q >> 4));
      out.expected.push_back(v);
    }
    put_half(out.bytes, sm.d);
    put_half(out.bytes, sm.dmin);
    out.bytes += pack_k4_scales(sm) + qh + qs;
  }
  return out;
}

// Q6_K: ql[128], qh[64], int8 scales[16], fp16 d. Element i = 128*h + 32*k + l: low 4 bits
// are nibble k/2 of ql[64*h + 32*(k%2) + l], high 2 bits are bits 2k..2k+1 of qh[32*h + l].
// value = d * scale[i/16] * (q6 - 32).
Quantized quantize_q6_k(const std::vector<float>& x) {
  check_blocks(x, 256);
  Quantized out;
  for (size_t b = 0; b < x.size(); b += 256) {
    float d = 0.0f;
    const std::vector<int> sc = choose_signed_scales(&x[b], 16, 16, 32, 127, &d);
    std::string ql(128, '\0'), qh(64, '\0'), scales;
    for (size_t s = 0; s < 16; ++s) scales += le<int8_t>(static_cast<int8_t>(sc[s]));
    for (size_t i = 0; i < 256; ++i) {
      const size_t h = i / 128, k = (i % 128) / 32, l = i % 32;
      const float step = d * static_cast<float>(sc[i / 16]);
      const int q = step == 0.0f ? 0 : round_clamp(x[b + i] / step, -32, 31);
      const auto q6 = static_cast<unsigned>(q + 32);
      put_bits(ql, 64 * h + 32 * (k % 2) + l, static_cast<unsigned>(4 * (k / 2)), q6 & 15);
      put_bits(qh, 32 * h + l, static_cast<unsigned>(2 * k), q6 >> 4);
      out.expected.push_back(d * static_cast<float>(sc[i / 16]) * static_cast<float>(q));
    }
    out.bytes += ql + qh + scales;
    put_half(out.bytes, d);
  }
  return out;
}

// Q8_K: fp32 d, int8 qs[256], int16 bsums[16] (sum of each 16 quants); value = d * q.
Quantized quantize_q8_k(const std::vector<float>& x) {
  check_blocks(x, 256);
  Quantized out;
  for (size_t b = 0; b < x.size(); b += 256) {
    const float d = max_abs(&x[b], 256) / 127.0f;
    out.bytes += le(d);
    std::vector<int16_t> bsums(16, 0);
    for (size_t i = 0; i < 256; ++i) {
      const int q = d == 0.0f ? 0 : round_clamp(x[b + i] / d, -127, 127);
      out.bytes += le<int8_t>(static_cast<int8_t>(q));
      bsums[i / 16] = static_cast<int16_t>(bsums[i / 16] + q);
      out.expected.push_back(d * static_cast<float>(q));
    }
    for (auto s : bsums) out.bytes += le(s);
  }
  return out;
}

}  // namespace attnscope::test
