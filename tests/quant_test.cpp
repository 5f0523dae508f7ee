// Q8_0 / Q4_0 block layouts, quantization, and the quantized matmul of every
// instruction set against the scalar reference and the determinism contract.
#include "kernels/quant.h"

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "core/dtype.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/matmul.h"

namespace strata {
namespace {

std::vector<float> random_floats(size_t count, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(count);
  for (float& f : v) f = dist(rng);
  return v;
}

std::vector<uint8_t> quantize(QuantType t, const std::vector<float>& v) {
  std::vector<uint8_t> out(quant_bytes(t, v.size()));
  if (t == QuantType::Q8_0) quantize_q8_0(v.data(), v.size(), reinterpret_cast<BlockQ8_0*>(out.data()));
  else quantize_q4_0(v.data(), v.size(), reinterpret_cast<BlockQ4_0*>(out.data()));
  return out;
}

const char* type_name(QuantType t) { return t == QuantType::Q8_0 ? "Q8_0" : "Q4_0"; }

TEST(MatmulQuantBlocks, Q4_0NibbleLayoutIsGgml) {
  // Values -8d..7d: element i in the low nibble of qs[i], element i+16 high.
  std::vector<float> v(32);
  for (size_t i = 0; i < 32; ++i) v[i] = float(int(i % 16) - 8);
  v[0] = -8.0f;  // the value of largest magnitude is negative, so d = -8 / -8 = 1
  BlockQ4_0 b;
  quantize_q4_0(v.data(), 32, &b);
  EXPECT_EQ(f16_to_f32(b.d), 1.0f);
  for (size_t i = 0; i < 16; ++i) {
    EXPECT_EQ(b.qs[i] & 0x0f, int(i % 16)) << i;
    EXPECT_EQ(b.qs[i] >> 4, int(i % 16)) << i;
  }
  std::vector<float> back(32);
  dequantize(&b, QuantType::Q4_0, 32, back.data());
  for (size_t i = 0; i < 32; ++i) EXPECT_EQ(back[i], v[i]) << i;
}

// Weights round exact halves away from zero (ggml's reference
// quantize_row_q8_0, so GGUF files match llama.cpp's byte for byte);
// activations round them to even (ggml's SIMD path). A block with max 127
// has scale 1, so x * (1/d) is x itself.
TEST(MatmulQuantBlocks, Q8_0TiesWeightsAwayFromZeroActivationsToEven) {
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;
  x[1] = 2.5f;
  x[2] = -2.5f;
  x[3] = 0.5f;
  x[4] = 3.5f;
  BlockQ8_0 w{}, a{};
  quantize_q8_0_weights(x.data(), 32, &w);
  quantize_q8_0(x.data(), 32, &a);
  EXPECT_EQ(f16_to_f32(w.d), 1.0f);
  EXPECT_EQ(std::vector<int>(w.qs, w.qs + 5), (std::vector<int>{127, 3, -3, 1, 4}));
  EXPECT_EQ(std::vector<int>(a.qs, a.qs + 5), (std::vector<int>{127, 2, -2, 0, 4}));
}

TEST(MatmulQuantBlocks, RoundTripErrorWithinOneStep) {
  std::mt19937 rng(3);
  std::vector<float> v = random_floats(32 * 50, rng);
  for (QuantType t : {QuantType::Q8_0, QuantType::Q4_0}) {
    std::vector<uint8_t> q = quantize(t, v);
    std::vector<float> back(v.size());
    dequantize(q.data(), t, v.size(), back.data());
    for (size_t b = 0; b < v.size() / 32; ++b) {
      float amax = 0;
      for (size_t i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(v[b * 32 + i]));
      // Half a step of rounding plus the f16 rounding of the scale (2^-11
      // relative, times up to 127 steps). Q4_0 puts -8 steps on the value of
      // largest magnitude, so the opposite sign can clamp at +7: one step.
      const float step = t == QuantType::Q8_0 ? amax / 127 : amax / 8;
      const float bound = t == QuantType::Q8_0 ? step * (0.5f + 127.0f / 2048) : step * (1.0f + 8.0f / 2048);
      for (size_t i = 0; i < 32; ++i)
        ASSERT_LE(std::fabs(back[b * 32 + i] - v[b * 32 + i]), bound * 1.001f + 1e-6f) << type_name(t);
    }
  }
}

TEST(MatmulQuantBlocks, KNotAMultipleOf32Throws) {
  std::vector<float> x(40), y(1);
  std::vector<uint8_t> w(100);
  EXPECT_ANY_THROW(matmul_quant(x.data(), 1, 40, w.data(), QuantType::Q8_0, 1, y.data(), 1, nullptr));
}

TEST(MatmulQuantBlocks, DTypeRowsCheckWholeBlocks) {
  std::vector<float> x(40), y(4);
  std::vector<uint8_t> w(200);
  for (DType t : {DType::Q8_0, DType::Q4_0}) {
    for (const char* isa : available_kernel_isas())
      EXPECT_THROW(matmul_isa(isa, x.data(), 1, 40, w.data(), t, 1, y.data(), 1, nullptr), Error) << isa;
    EXPECT_THROW(matmul(x.data(), 1, 40, w.data(), t, 1, y.data(), 1, nullptr), Error);
    EXPECT_THROW(to_float(w.data(), t, 33, y.data()), Error);
    EXPECT_THROW(matmul_reference(x.data(), 1, 40, w.data(), t, 1, y.data(), 1), Error);
  }
}

TEST(MatmulQuantBlocks, DTypeEntryPointEqualsQuantEntryPoint) {
  std::mt19937 rng(5);
  const size_t n = 3, k = 96, m = 9;
  std::vector<float> wf = random_floats(m * k, rng), x = random_floats(n * k, rng);
  for (QuantType qt : {QuantType::Q8_0, QuantType::Q4_0}) {
    const DType t = qt == QuantType::Q8_0 ? DType::Q8_0 : DType::Q4_0;
    std::vector<uint8_t> w = quantize(qt, wf);
    std::vector<float> a(n * m), b(n * m), fa(m * k), fb(m * k);
    matmul(x.data(), n, k, w.data(), t, m, a.data(), m, nullptr);
    matmul_quant(x.data(), n, k, w.data(), qt, m, b.data(), m, nullptr);
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4));
    to_float(w.data(), t, m * k, fa.data());
    dequantize(w.data(), qt, m * k, fb.data());
    EXPECT_EQ(0, std::memcmp(fa.data(), fb.data(), fa.size() * 4));
  }
}

