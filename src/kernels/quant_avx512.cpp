// AVX-512 quantized kernels: the pair tile of quant_tile512.h (two blocks per
// 512-bit vector, VNNI dpbusd), 4 x rows per tile (32 vector registers). It
// gives the same bits as the AVX2 tile of quant_tile.h.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 false positive in its intrinsic headers

#include "kernels/quant_isa.h"
#include "kernels/quant_tile512.h"

namespace strata::kernels {
namespace {

// Not every AVX-512 CPU has VNNI; without it the AVX2 tile gives the same result.
bool have_vnni() {
  static const bool v = __builtin_cpu_supports("avx512vnni");
  return v;
}

}  // namespace

void gemm_q8_0_avx512(const float* x, size_t n, size_t k, const void* w, size_t j0, size_t j1, float* y, size_t ldy) {
  if (!have_vnni()) return gemm_q8_0_avx2(x, n, k, w, j0, j1, y, ldy);
  pair_gemm<Q8W512, 4>(x, n, k, w, j0, j1, y, ldy);
}
void gemm_q4_0_avx512(const float* x, size_t n, size_t k, const void* w, size_t j0, size_t j1, float* y, size_t ldy) {
  if (!have_vnni()) return gemm_q4_0_avx2(x, n, k, w, j0, j1, y, ldy);
  pair_gemm<Q4W512, 4>(x, n, k, w, j0, j1, y, ldy);
}

}  // namespace strata::kernels
