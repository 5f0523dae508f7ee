// AVX2 kernels of kquant_isa.h: maddubs + madd as the integer dot (exact:
// for every type here the byte pair sums stay far inside int16).
#include "kernels/kquant_isa.h"
#include "kernels/iq4_tile.h"
#include "kernels/kquant_tile.h"

namespace strata::kernels {
namespace {

struct Avx2 {
  static __m256i dot32(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
  }
  static __m256i k_isum(const DecK& w, const BlockQ8_K& x) {
    __m256i s = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (size_t t = 0; t < 8; ++t) {
      const __m256i p = _mm256_maddubs_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(w.q + 32 * t)),
                                             _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs + 32 * t)));
      s = _mm256_add_epi32(s, _mm256_madd_epi16(p, _mm256_load_si256(reinterpret_cast<const __m256i*>(w.scv[t]))));
    }
    return s;
  }
  static __m256i iq_isum(const DecIQ4& w, const BlockQ8_K& x) {
    __m256i s = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (size_t t = 0; t < 8; ++t) {
      const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs + 32 * t));
      const __m256i ws = _mm256_load_si256(reinterpret_cast<const __m256i*>(w.s + 32 * t));
      const __m256i p = _mm256_maddubs_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(w.a + 32 * t)),
                                             _mm256_sign_epi8(xq, ws));
      s = _mm256_add_epi32(s, _mm256_madd_epi16(p, _mm256_load_si256(reinterpret_cast<const __m256i*>(w.scv[t]))));
    }
    return s;
  }
};

}  // namespace

#define STRATA_KQUANT_DEF(t, K, T)                                                                            \
  void gemm_##t##_avx2(const float* x, size_t n, size_t k, const void* w, size_t j0, size_t j1, float* y, \
                       size_t ldy) {                                                                         \
    kgemm<Avx2, K, T>(x, n, k, w, j0, j1, y, ldy);                                                           \
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
