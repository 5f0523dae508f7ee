// matmul for every instruction set this CPU has, against the scalar
// reference on awkward sizes, and the determinism contract of matmul.h.
#include "kernels/matmul.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "core/dtype.h"
#include "core/thread_pool.h"

namespace strata {
namespace {

// Random weights stored in type t (bytes), and their f32 values.
struct Weights {
  std::vector<uint8_t> bytes;
  std::vector<float> values;
};

Weights random_weights(DType t, size_t count, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  Weights w;
  w.bytes.resize(count * dtype_size(t));
  w.values.resize(count);
  for (size_t i = 0; i < count; ++i) {
    float v = dist(rng);
    switch (t) {
      case DType::F32: std::memcpy(&w.bytes[i * 4], &v, 4); break;
      case DType::F16: {
        uint16_t h = f32_to_f16(v);
        std::memcpy(&w.bytes[i * 2], &h, 2);
        v = f16_to_f32(h);
        break;
      }
      case DType::BF16: {
        uint16_t h = f32_to_bf16(v);
        std::memcpy(&w.bytes[i * 2], &h, 2);
        v = bf16_to_f32(h);
        break;
      }
      default: ADD_FAILURE() << "block types are tested in quant_test.cpp"; break;
    }
    w.values[i] = v;
  }
  return w;
}

std::vector<float> random_floats(size_t count, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(count);
  for (float& f : v) f = dist(rng);
  return v;
}

// |y - ref| within a few f32 roundings per term of sum |x * w|: a wrong or
// missing element (about 1/k of that sum) is far outside it.
void expect_close(const std::vector<float>& y, const std::vector<float>& ref, const std::vector<float>& x,
                  const std::vector<float>& w, size_t n, size_t k, size_t m, size_t ldy, const std::string& what) {
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < m; ++j) {
      double mag = 0;
      for (size_t p = 0; p < k; ++p) mag += std::fabs(double(x[i * k + p]) * double(w[j * k + p]));
      double tol = 4.0 * 1.1920929e-7 * double(k) * mag + 1e-30;
      ASSERT_NEAR(y[i * ldy + j], ref[i * ldy + j], tol) << what << " at i=" << i << " j=" << j;
    }
}

std::string describe(const char* isa, DType t, size_t n, size_t k, size_t m) {
  return std::string(isa) + " " + std::string(dtype_name(t)) + " n=" + std::to_string(n) + " k=" + std::to_string(k) +
         " m=" + std::to_string(m);
}

class MatmulIsa : public ::testing::TestWithParam<std::tuple<std::string, DType>> {
 protected:
  void SetUp() override {
    isa_ = std::get<0>(GetParam());
    type_ = std::get<1>(GetParam());
    bool found = false;
    for (const char* a : available_kernel_isas()) found = found || isa_ == a;
    if (!found) GTEST_SKIP() << isa_ << " not available on this CPU";
  }
  std::string isa_;
  DType type_ = DType::F32;
};

TEST_P(MatmulIsa, MatchesReferenceOnAwkwardSizes) {
  std::mt19937 rng(1234);
  for (size_t k : {1, 7, 16, 33, 100, 257})
    for (size_t m : {1, 3, 4, 17, 65})
      for (size_t n : {1, 2, 3, 4, 5, 6, 7, 8, 13, 31, 67}) {
        Weights w = random_weights(type_, m * k, rng);
        std::vector<float> x = random_floats(n * k, rng);
        std::vector<float> y(n * m, NAN), ref(n * m, NAN);
        matmul_isa(isa_.c_str(), x.data(), n, k, w.bytes.data(), type_, m, y.data(), m, nullptr);
        matmul_reference(x.data(), n, k, w.bytes.data(), type_, m, ref.data(), m);
        expect_close(y, ref, x, w.values, n, k, m, m, describe(isa_.c_str(), type_, n, k, m));
        if (HasFatalFailure()) return;
      }
}

TEST_P(MatmulIsa, LdyWiderThanMLeavesGapsUntouched) {
  std::mt19937 rng(99);
  const size_t n = 9, k = 45, m = 13, ldy = m + 7;
  Weights w = random_weights(type_, m * k, rng);
  std::vector<float> x = random_floats(n * k, rng);
  std::vector<float> y(n * ldy, -777.0f), ref(n * ldy, -777.0f);
  matmul_isa(isa_.c_str(), x.data(), n, k, w.bytes.data(), type_, m, y.data(), ldy, nullptr);
  matmul_reference(x.data(), n, k, w.bytes.data(), type_, m, ref.data(), ldy);
  expect_close(y, ref, x, w.values, n, k, m, ldy, describe(isa_.c_str(), type_, n, k, m));
  for (size_t i = 0; i < n; ++i)
    for (size_t j = m; j < ldy; ++j) EXPECT_EQ(y[i * ldy + j], -777.0f) << "i=" << i << " j=" << j;
}

// A block of output columns written into a wider matrix, as the engine does
// for an lm_head streamed in row blocks, equals the full product.
TEST_P(MatmulIsa, ColumnBlocksIntoWiderOutputEqualFullProduct) {
  std::mt19937 rng(5);
  const size_t n = 11, k = 70, m = 50;
  Weights w = random_weights(type_, m * k, rng);
  std::vector<float> x = random_floats(n * k, rng);
  std::vector<float> full(n * m), blocks(n * m);
  matmul_isa(isa_.c_str(), x.data(), n, k, w.bytes.data(), type_, m, full.data(), m, nullptr);
  const size_t cuts[] = {0, 9, 10, 33, 50};
  for (size_t b = 0; b + 1 < std::size(cuts); ++b) {
    const uint8_t* wb = w.bytes.data() + cuts[b] * k * dtype_size(type_);
    matmul_isa(isa_.c_str(), x.data(), n, k, wb, type_, cuts[b + 1] - cuts[b], blocks.data() + cuts[b], m, nullptr);
  }
  EXPECT_EQ(0, std::memcmp(full.data(), blocks.data(), full.size() * sizeof(float)));
}

// The determinism contract: each y[i, j] is bitwise the same for a batch of
// 37 rows, for any sub-batch, for each row alone, and for 1, 2 or 3 threads.
TEST_P(MatmulIsa, DeterministicAcrossBatchAndThreads) {
  std::mt19937 rng(77);
  const size_t n = 37, k = 257, m = 301;
  Weights w = random_weights(type_, m * k, rng);
  std::vector<float> x = random_floats(n * k, rng);
  std::vector<float> base(n * m);
  matmul_isa(isa_.c_str(), x.data(), n, k, w.bytes.data(), type_, m, base.data(), m, nullptr);

  std::unique_ptr<ThreadPool> pools[] = {nullptr, std::make_unique<ThreadPool>(1), std::make_unique<ThreadPool>(2),
                                         std::make_unique<ThreadPool>(3)};
  for (auto& pool : pools) {
    const std::string label = "threads=" + std::to_string(pool ? pool->size() : 0);
    std::vector<float> batch(n * m);
    matmul_isa(isa_.c_str(), x.data(), n, k, w.bytes.data(), type_, m, batch.data(), m, pool.get());
    ASSERT_EQ(0, std::memcmp(base.data(), batch.data(), batch.size() * sizeof(float))) << label;
    for (size_t i = 0; i < n; ++i) {
      std::vector<float> one(m);
      matmul_isa(isa_.c_str(), x.data() + i * k, 1, k, w.bytes.data(), type_, m, one.data(), m, pool.get());
      ASSERT_EQ(0, std::memcmp(base.data() + i * m, one.data(), m * sizeof(float))) << label << " row " << i;
    }
    // A sub-batch whose rows sit at other positions inside the tiles, with
    // different neighbours.
    const size_t start = 5, count = 13;
    std::vector<float> sub(count * m);
    matmul_isa(isa_.c_str(), x.data() + start * k, count, k, w.bytes.data(), type_, m, sub.data(), m, pool.get());
    ASSERT_EQ(0, std::memcmp(base.data() + start * m, sub.data(), sub.size() * sizeof(float))) << label;
  }
}

TEST_P(MatmulIsa, ZeroKGivesZeros) {
  std::vector<float> y(6, NAN);
  std::vector<uint8_t> w(1);
  float x = 0;
  matmul_isa(isa_.c_str(), &x, 2, 0, w.data(), type_, 3, y.data(), 3, nullptr);
  for (float v : y) EXPECT_EQ(v, 0.0f);
}

INSTANTIATE_TEST_SUITE_P(Matmul, MatmulIsa,
                         ::testing::Combine(::testing::Values("scalar", "avx2", "avx512"),
                                            ::testing::Values(DType::F32, DType::F16, DType::BF16)),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" + std::string(dtype_name(std::get<1>(info.param)));
                         });

