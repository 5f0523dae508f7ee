// The scalar table's gemm for the types of kquant_isa.h: x quantized to
// the activation type, then the reference dot (dtype_traits().vec_dot) of
// every (x row, W row) pair. Compiled for baseline x86-64.
#include "core/dtype.h"
#include "kernels/kquant_isa.h"
#include "kernels/kquant_rows.h"

namespace strata::kernels {
namespace {

template <DType T>
void gemm_ref(const float* x, size_t n, size_t k, const void* w, size_t j0, size_t j1, float* y, size_t ldy) {
  const DTypeTraits& tr = dtype_traits(T);
  const ActRows act(tr.act_type, x, n, k);
  const size_t w_row = dtype_bytes(T, k);
  const auto* wb = static_cast<const uint8_t*>(w);
  for (size_t j = j0; j < j1; ++j)
    for (size_t i = 0; i < n; ++i) y[i * ldy + j] = tr.vec_dot(k, wb + j * w_row, act.row(i));
}

}  // namespace

void gemm_q4_1_scalar(const float* x, size_t n, size_t k, const void* w, size_t j0, size_t j1, float* y, size_t ldy) {
  gemm_ref<DType::Q4_1>(x, n, k, w, j0, j1, y, ldy);
}
void gemm_q5_0_scalar(const float* x, size_t n, size_t k, const void* w, size_t j0, size_t j1, float* y, size_t ldy) {
  gemm_ref<DType::Q5_0>(x, n, k, w, j0, j1, y, ldy);
}
void gemm_q5_1_scalar(const float* x, size_t n, size_t k, const void* w, size_t j0, size_t j1, float* y, size_t ldy) {
  gemm_ref<DType::Q5_1>(x, n, k, w, j0, j1, y, ldy);
}
void gemm_q2_K_scalar(const float* x, size_t n, size_t k, const void* w, size_t j0, size_t j1, float* y, size_t ldy) {
  gemm_ref<DType::Q2_K>(x, n, k, w, j0, j1, y, ldy);
}
void gemm_q3_K_scalar(const float* x, size_t n, size_t k, const void* w, size_t j0, size_t j1, float* y, size_t ldy) {
  gemm_ref<DType::Q3_K>(x, n, k, w, j0, j1, y, ldy);
}
void gemm_q4_K_scalar(const float* x, size_t n, size_t k, const void* w, size_t j0, size_t j1, float* y, size_t ldy) {
  gemm_ref<DType::Q4_K>(x, n, k, w, j0, j1, y, ldy);
}
void gemm_q5_K_scalar(const float* x, size_t n, size_t k, const void* w, size_t j0, size_t j1, float* y, size_t ldy) {
  gemm_ref<DType::Q5_K>(x, n, k, w, j0, j1, y, ldy);
}
void gemm_q6_K_scalar(const float* x, size_t n, size_t k, const void* w, size_t j0, size_t j1, float* y, size_t ldy) {
  gemm_ref<DType::Q6_K>(x, n, k, w, j0, j1, y, ldy);
}

void gemm_iq4_nl_scalar(const float* x, size_t n, size_t k, const void* w, size_t j0, size_t j1, float* y,
                        size_t ldy) {
  gemm_ref<DType::IQ4_NL>(x, n, k, w, j0, j1, y, ldy);
}
void gemm_iq4_xs_scalar(const float* x, size_t n, size_t k, const void* w, size_t j0, size_t j1, float* y,
                        size_t ldy) {
  gemm_ref<DType::IQ4_XS>(x, n, k, w, j0, j1, y, ldy);
}

}  // namespace strata::kernels
