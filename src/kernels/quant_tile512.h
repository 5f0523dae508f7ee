// The AVX-512 quantized matmul tile, for quant_avx512.cpp only (needs
// AVX512F/BW/VL and VNNI): each 512-bit vector holds one block of two W rows
// (row c in the low 256 bits, row c + 1 in the high), so one dpbusd, convert,
// scale multiply and FMA serve two outputs. W is read two blocks (a pair) per
// row at a time, and word permutes across two rows' pairs place the
// weights and the f16 scales.
//
// It computes exactly what quant_tile.h computes, bit for bit: per block the
// same 8 int32 lanes (each the exact sum of 4 adjacent products w * x), the
// same scale d_w * d_x, the same f32 FMA into the output's own 8 lanes,
// blocks in order, the same final hsum8. Only the instruction count per
// block changes. So this tile and the AVX2 tile agree bitwise, and every
// output has one arithmetic whatever the batch or the W row range.
//
// dpbusd multiplies unsigned by signed bytes: W goes in as unsigned
// u = w + off (Q4_0: the nibble, off = 8; Q8_0: w ^ 0x80, off = 128) and x
// signed, so sum(u * x) = sum(w * x) + off * sum(x). The accumulator starts
// at -off * sum(x), precomputed once per x block (XBlock), which leaves the
// exact sum(w * x) in each lane with one instruction. x is quantized here
// too, vectorized, to the same bits as quantize_q8_0.
#pragma once

#include <immintrin.h>

#include <array>
#include <cstdint>
#include <memory>

#include "core/dtype.h"
#include "kernels/matmul_isa.h"
#include "kernels/quant.h"
#include "kernels/quant_tile.h"

namespace strata::kernels {
namespace {

// One Q8_0 x block laid out for the tile.
struct alignas(32) XBlock {
  int8_t qs[kQuantBlock];
  int32_t neg_off_sum[8];  // lane l: -off * (qs[4l] + ... + qs[4l + 3])
  float d;
};
static_assert(sizeof(XBlock) == 96, "three 32-byte rows per x block");

// Word indices for _mm512_permutex2var_epi16 over (row c's pair, row c + 1's
// pair) = words 0..31 and 32..63: 128-bit chunk i holds words a[i] + step * j.
constexpr std::array<int16_t, 32> chunk_words(int a0, int a1, int a2, int a3, int step) {
  std::array<int16_t, 32> w{};
  const int a[4] = {a0, a1, a2, a3};
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 8; ++j) w[size_t(8 * i + j)] = int16_t(a[i] + step * j);
  return w;
}
inline __m512i load_words(const std::array<int16_t, 32>& w) { return _mm512_loadu_si512(w.data()); }

// f16 scales picked by `idx` (row c's then row c + 1's, 8 lanes each, for
// block b in the low 256 bits of the words, b + 1 in the high) as f32.
inline void scales(__m512i v0, __m512i v1, __m512i idx, bool two, __m512* d) {
  const __m512i h = _mm512_permutex2var_epi16(v0, idx, v1);
  d[0] = _mm512_cvtph_ps(_mm512_castsi512_si256(h));
  if (two) d[1] = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1));
}

// Q4_0 pairs, 36 bytes = 18 words: d_b (word 0), qs_b (1..8), d_b1 (9),
// qs_b1 (10..17). A masked load reads a pair (never past it, so never past
// the end of W).
struct Q4W512 {
  using B = BlockQ4_0;
  static constexpr int kOff = 8;
  // Low nibbles (elements 0..15) then high (16..31) of row c, then of row
  // c + 1: chunks 1 and 3 are shifted right by 4 after the permute.
  static constexpr std::array<int16_t, 32> kNibB = chunk_words(1, 1, 33, 33, 1);
  static constexpr std::array<int16_t, 32> kNibB1 = chunk_words(10, 10, 42, 42, 1);
  static constexpr std::array<int16_t, 32> kScale = chunk_words(0, 32, 9, 41, 0);
  // u[j], d[j]: block b + j of rows r0 (low half) and r1 (high half), j < 1 + two.
  template <bool Two>
  static void load(const B* r0, const B* r1, __m512i* u, __m512* d) {
    constexpr __mmask64 kBytes = (__mmask64(1) << (Two ? 36 : 18)) - 1;
    const __m512i v0 = _mm512_maskz_loadu_epi8(kBytes, r0), v1 = _mm512_maskz_loadu_epi8(kBytes, r1);
    const __m512i shift = _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0), low = _mm512_set1_epi8(0x0f);
    u[0] = _mm512_and_si512(_mm512_srlv_epi64(_mm512_permutex2var_epi16(v0, load_words(kNibB), v1), shift), low);
    if (Two) u[1] = _mm512_and_si512(_mm512_srlv_epi64(_mm512_permutex2var_epi16(v0, load_words(kNibB1), v1), shift), low);
    scales(v0, v1, load_words(kScale), Two, d);
  }
};

