// The SIMD tile for the types of kquant_isa.h, for kquant_avx2.cpp and
// kquant_avx512.cpp only (each compiles it with its own instruction set;
// everything is in an anonymous namespace so the copies never merge).
// `Isa` supplies the integer dots:
//   dot32(u, s):  8 int32 lanes, lane l = sum of the 4 products u[4l..4l+3] * s[...]
//                 (unsigned bytes times signed bytes; exact for our ranges)
//   k_isum(dec, x): the 8 int32 lanes of sum_g sc[g] * q . x over one
//                 K-quant super-block (exact)
// Per type, a decoder turns a weight block into registers (32-blocks) or
// a small decoded super-block (K-quants), once per tile, and a step adds its
// dot with one x row's activation block into that output's accumulators.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "core/dtype.h"
#include "core/quant_blocks.h"
#include "core/quant_ref.h"
#include "kernels/kquant_rows.h"
#include "kernels/matmul_isa.h"

namespace strata::kernels {
namespace {

inline float khsum8(__m256 v) {
  __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  __m128 s1 = _mm_add_ss(s2, _mm_movehdup_ps(s2));
  return _mm_cvtss_f32(s1);
}

inline float half(uint16_t h) { return _cvtsh_ss(h); }

// One output's accumulators: a (scale terms), m (min / offset terms,
// subtracted), s (the m * s terms of Q4_1 / Q5_1, one per block).
struct Acc {
  __m256 a = _mm256_setzero_ps();
  __m256 m = _mm256_setzero_ps();
  float s = 0.0f;
  float finish() const { return khsum8(a) - khsum8(m) + s; }
};

// --- 32-element blocks: q as 32 bytes in element order.

// Nibbles of 16 bytes: elements 0..15 low, 16..31 high.
inline __m256i nibbles(const uint8_t* qs) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(v), _mm_srli_epi16(v, 4), 1);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

// Byte i = 0x10 if bit i of the 32-bit qh is set, else 0.
inline __m256i fifth_bits(const uint8_t* qh) {
  uint32_t h;
  std::memcpy(&h, qh, 4);
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(int(h)), _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
  const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201ull));
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), _mm256_set1_epi8(0x10));
}

struct Dec32 {
  __m256i q;  // signed (Q5_0) or unsigned (Q4_1, Q5_1) values
  float d;
  float m;
};

struct Q4_1K {
  using B = BlockQ4_1;
  using A = BlockQ8_1;
  using Dec = Dec32;
  static void decode(const B& b, Dec& o) { o = {nibbles(b.qs), half(b.d), half(b.m)}; }
  template <class Isa>
  static void step(const Dec& w, const A& x, Acc& acc) {
    const __m256i lanes = Isa::dot32(w.q, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs)));
    acc.a = _mm256_fmadd_ps(_mm256_set1_ps(w.d * half(x.d)), _mm256_cvtepi32_ps(lanes), acc.a);
    acc.s += w.m * half(x.s);
  }
};

struct Q5_1K : Q4_1K {
  using B = BlockQ5_1;
  static void decode(const B& b, Dec& o) {
    o = {_mm256_or_si256(nibbles(b.qs), fifth_bits(b.qh)), half(b.d), half(b.m)};
  }
};

struct Q5_0K {
  using B = BlockQ5_0;
  using A = BlockQ8_0;
  using Dec = Dec32;
  static void decode(const B& b, Dec& o) {
    o = {_mm256_sub_epi8(_mm256_or_si256(nibbles(b.qs), fifth_bits(b.qh)), _mm256_set1_epi8(16)), half(b.d), 0.0f};
  }
  template <class Isa>
  static void step(const Dec& w, const A& x, Acc& acc) {
    const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs));
    const __m256i lanes = Isa::dot32(_mm256_sign_epi8(w.q, w.q), _mm256_sign_epi8(xq, w.q));
    acc.a = _mm256_fmadd_ps(_mm256_set1_ps(w.d * half(x.d)), _mm256_cvtepi32_ps(lanes), acc.a);
  }
};

// --- K-quant super-blocks: decoded to unsigned q (element order), the
// per-chunk scale words and the 16 mins (quant::KGroups).

struct alignas(64) DecK {
  uint8_t q[kSuperBlock];
  int16_t scv[8][16];  // chunk t (32 elements): sc[2t] in words 0..7, sc[2t+1] in 8..15
  int16_t m[16];
  float d, dmin;
};

