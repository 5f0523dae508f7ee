// AVX-512 quantized kernels: the shared tile with VNNI dpbusd (256-bit, via
// AVX512VL) as the integer dot, which gives the same int32 lanes as AVX2's
// maddubs + madd, and 4 x rows per tile (32 vector registers).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 false positive in its intrinsic headers

#include "kernels/quant_isa.h"
#include "kernels/quant_tile.h"

namespace strata::kernels {
namespace {

struct DotVnni {
  static __m256i lanes(__m256i abs_w, __m256i signed_x) {
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), abs_w, signed_x);
  }
};

// Not every AVX-512 CPU has VNNI; without it the AVX2 tile gives the same result.
bool have_vnni() {
  static const bool v = __builtin_cpu_supports("avx512vnni");
  return v;
}

}  // namespace

void gemm_q8_0_avx512(const float* x, size_t n, size_t k, const void* w, size_t j0, size_t j1, float* y, size_t ldy) {
  if (!have_vnni()) return gemm_q8_0_avx2(x, n, k, w, j0, j1, y, ldy);
  quant_gemm<DotVnni, Q8W, 4>(x, n, k, w, j0, j1, y, ldy);
}
void gemm_q4_0_avx512(const float* x, size_t n, size_t k, const void* w, size_t j0, size_t j1, float* y, size_t ldy) {
  if (!have_vnni()) return gemm_q4_0_avx2(x, n, k, w, j0, j1, y, ldy);
  quant_gemm<DotVnni, Q4W, 4>(x, n, k, w, j0, j1, y, ldy);
}

}  // namespace strata::kernels
