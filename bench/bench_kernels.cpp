// Matmul kernels against this machine's own limits, measured in the same run:
//
//   BM_MemBandwidth   read-only sum over 1 GiB (1 and 2 threads) as 1 or 4
//                     streams per thread: the best of the two is the ceiling
//                     for batch-1 matvec, whose weights never fit in cache.
//   BM_Matvec         n = 1 on 4096 x 4096 weights per DType, rotating over
//                     >= 256 MiB of distinct matrices so W always comes from
//                     DRAM; counters GB/s and frac_bw (of BM_MemBandwidth).
//   BM_Sgemm          OpenBLAS cblas_sgemm on the same shapes as BM_Gemm.
//   BM_Gemm           batched matmul n = 16 and 128, m = k = 4096; counters
//                     GFLOPs and vs_sgemm (ratio to BM_Sgemm, same threads).
//   BM_MatvecQuant,   the same for every block type (Q8_0, Q4_0, Q4_1, Q5_0,
//   BM_GemmQuant      Q5_1, Q2_K .. Q6_K, IQ4_NL, IQ4_XS) through matmul(); dtype is the
//                     DType value, the label names it.
//
// Benchmarks run in registration order, so the reference numbers exist
// before the ratios are computed. Run: build/bench_kernels (about 30 s).
#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/dtype.h"
#include "core/thread_pool.h"
#include "kernels/matmul.h"

#if STRATA_HAVE_BLAS
#include <cblas.h>
#endif

namespace {

using strata::DType;
using Clock = std::chrono::steady_clock;

constexpr size_t kDim = 4096;
constexpr size_t kBandwidthBytes = size_t(1) << 30;
constexpr size_t kMatvecPoolBytes = size_t(256) << 20;

std::map<size_t, double> g_bandwidth;                        // threads -> bytes/s (the ceiling)
std::map<std::pair<size_t, size_t>, std::vector<double>> g_bandwidth_runs;  // (threads, streams) -> bytes/s
std::map<std::pair<size_t, size_t>, double> g_bandwidth_median;
std::map<std::pair<size_t, size_t>, double> g_sgemm_flops;  // (n, threads) -> FLOP/s

// Cheap deterministic values in [-1, 1) (mt19937 over 100M values is slow).
struct Lcg {
  uint64_t s = 0x9e3779b97f4a7c15ull;
  float next() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return float(int32_t(s >> 32)) * (1.0f / 2147483648.0f);
  }
};

std::vector<uint8_t> make_weights(DType t, size_t count) {
  std::vector<uint8_t> b(count * strata::dtype_size(t));
  Lcg rng;
  for (size_t i = 0; i < count; ++i) {
    float v = rng.next();
    if (t == DType::F32) {
      std::memcpy(&b[i * 4], &v, 4);
    } else {
      uint16_t h = t == DType::F16 ? strata::f32_to_f16(v) : strata::f32_to_bf16(v);
      std::memcpy(&b[i * 2], &h, 2);
    }
  }
  return b;
}

std::vector<float> make_floats(size_t count) {
  std::vector<float> v(count);
  Lcg rng;
  for (float& f : v) f = rng.next();
  return v;
}

strata::ThreadPool* pool_of(size_t threads) {
  static std::map<size_t, std::unique_ptr<strata::ThreadPool>> pools;
  auto& p = pools[threads];
  if (!p) p = std::make_unique<strata::ThreadPool>(threads);
  return p.get();
}

// --- memory bandwidth --------------------------------------------------------

// Weights and the probe's buffer are AlignedBuffers, as the engine's layers
// and slots are: large ones are backed by 2 MiB pages, which on a Zen 4 VM
// read one stream at 28 GB/s against 21 with 4 KiB pages.
const strata::AlignedBuffer& bandwidth_buffer() {
  static const strata::AlignedBuffer buf = [] {
    strata::AlignedBuffer b(kBandwidthBytes, nullptr, "bandwidth probe");
    uint64_t* v = b.as<uint64_t>();
    for (size_t i = 0; i < kBandwidthBytes / sizeof(uint64_t); ++i) v[i] = i * 0x9e3779b97f4a7c15ull;
    return b;
  }();
  return buf;
}