// Two adjacent 32-byte rows of the decoded block in one store where the
// reader (the AVX-512 k_isum) loads them as one 64-byte vector: a wide load
// of data written by two narrow stores cannot be forwarded from the store
// buffer and waits for them to retire.
inline void store2(void* p, __m256i lo, __m256i hi) {
#ifdef __AVX512F__
  _mm512_store_si512(p, _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1));
#else
  _mm256_store_si256(static_cast<__m256i*>(p), lo);
  _mm256_store_si256(static_cast<__m256i*>(p) + 1, hi);
#endif
}

// The scales (16 words, group order) as the 8 per-chunk vectors, and the mins.
inline void set_groups(__m256i sc16, __m256i m16, float d, float dmin, DecK& o) {
  // Chunk t: dword t (words 2t, 2t + 1) everywhere, then word 0 of it in the
  // low 128 bits and word 1 in the high.
  const __m256i pick = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,  //
                                        2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
#pragma GCC unroll 4
  for (int t = 0; t < 8; t += 2)
    store2(o.scv[t], _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(sc16, _mm256_set1_epi32(t)), pick),
           _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(sc16, _mm256_set1_epi32(t + 1)), pick));
  _mm256_store_si256(reinterpret_cast<__m256i*>(o.m), m16);
  o.d = d;
  o.dmin = dmin;
}

// Q4_K / Q5_K: the 12 scale bytes to 8 scales and 8 mins of 6 bits (the
// get_scale_min_k4 packing, unpacked four bytes at a time), each repeated
// for the two 16-element groups of its 32: 16 words each, group order.
inline void groups_k4(const uint8_t* scales, __m256i& sc16, __m256i& m16) {
  uint32_t u[3];
  std::memcpy(u, scales, 12);
  constexpr uint32_t k6 = 0x3f3f3f3fu, k4 = 0x0f0f0f0fu, k2 = 0x03030303u;
  const uint32_t sc_lo = u[0] & k6, sc_hi = (u[2] & k4) | (((u[0] >> 6) & k2) << 4);
  const uint32_t m_lo = u[1] & k6, m_hi = ((u[2] >> 4) & k4) | (((u[1] >> 6) & k2) << 4);
  const __m128i sc8 = _mm_setr_epi32(int(sc_lo), int(sc_hi), 0, 0), m8 = _mm_setr_epi32(int(m_lo), int(m_hi), 0, 0);
  sc16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(sc8, sc8));
  m16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
}
inline void set_groups_k4(const uint8_t* scales, uint16_t d, uint16_t dmin, DecK& o) {
  __m256i sc16, m16;
  groups_k4(scales, sc16, m16);
  set_groups(sc16, m16, half(d), half(dmin), o);
}

