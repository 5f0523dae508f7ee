// The scalar reference of every block type (core/quant_blocks.h): ggml's
// dequantization, ggml's reference quantizers (quantize_row_*_ref: what
// llama-quantize writes without an importance matrix), the quantization of
// activations to the 8-bit blocks the dot kernels pair with, and one plain
// dot product per weight type. These are the dtype_traits() entries; every
// SIMD kernel is tested against them.
//
// All `count` / `k` arguments are multiples of the type's block size.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/quant_blocks.h"

namespace strata::quant {

// --- to f32 (ggml's dequantize_row_*)
void dequantize_q8_0(const void* src, float* dst, size_t count);
void dequantize_q8_1(const void* src, float* dst, size_t count);
void dequantize_q4_0(const void* src, float* dst, size_t count);
void dequantize_q4_1(const void* src, float* dst, size_t count);
void dequantize_q5_0(const void* src, float* dst, size_t count);
void dequantize_q5_1(const void* src, float* dst, size_t count);
void dequantize_q2_K(const void* src, float* dst, size_t count);
void dequantize_q3_K(const void* src, float* dst, size_t count);
void dequantize_q4_K(const void* src, float* dst, size_t count);
void dequantize_q5_K(const void* src, float* dst, size_t count);
void dequantize_q6_K(const void* src, float* dst, size_t count);
void dequantize_q8_K(const void* src, float* dst, size_t count);
void dequantize_iq4_nl(const void* src, float* dst, size_t count);
void dequantize_iq4_xs(const void* src, float* dst, size_t count);

// --- from f32, weights (ggml's quantize_row_*_ref; Q8_0 rounds half away from zero)
void quantize_q8_0_ref(const float* src, void* dst, size_t count);
void quantize_q4_0_ref(const float* src, void* dst, size_t count);
void quantize_q4_1_ref(const float* src, void* dst, size_t count);
void quantize_q5_0_ref(const float* src, void* dst, size_t count);
void quantize_q5_1_ref(const float* src, void* dst, size_t count);
void quantize_q2_K_ref(const float* src, void* dst, size_t count);
void quantize_q3_K_ref(const float* src, void* dst, size_t count);
void quantize_q4_K_ref(const float* src, void* dst, size_t count);
void quantize_q5_K_ref(const float* src, void* dst, size_t count);
void quantize_q6_K_ref(const float* src, void* dst, size_t count);
// IQ4_NL / IQ4_XS as llama-quantize writes them without an importance
// matrix (ggml's quantize_iq4_nl / quantize_iq4_xs, 7 scale tries each way;
// ggml's quantize_row_iq4_nl_ref tries none and is not what files hold).
void quantize_iq4_nl_ref(const float* src, void* dst, size_t count);
void quantize_iq4_xs_ref(const float* src, void* dst, size_t count);

// --- from f32, activations: round half to even (as ggml's SIMD quantizers
// of activations do). Q8_1 stores s = d * sum(qs) in f16 as ggml does;
// Q8_K is ggml's quantize_row_q8_K_ref (scale -127 / signed max).
void quantize_q8_0_act(const float* src, void* dst, size_t count);
void quantize_q8_1_act(const float* src, void* dst, size_t count);
void quantize_q8_K_act(const float* src, void* dst, size_t count);

// --- one K-quant super-block in the one shape every K-quant dot uses:
//   value[e] = d * sc[g] * q[e] - dmin * m[g],   g = e / 16,
// q unsigned (0..63); Q3_K and Q6_K fold their offset into m (m = 4 or
// 32 times the scale, dmin = d). So a dot with a Q8_K block is
//   d * dx * sum_g sc[g] * sum_{e in g} q[e] * x[e]  -  dmin * dx * sum_g m[g] * bsums[g].
struct KGroups {
  int16_t sc[16];
  int16_t m[16];
  float d;
  float dmin;
};
void k_groups(const BlockQ2_K& b, KGroups* g);
void k_groups(const BlockQ3_K& b, KGroups* g);
void k_groups(const BlockQ4_K& b, KGroups* g);
void k_groups(const BlockQ5_K& b, KGroups* g);
void k_groups(const BlockQ6_K& b, KGroups* g);
// The 256 unsigned q of a super-block, in element order.
void k_unpack_q(const BlockQ2_K& b, uint8_t* q);
void k_unpack_q(const BlockQ3_K& b, uint8_t* q);
void k_unpack_q(const BlockQ4_K& b, uint8_t* q);
void k_unpack_q(const BlockQ5_K& b, uint8_t* q);
void k_unpack_q(const BlockQ6_K& b, uint8_t* q);

// --- the reference dots: weight row (k elements) . activation row (k
// elements in the weight type's act_type). Integer sums per block are
// exact; blocks are added in order into one f32.
float vec_dot_q8_0(size_t k, const void* w, const void* act);  // act Q8_0
float vec_dot_q4_0(size_t k, const void* w, const void* act);  // act Q8_0
float vec_dot_q5_0(size_t k, const void* w, const void* act);  // act Q8_0
float vec_dot_q4_1(size_t k, const void* w, const void* act);  // act Q8_1
float vec_dot_q5_1(size_t k, const void* w, const void* act);  // act Q8_1
float vec_dot_q2_K(size_t k, const void* w, const void* act);  // act Q8_K
float vec_dot_q3_K(size_t k, const void* w, const void* act);
float vec_dot_q4_K(size_t k, const void* w, const void* act);
float vec_dot_q5_K(size_t k, const void* w, const void* act);
float vec_dot_q6_K(size_t k, const void* w, const void* act);
float vec_dot_iq4_nl(size_t k, const void* w, const void* act);  // act Q8_0
float vec_dot_iq4_xs(size_t k, const void* w, const void* act);  // act Q8_K

// IQ4_XS group g's (< 8) 6-bit scale, offset included (-32 .. 31).
inline int iq4_xs_scale(const BlockIQ4_XS& b, size_t g) {
  return int(((b.scales_l[g / 2] >> (4 * (g % 2))) & 0x0f) | (((b.scales_h >> (2 * g)) & 3) << 4)) - 32;
}

// ggml's nearest_int: round half to even for |v| < 2^22.
inline int nearest_int(float v) {
  float f = v + 12582912.0f;
  int32_t i;
  __builtin_memcpy(&i, &f, 4);
  return (i & 0x007fffff) - 0x00400000;
}

}  // namespace strata::quant