// Q8_0 pairs, 68 bytes: d_b (word 0), qs_b (bytes 2..33), d_b1 (word 17),
// qs_b1 (bytes 36..67).
struct Q8W512 {
  using B = BlockQ8_0;
  static constexpr int kOff = 128;
  static constexpr std::array<int16_t, 32> kScale = chunk_words(0, 32, 17, 49, 0);
  template <bool Two>
  static void load(const B* r0, const B* r1, __m512i* u, __m512* d) {
    for (size_t j = 0; j < (Two ? 2 : 1); ++j) {
      const __m256i q0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r0[j].qs));
      const __m256i q1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r1[j].qs));
      u[j] = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1), _mm512_set1_epi8(char(0x80)));
    }
    // Words 0..31 of a pair (68 bytes) are in bounds; of a lone block, 17.
    constexpr __mmask64 kBytes = Two ? ~__mmask64(0) : (__mmask64(1) << 34) - 1;
    scales(_mm512_maskz_loadu_epi8(kBytes, r0), _mm512_maskz_loadu_epi8(kBytes, r1), load_words(kScale), Two, d);
  }
};

// `count` x blocks quantized to Q8_0 as XBlocks: quantize_q8_0 (the scalar
// reference) vectorized, the same operations on the same values so the same
// bits: amax = max |x| skipping NaN as std::max does (maxps returns its
// second operand when either is NaN), d = amax / 127, id = 1 / d or 0,
// q = x * id rounded to nearest even (what round_even's magic addition
// does for |v| < 2^22), d stored through f16.
template <int Off>
void quantize_x_blocks(const float* x, size_t count, XBlock* out) {
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  for (size_t b = 0; b < count; ++b) {
    const __m512 v0 = _mm512_loadu_ps(x + b * kQuantBlock), v1 = _mm512_loadu_ps(x + b * kQuantBlock + 16);
    const __m512 m0 = _mm512_max_ps(_mm512_and_ps(v0, abs_mask), _mm512_setzero_ps());
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_and_ps(v1, abs_mask), m0));
    const float d = amax / 127.0f;
    const __m512 id = _mm512_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
    constexpr int kNearest = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    const __m512i q0 = _mm512_cvttps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(v0, id), kNearest));
    const __m512i q1 = _mm512_cvttps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(v1, id), kNearest));
    const __m256i q = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm512_cvtepi32_epi8(q0)), _mm512_cvtepi32_epi8(q1), 1);
    _mm256_store_si256(reinterpret_cast<__m256i*>(out[b].qs), q);
    const __m256i sum = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(char(Off)), q);
    _mm256_store_si256(reinterpret_cast<__m256i*>(out[b].neg_off_sum), _mm256_sub_epi32(_mm256_setzero_si256(), sum));
    out[b].d = _cvtsh_ss(f32_to_f16(d));
  }
}

// Blocks b and, if Two, b + 1 of every (x row, W row): acc[r][h] holds the
// 8 lanes of W rows 2h (low) and 2h + 1 (high).
template <class W, size_t R, bool Two>
[[gnu::always_inline]] inline void pair_step(const XBlock* x, size_t nb, const typename W::B* const* w, size_t b,
                                             __m512 (&acc)[R][2]) {
  __m512i u[2][2];
  __m512 d[2][2];
  W::template load<Two>(w[0] + b, w[1] + b, u[0], d[0]);
  W::template load<Two>(w[2] + b, w[3] + b, u[1], d[1]);
#pragma GCC unroll 4
  for (size_t r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (size_t j = 0; j < (Two ? 2 : 1); ++j) {
      const XBlock& xb = x[r * nb + b + j];
      const __m512i xq = _mm512_broadcast_i64x4(_mm256_load_si256(reinterpret_cast<const __m256i*>(xb.qs)));
      const __m512i init = _mm512_broadcast_i64x4(_mm256_load_si256(reinterpret_cast<const __m256i*>(xb.neg_off_sum)));
      const __m512 dx = _mm512_set1_ps(xb.d);
#pragma GCC unroll 2
      for (size_t h = 0; h < 2; ++h) {
        const __m512 f = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(init, u[h][j], xq));
        acc[r][h] = _mm512_fmadd_ps(_mm512_mul_ps(d[h][j], dx), f, acc[r][h]);
      }
    }
}