#ifdef __AVX512BW__
// The matvec (one x row) of Q4_K / Q5_K without the decoded super-block:
// each 64-byte row of DecK::q and its scale words are built in registers
// and dotted at once, the same maddubs / madd / add on the same values as
// the AVX-512 k_isum over DecK, so the same integer lanes and bits. The
// decoded block's 9 stores and their reloads limited these types to about
// 14 GB/s with W in cache on Zen 4. `q64(t)` gives DecK::q[64t, 64t + 64).
template <class Q64>
[[gnu::always_inline]] inline void fused_k4_step(const uint8_t* scales, uint16_t d, uint16_t dmin, const BlockQ8_K& x,
                                                 Acc& acc, Q64&& q64) {
  uint32_t u[3];
  std::memcpy(u, scales, 12);
  constexpr uint32_t k6 = 0x3f3f3f3fu, k4 = 0x0f0f0f0fu, k2 = 0x03030303u;
  const uint32_t sc_lo = u[0] & k6, sc_hi = (u[2] & k4) | (((u[0] >> 6) & k2) << 4);
  const uint32_t m_lo = u[1] & k6, m_hi = ((u[2] >> 4) & k4) | (((u[1] >> 6) & k2) << 4);
  // The 8 scales (bytes) in every 128-bit lane; step t takes scale 2t as
  // words in its low 256 bits and 2t + 1 in its high (DecK::scv[2t],
  // scv[2t + 1]) with one in-lane byte shuffle, not a word permute.
  const __m512i sc8 = _mm512_set1_epi64((long long)(uint64_t(sc_lo) | uint64_t(sc_hi) << 32));
  const __m128i m8 = _mm_setr_epi32(int(m_lo), int(m_hi), 0, 0);
  __m512i s = _mm512_setzero_si512();
#pragma GCC unroll 4
  for (int t = 0; t < 4; ++t) {
    constexpr long long kZeroHi = 0xff00ff00ff00ff00ll, k1 = 0x0001000100010001ll;
    const __m512i pick = _mm512_or_si512(_mm512_set1_epi64(kZeroHi), _mm512_inserti64x4(_mm512_set1_epi64(2 * t * k1),
                                                                                        _mm256_set1_epi64x((2 * t + 1) * k1), 1));
    const __m512i p = _mm512_maddubs_epi16(q64(t), _mm512_loadu_si512(x.qs + 64 * t));
    s = _mm512_add_epi32(s, _mm512_madd_epi16(p, _mm512_shuffle_epi8(sc8, pick)));
  }
  const __m256i isum = _mm256_add_epi32(_mm512_castsi512_si256(s), _mm512_extracti64x4_epi64(s, 1));
  const __m256i m16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
  const __m256i mins = _mm256_madd_epi16(m16, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.bsums)));
  acc.a = _mm256_fmadd_ps(_mm256_set1_ps(half(d) * x.d), _mm256_cvtepi32_ps(isum), acc.a);
  acc.m = _mm256_fmadd_ps(_mm256_set1_ps(half(dmin) * x.d), _mm256_cvtepi32_ps(mins), acc.m);
}
// Low and high nibbles of 32 bytes as one 64-byte row: chunks 2t, 2t + 1.
inline __m512i nibble_rows(__m256i v) {
  return _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(v), _mm256_srli_epi16(v, 4), 1),
                          _mm512_set1_epi8(0x0f));
}
#endif

// Chunks t and t + 1 (t even) of the decoded q.
inline void store_q2(DecK& o, size_t t, __m256i a, __m256i b) { store2(o.q + 32 * t, a, b); }
inline __m256i load32(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline __m256i srl16(__m256i v, int n) { return _mm256_srl_epi16(v, _mm_cvtsi32_si128(n)); }

template <class Block>
struct KBase {
  using B = Block;
  using A = BlockQ8_K;
  using Dec = DecK;
  template <class Isa>
  static void step(const Dec& w, const A& x, Acc& acc) {
    const __m256i isum = Isa::k_isum(w, x);
    const __m256i mins = _mm256_madd_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(w.m)),
                                           _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.bsums)));
    acc.a = _mm256_fmadd_ps(_mm256_set1_ps(w.d * x.d), _mm256_cvtepi32_ps(isum), acc.a);
    acc.m = _mm256_fmadd_ps(_mm256_set1_ps(w.dmin * x.d), _mm256_cvtepi32_ps(mins), acc.m);
  }
};

struct Q2_KK : KBase<BlockQ2_K> {
  static void decode(const B& b, Dec& o) {
    const __m128i s = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)), low = _mm_set1_epi8(0x0f);
    set_groups(_mm256_cvtepu8_epi16(_mm_and_si128(s, low)),
               _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s, 4), low)), half(b.d), half(b.dmin), o);
    const __m256i three = _mm256_set1_epi8(3);
    for (size_t h = 0; h < 2; ++h) {
      const __m256i v = load32(b.qs + 32 * h);
      for (int j = 0; j < 4; j += 2)
        store_q2(o, 4 * h + size_t(j), _mm256_and_si256(srl16(v, 2 * j), three),
                 _mm256_and_si256(srl16(v, 2 * j + 2), three));
    }
  }
};