// Reads the range as 4 interleaved streams (like a 4-row matvec tile; on
// Zen 5 one stream alone left a core's prefetchers idle) with wide loads and
// independent accumulators, so the loop is bound by memory, not latency.
// Built for AVX2 when the CPU has it (the file is baseline).
[[gnu::always_inline]] inline uint64_t sum_streams(const uint64_t* p, size_t count) {
  constexpr size_t kStreams = 4, kWidth = 8;
  const size_t q = count / kStreams / kWidth * kWidth;
  uint64_t acc[kStreams][kWidth] = {};
  for (size_t i = 0; i < q; i += kWidth)
    for (size_t s = 0; s < kStreams; ++s)
      for (size_t l = 0; l < kWidth; ++l) acc[s][l] += p[s * q + i + l];
  uint64_t sum = 0;
  for (auto& a : acc)
    for (uint64_t v : a) sum += v;
  return sum;
}

__attribute__((target("avx2"))) uint64_t sum_avx2(const uint64_t* p, size_t count) { return sum_streams(p, count); }
uint64_t sum_baseline(const uint64_t* p, size_t count) { return sum_streams(p, count); }

// One sequential stream with 512-bit loads, 4 cache lines per step: on Zen 4
// this reads faster than 4 streams far apart (which the 4-stream probe
// measured at under half of it, single-threaded), so it is the ceiling there.
__attribute__((target("avx512f"))) uint64_t sum_one_stream_avx512(const uint64_t* p, size_t count) {
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 32 <= count; i += 32) {
    a0 = _mm512_add_epi64(a0, _mm512_loadu_si512(p + i));
    a1 = _mm512_add_epi64(a1, _mm512_loadu_si512(p + i + 8));
    a2 = _mm512_add_epi64(a2, _mm512_loadu_si512(p + i + 16));
    a3 = _mm512_add_epi64(a3, _mm512_loadu_si512(p + i + 24));
  }
  // Lanes through memory: GCC 12 warns on _mm512_reduce_add_epi64's own code.
  alignas(64) uint64_t lanes[8];
  _mm512_store_si512(lanes, _mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3)));
  uint64_t sum = 0;
  for (uint64_t v : lanes) sum += v;
  return sum;
}
__attribute__((target("avx2"))) uint64_t sum_one_stream_avx2(const uint64_t* p, size_t count) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 16 <= count; i += 16) {
    a0 = _mm256_add_epi64(a0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 4)));
    a2 = _mm256_add_epi64(a2, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 8)));
    a3 = _mm256_add_epi64(a3, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 12)));
  }
  uint64_t lanes[4];
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(lanes),
                      _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3)));
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

uint64_t sum_range(const uint64_t* p, size_t count, size_t streams) {
  if (streams == 1) {
    if (__builtin_cpu_supports("avx512f")) return sum_one_stream_avx512(p, count);
    if (__builtin_cpu_supports("avx2")) return sum_one_stream_avx2(p, count);
  }
  return __builtin_cpu_supports("avx2") ? sum_avx2(p, count) : sum_baseline(p, count);
}

