// Internal to the matmul kernels: the table of per-type operations that each
// instruction set provides (like ggml's type_traits_cpu). matmul.cpp picks
// one table at run time; matmul_<isa>.cpp files fill them in.
//
// Every gemm here honours the determinism contract of matmul.h by
// construction: the output y[i, j] is one dot product accumulated in a
// fixed set of lanes over k in a fixed order (the k tail zero-padded the same
// way), then reduced across lanes in a fixed order. Tiling over i and j only
// changes which dot products are computed together, never how one is.
#pragma once

#include <cstddef>

#include "core/dtype.h"

namespace strata::kernels {

// One row per DType (kDTypeCount in core/dtype.h); a null gemm means this
// instruction set has no kernel for the type, a null to_float that the
// scalar dtype_traits() conversion serves.
struct TypeOps {
  // Converts `count` elements to f32.
  void (*to_float)(const void* src, size_t count, float* dst) = nullptr;
  // One thread's share of matmul: y[i, j] for i < n and j in [j0, j1).
  // w points at the whole [m, k] matrix; y at y[0, 0] with rows ldy apart.
  void (*gemm)(const float* x, size_t n, size_t k, const void* w, size_t j0, size_t j1, float* y,
               size_t ldy) = nullptr;
};

struct IsaTable {
  const char* name;
  TypeOps ops[kDTypeCount];
};

// Each is defined in its own compilation unit; only call into a table after
// checking that the CPU has the instruction set (see matmul.cpp).
extern const IsaTable kScalarTable;  // matmul.cpp
extern const IsaTable kAvx2Table;    // matmul_avx2.cpp
extern const IsaTable kAvx512Table;  // matmul_avx512.cpp

// The table matmul() uses (best available or STRATA_FORCE_ISA), and the
// table with a given name (throws Error if this CPU cannot run it).
const IsaTable& selected_table();
const IsaTable& named_table(const char* isa);

// The x rows a tile covers and the W rows it covers: computing 4 W rows at a
// time lets each W element loaded from memory serve several x rows.
inline constexpr size_t kTileRowsW = 4;

// How many W rows (of `row_bytes` each) to keep in a cache block so that the
// block stays in L2 while every group of x rows passes over it.
inline size_t w_block_rows(size_t row_bytes) {
  constexpr size_t kL2Share = 384 * 1024;
  size_t rows = row_bytes ? kL2Share / row_bytes : 1024;
  rows = rows / kTileRowsW * kTileRowsW;
  return rows < kTileRowsW ? kTileRowsW : rows;
}

}  // namespace strata::kernels
