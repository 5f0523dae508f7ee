// ggml's quantized block layouts, byte for byte (ggml-common.h): the blocks
// GGUF files store and the 8-bit activation blocks the dot kernels pair them
// with. Every field is a plain integer (f16 scales as their uint16_t bits) so
// the structs can be read straight out of a mapped file.
//
// 32-element blocks: value = d * q (Q4_0, Q5_0, Q8_0, offset removed) or
// d * q + m (Q4_1, Q5_1). K-quants: super-blocks of 256 elements made of 16
// or 32 element groups, each with its own small integer scale (and min)
// multiplied by the super-block's f16 d (and dmin).
#pragma once

#include <cstddef>
#include <cstdint>

namespace strata {

inline constexpr size_t kQuantBlock = 32;  // elements per block of the 32-block types
inline constexpr size_t kSuperBlock = 256;  // elements per K-quant super-block (ggml's QK_K)
inline constexpr size_t kKScaleBytes = 12;  // ggml's K_SCALE_SIZE

// value = d * qs[i]
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQuantBlock];
};
static_assert(sizeof(BlockQ8_0) == 34, "ggml block_q8_0 layout");

// Q8_0 plus s = d * sum(qs) (f16): the activations of Q4_1 / Q5_1.
struct BlockQ8_1 {
  uint16_t d;
  uint16_t s;
  int8_t qs[kQuantBlock];
};
static_assert(sizeof(BlockQ8_1) == 36, "ggml block_q8_1 layout");

// Element i < 16 is the low nibble of qs[i], element i + 16 the high nibble;
// value = d * (nibble - 8).
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[kQuantBlock / 2];
};
static_assert(sizeof(BlockQ4_0) == 18, "ggml block_q4_0 layout");

// Nibbles as Q4_0; value = d * nibble + m.
struct BlockQ4_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qs[kQuantBlock / 2];
};
static_assert(sizeof(BlockQ4_1) == 20, "ggml block_q4_1 layout");

// Nibbles as Q4_0 plus a fifth bit: bit i of the little-endian qh is
// element i's; value = d * (q - 16).
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[kQuantBlock / 2];
};
static_assert(sizeof(BlockQ5_0) == 22, "ggml block_q5_0 layout");

// As Q5_0; value = d * q + m.
struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[kQuantBlock / 2];
};
static_assert(sizeof(BlockQ5_1) == 24, "ggml block_q5_1 layout");

// 16 groups of 16: scales[g] low nibble the scale, high nibble the min;
// 2-bit q packed four to a byte (element 128h + 32j + l is bits 2j of
// qs[32h + l]); value = d * scale * q - dmin * min.
struct BlockQ2_K {
  uint8_t scales[kSuperBlock / 16];
  uint8_t qs[kSuperBlock / 4];
  uint16_t d;
  uint16_t dmin;
};
static_assert(sizeof(BlockQ2_K) == 84, "ggml block_q2_K layout");

// 2-bit low part as Q2_K, the third bit in hmask (element 128h + 32j + l:
// bit 4h + j of hmask[l]), 16 signed 6-bit group scales packed in 12 bytes;
// value = d * (scale - 32) * (q - 4 * !highbit).
struct BlockQ3_K {
  uint8_t hmask[kSuperBlock / 8];
  uint8_t qs[kSuperBlock / 4];
  uint8_t scales[kKScaleBytes];
  uint16_t d;
};
static_assert(sizeof(BlockQ3_K) == 110, "ggml block_q3_K layout");

// 8 groups of 32 with 6-bit scales and mins packed in 12 bytes
// (get_scale_min_k4); element 64j + l is the low nibble of qs[32j + l],
// 64j + 32 + l the high; value = d * scale * q - dmin * min.
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qs[kSuperBlock / 2];
};
static_assert(sizeof(BlockQ4_K) == 144, "ggml block_q4_K layout");

// Q4_K plus a fifth bit: element 64j + l has bit 2j of qh[l], 64j + 32 + l
// bit 2j + 1.
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qh[kSuperBlock / 8];
  uint8_t qs[kSuperBlock / 2];
};
static_assert(sizeof(BlockQ5_K) == 176, "ggml block_q5_K layout");

// 16 groups of 16 with signed 8-bit scales; 6-bit q = 4 bits in ql and 2 in
// qh (see dequantize_q6_K); value = d * scale * (q - 32).
struct BlockQ6_K {
  uint8_t ql[kSuperBlock / 2];
  uint8_t qh[kSuperBlock / 4];
  int8_t scales[kSuperBlock / 16];
  uint16_t d;
};
static_assert(sizeof(BlockQ6_K) == 210, "ggml block_q6_K layout");

// The K-quants' activations: f32 d, value = d * qs[i], and the sums of each
// 16 qs (for the min / offset terms).
struct BlockQ8_K {
  float d;
  int8_t qs[kSuperBlock];
  int16_t bsums[kSuperBlock / 16];
};
static_assert(sizeof(BlockQ8_K) == 292, "ggml block_q8_K layout");

// The non-linear 4-bit types: a nibble indexes ggml's kvalues_iq4nl, 16
// int8 levels spaced for normally distributed weights.
inline constexpr int8_t kIQ4NLValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};

// Nibbles as Q4_0; value = d * kIQ4NLValues[nibble]. Pairs with Q8_0.
struct BlockIQ4_NL {
  uint16_t d;
  uint8_t qs[kQuantBlock / 2];
};
static_assert(sizeof(BlockIQ4_NL) == 18, "ggml block_iq4_nl layout");

// 8 groups of 32 with 6-bit scales: group g's low 4 bits are nibble g % 2 of
// scales_l[g / 2], its high 2 bits bits 2g..2g+1 of scales_h; group g's
// elements 0..15 are the low nibbles of qs[16g + l], 16..31 the high ones;
// value = d * (scale - 32) * kIQ4NLValues[nibble]. Pairs with Q8_K.
struct BlockIQ4_XS {
  uint16_t d;
  uint16_t scales_h;
  uint8_t scales_l[kSuperBlock / 64];
  uint8_t qs[kSuperBlock / 2];
};
static_assert(sizeof(BlockIQ4_XS) == 136, "ggml block_iq4_xs layout");

// Field offsets the readers rely on (ggml packs these structs without padding).
static_assert(offsetof(BlockQ2_K, d) == 80 && offsetof(BlockQ3_K, scales) == 96 && offsetof(BlockQ3_K, d) == 108 &&
                  offsetof(BlockQ4_K, qs) == 16 && offsetof(BlockQ5_K, qh) == 16 && offsetof(BlockQ5_K, qs) == 48 &&
                  offsetof(BlockQ6_K, qh) == 128 && offsetof(BlockQ6_K, scales) == 192 &&
                  offsetof(BlockQ6_K, d) == 208 && offsetof(BlockQ5_0, qs) == 6 && offsetof(BlockQ5_1, qs) == 8 &&
                  offsetof(BlockQ8_K, bsums) == 260 && offsetof(BlockIQ4_XS, scales_l) == 4 &&
                  offsetof(BlockIQ4_XS, qs) == 8,
              "ggml block field offsets");

}  // namespace strata
