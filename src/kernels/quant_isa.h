// Internal to the quantized kernels: per-ISA operations for Q8_0 and Q4_0
// weights, in the kernels::TypeOps shape of matmul_isa.h (to_float is
// dequantization, gemm quantizes x itself). Indexed by QuantType.
//
// Determinism: x is quantized per row by the one quantize_x() every ISA uses;
// each output y[i, j] is one 8-lane f32 accumulator that adds, per block in
// order, scale * (8 exact int32 partial sums, each of 4 adjacent products),
// then reduced across lanes in a fixed order. The integer partial sums are
// exact, so the AVX2 and AVX-512 paths agree bitwise.
#pragma once

#include <cstddef>
#include <vector>

#include "kernels/matmul_isa.h"
#include "kernels/quant.h"

namespace strata::kernels {

inline constexpr size_t kQuantTypeCount = 2;

extern const TypeOps kScalarQuant[kQuantTypeCount];  // quant.cpp
extern const TypeOps kAvx2Quant[kQuantTypeCount];    // quant_avx2.cpp
extern const TypeOps kAvx512Quant[kQuantTypeCount];  // quant_avx512.cpp

// Quantizes n rows of k floats (k a multiple of 32) to Q8_0 with round to
// nearest even; every ISA uses this so their quantized x are identical.
std::vector<BlockQ8_0> quantize_x(const float* x, size_t n, size_t k);

// Scalar dequantization (the to_float of every table for now).
void dequant_q8_0(const void* src, size_t count, float* dst);
void dequant_q4_0(const void* src, size_t count, float* dst);

}  // namespace strata::kernels
