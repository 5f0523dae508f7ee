// Internal to the kernels: n rows of x quantized to an activation type
// (Q8_0, Q8_1, Q8_K) with dtype_traits().act_from_float, rows 64-byte
// aligned. Every ISA's gemm uses this, so they all see the same integers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/dtype.h"

namespace strata::kernels {

class ActRows {
 public:
  ActRows(DType act, const float* x, size_t n, size_t k)
      : stride_((dtype_bytes(act, k) + 63) / 64 * 64), data_(new (std::align_val_t(64)) uint8_t[n * stride_ + 64]) {
    const auto from = dtype_traits(act).act_from_float;
    for (size_t i = 0; i < n; ++i) from(x + i * k, data_.get() + i * stride_, k);
  }
  const uint8_t* row(size_t i) const { return data_.get() + i * stride_; }
  size_t stride() const { return stride_; }

 private:
  struct Free {
    void operator()(uint8_t* p) const { ::operator delete[](p, std::align_val_t(64)); }
  };
  size_t stride_;
  std::unique_ptr<uint8_t[], Free> data_;
};

}  // namespace strata::kernels