struct Q3_KK : KBase<BlockQ3_K> {
  static void decode(const B& b, Dec& o) {
    // 16 scales of 6 bits: low 4 bits in scales[0..7] (two per byte), high 2
    // bits in scales[8..11]; value - 32. m = 4 * scale folds the q - 4 offset.
    uint32_t u[3], a[4];
    std::memcpy(u, b.scales, 12);
    constexpr uint32_t k4 = 0x0f0f0f0fu, k2 = 0x03030303u;
    a[0] = (u[0] & k4) | (((u[2] >> 0) & k2) << 4);
    a[1] = (u[1] & k4) | (((u[2] >> 2) & k2) << 4);
    a[2] = ((u[0] >> 4) & k4) | (((u[2] >> 4) & k2) << 4);
    a[3] = ((u[1] >> 4) & k4) | (((u[2] >> 6) & k2) << 4);
    // From registers, not through memory: a 16-byte load of four 4-byte
    // stores would wait for them to retire.
    const __m256i sc = _mm256_sub_epi16(
        _mm256_cvtepu8_epi16(_mm_setr_epi32(int(a[0]), int(a[1]), int(a[2]), int(a[3]))), _mm256_set1_epi16(32));
    const float d = half(b.d);
    set_groups(sc, _mm256_slli_epi16(sc, 2), d, d, o);
    const __m256i three = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    const __m256i hm = load32(b.hmask);
    for (size_t h = 0; h < 2; ++h) {
      const __m256i v = load32(b.qs + 32 * h);
      auto chunk = [&](int j) {
        const __m256i lo = _mm256_and_si256(srl16(v, 2 * j), three);
        const __m256i hi = _mm256_slli_epi16(_mm256_and_si256(srl16(hm, 4 * int(h) + j), one), 2);
        return _mm256_or_si256(lo, hi);
      };
      for (int j = 0; j < 4; j += 2) store_q2(o, 4 * h + size_t(j), chunk(j), chunk(j + 1));
    }
  }
};

struct Q4_KK : KBase<BlockQ4_K> {
  static void decode(const B& b, Dec& o) {
    set_groups_k4(b.scales, b.d, b.dmin, o);
    const __m256i low = _mm256_set1_epi8(0x0f);
    for (size_t j = 0; j < 4; ++j) {
      const __m256i v = load32(b.qs + 32 * j);
      store_q2(o, 2 * j, _mm256_and_si256(v, low), _mm256_and_si256(_mm256_srli_epi16(v, 4), low));
    }
  }
#ifdef __AVX512BW__
  static constexpr bool kFused = true;
  static void fused_step(const B& b, const A& x, Acc& acc) {
    fused_k4_step(b.scales, b.d, b.dmin, x, acc, [&](int t) { return nibble_rows(load32(b.qs + 32 * t)); });
  }
#endif
};

struct Q5_KK : KBase<BlockQ5_K> {
  static void decode(const B& b, Dec& o) {
    set_groups_k4(b.scales, b.d, b.dmin, o);
    const __m256i low = _mm256_set1_epi8(0x0f), one = _mm256_set1_epi8(1);
    const __m256i hv = load32(b.qh);
    for (size_t j = 0; j < 4; ++j) {
      const __m256i v = load32(b.qs + 32 * j);
      const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(srl16(hv, 2 * int(j)), one), 4);
      const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(srl16(hv, 2 * int(j) + 1), one), 4);
      store_q2(o, 2 * j, _mm256_or_si256(_mm256_and_si256(v, low), h0),
               _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), low), h1));
    }
  }
#ifdef __AVX512BW__
  static constexpr bool kFused = true;
  static void fused_step(const B& b, const A& x, Acc& acc) {
    const __m256i hv = load32(b.qh);
    const __m512i hh = _mm512_inserti64x4(_mm512_castsi256_si512(hv), hv, 1);
    const __m512i one = _mm512_set1_epi8(1);
    fused_k4_step(b.scales, b.d, b.dmin, x, acc, [&](int t) {
      // Bit 2t of qh for chunk 2t (low half), bit 2t + 1 for chunk 2t + 1.
      const __m512i shift = _mm512_inserti64x4(_mm512_set1_epi16(short(2 * t)), _mm256_set1_epi16(short(2 * t + 1)), 1);
      const __m512i h = _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(hh, shift), one), 4);
      return _mm512_or_si512(nibble_rows(load32(b.qs + 32 * t)), h);
    });
  }
#endif
};

struct Q6_KK : KBase<BlockQ6_K> {
  static void decode(const B& b, Dec& o) {
    const __m256i sc = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)));
    const float d = half(b.d);
    set_groups(sc, _mm256_slli_epi16(sc, 5), d, d, o);  // m = 32 * scale folds the q - 32 offset