// The ceiling per thread count is the best pattern (`streams` 1 or 4 per
// thread) measured in this run, by the median of its repetitions.
void BM_MemBandwidth(benchmark::State& state) {
  const size_t threads = size_t(state.range(0)), streams = size_t(state.range(1));
  const uint64_t* buf = bandwidth_buffer().as<uint64_t>();
  const size_t count = kBandwidthBytes / sizeof(uint64_t);
  strata::ThreadPool* pool = pool_of(threads);
  std::vector<uint64_t> partial(threads);
  auto t0 = Clock::now();
  for (auto _ : state) {
    pool->parallel_for(count, count / threads, [&](size_t b, size_t e) {
      partial[b * threads / count] = sum_range(buf + b, e - b, streams);
    });
    benchmark::DoNotOptimize(partial.data());
  }
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  double bps = double(kBandwidthBytes) * double(state.iterations()) / secs;
  // The median of this pattern's repetitions so far, so that with
  // --benchmark_repetitions the ceiling is not one lucky run.
  std::vector<double>& runs = g_bandwidth_runs[{threads, streams}];
  runs.push_back(bps);
  std::vector<double> sorted = runs;
  std::sort(sorted.begin(), sorted.end());
  double median = sorted[sorted.size() / 2];
  if (sorted.size() % 2 == 0) median = (median + sorted[sorted.size() / 2 - 1]) / 2;
  g_bandwidth_median[{threads, streams}] = median;
  g_bandwidth[threads] = 0;
  for (const auto& [key, v] : g_bandwidth_median)
    if (key.first == threads) g_bandwidth[threads] = std::max(g_bandwidth[threads], v);
  state.SetBytesProcessed(int64_t(kBandwidthBytes) * state.iterations());
  state.counters["GB/s"] = bps / 1e9;
  state.counters["ceiling_GB/s"] = g_bandwidth[threads] / 1e9;
}

// --- matvec (n = 1) ----------------------------------------------------------

struct MatvecData {
  strata::AlignedBuffer w;  // `copies` distinct kDim x kDim matrices back to back
  size_t copies = 0;
};

strata::AlignedBuffer to_buffer(const std::vector<uint8_t>& v) {
  strata::AlignedBuffer b(v.size(), nullptr, "bench weights");
  std::memcpy(b.data(), v.data(), v.size());
  return b;
}

const MatvecData& matvec_data(DType t) {
  static std::map<DType, MatvecData> cache;
  MatvecData& d = cache[t];
  if (d.copies == 0) {
    size_t bytes = kDim * kDim * strata::dtype_size(t);
    d.copies = (kMatvecPoolBytes + bytes - 1) / bytes;
    d.w = to_buffer(make_weights(t, d.copies * kDim * kDim));
  }
  return d;
}

void BM_Matvec(benchmark::State& state) {
  const DType t = DType(state.range(0));
  const size_t threads = size_t(state.range(1));
  const MatvecData& d = matvec_data(t);
  const size_t bytes = kDim * kDim * strata::dtype_size(t);
  std::vector<float> x = make_floats(kDim), y(kDim);
  strata::ThreadPool* pool = pool_of(threads);
  size_t next = 0;
  auto t0 = Clock::now();
  for (auto _ : state) {
    strata::matmul(x.data(), 1, kDim, d.w.data() + next * bytes, t, kDim, y.data(), kDim, pool);
    next = (next + 1) % d.copies;
    benchmark::DoNotOptimize(y.data());
  }
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  double bps = double(bytes) * double(state.iterations()) / secs;
  state.SetBytesProcessed(int64_t(bytes) * state.iterations());
  state.SetLabel(std::string(strata::dtype_name(t)) + " " + strata::kernel_isa());
  state.counters["GB/s"] = bps / 1e9;
  if (g_bandwidth.count(threads)) state.counters["frac_bw"] = bps / g_bandwidth[threads];
}

// --- batched matmul vs sgemm -------------------------------------------------

const std::vector<uint8_t>& gemm_weights(DType t) {
  static std::map<DType, std::vector<uint8_t>> cache;
  auto& w = cache[t];
  if (w.empty()) w = make_weights(t, kDim * kDim);
  return w;
}