// R x rows (nb XBlocks each) times kTileRowsW W rows (nb blocks each);
// writes y[r * ldy + c] for c < jn.
template <class W, size_t R>
void pair_tile(const XBlock* x, size_t nb, const typename W::B* const* w, float* y, size_t ldy, size_t jn) {
  static_assert(kTileRowsW == 4, "two W rows per vector, two vectors");
  using B = typename W::B;
  __m512 acc[R][2];
  for (size_t r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  size_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    if constexpr (R == 1) {
      // A matvec streams W once; fetch the next tile (the 4 rows after
      // these) ahead, as the hardware prefetcher restarts at each tile. Q8_0
      // pairs advance 68 bytes: fetching at +0 and +64 leaves no line out.
      // Into L2, not L1: on Zen 4 the L1 hint (8 streams in flight, these
      // and the next 4 rows) held the Q8_0 matvec at 14 GB/s, the L2 hint
      // reads 25-28 GB/s, the bandwidth of one sequential stream.
      const char* next = reinterpret_cast<const char*>(w[3] + nb + b);
      const size_t row = nb * sizeof(B);
#pragma GCC unroll 4
      for (size_t c = 0; c < kTileRowsW; ++c) {
        _mm_prefetch(next + c * row, _MM_HINT_T1);
        if constexpr (2 * sizeof(B) > 64) _mm_prefetch(next + c * row + 64, _MM_HINT_T1);
      }
    }
    pair_step<W, R, true>(x, nb, w, b, acc);
  }
  if (b < nb) pair_step<W, R, false>(x, nb, w, b, acc);  // an odd block count's last block
  // All kTileRowsW sums first: a loop to jn over acc would keep acc in memory.
  float sums[R][kTileRowsW];
  for (size_t r = 0; r < R; ++r)
    for (size_t h = 0; h < 2; ++h) {
      sums[r][2 * h] = hsum8(_mm512_extractf32x8_ps(acc[r][h], 0));
      sums[r][2 * h + 1] = hsum8(_mm512_extractf32x8_ps(acc[r][h], 1));
    }
  for (size_t r = 0; r < R; ++r)
    for (size_t c = 0; c < jn; ++c) y[r * ldy + c] = sums[r][c];
}

template <class W, size_t R>
void pair_tile_rows(size_t rows, const XBlock* x, size_t nb, const typename W::B* const* w, float* y, size_t ldy,
                    size_t jn) {
  if constexpr (R > 1) {
    if (rows < R) return pair_tile_rows<W, R - 1>(rows, x, nb, w, y, ldy, jn);
  }
  pair_tile<W, R>(x, nb, w, y, ldy, jn);
}

// One thread's share, y[i, j] for j in [j0, j1), with at most RMax x rows per tile.
template <class W, size_t RMax>
void pair_gemm(const float* x, size_t n, size_t k, const void* wv, size_t j0, size_t j1, float* y, size_t ldy) {
  using B = typename W::B;
  const size_t nb = k / kQuantBlock;
  std::unique_ptr<XBlock[]> xb(new XBlock[n * nb]);
  quantize_x_blocks<W::kOff>(x, n * nb, xb.get());
  for_each_quant_tile(n, nb, static_cast<const B*>(wv), j0, j1, RMax,
                      [&](size_t i, size_t rows, const B* const* wr, size_t j, size_t jn) {
                        pair_tile_rows<W, RMax>(rows, xb.get() + i * nb, nb, wr, y + i * ldy + j, ldy, jn);
                      });
}

}  // namespace
}  // namespace strata::kernels
