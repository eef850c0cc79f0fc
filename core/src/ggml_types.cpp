// GGML element types: traits table, byte sizes and dequantization of every supported block
// format to fp32. Block layouts follow ggml's format definition (ggml-common.h); all
// multi-byte fields are little-endian, read with memcpy (blocks are not aligned in files).
#include "attnscope/ggml_types.h"

#include <array>
#include <bit>
#include <cstring>

#include "attnscope/error.h"

namespace attnscope {
namespace {

static_assert(std::endian::native == std::endian::little,
              "GGUF readers assume a little-endian host");

constexpr size_t kQK = 32;     // elements per block of the legacy formats (Q4_0 ... Q8_1)
constexpr size_t kQK_K = 256;  // elements per K-quant super-block

struct TypeEntry {
  uint32_t id;
  GgmlTypeTraits traits;
};

constexpr std::array<TypeEntry, 20> kTypes = {{
    {0, {"F32", 1, 4, true}},
    {1, {"F16", 1, 2, true}},
    {2, {"Q4_0", kQK, 2 + 16, true}},
    {3, {"Q4_1", kQK, 2 + 2 + 16, true}},
    {6, {"Q5_0", kQK, 2 + 4 + 16, true}},
    {7, {"Q5_1", kQK, 2 + 2 + 4 + 16, true}},
    {8, {"Q8_0", kQK, 2 + 32, true}},
    {9, {"Q8_1", kQK, 2 + 2 + 32, true}},
    {10, {"Q2_K", kQK_K, 16 + 64 + 2 + 2, true}},
    {11, {"Q3_K", kQK_K, 32 + 64 + 12 + 2, true}},
    {12, {"Q4_K", kQK_K, 2 + 2 + 12 + 128, true}},
    {13, {"Q5_K", kQK_K, 2 + 2 + 12 + 32 + 128, true}},
    {14, {"Q6_K", kQK_K, 128 + 64 + 16 + 2, true}},
    {15, {"Q8_K", kQK_K, 4 + 256 + 32, true}},
    {24, {"I8", 1, 1, true}},
    {25, {"I16", 1, 2, true}},
    {26, {"I32", 1, 4, true}},
    {27, {"I64", 1, 8, true}},
    {28, {"F64", 1, 8, true}},
    {30, {"BF16", 1, 2, true}},
}};

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

float half_at(const uint8_t* p) {
  return fp16_to_fp32(load<uint16_t>(p));
}

// --- legacy 32-element blocks -------------------------------------------------------------
// In Q4/Q5 blocks byte j holds element j in its low nibble and element j+16 in its high one.

void dequant_q4_0(const uint8_t* b, float* y) {
  const float d = half_at(b);
  const uint8_t* qs = b + 2;
  for (size_t j = 0; j < 16; ++j) {
    y[j] = static_cast<float>((qs[j] & 0x0F) - 8) * d;
    y[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
  }
}

void dequant_q4_1(const uint8_t* b, float* y) {
  const float d = half_at(b);
  const float m = half_at(b + 2);
  const uint8_t* qs = b + 4;
  for (size_t j = 0; j < 16; ++j) {
    y[j] = static_cast<float>(qs[j] & 0x0F) * d + m;
    y[j + 16] = static_cast<float>(qs[j] >> 4) * d + m;
  }
}

// qh bit j is the fifth bit of element j (j in 0..31).
void dequant_q5_0(const uint8_t* b, float* y) {
  const float d = half_at(b);
  const uint32_t qh = load<uint32_t>(b + 2);
  const uint8_t* qs = b + 6;
  for (size_t j = 0; j < 16; ++j) {
    const int lo = (qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int hi = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
    y[j] = static_cast<float>(lo - 16) * d;
    y[j + 16] = static_cast<float>(hi - 16) * d;
  }
}

void dequant_q5_1(const uint8_t* b, float* y) {
  const float d = half_at(b);
  const float m = half_at(b + 2);
  const uint32_t qh = load<uint32_t>(b + 4);
  const uint8_t* qs = b + 8;
  for (size_t j = 0; j < 16; ++j) {
    const int lo = (qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int hi = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
    y[j] = static_cast<float>(lo) * d + m;
    y[j + 16] = static_cast<float>(hi) * d + m;
  }
}

void dequant_q8_0(const uint8_t* b, float* y) {
  const float d = half_at(b);
  const auto* qs = reinterpret_cast<const int8_t*>(b + 2);
  for (size_t j = 0; j < kQK; ++j) y[j] = static_cast<float>(qs[j]) * d;
}

// Q8_1 stores d, then s = d * sum(qs) (used only by dot products), then the quants.
void dequant_q8_1(const uint8_t* b, float* y) {
  const float d = half_at(b);
  const auto* qs = reinterpret_cast<const int8_t*>(b + 4);
  for (size_t j = 0; j < kQK; ++j) y[j] = static_cast<float>(qs[j]) * d;
}

// --- K-quants: 256-element super-blocks --------------------------------------------------

// Q4_K/Q5_K pack 8 six-bit scales and 8 six-bit mins into 12 bytes: sub-blocks 0..3 use the
// low 6 bits of bytes 0..3 (scale) and 4..7 (min); sub-blocks 4..7 take their low 4 bits from
// bytes 8..11 (scale: low nibble, min: high nibble) and their top 2 bits from the spare top
// bits of bytes 0..3 (scale) and 4..7 (min).
void get_scale_min_k4(size_t j, const uint8_t* q, int* scale, int* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
    *min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// Layout: scales[16] (low nibble scale, high nibble min per 16-element sub-block), qs[64]
// (2-bit quants), d, dmin. Each 32-byte half of qs serves 128 elements: element
// 128*h + 32*s + l sits in bits 2s..2s+1 of qs[32*h + l].
void dequant_q2_k(const uint8_t* b, float* y) {
  const uint8_t* scales = b;
  const uint8_t* qs = b + 16;
  const float d = half_at(b + 80);
  const float dmin = half_at(b + 82);
  for (size_t i = 0; i < kQK_K; ++i) {
    const size_t h = i / 128, s = (i % 128) / 32, l = i % 32;
    const int q = (qs[32 * h + l] >> (2 * s)) & 3;
    const uint8_t sc = scales[i / 16];
    y[i] = d * static_cast<float>(sc & 0x0F) * static_cast<float>(q) -
           dmin * static_cast<float>(sc >> 4);
  }
}

// Layout: hmask[32] (third quant bit), qs[64] (low 2 bits, arranged as in Q2_K), scales[12]
// (sixteen 6-bit scales, offset by 32), d. hmask bit (i / 32) of byte (i % 32) is set when
// element i is NOT shifted down by 4.
void dequant_q3_k(const uint8_t* b, float* y) {
  const uint8_t* hmask = b;
  const uint8_t* qs = b + 32;
  const uint8_t* sc = b + 96;
  const float d = half_at(b + 108);
  int scale[16];
  for (size_t s = 0; s < 16; ++s) {
    const int low = s < 8 ? (sc[s] & 0x0F) : (sc[s - 8] >> 4);
    const int high = (sc[8 + s % 4] >> (2 * (s / 4))) & 3;
    scale[s] = (low | (high << 4)) - 32;
  }
  for (size_t i = 0; i < kQK_K; ++i) {
    const size_t h = i / 128, s = (i % 128) / 32, l = i % 32;
    const int low2 = (qs[32 * h + l] >> (2 * s)) & 3;
    const int q = low2 - (((hmask[l] >> (i / 32)) & 1) ? 0 : 4);
    y[i] = d * static_cast<float>(scale[i / 16]) * static_cast<float>(q);
  }
}

// Layout: d, dmin, scales[12] (get_scale_min_k4), qs[128]. Each 64-element chunk c uses
// qs[32c .. 32c+31]: low nibbles are sub-block 2c, high nibbles sub-block 2c+1.
void dequant_q4_k(const uint8_t* b, float* y) {
  const float d = half_at(b);
  const float dmin = half_at(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qs = b + 16;
  for (size_t c = 0; c < 4; ++c) {
    int sc0, m0, sc1, m1;
    get_scale_min_k4(2 * c, scales, &sc0, &m0);
    get_scale_min_k4(2 * c + 1, scales, &sc1, &m1);
    const float d0 = d * static_cast<float>(sc0), min0 = dmin * static_cast<float>(m0);
    const float d1 = d * static_cast<float>(sc1), min1 = dmin * static_cast<float>(m1);
    for (size_t l = 0; l < 32; ++l) {
      y[64 * c + l] = d0 * static_cast<float>(qs[32 * c + l] & 0x0F) - min0;
      y[64 * c + 32 + l] = d1 * static_cast<float>(qs[32 * c + l] >> 4) - min1;
    }
  }
}

// As Q4_K plus qh[32]: bit s of qh[l] is the fifth bit of element 32*s + l.
void dequant_q5_k(const uint8_t* b, float* y) {
  const float d = half_at(b);
  const float dmin = half_at(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* qs = b + 48;
  for (size_t c = 0; c < 4; ++c) {
    int sc0, m0, sc1, m1;
    get_scale_min_k4(2 * c, scales, &sc0, &m0);
    get_scale_min_k4(2 * c + 1, scales, &sc1, &m1);
    const float d0 = d * static_cast<float>(sc0), min0 = dmin * static_cast<float>(m0);
    const float d1 = d * static_cast<float>(sc1), min1 = dmin * static_cast<float>(m1);
    for (size_t l = 0; l < 32; ++l) {
      const int q0 = (qs[32 * c + l] & 0x0F) | (((qh[l] >> (2 * c)) & 1) << 4);
      const int q1 = (qs[32 * c + l] >> 4) | (((qh[l] >> (2 * c + 1)) & 1) << 4);
      y[64 * c + l] = d0 * static_cast<float>(q0) - min0;
      y[64 * c + 32 + l] = d1 * static_cast<float>(q1) - min1;
    }
  }
}

// Layout: ql[128] (low 4 bits), qh[64] (high 2 bits), int8 scales[16], d. Per 128-element
// half h, element 128h + 32k + l (k = 0..3) takes nibble (k / 2) of ql[64h + 32(k%2) + l] and
// bits 2k..2k+1 of qh[32h + l]; value (q6 - 32) * d * scales[i / 16].
void dequant_q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const auto* scales = reinterpret_cast<const int8_t*>(b + 192);
  const float d = half_at(b + 208);
  for (size_t i = 0; i < kQK_K; ++i) {
    const size_t h = i / 128, k = (i % 128) / 32, l = i % 32;
    const uint8_t lowbyte = ql[64 * h + 32 * (k % 2) + l];
    const int low = (k / 2 == 0) ? (lowbyte & 0x0F) : (lowbyte >> 4);
    const int high = (qh[32 * h + l] >> (2 * k)) & 3;
    const int q = (low | (high << 4)) - 32;
    y[i] = d * static_cast<float>(scales[i / 16]) * static_cast<float>(q);
  }
}

// Layout: float d, int8 qs[256], int16 bsums[16] (sums for dot products; unused here).
void dequant_q8_k(const uint8_t* b, float* y) {
  const float d = load<float>(b);
  const auto* qs = reinterpret_cast<const int8_t*>(b + 4);
  for (size_t i = 0; i < kQK_K; ++i) y[i] = d * static_cast<float>(qs[i]);
}

using BlockFn = void (*)(const uint8_t*, float*);

void dequant_blocks(BlockFn fn, const uint8_t* src, float* dst, size_t n_elements,
                    size_t block_elems, size_t block_bytes) {
  const size_t n_blocks = n_elements / block_elems;
  for (size_t i = 0; i < n_blocks; ++i) fn(src + i * block_bytes, dst + i * block_elems);
}

template <typename T>
void convert_plain(const uint8_t* src, float* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(load<T>(src + i * sizeof(T)));
}

}  // namespace

std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t type_id) {
  for (const auto& entry : kTypes) {
    if (entry.id == type_id) return entry.traits;
  }
  return std::nullopt;
}

std::string ggml_type_name(uint32_t type_id) {
  if (auto traits = ggml_type_traits(type_id)) return traits->name;
  return "type#" + std::to_string(type_id);
}

std::optional<uint64_t> ggml_tensor_bytes(GgmlType type, uint64_t n_elements) {
  const auto traits = ggml_type_traits(static_cast<uint32_t>(type));
  if (!traits) return std::nullopt;
  if (n_elements % traits->block_elems != 0) return std::nullopt;
  const uint64_t n_blocks = n_elements / traits->block_elems;
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(n_blocks, static_cast<uint64_t>(traits->block_bytes), &bytes)) {
    return std::nullopt;
  }
  return bytes;
}

void dequantize(GgmlType type, const void* src_void, float* dst, size_t n_elements) {
  const auto* src = static_cast<const uint8_t*>(src_void);
  const auto traits = ggml_type_traits(static_cast<uint32_t>(type));
  if (!traits || n_elements % traits->block_elems != 0) {
    throw_bad_input("dequantize", "type " + ggml_type_name(static_cast<uint32_t>(type)) + " with " +
                                      std::to_string(n_elements) +
                                      " elements: expected a known type and whole blocks");
  }
  const size_t be = traits->block_elems, bb = traits->block_bytes;
  switch (type) {
    case GgmlType::F32:
      std::memcpy(dst, src, n_elements * sizeof(float));
      return;
    case GgmlType::F16:
      for (size_t i = 0; i < n_elements; ++i) dst[i] = fp16_to_fp32(load<uint16_t>(src + 2 * i));
      return;
    case GgmlType::BF16:
      for (size_t i = 0; i < n_elements; ++i) dst[i] = bf16_to_fp32(load<uint16_t>(src + 2 * i));
      return;
    case GgmlType::F64:
      convert_plain<double>(src, dst, n_elements);
      return;
    case GgmlType::I8:
      convert_plain<int8_t>(src, dst, n_elements);
      return;
    case GgmlType::I16:
      convert_plain<int16_t>(src, dst, n_elements);
      return;
    case GgmlType::I32:
      convert_plain<int32_t>(src, dst, n_elements);
      return;
    case GgmlType::I64:
      convert_plain<int64_t>(src, dst, n_elements);
      return;
    case GgmlType::Q4_0:
      dequant_blocks(dequant_q4_0, src, dst, n_elements, be, bb);
      return;
    case GgmlType::Q4_1:
      dequant_blocks(dequant_q4_1, src, dst, n_elements, be, bb);
      return;
    case GgmlType::Q5_0:
      dequant_blocks(dequant_q5_0, src, dst, n_elements, be, bb);
      return;
    case GgmlType::Q5_1:
      dequant_blocks(dequant_q5_1, src, dst, n_elements, be, bb);
      return;
    case GgmlType::Q8_0:
      dequant_blocks(dequant_q8_0, src, dst, n_elements, be, bb);
      return;
    case GgmlType::Q8_1:
      dequant_blocks(dequant_q8_1, src, dst, n_elements, be, bb);
      return;
    case GgmlType::Q2_K:
      dequant_blocks(dequant_q2_k, src, dst, n_elements, be, bb);
      return;
    case GgmlType::Q3_K:
      dequant_blocks(dequant_q3_k, src, dst, n_elements, be, bb);
      return;
    case GgmlType::Q4_K:
      dequant_blocks(dequant_q4_k, src, dst, n_elements, be, bb);
      return;
    case GgmlType::Q5_K:
      dequant_blocks(dequant_q5_k, src, dst, n_elements, be, bb);
      return;
    case GgmlType::Q6_K:
      dequant_blocks(dequant_q6_k, src, dst, n_elements, be, bb);
      return;
    case GgmlType::Q8_K:
      dequant_blocks(dequant_q8_k, src, dst, n_elements, be, bb);
      return;
  }
  throw_bad_input("dequantize", "unsupported type " + ggml_type_name(static_cast<uint32_t>(type)));
}

float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  uint32_t bits = 0;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;  // signed zero
    } else {
      // Subnormal half: normalise the mantissa into a normal float.
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      bits = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3FFu) << 13);
    }
  } else if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);  // inf / NaN (payload kept)
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}

float bf16_to_fp32(uint16_t h) {
  return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}

uint16_t fp32_to_fp16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t abs = x & 0x7FFFFFFFu;
  if (abs >= 0x7F800000u) {  // inf or NaN
    return static_cast<uint16_t>(sign | 0x7C00u | (abs > 0x7F800000u ? 0x200u : 0u));
  }
  if (abs >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // rounds to inf
  const int exp = static_cast<int>(abs >> 23) - 127;
  if (exp < -14) {
    // Subnormal (or zero) half: value = m * 2^-24 with m rounded to nearest even.
    if (exp < -25) return sign;
    const uint32_t mant = (abs & 0x7FFFFFu) | 0x800000u;
    const int shift = -exp - 14 + 13;  // bits to drop so that the unit is 2^-24
    uint32_t m = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (m & 1u))) ++m;
    return static_cast<uint16_t>(sign | m);
  }
  uint32_t h = (static_cast<uint32_t>(exp + 15) << 10) | ((abs >> 13) & 0x3FFu);
  const uint32_t rem = abs & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // carry may bump the exponent
  return static_cast<uint16_t>(sign | h);
}

}  // namespace attnscope