#if STRATA_HAVE_BLAS
void BM_Sgemm(benchmark::State& state) {
  const size_t n = size_t(state.range(0)), threads = size_t(state.range(1));
  const auto& w = gemm_weights(DType::F32);
  std::vector<float> x = make_floats(n * kDim), y(n * kDim);
  openblas_set_num_threads(int(threads));
  auto t0 = Clock::now();
  for (auto _ : state) {
    // y[n, m] = x[n, k] * W[m, k]^T, the same product as strata::matmul.
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(kDim), int(kDim), 1.0f, x.data(), int(kDim),
                reinterpret_cast<const float*>(w.data()), int(kDim), 0.0f, y.data(), int(kDim));
    benchmark::DoNotOptimize(y.data());
  }
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  double flops = 2.0 * double(n) * kDim * kDim * double(state.iterations()) / secs;
  g_sgemm_flops[{n, threads}] = flops;
  state.SetLabel(openblas_get_corename());
  state.counters["GFLOPs"] = flops / 1e9;
}
#endif

void BM_Gemm(benchmark::State& state) {
  const DType t = DType(state.range(0));
  const size_t n = size_t(state.range(1)), threads = size_t(state.range(2));
  const auto& w = gemm_weights(t);
  std::vector<float> x = make_floats(n * kDim), y(n * kDim);
  strata::ThreadPool* pool = pool_of(threads);
  auto t0 = Clock::now();
  for (auto _ : state) {
    strata::matmul(x.data(), n, kDim, w.data(), t, kDim, y.data(), kDim, pool);
    benchmark::DoNotOptimize(y.data());
  }
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  double flops = 2.0 * double(n) * kDim * kDim * double(state.iterations()) / secs;
  state.SetLabel(std::string(strata::dtype_name(t)) + " " + strata::kernel_isa());
  state.counters["GFLOPs"] = flops / 1e9;
  auto ref = g_sgemm_flops.find({n, threads});
  if (ref != g_sgemm_flops.end()) state.counters["vs_sgemm"] = flops / ref->second;
}

// --- quantized weights --------------------------------------------------------

const int64_t kQuantTypes[] = {int64_t(DType::Q8_0), int64_t(DType::Q4_0), int64_t(DType::Q4_1),
                               int64_t(DType::Q5_0), int64_t(DType::Q5_1), int64_t(DType::Q2_K),
                               int64_t(DType::Q3_K), int64_t(DType::Q4_K), int64_t(DType::Q5_K),
                               int64_t(DType::Q6_K), int64_t(DType::IQ4_NL), int64_t(DType::IQ4_XS)};

// count weights of type t: one 256-row strip quantized with the reference
// quantizer (the K-quant ones are slow), repeated. The kernels' speed does
// not depend on the values.
std::vector<uint8_t> make_quant(DType t, size_t count) {
  const size_t strip = 256 * kDim;
  const std::vector<float> f = make_floats(strip);
  std::vector<uint8_t> one(strata::dtype_bytes(t, strip));
  strata::dtype_traits(t).from_float(f.data(), one.data(), strip);
  std::vector<uint8_t> q(strata::dtype_bytes(t, count));
  for (size_t off = 0; off < q.size(); off += one.size())
    std::memcpy(q.data() + off, one.data(), std::min(one.size(), q.size() - off));
  return q;
}

void BM_MatvecQuant(benchmark::State& state) {
  const auto t = DType(state.range(0));
  const size_t threads = size_t(state.range(1));
  const size_t bytes = strata::dtype_bytes(t, kDim * kDim);
  const size_t copies = (kMatvecPoolBytes + bytes - 1) / bytes;
  static std::map<DType, strata::AlignedBuffer> cache;
  auto& w = cache[t];
  if (w.size() == 0) w = to_buffer(make_quant(t, copies * kDim * kDim));
  std::vector<float> x = make_floats(kDim), y(kDim);
  strata::ThreadPool* pool = pool_of(threads);
  size_t next = 0;
  auto t0 = Clock::now();
  for (auto _ : state) {
    strata::matmul(x.data(), 1, kDim, w.data() + next * bytes, t, kDim, y.data(), kDim, pool);
    next = (next + 1) % copies;
    benchmark::DoNotOptimize(y.data());
  }
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  double bps = double(bytes) * double(state.iterations()) / secs;
  state.SetBytesProcessed(int64_t(bytes) * state.iterations());
  state.SetLabel(std::string(strata::dtype_name(t)) + " " + strata::kernel_isa());
  state.counters["GB/s"] = bps / 1e9;
  if (g_bandwidth.count(threads)) state.counters["frac_bw"] = bps / g_bandwidth[threads];
}

