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

}  // namespace

const TypeOps kAvx512Quant[kQuantTypeCount] = {
    /* Q8_0 */ {dequant_q8_0, quant_gemm<DotVnni, Q8W, 4>},
    /* Q4_0 */ {dequant_q4_0, quant_gemm<DotVnni, Q4W, 4>},
};

}  // namespace strata::kernels