#ifdef __AVX512BW__
    // Chunks 4h, 4h + 1 (low nibbles of ql[64h..], bits 0-1 / 2-3 of qh) and
    // 4h + 2, 4h + 3 (high nibbles, bits 4-5 / 6-7) are two 64-byte rows
    // each: half the instructions of the 256-bit decode, which limited the
    // Q6_K matvec (0.51 of the bandwidth).
    const __m512i low5 = _mm512_set1_epi8(0x0f), three5 = _mm512_set1_epi8(3);
    const __m512i lo_shift = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    const __m512i hi_shift = _mm512_add_epi16(lo_shift, _mm512_set1_epi16(4));
    for (size_t h = 0; h < 2; ++h) {
      const __m512i v = _mm512_loadu_si512(b.ql + 64 * h);
      const __m256i hv = load32(b.qh + 32 * h);
      const __m512i hh = _mm512_inserti64x4(_mm512_castsi256_si512(hv), hv, 1);
      auto hi = [&](__m512i s) { return _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(hh, s), three5), 4); };
      _mm512_store_si512(o.q + 128 * h, _mm512_or_si512(_mm512_and_si512(v, low5), hi(lo_shift)));
      _mm512_store_si512(o.q + 128 * h + 64,
                         _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(v, 4), low5), hi(hi_shift)));
    }
#else
    const __m256i low = _mm256_set1_epi8(0x0f), three = _mm256_set1_epi8(3);
    for (size_t h = 0; h < 2; ++h) {
      const __m256i a = load32(b.ql + 64 * h), c = load32(b.ql + 64 * h + 32), hv = load32(b.qh + 32 * h);
      auto hi = [&](int s) { return _mm256_slli_epi16(_mm256_and_si256(srl16(hv, s), three), 4); };
      store_q2(o, 4 * h + 0, _mm256_or_si256(_mm256_and_si256(a, low), hi(0)),
               _mm256_or_si256(_mm256_and_si256(c, low), hi(2)));
      store_q2(o, 4 * h + 2, _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a, 4), low), hi(4)),
               _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(c, 4), low), hi(6)));
    }
#endif
  }
};

// One W row against R x rows: y[r * ldy] for r < R.
template <class Isa, class K, size_t R>
void ktile(const typename K::B* w, size_t nb, const uint8_t* act, size_t act_stride, float* y, size_t ldy) {
  using A = typename K::A;
  Acc acc[R];
  typename K::Dec dec;
  for (size_t b = 0; b < nb; ++b) {
    // W is walked row after row, so the next rows follow this one in memory.
    _mm_prefetch(reinterpret_cast<const char*>(w + b) + 1024, _MM_HINT_T0);
    if constexpr (R == 1 && requires { K::kFused; }) {
      K::fused_step(w[b], reinterpret_cast<const A*>(act)[b], acc[0]);
      continue;
    }
    K::decode(w[b], dec);
#pragma GCC unroll 4
    for (size_t r = 0; r < R; ++r)
      K::template step<Isa>(dec, reinterpret_cast<const A*>(act + r * act_stride)[b], acc[r]);
  }
  for (size_t r = 0; r < R; ++r) y[r * ldy] = acc[r].finish();
}

// One thread's share, y[i, j] for j in [j0, j1): W in cache blocks that stay
// in L2 while every group of up to 4 x rows passes over them.
template <class Isa, class K, DType T>
void kgemm(const float* x, size_t n, size_t k, const void* wv, size_t j0, size_t j1, float* y, size_t ldy) {
  using B = typename K::B;
  const size_t nb = k / dtype_block_elems(T);
  const ActRows act(dtype_traits(T).act_type, x, n, k);
  const B* w = static_cast<const B*>(wv);
  const size_t block = w_block_rows(nb * sizeof(B));
  constexpr size_t kRows = 4;
  for (size_t jb = j0; jb < j1; jb += block) {
    const size_t je = std::min(j1, jb + block);
    for (size_t i = 0; i < n; i += kRows) {
      const size_t rows = std::min(kRows, n - i);
      const uint8_t* a = act.row(i);
      float* yi = y + i * ldy;
      for (size_t j = jb; j < je; ++j) {
        const B* wr = w + j * nb;
        switch (rows) {
          case 1: ktile<Isa, K, 1>(wr, nb, a, act.stride(), yi + j, ldy); break;
          case 2: ktile<Isa, K, 2>(wr, nb, a, act.stride(), yi + j, ldy); break;
          case 3: ktile<Isa, K, 3>(wr, nb, a, act.stride(), yi + j, ldy); break;
          default: ktile<Isa, K, 4>(wr, nb, a, act.stride(), yi + j, ldy); break;
        }
      }
    }
  }
}

}  // namespace
}  // namespace strata::kernels
