#include "core/dtype.h"

#include "core/error.h"

namespace strata {

size_t dtype_size(DType t) { return dtype_is_block(t) ? 0 : dtype_block_bytes(t); }

bool dtype_is_block(DType t) { return t == DType::Q8_0 || t == DType::Q4_0; }

size_t dtype_block_elems(DType t) { return dtype_is_block(t) ? 32 : 1; }

size_t dtype_block_bytes(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::BF16: return 2;
    case DType::Q8_0: return 34;
    case DType::Q4_0: return 18;
  }
  return 0;
}

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::Q8_0: return "Q8_0";
    case DType::Q4_0: return "Q4_0";
  }
  return "?";
}

bool try_parse_dtype(std::string_view s, DType* out) {
  if (s == "F32" || s == "f32" || s == "float32") { *out = DType::F32; return true; }
  if (s == "F16" || s == "f16" || s == "float16") { *out = DType::F16; return true; }
  if (s == "BF16" || s == "bf16" || s == "bfloat16") { *out = DType::BF16; return true; }
  if (s == "Q8_0" || s == "q8_0") { *out = DType::Q8_0; return true; }
  if (s == "Q4_0" || s == "q4_0") { *out = DType::Q4_0; return true; }
  return false;
}

DType parse_dtype(std::string_view s) {
  DType t;
  if (!try_parse_dtype(s, &t)) throw UsageError("unknown dtype '" + std::string(s) + "' (expected f32, f16 or bf16)");
  return t;
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal: renormalize
      int e = -1;
      do { ++e; man <<= 1; } while ((man & 0x400u) == 0);
      bits = sign | uint32_t(127 - 15 - e) << 23 | (man & 0x3ffu) << 13;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | man << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | man << 13;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return uint16_t(sign | 0x7e00u);  // NaN
  if (ax >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // overflow -> inf
  if (ax < 0x38800000u) {                                  // subnormal or zero in f16
    if (ax < 0x33000000u) return uint16_t(sign);
    uint32_t e = ax >> 23;
    uint32_t m = (ax & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e;  // 14 + (113 - e) - 1 ... places value at f16 subnormal scale
    uint32_t half = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1);
    uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1u))) ++half;
    return uint16_t(sign | half);
  }
  uint32_t r = ax + 0xfffu + ((ax >> 13) & 1u);  // round to nearest even at bit 13
  r -= 0x38000000u;                              // rebias 127 -> 15
  return uint16_t(sign | (r >> 13));
}

}  // namespace strata
