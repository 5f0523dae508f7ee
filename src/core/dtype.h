// Element types of weights, and the scalar conversions every kernel's
// reference path uses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace strata {

enum class DType : uint8_t { F32, F16, BF16 };

// Bytes per element.
size_t dtype_size(DType t);
std::string_view dtype_name(DType t);  // "F32", "F16", "BF16" (safetensors spelling)
// Accepts safetensors spellings and lower-case CLI spellings; throws UsageError.
DType parse_dtype(std::string_view s);
bool try_parse_dtype(std::string_view s, DType* out);

inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even; NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t(bits >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

}  // namespace strata