// Decode-sized matmuls (n <= 4) run in chunks of a quarter of a thread's
// share, claimed by whichever thread is free: every weight type, every ISA,
// odd m (fewer rows than threads too) and k not a multiple of 256 where the
// type allows give the bits of the single-threaded call, for every n, and
// each x row alone the bits it has in the batch.
TEST(MatmulChunks, MatvecOnAnyThreadsGivesTheSameBits) {
  std::mt19937 rng(21);
  std::unique_ptr<ThreadPool> pools[] = {std::make_unique<ThreadPool>(2), std::make_unique<ThreadPool>(3)};
  const DType types[] = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0,
                         DType::Q5_1, DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_NL,
                         DType::IQ4_XS};
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (const char* isa : available_kernel_isas())
    for (DType t : types) {
      const size_t b = dtype_block_elems(t);
      for (size_t k : {b == 256 ? size_t(768) : size_t(96), b == 256 ? size_t(256) : size_t(2080)})
        for (size_t m : {1, 2, 3, 37, 301}) {
          std::vector<float> wf(m * k), x(5 * k);
          for (float& v : wf) v = dist(rng);
          for (float& v : x) v = dist(rng);
          std::vector<uint8_t> w(dtype_bytes(t, m * k));
          if (t == DType::F32) std::memcpy(w.data(), wf.data(), w.size());
          else dtype_traits(t).from_float(wf.data(), w.data(), m * k);
          std::vector<float> batch(5 * m);
          matmul_isa(isa, x.data(), 5, k, w.data(), t, m, batch.data(), m, nullptr);
          for (size_t n = 1; n <= 4; ++n) {
            std::vector<float> one(n * m), many(n * m);
            matmul_isa(isa, x.data(), n, k, w.data(), t, m, one.data(), m, nullptr);
            ASSERT_EQ(0, std::memcmp(one.data(), batch.data(), one.size() * 4))
                << isa << " " << dtype_name(t) << " k=" << k << " m=" << m << " n=" << n;
            for (auto& pool : pools) {
              matmul_isa(isa, x.data(), n, k, w.data(), t, m, many.data(), m, pool.get());
              ASSERT_EQ(0, std::memcmp(one.data(), many.data(), one.size() * 4))
                  << isa << " " << dtype_name(t) << " k=" << k << " m=" << m << " n=" << n << " threads=" << pool->size();
            }
          }
        }
    }
}

