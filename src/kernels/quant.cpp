// Q8_0 activation quantization, the scalar Q8_0 / Q4_0 gemm and the dispatch to
// the per-ISA quantized kernels. Compiled for baseline x86-64.
#include "kernels/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "core/dtype.h"
#include "core/error.h"
#include "core/quant_ref.h"
#include "core/thread_pool.h"
#include "kernels/matmul.h"
#include "kernels/quant_isa.h"

namespace strata {
namespace kernels {
namespace {

// Round to nearest even for |v| < 2^22 without a libm call or a branch, so
// the loop vectorizes: v + 1.5 * 2^23 lands in [2^23, 2^24) where the f32
// step is 1, and the addition itself rounds to nearest even.
inline float round_even(float v) {
  constexpr float kMagic = 12582912.0f;
  return (v + kMagic) - kMagic;
}

void check_k(size_t k) {
  if (k % kQuantBlock != 0)
    throw Error("quantized matmul: k = " + std::to_string(k) + " is not a multiple of " + std::to_string(kQuantBlock));
}

int block_dot(const BlockQ8_0& w, const BlockQ8_0& x) {
  int s = 0;
  for (size_t i = 0; i < kQuantBlock; ++i) s += int(w.qs[i]) * int(x.qs[i]);
  return s;
}

int block_dot(const BlockQ4_0& w, const BlockQ8_0& x) {
  int s = 0;
  for (size_t i = 0; i < kQuantBlock / 2; ++i) {
    s += (int(w.qs[i] & 0x0f) - 8) * int(x.qs[i]);
    s += (int(w.qs[i] >> 4) - 8) * int(x.qs[i + kQuantBlock / 2]);
  }
  return s;
}

// The reference order: blocks in sequence, one f32 accumulator.
template <class B>
void gemm_scalar_q(const float* x, size_t n, size_t k, const void* w, size_t j0, size_t j1, float* y, size_t ldy) {
  check_k(k);
  const size_t nb = k / kQuantBlock;
  const std::vector<BlockQ8_0> xq = quantize_x(x, n, k);
  const B* wb = static_cast<const B*>(w);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = j0; j < j1; ++j) {
      float acc = 0.0f;
      for (size_t b = 0; b < nb; ++b) {
        const BlockQ8_0& xb = xq[i * nb + b];
        const B& blk = wb[j * nb + b];
        acc += f16_to_f32(blk.d) * f16_to_f32(xb.d) * float(block_dot(blk, xb));
      }
      y[i * ldy + j] = acc;
    }
}

}  // namespace

// The table rows' conversions are the core reference ones.
void dequant_q8_0(const void* src, size_t count, float* dst) { quant::dequantize_q8_0(src, dst, count); }
void dequant_q4_0(const void* src, size_t count, float* dst) { quant::dequantize_q4_0(src, dst, count); }

void gemm_q8_0_scalar(const float* x, size_t n, size_t k, const void* w, size_t j0, size_t j1, float* y, size_t ldy) {
  gemm_scalar_q<BlockQ8_0>(x, n, k, w, j0, j1, y, ldy);
}
void gemm_q4_0_scalar(const float* x, size_t n, size_t k, const void* w, size_t j0, size_t j1, float* y, size_t ldy) {
  gemm_scalar_q<BlockQ4_0>(x, n, k, w, j0, j1, y, ldy);
}

std::vector<BlockQ8_0> quantize_x(const float* x, size_t n, size_t k) {
  std::vector<BlockQ8_0> q(n * (k / kQuantBlock));
  if (!q.empty()) quantize_q8_0(x, n * k, q.data());
  return q;
}

}  // namespace kernels

size_t quant_bytes(QuantType t, size_t count) {
  const size_t blocks = count / kQuantBlock;
  return blocks * (t == QuantType::Q8_0 ? sizeof(BlockQ8_0) : sizeof(BlockQ4_0));
}

namespace {

template <class Round>
void quantize_q8_0_with(const float* src, size_t count, BlockQ8_0* dst, Round round) {
  kernels::check_k(count);
  for (size_t b = 0; b < count / kQuantBlock; ++b) {
    const float* x = src + b * kQuantBlock;
    float amax = 0.0f;
    for (size_t i = 0; i < kQuantBlock; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    dst[b].d = f32_to_f16(d);
    for (size_t i = 0; i < kQuantBlock; ++i) dst[b].qs[i] = int8_t(round(x[i] * id));
  }
}

}  // namespace

void quantize_q8_0(const float* src, size_t count, BlockQ8_0* dst) {
  quantize_q8_0_with(src, count, dst, [](float v) { return kernels::round_even(v); });
}

void quantize_q8_0_weights(const float* src, size_t count, BlockQ8_0* dst) {
  kernels::check_k(count);
  quant::quantize_q8_0_ref(src, dst, count);
}

void quantize_q4_0(const float* src, size_t count, BlockQ4_0* dst) {
  kernels::check_k(count);
  quant::quantize_q4_0_ref(src, dst, count);
}

// The QuantType entry points are the DType rows of the one matmul table.
static DType quant_dtype(QuantType t) { return t == QuantType::Q8_0 ? DType::Q8_0 : DType::Q4_0; }

void dequantize(const void* src, QuantType t, size_t count, float* dst) {
  to_float(src, quant_dtype(t), count, dst);
}

void matmul_quant(const float* x, size_t n, size_t k, const void* w, QuantType wt, size_t m, float* y, size_t ldy,
                  ThreadPool* pool) {
  matmul(x, n, k, w, quant_dtype(wt), m, y, ldy, pool);
}

void matmul_quant_isa(const char* isa, const float* x, size_t n, size_t k, const void* w, QuantType wt, size_t m,
                      float* y, size_t ldy, ThreadPool* pool) {
  matmul_isa(isa, x, n, k, w, quant_dtype(wt), m, y, ldy, pool);
}

void matmul_quant_reference(const float* x, size_t n, size_t k, const void* w, QuantType wt, size_t m, float* y,
                            size_t ldy) {
  matmul_reference(x, n, k, w, quant_dtype(wt), m, y, ldy);
}

}  // namespace strata
