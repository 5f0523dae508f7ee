// AVX-512 matmul kernels (compiled with -mavx512f/bw/vl/dq; run only after
// matmul.cpp checked the CPU). W elements are converted to f32 in registers.
//
// Each output y[i, j] is one 16-lane f32 accumulator, fed by one FMA per 16
// elements of k in order, the k tail loaded with a zeroing mask, then reduced
// by hsum(). A tile computes 4 W rows x R x rows so that a W vector loaded
// once serves R x rows; R only changes which accumulators live side by side.

// GCC 12 reports -Wmaybe-uninitialized inside its own headers for the
// deliberately undefined pass-through operand of _mm512_cvtph_ps and
// _mm512_cvtepu16_epi32 (a known false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/kquant_isa.h"
#include "kernels/matmul_isa.h"
#include "kernels/quant_isa.h"

namespace strata::kernels {
namespace {

constexpr size_t kLanes = 16;
constexpr size_t kMaxRowsX = 6;  // 4 x 6 accumulators + 4 W vectors fit in 32 zmm registers

struct F32W {
  using E = float;
  static __m512 load(const E* p) { return _mm512_loadu_ps(p); }
  static __m512 load_tail(const E* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
};

struct F16W {
  using E = uint16_t;
  static __m512 load(const E* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static __m512 load_tail(const E* p, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }
};

struct BF16W {
  using E = uint16_t;
  static __m512 widen(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }
  static __m512 load(const E* p) { return widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static __m512 load_tail(const E* p, __mmask16 m) { return widen(_mm256_maskz_loadu_epi16(m, p)); }
};

// The one lane reduction every output goes through (fixed order).
inline float hsum(__m512 v) {
  __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  __m128 s1 = _mm_add_ss(s2, _mm_movehdup_ps(s2));
  return _mm_cvtss_f32(s1);
}

// y[r, c] for r < R, c < jn from x rows x + r*k and W rows w[c].
template <class W, size_t R>
void tile(const float* x, size_t k, const typename W::E* const* w, float* y, size_t ldy, size_t jn) {
  __m512 acc[R][kTileRowsW];
#pragma GCC unroll 8
  for (size_t r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (size_t c = 0; c < kTileRowsW; ++c) acc[r][c] = _mm512_setzero_ps();
  const typename W::E *w0 = w[0], *w1 = w[1], *w2 = w[2], *w3 = w[3];
  size_t p = 0;
  for (; p + kLanes <= k; p += kLanes) {
    if constexpr (R == 1) {
      // A matvec streams W from memory once; the hardware prefetcher restarts
      // at every new tile, so fetch the next tile (the 4 rows after these) ahead,
      // into L2: into L1 the 8 streams in flight evict each other (on Zen 4 the
      // T0 hint held a bf16/f16 matvec near 16 GB/s per core, T1 reads ~23).
      const typename W::E* next = w3 + k + p;
      _mm_prefetch(reinterpret_cast<const char*>(next), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(next + k), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(next + 2 * k), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(next + 3 * k), _MM_HINT_T1);
    }
    __m512 wv[kTileRowsW] = {W::load(w0 + p), W::load(w1 + p), W::load(w2 + p), W::load(w3 + p)};
#pragma GCC unroll 8
    for (size_t r = 0; r < R; ++r) {
      __m512 xv = _mm512_loadu_ps(x + r * k + p);
#pragma GCC unroll 4
      for (size_t c = 0; c < kTileRowsW; ++c) acc[r][c] = _mm512_fmadd_ps(xv, wv[c], acc[r][c]);
    }
  }
  if (p < k) {
    __mmask16 m = __mmask16((1u << (k - p)) - 1);
    __m512 wv[kTileRowsW] = {W::load_tail(w0 + p, m), W::load_tail(w1 + p, m), W::load_tail(w2 + p, m),
                             W::load_tail(w3 + p, m)};
#pragma GCC unroll 8
    for (size_t r = 0; r < R; ++r) {
      __m512 xv = _mm512_maskz_loadu_ps(m, x + r * k + p);
#pragma GCC unroll 4
      for (size_t c = 0; c < kTileRowsW; ++c) acc[r][c] = _mm512_fmadd_ps(xv, wv[c], acc[r][c]);
    }
  }
  for (size_t r = 0; r < R; ++r)
    for (size_t c = 0; c < jn; ++c) y[r * ldy + c] = hsum(acc[r][c]);
}

template <class W>
void tile_rows(size_t rows, const float* x, size_t k, const typename W::E* const* w, float* y, size_t ldy,
               size_t jn) {
  switch (rows) {
    case 1: return tile<W, 1>(x, k, w, y, ldy, jn);
    case 2: return tile<W, 2>(x, k, w, y, ldy, jn);
    case 3: return tile<W, 3>(x, k, w, y, ldy, jn);
    case 4: return tile<W, 4>(x, k, w, y, ldy, jn);
    case 5: return tile<W, 5>(x, k, w, y, ldy, jn);
    default: return tile<W, 6>(x, k, w, y, ldy, jn);
  }
}

template <class W>
void gemm(const float* x, size_t n, size_t k, const void* wv, size_t j0, size_t j1, float* y, size_t ldy) {
  using E = typename W::E;
  const E* w = static_cast<const E*>(wv);
  const size_t block = w_block_rows(k * sizeof(E));
  for (size_t jb = j0; jb < j1; jb += block) {
    const size_t je = std::min(j1, jb + block);
    for (size_t i = 0; i < n; i += kMaxRowsX) {
      const size_t rows = std::min(kMaxRowsX, n - i);
      for (size_t j = jb; j < je; j += kTileRowsW) {
        const size_t jn = std::min(kTileRowsW, je - j);
        // A partial tile repeats its last row; the extra results are dropped.
        const E* wr[kTileRowsW];
        for (size_t c = 0; c < kTileRowsW; ++c) wr[c] = w + (j + std::min(c, jn - 1)) * k;
        tile_rows<W>(rows, x + i * k, k, wr, y + i * ldy + j, ldy, jn);
      }
    }
  }
}

void to_float_f32(const void* src, size_t count, float* dst) {
  if (count) std::memcpy(dst, src, count * sizeof(float));  // memcpy from null is UB even for 0 bytes
}

template <class W>
void to_float_16(const void* src, size_t count, float* dst) {
  const uint16_t* s = static_cast<const uint16_t*>(src);
  size_t p = 0;
  for (; p + kLanes <= count; p += kLanes) _mm512_storeu_ps(dst + p, W::load(s + p));
  if (p < count) {
    __mmask16 m = __mmask16((1u << (count - p)) - 1);
    _mm512_mask_storeu_ps(dst + p, m, W::load_tail(s + p, m));
  }
}

}  // namespace

const IsaTable kAvx512Table = {
    "avx512",
    {
        /* F32  */ {to_float_f32, gemm<F32W>},
        /* F16  */ {to_float_16<F16W>, gemm<F16W>},
        /* BF16 */ {to_float_16<BF16W>, gemm<BF16W>},
        /* Q8_0 */ {dequant_q8_0, gemm_q8_0_avx512},
        /* Q4_0 */ {dequant_q4_0, gemm_q4_0_avx512},
        /* Q4_1 */ {nullptr, gemm_q4_1_avx512},
        /* Q5_0 */ {nullptr, gemm_q5_0_avx512},
        /* Q5_1 */ {nullptr, gemm_q5_1_avx512},
        /* Q2_K */ {nullptr, gemm_q2_K_avx512},
        /* Q3_K */ {nullptr, gemm_q3_K_avx512},
        /* Q4_K */ {nullptr, gemm_q4_K_avx512},
        /* Q5_K */ {nullptr, gemm_q5_K_avx512},
        /* Q6_K */ {nullptr, gemm_q6_K_avx512},
        /* Q8_1, Q8_K: activation types, no gemm */ {},
        {},
        /* IQ4_NL */ {nullptr, gemm_iq4_nl_avx512},
        /* IQ4_XS */ {nullptr, gemm_iq4_xs_avx512},
    },
};

}  // namespace strata::kernels