class MatmulQuant : public ::testing::TestWithParam<std::tuple<std::string, QuantType>> {
 protected:
  void SetUp() override {
    isa_ = std::get<0>(GetParam());
    type_ = std::get<1>(GetParam());
    bool found = false;
    for (const char* a : available_kernel_isas()) found = found || isa_ == a;
    if (!found) GTEST_SKIP() << isa_ << " not available on this CPU";
  }
  std::string isa_;
  QuantType type_ = QuantType::Q8_0;
};

TEST_P(MatmulQuant, MatchesReference) {
  std::mt19937 rng(11);
  for (size_t k : {32, 64, 96, 320})
    for (size_t m : {1, 3, 4, 17, 65})
      for (size_t n : {1, 2, 3, 4, 5, 7, 13, 67}) {
        std::vector<float> wf = random_floats(m * k, rng), x = random_floats(n * k, rng);
        std::vector<uint8_t> w = quantize(type_, wf);
        std::vector<float> y(n * m, NAN), ref(n * m, NAN);
        matmul_quant_isa(isa_.c_str(), x.data(), n, k, w.data(), type_, m, y.data(), m, nullptr);
        matmul_quant_reference(x.data(), n, k, w.data(), type_, m, ref.data(), m);
        // Only the f32 accumulation over k/32 blocks differs from the reference.
        std::vector<float> wd(m * k), xd(n * k);
        dequantize(w.data(), type_, m * k, wd.data());
        std::vector<uint8_t> xq = quantize(QuantType::Q8_0, x);
        dequantize(xq.data(), QuantType::Q8_0, n * k, xd.data());
        for (size_t i = 0; i < n; ++i)
          for (size_t j = 0; j < m; ++j) {
            double mag = 0;
            for (size_t p = 0; p < k; ++p) mag += std::fabs(double(xd[i * k + p]) * wd[j * k + p]);
            ASSERT_NEAR(y[i * m + j], ref[i * m + j], 4 * 1.2e-7 * double(k / 16 + 4) * mag + 1e-30)
                << isa_ << " " << type_name(type_) << " n=" << n << " k=" << k << " m=" << m << " i=" << i << " j=" << j;
          }
      }
}