// The same matvec with W in cache (256 x 4096, at most 1.1 MiB, the same
// matrix every time): how fast the kernel's arithmetic alone goes, the
// limit a matvec from memory cannot beat.
void BM_MatvecQuantHot(benchmark::State& state) {
  const auto t = DType(state.range(0));
  constexpr size_t kRows = 256;
  const size_t bytes = strata::dtype_bytes(t, kRows * kDim);
  const std::vector<uint8_t> w = make_quant(t, kRows * kDim);
  std::vector<float> x = make_floats(kDim), y(kRows);
  auto t0 = Clock::now();
  for (auto _ : state) {
    strata::matmul(x.data(), 1, kDim, w.data(), t, kRows, y.data(), kRows, nullptr);
    benchmark::DoNotOptimize(y.data());
  }
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  double bps = double(bytes) * double(state.iterations()) / secs;
  state.SetLabel(std::string(strata::dtype_name(t)) + " " + strata::kernel_isa());
  state.counters["GB/s"] = bps / 1e9;
  if (g_bandwidth.count(1)) state.counters["vs_bw"] = bps / g_bandwidth[1];
}

// Decode shapes of a llama3.2-1b (m x k: k/v 512 x 2048, q/o 2048 x 2048,
// gate/up 8192 x 2048, down 2048 x 8192, lm_head 128256 x 2048), n = 1,
// W from memory (rotating over >= 256 MiB), every dispatch included: does
// the second thread help on the small ones too?
void BM_MatvecShape(benchmark::State& state) {
  const auto t = DType(state.range(0));
  const size_t m = size_t(state.range(1)), k = size_t(state.range(2)), threads = size_t(state.range(3));
  const size_t bytes = strata::dtype_bytes(t, m * k);
  const size_t copies = std::max<size_t>(1, (kMatvecPoolBytes + bytes - 1) / bytes);
  static std::map<std::tuple<DType, size_t, size_t>, strata::AlignedBuffer> cache;
  auto& w = cache[{t, m, k}];
  if (w.size() == 0) w = to_buffer(make_quant(t, copies * m * k));
  std::vector<float> x = make_floats(k), y(m);
  strata::ThreadPool* pool = pool_of(threads);
  size_t next = 0;
  auto t0 = Clock::now();
  for (auto _ : state) {
    strata::matmul(x.data(), 1, k, w.data() + next * bytes, t, m, y.data(), m, pool);
    next = (next + 1) % copies;
    benchmark::DoNotOptimize(y.data());
  }
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  double bps = double(bytes) * double(state.iterations()) / secs;
  state.SetLabel(std::string(strata::dtype_name(t)) + " " + strata::kernel_isa());
  state.counters["GB/s"] = bps / 1e9;
  if (g_bandwidth.count(threads)) state.counters["frac_bw"] = bps / g_bandwidth[threads];
}

