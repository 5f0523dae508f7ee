// The 256-bit quantized matmul tile, parameterized by its integer dot
// (`Dot`: maddubs + madd in quant_avx2.cpp), and the tile walk and hsum8()
// that quant_tile512.h (quant_avx512.cpp) shares. Everything here is in an
// anonymous namespace so the compiled copies never merge at link time.
//
// Per block and output: 8 int32 lanes, each the exact sum of 4 adjacent
// products w * x, added as f32 with one FMA by the block's
// scale d_w * d_x into the output's 8-lane accumulator; blocks in order; lanes
// reduced by hsum8(). quant_tile512.h does the same arithmetic with fewer
// instructions, so both ISAs agree bitwise.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <memory>

#include "kernels/matmul_isa.h"
#include "kernels/quant.h"

namespace strata::kernels {
namespace {

// Q8_0 weights are signed bytes; the dot uses |w| and x with w's sign
// (the unsigned x signed form every integer dot instruction wants).
struct Q8W {
  using B = BlockQ8_0;
  static constexpr bool kNibbles = false;
  static __m256i load(const B& b) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs)); }
};

// Q4_0 weights as unsigned bytes 0..15 (low nibbles are elements 0..15, high
// 16..31); the dot is sum(u * x) - 8 * sum(x), both exact.
struct Q4W {
  using B = BlockQ4_0;
  static constexpr bool kNibbles = true;
  static __m256i load(const B& b) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs));
    const __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(v), _mm_srli_epi16(v, 4), 1);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
  }
};

inline float hsum8(__m256 v) {
  __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  __m128 s1 = _mm_add_ss(s2, _mm_movehdup_ps(s2));
  return _mm_cvtss_f32(s1);
}

// An f16 scale as 8 equal f32 lanes.
inline __m256 broadcast_half(uint16_t h) { return _mm256_cvtph_ps(_mm_set1_epi16(short(h))); }

template <class Dot, class W, size_t R>
void quant_tile(const BlockQ8_0* x, size_t nb, const typename W::B* const* w, float* y, size_t ldy, size_t jn) {
  __m256 acc[R][kTileRowsW];
  for (size_t r = 0; r < R; ++r)
    for (size_t c = 0; c < kTileRowsW; ++c) acc[r][c] = _mm256_setzero_ps();
  for (size_t b = 0; b < nb; ++b) {
    if constexpr (R == 1) {
      // A matvec streams W once; fetch the next tile (the 4 rows after
      // these) ahead, as the hardware prefetcher restarts at each tile.
      // Into L2 (as quant_tile512.h, where the L1 hint was measured slower).
      const char* next = reinterpret_cast<const char*>(w[3] + nb + b);
      const size_t row = nb * sizeof(typename W::B);
      _mm_prefetch(next, _MM_HINT_T1);
      _mm_prefetch(next + row, _MM_HINT_T1);
      _mm_prefetch(next + 2 * row, _MM_HINT_T1);
      _mm_prefetch(next + 3 * row, _MM_HINT_T1);
    }
    __m256i wq[kTileRowsW];
    __m256 dw[kTileRowsW];
#pragma GCC unroll 4
    for (size_t c = 0; c < kTileRowsW; ++c) {
      wq[c] = W::load(w[c][b]);
      dw[c] = broadcast_half(w[c][b].d);
    }
#pragma GCC unroll 4
    for (size_t r = 0; r < R; ++r) {
      const BlockQ8_0& xb = x[r * nb + b];
      const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.qs));
      const __m256 dx = broadcast_half(xb.d);
      [[maybe_unused]] __m256i x8;  // 8 * (x summed in each lane's 4 bytes)
      if constexpr (W::kNibbles) x8 = Dot::lanes(_mm256_set1_epi8(8), xq);
#pragma GCC unroll 4
      for (size_t c = 0; c < kTileRowsW; ++c) {
        __m256i lanes;
        if constexpr (W::kNibbles) lanes = _mm256_sub_epi32(Dot::lanes(wq[c], xq), x8);
        else lanes = Dot::lanes(_mm256_sign_epi8(wq[c], wq[c]), _mm256_sign_epi8(xq, wq[c]));
        acc[r][c] = _mm256_fmadd_ps(_mm256_mul_ps(dw[c], dx), _mm256_cvtepi32_ps(lanes), acc[r][c]);
      }
    }
  }
  for (size_t r = 0; r < R; ++r)
    for (size_t c = 0; c < jn; ++c) y[r * ldy + c] = hsum8(acc[r][c]);
}

template <class Dot, class W, size_t R>
void quant_tile_rows(size_t rows, const BlockQ8_0* x, size_t nb, const typename W::B* const* w, float* y, size_t ldy,
                     size_t jn) {
  if constexpr (R > 1) {
    if (rows < R) return quant_tile_rows<Dot, W, R - 1>(rows, x, nb, w, y, ldy, jn);
  }
  quant_tile<Dot, W, R>(x, nb, w, y, ldy, jn);
}

// Walks one thread's share, y[i, j] for j in [j0, j1), in tiles of at most
// `rmax` x rows by kTileRowsW W rows, W cache-blocked so a block stays in L2
// while every group of x rows passes over it: tile(i, rows, wr, j, jn) with
// wr the tile's kTileRowsW W row pointers (a partial tile repeats its last
// row). The walk only decides which outputs are computed together, never
// how one is.
template <class B, class Tile>
void for_each_quant_tile(size_t n, size_t nb, const B* w, size_t j0, size_t j1, size_t rmax, Tile&& tile) {
  const size_t block = w_block_rows(nb * sizeof(B));
  for (size_t jb = j0; jb < j1; jb += block) {
    const size_t je = std::min(j1, jb + block);
    for (size_t i = 0; i < n; i += rmax) {
      const size_t rows = std::min(rmax, n - i);
      for (size_t j = jb; j < je; j += kTileRowsW) {
        const size_t jn = std::min(kTileRowsW, je - j);
        const B* wr[kTileRowsW];
        for (size_t c = 0; c < kTileRowsW; ++c) wr[c] = w + (j + std::min(c, jn - 1)) * nb;
        tile(i, rows, wr, j, jn);
      }
    }
  }
}

// One thread's share, y[i, j] for j in [j0, j1), with at most RMax x rows per tile.
template <class Dot, class W, size_t RMax>
void quant_gemm(const float* x, size_t n, size_t k, const void* wv, size_t j0, size_t j1, float* y, size_t ldy) {
  using B = typename W::B;
  const size_t nb = k / kQuantBlock;
  std::unique_ptr<BlockQ8_0[]> xq(new BlockQ8_0[n * nb]);
  if (n != 0 && nb != 0) quantize_q8_0(x, n * k, xq.get());
  for_each_quant_tile(n, nb, static_cast<const B*>(wv), j0, j1, RMax,
                      [&](size_t i, size_t rows, const B* const* wr, size_t j, size_t jn) {
                        quant_tile_rows<Dot, W, RMax>(rows, xq.get() + i * nb, nb, wr, y + i * ldy + j, ldy, jn);
                      });
}

}  // namespace
}  // namespace strata::kernels