// Against the f32 product with the dequantized weights: the difference is
// the activation quantization, at most half an x step per element.
TEST_P(MatmulQuant, CloseToFloatMatmulOfDequantizedWeights) {
  std::mt19937 rng(12);
  const size_t n = 5, k = 256, m = 33;
  std::vector<float> wf = random_floats(m * k, rng), x = random_floats(n * k, rng);
  std::vector<uint8_t> w = quantize(type_, wf);
  std::vector<float> wd(m * k), y(n * m), yf(n * m);
  dequantize(w.data(), type_, m * k, wd.data());
  matmul_quant_isa(isa_.c_str(), x.data(), n, k, w.data(), type_, m, y.data(), m, nullptr);
  matmul_reference(x.data(), n, k, wd.data(), DType::F32, m, yf.data(), m);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < m; ++j) {
      double bound = 0;
      for (size_t b = 0; b < k / 32; ++b) {
        float amax = 0;
        for (size_t p = 0; p < 32; ++p) amax = std::max(amax, std::fabs(x[i * k + b * 32 + p]));
        for (size_t p = 0; p < 32; ++p) bound += std::fabs(wd[j * k + b * 32 + p]) * amax / 127 * 0.5 * 1.01;
      }
      ASSERT_NEAR(y[i * m + j], yf[i * m + j], bound + 1e-4) << i << " " << j;
    }
}

