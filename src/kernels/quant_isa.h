// Internal to the quantized kernels: per-ISA operations for Q8_0 and Q4_0
// weights, in the kernels::TypeOps shape of matmul_isa.h (to_float is
// dequantization, gemm quantizes x itself).
//
// Determinism: x is quantized per row by quantize_x() (the AVX-512 path has a
// vectorized copy tested to give the same bits);
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

// One thread's share of a quantized matmul, per ISA, in the TypeOps::gemm
// shape; they are rows DType::Q8_0 / DType::Q4_0 of the IsaTables. Named
// functions (not tables) so the IsaTables stay constant-initialized. k must
// be a multiple of 32 (matmul() checks). The AVX-512 ones use VNNI when the
// CPU has it and the AVX2 tile otherwise (same integers, same result).
void gemm_q8_0_scalar(const float* x, size_t n, size_t k, const void* w, size_t j0, size_t j1, float* y, size_t ldy);
void gemm_q4_0_scalar(const float* x, size_t n, size_t k, const void* w, size_t j0, size_t j1, float* y, size_t ldy);
void gemm_q8_0_avx2(const float* x, size_t n, size_t k, const void* w, size_t j0, size_t j1, float* y, size_t ldy);
void gemm_q4_0_avx2(const float* x, size_t n, size_t k, const void* w, size_t j0, size_t j1, float* y, size_t ldy);
void gemm_q8_0_avx512(const float* x, size_t n, size_t k, const void* w, size_t j0, size_t j1, float* y, size_t ldy);
void gemm_q4_0_avx512(const float* x, size_t n, size_t k, const void* w, size_t j0, size_t j1, float* y, size_t ldy);

// Quantizes n rows of k floats (k a multiple of 32) to Q8_0 with round to
// nearest even; every ISA uses this so their quantized x are identical.
std::vector<BlockQ8_0> quantize_x(const float* x, size_t n, size_t k);

// Scalar dequantization (the to_float of every table for now); count a
// multiple of 32.
void dequant_q8_0(const void* src, size_t count, float* dst);
void dequant_q4_0(const void* src, size_t count, float* dst);

}  // namespace strata::kernels
