#include "core/dtype.h"

#include <array>

#include "core/error.h"
#include "core/quant_ref.h"

namespace strata {
namespace {

template <class E, float (*Get)(E)>
void float_to_f32(const void* src, float* dst, size_t count) {
  const E* s = static_cast<const E*>(src);
  for (size_t i = 0; i < count; ++i) dst[i] = Get(s[i]);
}
template <class E, E (*Put)(float)>
void f32_to_float(const float* src, void* dst, size_t count) {
  E* d = static_cast<E*>(dst);
  for (size_t i = 0; i < count; ++i) d[i] = Put(src[i]);
}
float f32_id(float v) { return v; }

using namespace quant;

// ggml type ids (ggml.h enum ggml_type) and the layouts of quant_blocks.h.
// Rows are in DType order (checked below).
constexpr std::array<DTypeTraits, kDTypeCount> kTraits = {{
    // type, name, ggml id, elements and bytes per block, stored in files,
    // to_float, from_float, act_from_float, vec_dot, act_type
    {DType::F32, "F32", 0, 1, 4, true, float_to_f32<float, f32_id>, f32_to_float<float, f32_id>, nullptr, nullptr,
     DType::F32},
    {DType::F16, "F16", 1, 1, 2, true, float_to_f32<uint16_t, f16_to_f32>, f32_to_float<uint16_t, f32_to_f16>,
     nullptr, nullptr, DType::F32},
    {DType::BF16, "BF16", 30, 1, 2, true, float_to_f32<uint16_t, bf16_to_f32>, f32_to_float<uint16_t, f32_to_bf16>,
     nullptr, nullptr, DType::F32},
    {DType::Q8_0, "Q8_0", 8, 32, sizeof(BlockQ8_0), true, dequantize_q8_0, quantize_q8_0_ref, quantize_q8_0_act,
     vec_dot_q8_0, DType::Q8_0},
    {DType::Q4_0, "Q4_0", 2, 32, sizeof(BlockQ4_0), true, dequantize_q4_0, quantize_q4_0_ref, nullptr, vec_dot_q4_0,
     DType::Q8_0},
    {DType::Q4_1, "Q4_1", 3, 32, sizeof(BlockQ4_1), true, dequantize_q4_1, quantize_q4_1_ref, nullptr, vec_dot_q4_1,
     DType::Q8_1},
    {DType::Q5_0, "Q5_0", 6, 32, sizeof(BlockQ5_0), true, dequantize_q5_0, quantize_q5_0_ref, nullptr, vec_dot_q5_0,
     DType::Q8_0},
    {DType::Q5_1, "Q5_1", 7, 32, sizeof(BlockQ5_1), true, dequantize_q5_1, quantize_q5_1_ref, nullptr, vec_dot_q5_1,
     DType::Q8_1},
    {DType::Q2_K, "Q2_K", 10, 256, sizeof(BlockQ2_K), true, dequantize_q2_K, quantize_q2_K_ref, nullptr, vec_dot_q2_K,
     DType::Q8_K},
    {DType::Q3_K, "Q3_K", 11, 256, sizeof(BlockQ3_K), true, dequantize_q3_K, quantize_q3_K_ref, nullptr, vec_dot_q3_K,
     DType::Q8_K},
    {DType::Q4_K, "Q4_K", 12, 256, sizeof(BlockQ4_K), true, dequantize_q4_K, quantize_q4_K_ref, nullptr, vec_dot_q4_K,
     DType::Q8_K},
    {DType::Q5_K, "Q5_K", 13, 256, sizeof(BlockQ5_K), true, dequantize_q5_K, quantize_q5_K_ref, nullptr, vec_dot_q5_K,
     DType::Q8_K},
    {DType::Q6_K, "Q6_K", 14, 256, sizeof(BlockQ6_K), true, dequantize_q6_K, quantize_q6_K_ref, nullptr, vec_dot_q6_K,
     DType::Q8_K},
    {DType::Q8_1, "Q8_1", 9, 32, sizeof(BlockQ8_1), false, dequantize_q8_1, quantize_q8_1_act, quantize_q8_1_act,
     nullptr, DType::Q8_1},
    {DType::Q8_K, "Q8_K", 15, 256, sizeof(BlockQ8_K), false, dequantize_q8_K, quantize_q8_K_act, quantize_q8_K_act,
     nullptr, DType::Q8_K},
    {DType::IQ4_NL, "IQ4_NL", 20, 32, sizeof(BlockIQ4_NL), true, dequantize_iq4_nl, quantize_iq4_nl_ref, nullptr,
     vec_dot_iq4_nl, DType::Q8_0},
    {DType::IQ4_XS, "IQ4_XS", 23, 256, sizeof(BlockIQ4_XS), true, dequantize_iq4_xs, quantize_iq4_xs_ref, nullptr,
     vec_dot_iq4_xs, DType::Q8_K},
}};

constexpr bool rows_in_order() {
  for (size_t i = 0; i < kTraits.size(); ++i)
    if (size_t(kTraits[i].type) != i) return false;
  return true;
}
static_assert(rows_in_order(), "kTraits rows are in DType order");

}  // namespace

const DTypeTraits& dtype_traits(DType t) {
  const size_t i = size_t(t);
  if (i >= kTraits.size()) throw Error("dtype_traits: invalid DType " + std::to_string(i));
  return kTraits[i];
}

const DTypeTraits* dtype_of_ggml(uint32_t ggml_type) {
  for (const DTypeTraits& t : kTraits)
    if (t.ggml_type == ggml_type) return &t;
  return nullptr;
}

namespace {

// Names of the ggml types strata does not implement, so messages name them too.
constexpr std::pair<uint32_t, std::string_view> kOtherGgmlTypes[] = {
    {16, "IQ2_XXS"}, {17, "IQ2_XS"}, {18, "IQ3_XXS"}, {19, "IQ1_S"}, {21, "IQ3_S"},
    {22, "IQ2_S"},   {24, "I8"},      {25, "I16"},   {26, "I32"},    {27, "I64"},
    {28, "F64"},     {29, "IQ1_M"},  {34, "TQ1_0"},   {35, "TQ2_0"}, {39, "MXFP4"}};

const std::string_view* other_ggml_type(uint32_t ggml_type) {
  for (const auto& [n, name] : kOtherGgmlTypes)
    if (n == ggml_type) return &name;
  return nullptr;
}

}  // namespace

std::string ggml_type_label(uint32_t ggml_type) {
  const std::string id = "type " + std::to_string(ggml_type);
  if (const DTypeTraits* t = dtype_of_ggml(ggml_type)) return std::string(t->name) + " (" + id + ")";
  if (const std::string_view* name = other_ggml_type(ggml_type)) return std::string(*name) + " (" + id + ")";
  return id;
}

bool ggml_type_is_known(uint32_t ggml_type) {
  return dtype_of_ggml(ggml_type) != nullptr || other_ggml_type(ggml_type) != nullptr;
}

const std::string& readable_ggml_types() {
  static const std::string list = [] {
    std::string s;
    for (const DTypeTraits& t : kTraits) {
      if (!t.weight) continue;
      if (!s.empty()) s += ", ";
      s += t.name;
    }
    return s;
  }();
  return list;
}

size_t dtype_size(DType t) { return dtype_is_block(t) ? 0 : dtype_block_bytes(t); }

bool dtype_is_block(DType t) { return dtype_block_elems(t) > 1; }

bool try_parse_dtype(std::string_view s, DType* out) {
  if (s == "float32") s = "F32";
  else if (s == "float16") s = "F16";
  else if (s == "bfloat16") s = "BF16";
  for (const DTypeTraits& t : kTraits) {
    if (s.size() != t.name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < s.size() && same; ++i) {
      const char c = s[i] >= 'a' && s[i] <= 'z' ? char(s[i] - 'a' + 'A') : s[i];
      same = c == t.name[i];
    }
    if (same) {
      *out = t.type;
      return true;
    }
  }
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