TEST_P(MatmulQuant, DeterministicAcrossBatchAndThreads) {
  std::mt19937 rng(13);
  const size_t n = 37, k = 288, m = 301;
  std::vector<float> wf = random_floats(m * k, rng), x = random_floats(n * k, rng);
  std::vector<uint8_t> w = quantize(type_, wf);
  std::vector<float> base(n * m);
  matmul_quant_isa(isa_.c_str(), x.data(), n, k, w.data(), type_, m, base.data(), m, nullptr);
  std::unique_ptr<ThreadPool> pools[] = {nullptr, std::make_unique<ThreadPool>(1), std::make_unique<ThreadPool>(2),
                                         std::make_unique<ThreadPool>(3)};
  for (auto& pool : pools) {
    const std::string label = "threads=" + std::to_string(pool ? pool->size() : 0);
    std::vector<float> batch(n * m);
    matmul_quant_isa(isa_.c_str(), x.data(), n, k, w.data(), type_, m, batch.data(), m, pool.get());
    ASSERT_EQ(0, std::memcmp(base.data(), batch.data(), batch.size() * sizeof(float))) << label;
    for (size_t i = 0; i < n; ++i) {
      std::vector<float> one(m);
      matmul_quant_isa(isa_.c_str(), x.data() + i * k, 1, k, w.data(), type_, m, one.data(), m, pool.get());
      ASSERT_EQ(0, std::memcmp(base.data() + i * m, one.data(), m * sizeof(float))) << label << " row " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Matmul, MatmulQuant,
                         ::testing::Combine(::testing::Values("scalar", "avx2", "avx512"),
                                            ::testing::Values(QuantType::Q8_0, QuantType::Q4_0)),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" + type_name(std::get<1>(info.param));
                         });

// The AVX-512 tile reads W two blocks at a time and two W rows per vector;
// an odd block count leaves a lone last block, a row count not a multiple of
// 4 a partial tile. Each such shape against the reference, and bitwise
// against AVX2 (the same integer lanes and FMA order) and against itself one
// x row and one W row range at a time (the determinism contract).
TEST(MatmulQuantIsas, Avx512PairTailsAndPartialTiles) {
  auto isas = available_kernel_isas();
  if (isas.size() < 3) GTEST_SKIP() << "needs avx2 and avx512";
  std::mt19937 rng(15);
  for (QuantType t : {QuantType::Q8_0, QuantType::Q4_0})
    for (size_t k : {32, 64, 96, 160, 224, 4128})
      for (size_t m : {1, 2, 3, 5, 6, 7, 9, 18})
        for (size_t n : {1, 2, 3, 4, 5, 6, 9, 67}) {
          if (k == 4128 && n > 5) continue;
          const std::string label = std::string(type_name(t)) + " k=" + std::to_string(k) + " m=" + std::to_string(m) +
                                    " n=" + std::to_string(n);
          std::vector<float> wf = random_floats(m * k, rng), x = random_floats(n * k, rng, 3.0f);
          std::vector<uint8_t> w = quantize(t, wf);
          std::vector<float> a(n * m, NAN), b(n * m, NAN), ref(n * m, NAN);
          matmul_quant_isa("avx2", x.data(), n, k, w.data(), t, m, a.data(), m, nullptr);
          matmul_quant_isa("avx512", x.data(), n, k, w.data(), t, m, b.data(), m, nullptr);
          matmul_quant_reference(x.data(), n, k, w.data(), t, m, ref.data(), m);
          ASSERT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float))) << label;
          for (size_t p = 0; p < ref.size(); ++p)
            ASSERT_NEAR(b[p], ref[p], 1e-4 * (std::fabs(ref[p]) + std::sqrt(double(k)))) << label << " at " << p;
          // One x row, and W rows [j0, m) written into a wider output.
          for (size_t i = 0; i < n; ++i) {
            std::vector<float> one(m, NAN);
            matmul_quant_isa("avx512", x.data() + i * k, 1, k, w.data(), t, m, one.data(), m, nullptr);
            ASSERT_EQ(0, std::memcmp(b.data() + i * m, one.data(), m * sizeof(float))) << label << " row " << i;
          }
          for (size_t j0 : {size_t(1), size_t(3)}) {
            if (j0 >= m) continue;
            std::vector<float> part((m - j0) * n, NAN);
            const uint8_t* wj = w.data() + quant_bytes(t, j0 * k);
            matmul_quant_isa("avx512", x.data(), n, k, wj, t, m - j0, part.data(), m - j0, nullptr);
            for (size_t i = 0; i < n; ++i)
              ASSERT_EQ(0, std::memcmp(b.data() + i * m + j0, part.data() + i * (m - j0), (m - j0) * sizeof(float)))
                  << label << " j0=" << j0 << " row " << i;
          }
        }
}