TEST(MatmulDispatch, DefaultIsTheBestAvailable) {
  auto isas = available_kernel_isas();
  ASSERT_FALSE(isas.empty());
  EXPECT_STREQ(isas.front(), "scalar");
  const char* forced = std::getenv("STRATA_FORCE_ISA");
  if (!forced || !*forced) {
    EXPECT_STREQ(kernel_isa(), isas.back());
  }
}

// The dispatcher reads STRATA_FORCE_ISA once per process, so this test runs
// itself again in a child process with the variable set.
TEST(MatmulDispatch, ForceIsaEnvironmentVariable) {
  if (const char* expect = std::getenv("STRATA_TEST_EXPECT_ISA")) {
    EXPECT_STREQ(kernel_isa(), expect);
    return;
  }
  auto isas = available_kernel_isas();
  std::vector<std::pair<std::string, std::string>> cases;  // forced, expected
  for (const char* isa : isas) cases.emplace_back(isa, isa);
  cases.emplace_back("avx512", isas.back());  // above the CPU's: falls back to the best
  for (const auto& [forced, expected] : cases) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      setenv("STRATA_FORCE_ISA", forced.c_str(), 1);
      setenv("STRATA_TEST_EXPECT_ISA", expected.c_str(), 1);
      execl("/proc/self/exe", "strata_tests", "--gtest_filter=MatmulDispatch.ForceIsaEnvironmentVariable",
            static_cast<char*>(nullptr));
      _exit(127);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "STRATA_FORCE_ISA=" << forced;
  }
}

TEST(MatmulDispatch, UnavailableIsaIsAnError) {
  float x = 1, y = 0, w = 1;
  EXPECT_ANY_THROW(matmul_isa("sse9", &x, 1, 1, &w, DType::F32, 1, &y, 1, nullptr));
}

}  // namespace
}  // namespace strata
