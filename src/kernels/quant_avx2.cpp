// AVX2 quantized kernels: the shared tile with maddubs + madd as the integer
// dot (exact: |w| * x pairs stay within int16 for q values in [-128, 127]
// times x in [-127, 127]).
#include "kernels/quant_isa.h"
#include "kernels/quant_tile.h"

namespace strata::kernels {
namespace {

struct DotMaddubs {
  static __m256i lanes(__m256i abs_w, __m256i signed_x) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(abs_w, signed_x), _mm256_set1_epi16(1));
  }
};

}  // namespace

void gemm_q8_0_avx2(const float* x, size_t n, size_t k, const void* w, size_t j0, size_t j1, float* y, size_t ldy) {
  quant_gemm<DotMaddubs, Q8W, 2>(x, n, k, w, j0, j1, y, ldy);
}
void gemm_q4_0_avx2(const float* x, size_t n, size_t k, const void* w, size_t j0, size_t j1, float* y, size_t ldy) {
  quant_gemm<DotMaddubs, Q4W, 2>(x, n, k, w, j0, j1, y, ldy);
}

}  // namespace strata::kernels
