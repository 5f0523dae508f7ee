// Block-quantized weights in ggml's layouts (Q8_0, Q4_0) and matmul with
// them. Activations are quantized on the fly to Q8_0 blocks (one scale per
// 32 values) so each block's dot product is exact integer arithmetic:
//
//   std::vector<BlockQ4_0> w(m * k / 32);
//   quantize_q4_0(w_f32, m * k, w.data());                 // or read from a GGUF
//   matmul_quant(x, n, k, w.data(), QuantType::Q4_0, m, y, m, pool);
//
// y[i, j] = sum over blocks b of  d_w[j, b] * d_x[i, b] * sum_{32} q_w * q_x
// with the determinism contract of matmul.h (bitwise the same for any n,
// other rows, thread count). k must be a multiple of 32.
//
// DType::Q8_0 / DType::Q4_0 are rows of the one per-type table of matmul.h,
// so matmul() and to_float() take them directly; the QuantType entry points
// below are thin wrappers kept for the kernel tests and benchmarks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/quant_blocks.h"

namespace strata {

class ThreadPool;

enum class QuantType : uint8_t { Q8_0, Q4_0 };

// Bytes of `count` elements (count a multiple of 32).
size_t quant_bytes(QuantType t, size_t count);

// ggml's rounding: Q8_0 scales by max|x| / 127, Q4_0 by the signed value of
// largest magnitude / -8. `count` a multiple of 32. quantize_q8_0 rounds
// half to even, as ggml's SIMD code quantizes activations;
// quantize_q8_0_weights rounds half away from zero, as ggml's reference
// quantize_row_q8_0 (and gguf-py) quantize weights, so converted files are
// byte-identical to theirs.
void quantize_q8_0(const float* src, size_t count, BlockQ8_0* dst);
void quantize_q8_0_weights(const float* src, size_t count, BlockQ8_0* dst);
void quantize_q4_0(const float* src, size_t count, BlockQ4_0* dst);
void dequantize(const void* src, QuantType t, size_t count, float* dst);

void matmul_quant(const float* x, size_t n, size_t k, const void* w, QuantType wt, size_t m, float* y, size_t ldy,
                  ThreadPool* pool);
// Scalar reference: the same activation quantization, plain loops.
void matmul_quant_reference(const float* x, size_t n, size_t k, const void* w, QuantType wt, size_t m, float* y,
                            size_t ldy);
// Forced to one instruction set (see available_kernel_isas() in matmul.h).
void matmul_quant_isa(const char* isa, const float* x, size_t n, size_t k, const void* w, QuantType wt, size_t m,
                      float* y, size_t ldy, ThreadPool* pool);

}  // namespace strata
