// Matrix multiplication with weights in their stored type.
//
//   y[i, j] = sum_p x[i, p] * W[j, p]      i < n (tokens), j < m (out), p < k (in)
//
// W is row-major [m, k] exactly as a Hugging Face Linear stores it, in any
// weight DType; x and y are f32. y rows are `ldy` floats apart, so a caller
// can compute a block of output columns (an lm_head streamed in row blocks)
// straight into a wider logits matrix.
//
//   ThreadPool pool;                                   // optional: nullptr runs on the caller
//   matmul(x, n, k, w_bytes, DType::BF16, m, y, m, &pool);   // y[n, m] = x[n, k] * W[m, k]^T
//
// Determinism contract (the engine relies on it): y[i, j] is bitwise the same
// whatever n is, whatever the other rows of x are, and whatever the thread
// count is. So a sequence gives identical logits alone or inside a batch.
#pragma once

#include <cstddef>
#include <vector>

#include "core/dtype.h"

namespace strata {

class ThreadPool;

void matmul(const float* x, size_t n, size_t k, const void* w, DType wt, size_t m, float* y, size_t ldy,
            ThreadPool* pool);

// The plain scalar reference every SIMD path is tested against.
void matmul_reference(const float* x, size_t n, size_t k, const void* w, DType wt, size_t m, float* y, size_t ldy);

// Converts `count` elements of type t to f32 (embedding rows, norm weights).
void to_float(const void* src, DType t, size_t count, float* dst);

// Name of the instruction set the dispatcher chose ("avx512", "avx2", "scalar").
// STRATA_FORCE_ISA=scalar|avx2|avx512 in the environment overrides the choice
// (a request above what the CPU has falls back to the best available).
const char* kernel_isa();

// For tests and benchmarks: the instruction sets this CPU can run, "scalar"
// first and the best last, and the same operations forced to one of them
// (throws Error for a name not in that list).
std::vector<const char*> available_kernel_isas();
void matmul_isa(const char* isa, const float* x, size_t n, size_t k, const void* w, DType wt, size_t m, float* y,
                size_t ldy, ThreadPool* pool);
void to_float_isa(const char* isa, const void* src, DType t, size_t count, float* dst);

}  // namespace strata