void BM_GemmQuant(benchmark::State& state) {
  const auto t = DType(state.range(0));
  const size_t n = size_t(state.range(1)), threads = size_t(state.range(2));
  static std::map<DType, std::vector<uint8_t>> cache;
  auto& w = cache[t];
  if (w.empty()) w = make_quant(t, kDim * kDim);
  std::vector<float> x = make_floats(n * kDim), y(n * kDim);
  strata::ThreadPool* pool = pool_of(threads);
  auto t0 = Clock::now();
  for (auto _ : state) {
    strata::matmul(x.data(), n, kDim, w.data(), t, kDim, y.data(), kDim, pool);
    benchmark::DoNotOptimize(y.data());
  }
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  double flops = 2.0 * double(n) * kDim * kDim * double(state.iterations()) / secs;
  state.SetLabel(std::string(strata::dtype_name(t)) + " " + strata::kernel_isa());
  state.counters["GFLOPs"] = flops / 1e9;
  auto ref = g_sgemm_flops.find({n, threads});
  if (ref != g_sgemm_flops.end()) state.counters["vs_sgemm"] = flops / ref->second;
}

constexpr double kMinTime = 0.3;
const int64_t kTypes[] = {int64_t(DType::F32), int64_t(DType::BF16), int64_t(DType::F16)};

BENCHMARK(BM_MemBandwidth)->ArgNames({"threads", "streams"})->ArgsProduct({{1, 2}, {4, 1}})->UseRealTime()->MinTime(kMinTime)->Unit(benchmark::kMillisecond);

void matvec_args(benchmark::internal::Benchmark* b) {
  for (size_t threads : {1, 2})
    for (int64_t t : kTypes) b->Args({t, int64_t(threads)});
}
BENCHMARK(BM_Matvec)->ArgNames({"dtype", "threads"})->Apply(matvec_args)->UseRealTime()->MinTime(kMinTime)
    ->Unit(benchmark::kMillisecond);

#if STRATA_HAVE_BLAS
BENCHMARK(BM_Sgemm)->ArgNames({"n", "threads"})->ArgsProduct({{16, 128}, {1, 2}})->UseRealTime()->MinTime(kMinTime)
    ->Unit(benchmark::kMillisecond);
#endif

void gemm_args(benchmark::internal::Benchmark* b) {
  for (int64_t n : {16, 128})
    for (int64_t threads : {1, 2})
      for (int64_t t : kTypes) b->Args({t, n, threads});
}
BENCHMARK(BM_Gemm)->ArgNames({"dtype", "n", "threads"})->Apply(gemm_args)->UseRealTime()->MinTime(kMinTime)
    ->Unit(benchmark::kMillisecond);

void matvec_quant_args(benchmark::internal::Benchmark* b) {
  for (int64_t threads : {1, 2})
    for (int64_t t : kQuantTypes) b->Args({t, threads});
}
BENCHMARK(BM_MatvecQuant)->ArgNames({"dtype", "threads"})->Apply(matvec_quant_args)->UseRealTime()
    ->MinTime(kMinTime)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MatvecQuantHot)->ArgName("dtype")->Apply([](benchmark::internal::Benchmark* b) {
  for (int64_t t : kQuantTypes) b->Arg(t);
})->UseRealTime()->MinTime(kMinTime)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MatvecShape)->ArgNames({"dtype", "m", "k", "threads"})->Apply([](benchmark::internal::Benchmark* b) {
  const std::pair<int64_t, int64_t> shapes[] = {{512, 2048}, {2048, 2048}, {8192, 2048}, {2048, 8192}, {128256, 2048}};
  for (int64_t t : {int64_t(DType::Q8_0), int64_t(DType::Q4_0), int64_t(DType::Q4_K), int64_t(DType::Q6_K)})
    for (auto [m, k] : shapes)
      for (int64_t threads : {1, 2}) b->Args({t, m, k, threads});
})->UseRealTime()->MinTime(kMinTime)->Unit(benchmark::kMicrosecond);
void gemm_quant_args(benchmark::internal::Benchmark* b) {
  for (int64_t n : {16, 128})
    for (int64_t threads : {1, 2})
      for (int64_t t : kQuantTypes) b->Args({t, n, threads});
}
BENCHMARK(BM_GemmQuant)->ArgNames({"dtype", "n", "threads"})->Apply(gemm_quant_args)->UseRealTime()
    ->MinTime(kMinTime)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
