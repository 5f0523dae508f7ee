// The SIMD decoders of IQ4_NL and IQ4_XS for kgemm (kquant_tile.h), for
// kquant_avx2.cpp and kquant_avx512.cpp only. A nibble becomes its signed
// level of kIQ4NLValues with one byte shuffle. The levels are signed
// (-127 .. 113), so the integer dot uses the sign trick: |w| (unsigned) times
// x with w's sign applied, whose byte-pair sums stay inside int16
// (2 * 127 * 127), so maddubs is exact and every ISA gets the same lanes.
//   IQ4_NL pairs with Q8_0 as Q5_0 does (Q5_0K's step).
//   IQ4_XS pairs with Q8_K: `Isa::iq_isum(dec, x)` gives the 8 int32 lanes
//   of sum_g scale[g] * w . x over a super-block (exact).
#pragma once

#include "kernels/kquant_tile.h"

namespace strata::kernels {
namespace {

// The 16 levels in both 128-bit lanes, as the shuffle table.
inline __m256i iq4_table() {
  const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4NLValues));
  return _mm256_broadcastsi128_si256(t);
}

// 32 elements of 16 bytes of nibbles (low nibbles first) as signed levels.
inline __m256i iq4_levels(const uint8_t* qs, __m256i table) { return _mm256_shuffle_epi8(table, nibbles(qs)); }

struct IQ4_NLK : Q5_0K {
  using B = BlockIQ4_NL;
  static void decode(const B& b, Dec& o) { o = {iq4_levels(b.qs, iq4_table()), half(b.d), 0.0f}; }
};

struct alignas(64) DecIQ4 {
  uint8_t a[kSuperBlock];  // |level|
  int8_t s[kSuperBlock];   // the level (for its sign)
  int16_t scv[8][16];      // group t's scale (-32 .. 31) in all 16 words
  float d;
};

struct IQ4_XSK {
  using B = BlockIQ4_XS;
  using A = BlockQ8_K;
  using Dec = DecIQ4;
  static void decode(const B& b, Dec& o) {
    const __m256i table = iq4_table();
#pragma GCC unroll 4
    for (size_t g = 0; g < 8; g += 2) {
      const __m256i v0 = iq4_levels(b.qs + 16 * g, table), v1 = iq4_levels(b.qs + 16 * g + 16, table);
      store2(o.a + 32 * g, _mm256_abs_epi8(v0), _mm256_abs_epi8(v1));
      store2(o.s + 32 * g, v0, v1);
      store2(o.scv[g], _mm256_set1_epi16(int16_t(quant::iq4_xs_scale(b, g))),
             _mm256_set1_epi16(int16_t(quant::iq4_xs_scale(b, g + 1))));
    }
    o.d = half(b.d);
  }
  template <class Isa>
  static void step(const Dec& w, const A& x, Acc& acc) {
    const __m256i isum = Isa::iq_isum(w, x);
    acc.a = _mm256_fmadd_ps(_mm256_set1_ps(w.d * x.d), _mm256_cvtepi32_ps(isum), acc.a);
  }
};

}  // namespace
}  // namespace strata::kernels
