// Element types of weights: one table (dtype_traits) gives each type's
// name, ggml type id, block shape, conversions and the activation type its
// dot kernel pairs with, like ggml's type_traits; adding a type is one enum
// value and one table row (dtype.cpp) plus its kernels. Also the scalar
// f16/bf16 conversions every reference path uses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace strata {

// F32/F16/BF16 store one value per element; the others are ggml's block
// formats (core/quant_blocks.h): blocks of 32 (Q4_0 .. Q8_1) or super-blocks
// of 256 (the K-quants, IQ4_XS). Q8_1 and Q8_K are activation formats: kernels
// quantize x to them, files do not store them.
enum class DType : uint8_t {
  F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_1, Q8_K, IQ4_NL, IQ4_XS
};
inline constexpr size_t kDTypeCount = 17;

struct DTypeTraits {
  DType type;
  std::string_view name;     // ggml's spelling: "Q4_K"
  uint32_t ggml_type;        // ggml_type / GGUF tensor type id
  uint32_t block_elems;      // 1, 32 or 256
  uint32_t block_bytes;      // bytes of one block (one element for F32/F16/BF16)
  bool weight;               // a type files store (false: activation-only)
  // count elements (a multiple of block_elems) to f32, and f32 to this type
  // with ggml's reference quantizer (quantize_row_*_ref), so files match
  // llama-quantize's without an importance matrix.
  void (*to_float)(const void* src, float* dst, size_t count);
  void (*from_float)(const float* src, void* dst, size_t count);
  // For the activation types (Q8_0, Q8_1, Q8_K): how the kernels quantize
  // x to this type, as ggml's CPU backend does (round half to even; Q8_0's
  // file quantizer above rounds half away from zero). nullptr otherwise.
  void (*act_from_float)(const float* src, void* dst, size_t count);
  // The scalar reference dot of one weight row of k elements with one row
  // of activations already in act_type (nullptr for the float types, whose
  // activations stay f32).
  float (*vec_dot)(size_t k, const void* w, const void* act);
  DType act_type;
};

const DTypeTraits& dtype_traits(DType t);
// The table row of a ggml type id, or nullptr if strata has no such type.
const DTypeTraits* dtype_of_ggml(uint32_t ggml_type);
// A ggml type id as "Q6_K (type 14)", or "type 99" for an unknown id.
std::string ggml_type_label(uint32_t ggml_type);
// True for an id ggml defines, whether or not strata implements it.
bool ggml_type_is_known(uint32_t ggml_type);
// The ggml types strata reads as weights, as "F32, F16, BF16, ...".
const std::string& readable_ggml_types();

// Bytes per element of an unquantized type; 0 for block types (use dtype_bytes).
size_t dtype_size(DType t);
bool dtype_is_block(DType t);
inline size_t dtype_block_elems(DType t) { return dtype_traits(t).block_elems; }
inline size_t dtype_block_bytes(DType t) { return dtype_traits(t).block_bytes; }
// Bytes of `count` consecutive elements; count must be a multiple of the
// block size (checked by callers that read untrusted shapes).
inline uint64_t dtype_bytes(DType t, uint64_t count) {
  return count / dtype_block_elems(t) * dtype_block_bytes(t);
}
inline std::string_view dtype_name(DType t) { return dtype_traits(t).name; }
// Accepts ggml names in either case and safetensors spellings; throws UsageError.
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
