// AVX-512 kernels of kquant_isa.h: the K-quant super-block's integer dot
// two 32-element chunks per 512-bit maddubs + madd (AVX512BW), the two
// halves added before conversion so the lanes equal the AVX2 ones exactly;
// the 32-blocks' dot is one VNNI dpbusd (the same sums of 4 products as
// maddubs + madd). Falls back to the AVX2 kernels on CPUs without VNNI.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 false positive in its intrinsic headers

#include "kernels/kquant_isa.h"
#include "kernels/iq4_tile.h"
#include "kernels/kquant_tile.h"

namespace strata::kernels {
namespace {

struct Avx512 {
  static __m256i dot32(__m256i u, __m256i s) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s); }
  static __m256i k_isum(const DecK& w, const BlockQ8_K& x) {
    __m512i s = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (size_t t = 0; t < 4; ++t) {
      const __m512i p = _mm512_maddubs_epi16(_mm512_load_si512(w.q + 64 * t), _mm512_loadu_si512(x.qs + 64 * t));
      s = _mm512_add_epi32(s, _mm512_madd_epi16(p, _mm512_load_si512(w.scv[2 * t])));
    }
    return _mm256_add_epi32(_mm512_castsi512_si256(s), _mm512_extracti64x4_epi64(s, 1));
  }
  // AVX-512 has no byte sign instruction: x is negated under the mask of
  // w's sign bits instead (w has no zero levels, so that is the same).
  static __m256i iq_isum(const DecIQ4& w, const BlockQ8_K& x) {
    __m512i s = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (size_t t = 0; t < 4; ++t) {
      const __m512i xq = _mm512_loadu_si512(x.qs + 64 * t);
      const __mmask64 neg = _mm512_movepi8_mask(_mm512_load_si512(w.s + 64 * t));
      const __m512i xs = _mm512_mask_sub_epi8(xq, neg, _mm512_setzero_si512(), xq);
      const __m512i p = _mm512_maddubs_epi16(_mm512_load_si512(w.a + 64 * t), xs);
      s = _mm512_add_epi32(s, _mm512_madd_epi16(p, _mm512_load_si512(w.scv[2 * t])));
    }
    return _mm256_add_epi32(_mm512_castsi512_si256(s), _mm512_extracti64x4_epi64(s, 1));
  }
};

bool have_vnni() {
  static const bool v = __builtin_cpu_supports("avx512vnni");
  return v;
}

}  // namespace

#define STRATA_KQUANT_DEF(t, K, T)                                                                              \
  void gemm_##t##_avx512(const float* x, size_t n, size_t k, const void* w, size_t j0, size_t j1, float* y, \
                         size_t ldy) {                                                                         \
    if (!have_vnni()) return gemm_##t##_avx2(x, n, k, w, j0, j1, y, ldy);                                     \
    kgemm<Avx512, K, T>(x, n, k, w, j0, j1, y, ldy);                                                           \
  }
STRATA_KQUANT_DEF(q4_1, Q4_1K, DType::Q4_1)
STRATA_KQUANT_DEF(q5_0, Q5_0K, DType::Q5_0)
STRATA_KQUANT_DEF(q5_1, Q5_1K, DType::Q5_1)
STRATA_KQUANT_DEF(q2_K, Q2_KK, DType::Q2_K)
STRATA_KQUANT_DEF(q3_K, Q3_KK, DType::Q3_K)
STRATA_KQUANT_DEF(q4_K, Q4_KK, DType::Q4_K)
STRATA_KQUANT_DEF(q5_K, Q5_KK, DType::Q5_K)
STRATA_KQUANT_DEF(q6_K, Q6_KK, DType::Q6_K)
STRATA_KQUANT_DEF(iq4_nl, IQ4_NLK, DType::IQ4_NL)
STRATA_KQUANT_DEF(iq4_xs, IQ4_XSK, DType::IQ4_XS)
#undef STRATA_KQUANT_DEF

}  // namespace strata::kernels
