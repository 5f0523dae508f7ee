// Internal to the kernels: matmul for the weight types beyond Q8_0 / Q4_0
// (Q4_1, Q5_0, Q5_1, the K-quants Q2_K .. Q6_K, IQ4_NL and IQ4_XS), one gemm per type and
// instruction set in the TypeOps::gemm shape of matmul_isa.h. Each quantizes
// its x rows to the type's activation blocks (dtype_traits().act_type, with
// the core/quant_ref.h quantizers, so every ISA sees the same integers) and
// computes tiles of up to 4 x rows by one W row: a W block is decoded once
// and dotted with every x row of the tile.
//
// Determinism (matmul.h): y[i, j] is one 8-lane f32 accumulator (plus an
// 8-lane one for the min / offset terms) fed per block in order, reduced in a
// fixed order, whatever the tile, batch or thread split. The AVX2 and
// AVX-512 versions compute the same exact integer lanes (AVX-512 with wider
// vectors whose halves are added before conversion, VNNI for the 32-blocks),
// so they agree bitwise; the scalar table is the reference (vec_dot of
// dtype_traits) and agrees to rounding.
#pragma once

#include <cstddef>

namespace strata::kernels {

#define STRATA_KQUANT_GEMM(t, isa)                                                                              \
  void gemm_##t##_##isa(const float* x, size_t n, size_t k, const void* w, size_t j0, size_t j1, float* y, \
                        size_t ldy);
#define STRATA_KQUANT_ISA(isa)                                                                              \
  STRATA_KQUANT_GEMM(q4_1, isa) STRATA_KQUANT_GEMM(q5_0, isa) STRATA_KQUANT_GEMM(q5_1, isa)                  \
  STRATA_KQUANT_GEMM(q2_K, isa) STRATA_KQUANT_GEMM(q3_K, isa) STRATA_KQUANT_GEMM(q4_K, isa)                  \
  STRATA_KQUANT_GEMM(q5_K, isa) STRATA_KQUANT_GEMM(q6_K, isa)                                                  \
  STRATA_KQUANT_GEMM(iq4_nl, isa) STRATA_KQUANT_GEMM(iq4_xs, isa)
STRATA_KQUANT_ISA(scalar)
STRATA_KQUANT_ISA(avx2)
STRATA_KQUANT_ISA(avx512)
#undef STRATA_KQUANT_ISA
#undef STRATA_KQUANT_GEMM

}  // namespace strata::kernels