// x is quantized per ISA (the AVX-512 tile vectorizes it) and must give the
// bits of quantize_q8_0. W = the identity (one Q8_0 weight of 1 per row, d =
// 1) makes each output one quantized x value times its scale, exactly, so
// every q and d is checked: ties at .5 steps (round to nearest even), a zero
// block, blocks whose scale underflows (id = inf), random values.
TEST(MatmulQuantIsas, ActivationQuantizationBitwiseEqualsScalar) {
  const size_t k = 32 * 6, m = k;
  std::mt19937 rng(17);
  std::vector<float> x = random_floats(4 * k, rng);
  for (size_t p = 0; p < k; ++p) x[p] = float(int(p * 37 % 255) - 127) * 0.5f;  // ties, amax 63.5 then 127
  x[31] = 127.0f;
  x[32 + 5] = 127.0f;
  for (size_t p = 64; p < 96; ++p) x[p] = 0.0f;
  for (size_t p = 96; p < 128; ++p) x[p] = float(int(p) - 110) * 1e-39f;  // denormal inputs
  for (size_t p = k; p < 2 * k; ++p) x[p] *= 1e-3f;
  std::vector<BlockQ8_0> w(m * k / 32);
  for (BlockQ8_0& b : w) {
    b.d = f32_to_f16(1.0f);
    std::memset(b.qs, 0, sizeof(b.qs));
  }
  for (size_t j = 0; j < m; ++j) w[j * (k / 32) + j / 32].qs[j % 32] = 1;
  std::vector<BlockQ8_0> xq(4 * k / 32);
  quantize_q8_0(x.data(), x.size(), xq.data());
  for (const char* isa : available_kernel_isas()) {
    std::vector<float> y(4 * m, NAN);
    matmul_quant_isa(isa, x.data(), 4, k, w.data(), QuantType::Q8_0, m, y.data(), m, nullptr);
    for (size_t i = 0; i < 4; ++i)
      for (size_t j = 0; j < m; ++j) {
        const BlockQ8_0& b = xq[i * (k / 32) + j / 32];
        ASSERT_EQ(y[i * m + j], f16_to_f32(b.d) * float(b.qs[j % 32])) << isa << " i=" << i << " j=" << j;
      }
  }
}

// Q8_0 weights of -128 (possible in a GGUF file, never from quantize_q8_0):
// the AVX-512 tile feeds w ^ 0x80 to dpbusd, the AVX2 tile |w| with x's sign.
TEST(MatmulQuantIsas, Q8WeightMinus128) {
  std::mt19937 rng(16);
  const size_t n = 3, k = 96, m = 5;
  std::vector<float> wf = random_floats(m * k, rng), x = random_floats(n * k, rng);
  std::vector<uint8_t> w = quantize(QuantType::Q8_0, wf);
  BlockQ8_0* blocks = reinterpret_cast<BlockQ8_0*>(w.data());
  for (size_t b = 0; b < m * k / 32; ++b) blocks[b].qs[b % 32] = -128;
  std::vector<float> ref(n * m);
  matmul_quant_reference(x.data(), n, k, w.data(), QuantType::Q8_0, m, ref.data(), m);
  for (const char* isa : available_kernel_isas()) {
    std::vector<float> y(n * m, NAN);
    matmul_quant_isa(isa, x.data(), n, k, w.data(), QuantType::Q8_0, m, y.data(), m, nullptr);
    for (size_t p = 0; p < y.size(); ++p) ASSERT_NEAR(y[p], ref[p], 1e-3 * (std::fabs(ref[p]) + 1)) << isa << " " << p;
  }
}

// The integer block dots are exact, so AVX2 and AVX-512 give the same bits.
TEST(MatmulQuantIsas, Avx2AndAvx512AgreeBitwise) {
  auto isas = available_kernel_isas();
  if (isas.size() < 3) GTEST_SKIP() << "needs avx2 and avx512";
  std::mt19937 rng(14);
  const size_t n = 9, k = 160, m = 19;
  for (QuantType t : {QuantType::Q8_0, QuantType::Q4_0}) {
    std::vector<float> wf = random_floats(m * k, rng), x = random_floats(n * k, rng);
    std::vector<uint8_t> w = quantize(t, wf);
    std::vector<float> a(n * m), b(n * m);
    matmul_quant_isa("avx2", x.data(), n, k, w.data(), t, m, a.data(), m, nullptr);
    matmul_quant_isa("avx512", x.data(), n, k, w.data(), t, m, b.data(), m, nullptr);
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float))) << type_name(t);
  }
}

}  // namespace
}  // namespace strata
