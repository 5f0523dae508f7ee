// Element types of weights, and the scalar conversions every kernel's
// reference path uses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace strata {

// F32/F16/BF16 store one value per element; Q8_0 and Q4_0 are ggml's block
// formats (32 values per block: an f16 scale and 8-bit or 4-bit integers).
enum class DType : uint8_t { F32, F16, BF16, Q8_0, Q4_0 };

// Bytes per element of an unquantized type; 0 for block types (use dtype_bytes).
size_t dtype_size(DType t);
bool dtype_is_block(DType t);
size_t dtype_block_elems(DType t);  // 1, or 32 for block types
size_t dtype_block_bytes(DType t);  // 4, 2, 2, 34, 18
// Bytes of `count` consecutive elements; count must be a multiple of the
// block size (checked by callers that read untrusted shapes).
inline uint64_t dtype_bytes(DType t, uint64_t count) {
  return count / dtype_block_elems(t) * dtype_block_bytes(t);
}
std::string_view dtype_name(DType t);  // "F32", "F16", "BF16", "Q8_0", "Q4_0"
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
