// The reference matmul, the scalar table, and the run-time dispatch between
// instruction sets. This file is compiled for baseline x86-64; the AVX2 and
// AVX-512 tables live in their own compilation units and are only reached
// after __builtin_cpu_supports said the CPU (and OS) can run them.
#include "kernels/matmul.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/kquant_isa.h"
#include "kernels/kquant_rows.h"
#include "kernels/matmul_isa.h"
#include "kernels/quant_isa.h"

namespace strata {
namespace kernels {
namespace {

static_assert(size_t(DType::F32) == 0 && size_t(DType::F16) == 1 && size_t(DType::BF16) == 2 &&
                  size_t(DType::Q8_0) == 3 && size_t(DType::Q4_0) == 4 && size_t(DType::Q4_1) == 5 &&
                  size_t(DType::Q6_K) == 12 && size_t(DType::Q8_K) == 14 && size_t(DType::IQ4_XS) == 16 &&
                  kDTypeCount == 17,
              "the IsaTable rows are in DType order");

// Element access for the scalar paths: W elements of each type to f32.
template <DType T>
struct Scalar;
template <>
struct Scalar<DType::F32> {
  using E = float;
  static float get(const E* p, size_t i) { return p[i]; }
};
template <>
struct Scalar<DType::F16> {
  using E = uint16_t;
  static float get(const E* p, size_t i) { return f16_to_f32(p[i]); }
};
template <>
struct Scalar<DType::BF16> {
  using E = uint16_t;
  static float get(const E* p, size_t i) { return bf16_to_f32(p[i]); }
};

template <DType T>
void to_float_scalar(const void* src, size_t count, float* dst) {
  const auto* s = static_cast<const typename Scalar<T>::E*>(src);
  for (size_t i = 0; i < count; ++i) dst[i] = Scalar<T>::get(s, i);
}

// The scalar table's gemm: each W row is converted to f32 once and dotted
// with every x row in 8 explicit lanes (which the compiler may map to SSE
// registers without reordering anything), then the lanes are summed in a
// fixed order. Slower than the SIMD tables but deterministic the same way.
constexpr size_t kScalarLanes = 8;

float dot_scalar(const float* a, const float* b, size_t k) {
  float acc[kScalarLanes] = {};
  size_t p = 0;
  for (; p + kScalarLanes <= k; p += kScalarLanes)
    for (size_t l = 0; l < kScalarLanes; ++l) acc[l] += a[p + l] * b[p + l];
  for (size_t l = 0; p + l < k; ++l) acc[l] += a[p + l] * b[p + l];
  for (size_t h = kScalarLanes / 2; h > 0; h /= 2)
    for (size_t l = 0; l < h; ++l) acc[l] += acc[l + h];
  return acc[0];
}

template <DType T>
void gemm_scalar(const float* x, size_t n, size_t k, const void* w, size_t j0, size_t j1, float* y, size_t ldy) {
  using E = typename Scalar<T>::E;
  const E* wt = static_cast<const E*>(w);
  std::vector<float> row(k);
  for (size_t j = j0; j < j1; ++j) {
    to_float_scalar<T>(wt + j * k, k, row.data());
    for (size_t i = 0; i < n; ++i) y[i * ldy + j] = dot_scalar(x + i * k, row.data(), k);
  }
}

}  // namespace

const IsaTable kScalarTable = {
    "scalar",
    {
        /* F32  */ {to_float_scalar<DType::F32>, gemm_scalar<DType::F32>},
        /* F16  */ {to_float_scalar<DType::F16>, gemm_scalar<DType::F16>},
        /* BF16 */ {to_float_scalar<DType::BF16>, gemm_scalar<DType::BF16>},
        /* Q8_0 */ {dequant_q8_0, gemm_q8_0_scalar},
        /* Q4_0 */ {dequant_q4_0, gemm_q4_0_scalar},
        /* Q4_1 */ {nullptr, gemm_q4_1_scalar},
        /* Q5_0 */ {nullptr, gemm_q5_0_scalar},
        /* Q5_1 */ {nullptr, gemm_q5_1_scalar},
        /* Q2_K */ {nullptr, gemm_q2_K_scalar},
        /* Q3_K */ {nullptr, gemm_q3_K_scalar},
        /* Q4_K */ {nullptr, gemm_q4_K_scalar},
        /* Q5_K */ {nullptr, gemm_q5_K_scalar},
        /* Q6_K */ {nullptr, gemm_q6_K_scalar},
        /* Q8_1, Q8_K: activation types, no gemm */ {},
        {},
        /* IQ4_NL */ {nullptr, gemm_iq4_nl_scalar},
        /* IQ4_XS */ {nullptr, gemm_iq4_xs_scalar},
    },
};

namespace {

// Tables this CPU can run, scalar first, best last.
std::vector<const IsaTable*> available_tables() {
  std::vector<const IsaTable*> t = {&kScalarTable};
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
    t.push_back(&kAvx2Table);
  // The AVX-512 file is compiled with avx2/fma/f16c too, so it needs those as well.
  if (t.size() == 2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    t.push_back(&kAvx512Table);
  return t;
}

const std::vector<const IsaTable*>& tables() {
  static const std::vector<const IsaTable*> t = available_tables();
  return t;
}

const IsaTable* find_table(std::string_view name) {
  for (const IsaTable* t : tables())
    if (name == t->name) return t;
  return nullptr;
}

// The table chosen once: the best available, or STRATA_FORCE_ISA's if the
// CPU has it (a request above what the CPU has gets the best available).
const IsaTable* choose_table() {
  const char* env = std::getenv("STRATA_FORCE_ISA");
  if (env && *env) {
    std::string_view want = env;
    if (want != "scalar" && want != "avx2" && want != "avx512")
      throw UsageError("STRATA_FORCE_ISA='" + std::string(want) + "': expected scalar, avx2 or avx512");
    if (const IsaTable* t = find_table(want)) return t;
  }
  return tables().back();
}

}  // namespace

const IsaTable& selected_table() {
  static const IsaTable* t = choose_table();
  return *t;
}

const IsaTable& named_table(const char* isa) {
  const IsaTable* t = isa ? find_table(isa) : nullptr;
  if (!t) throw Error(std::string("kernel instruction set '") + (isa ? isa : "(null)") + "' is not available on this CPU");
  return *t;
}

namespace {

// Block types hold whole blocks of 32 per row (k) or per converted range.
void check_block_count(const char* what, size_t count, DType t) {
  const size_t b = dtype_block_elems(t);
  if (count % b != 0)
    throw Error(std::string(what) + " = " + std::to_string(count) + " is not a multiple of " + std::to_string(b) +
                " (the " + std::string(dtype_name(t)) + " block size)");
}

const TypeOps& ops_for(const IsaTable& table, DType t) {
  size_t i = size_t(t);
  if (i >= kDTypeCount || !table.ops[i].gemm)
    throw Error("matmul: no " + std::string(table.name) + " kernel for weight type " + std::string(dtype_name(t)));
  return table.ops[i];
}

// The table's conversion, or the scalar one of dtype_traits().
void convert(const IsaTable& table, const void* src, DType t, size_t count, float* dst) {
  check_block_count("to_float: count", count, t);
  const size_t i = size_t(t);
  if (i < kDTypeCount && table.ops[i].to_float) return table.ops[i].to_float(src, count, dst);
  dtype_traits(t).to_float(src, dst, count);
}

void run_matmul(const IsaTable& table, const float* x, size_t n, size_t k, const void* w, DType wt, size_t m, float* y,
                size_t ldy, ThreadPool* pool) {
  const TypeOps& ops = ops_for(table, wt);
  check_block_count("matmul: k", k, wt);
  if (n == 0 || m == 0) return;
  if (n > 1 && ldy < m) throw Error("matmul: ldy " + std::to_string(ldy) + " < m " + std::to_string(m));
  // Threads split the output columns only (never k), in chunks that are whole
  // 4-row W tiles and large enough to be worth a thread (>= ~64K FMAs). A
  // block-type gemm quantizes x in every chunk (n * k work), so its chunks
  // are at least 16 W rows.
  constexpr size_t kMinWork = 1 << 16, kMatvecRows = 4;
  size_t per_col = std::max<size_t>(1, n * k);
  size_t min_grain = dtype_is_block(wt) ? 4 * kTileRowsW : kTileRowsW;
  size_t grain = std::max<size_t>(min_grain, (kMinWork / per_col + kTileRowsW - 1) / kTileRowsW * kTileRowsW);
  auto gemm = ops.gemm;
  auto run = [&](size_t j0, size_t j1) { gemm(x, n, k, w, j0, j1, y, ldy); };
  // Chunks claimed by whichever thread is free, so a worker the OS has not
  // scheduled yet (the machine may be shared) or that loses its core does
  // not hold the caller for its whole share; which thread runs a chunk never
  // changes how an output is computed.
  const size_t threads = pool ? pool->size() : 1;
  if (threads <= 1) return run(0, m);
  if (n <= kMatvecRows) {
    // A decode matvec streams W once and is over in tens of microseconds on
    // the small shapes: chunks of about a quarter of a thread's share
    // (2048 x 512 Q4_0 took 2.2x longer with 2 threads than with 1 on a
    // loaded machine with one chunk per thread).
    const size_t quarter = (m + 4 * threads - 1) / (4 * threads);
    grain = std::max(grain, (quarter + kTileRowsW - 1) / kTileRowsW * kTileRowsW);
    return parallel_chunks(pool, m, grain, run);
  }
  // A batch (prefill, many sequences): a few chunks per thread. Each chunk
  // re-quantizes x for a block type, so chunks stay >= 64 columns.
  constexpr size_t kChunksPerThread = 3;
  const size_t want = (m + kChunksPerThread * threads - 1) / (kChunksPerThread * threads);
  const size_t floor = dtype_is_block(wt) ? 64 : 16;
  const size_t g = (std::max({grain, want, floor}) + kTileRowsW - 1) / kTileRowsW * kTileRowsW;
  parallel_chunks(pool, m, g, run);
}

}  // namespace
}  // namespace kernels

using kernels::IsaTable;

void matmul(const float* x, size_t n, size_t k, const void* w, DType wt, size_t m, float* y, size_t ldy,
            ThreadPool* pool) {
  kernels::run_matmul(kernels::selected_table(), x, n, k, w, wt, m, y, ldy, pool);
}

void matmul_isa(const char* isa, const float* x, size_t n, size_t k, const void* w, DType wt, size_t m, float* y,
                size_t ldy, ThreadPool* pool) {
  kernels::run_matmul(kernels::named_table(isa), x, n, k, w, wt, m, y, ldy, pool);
}

void to_float(const void* src, DType t, size_t count, float* dst) {
  kernels::convert(kernels::selected_table(), src, t, count, dst);
}

void to_float_isa(const char* isa, const void* src, DType t, size_t count, float* dst) {
  kernels::convert(kernels::named_table(isa), src, t, count, dst);
}

const char* kernel_isa() { return kernels::selected_table().name; }

std::vector<const char*> available_kernel_isas() {
  std::vector<const char*> names;
  for (const IsaTable* t : kernels::tables()) names.push_back(t->name);
  return names;
}

void matmul_reference(const float* x, size_t n, size_t k, const void* w, DType wt, size_t m, float* y, size_t ldy) {
  auto run = [&]<DType T>() {
    using S = kernels::Scalar<T>;
    const auto* wp = static_cast<const typename S::E*>(w);
    for (size_t i = 0; i < n; ++i)
      for (size_t j = 0; j < m; ++j) {
        float acc = 0.0f;
        for (size_t p = 0; p < k; ++p) acc += x[i * k + p] * S::get(wp + j * k, p);
        y[i * ldy + j] = acc;
      }
  };
  switch (wt) {
    case DType::F32: return run.template operator()<DType::F32>();
    case DType::F16: return run.template operator()<DType::F16>();
    case DType::BF16: return run.template operator()<DType::BF16>();
    default: break;
  }
  // The quantized reference: x quantized to the activation type, then
  // dtype_traits()'s scalar dot of each pair of rows.
  const DTypeTraits& tr = dtype_traits(wt);
  if (!tr.vec_dot) throw Error("matmul_reference: unsupported weight type " + std::string(dtype_name(wt)));
  kernels::check_block_count("matmul_reference: k", k, wt);
  if (n == 0 || m == 0) return;
  const kernels::ActRows act(tr.act_type, x, n, k);
  const size_t w_row = dtype_bytes(wt, k);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < m; ++j)
      y[i * ldy + j] = tr.vec_dot(k, static_cast<const uint8_t*>(w) + j * w_row, act.row(i));
}

}  // namespace strata
