// The scalar f16/bf16 conversions every kernel reference uses, checked
// against the hardware (F16C) and an independent round-to-nearest-even.
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "core/dtype.h"
#include "kernels/matmul.h"

namespace strata {
namespace {

uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}
float from_bits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

// The tests are compiled for baseline x86-64; these run only after checking F16C.
__attribute__((target("f16c"))) uint16_t hw_f32_to_f16(float f) {
  return uint16_t(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
}
__attribute__((target("f16c"))) float hw_f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }

bool has_f16c() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("f16c");
}

bool f16_is_nan(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0; }

// f32 values that probe every f16 rounding case: each f16 value, the exact
// midpoints between neighbours (ties), one f32 ulp either side of them, the
// f32 subnormals, huge values, infinities, NaNs, and random bit patterns.
std::vector<float> f16_probe_values() {
  std::vector<float> v;
  for (uint32_t h = 0; h < 0x7c00u; ++h) {
    float a = f16_to_f32(uint16_t(h));
    float b = f16_to_f32(uint16_t(h + 1));  // 0x7c00 is +inf: midpoint is the overflow threshold
    double mid = h + 1 == 0x7c00u ? 65520.0 : (double(a) + double(b)) / 2;
    float fm = float(mid);  // exact: midpoints of f16 neighbours are representable in f32
    for (float f : {a, fm, std::nextafter(fm, 0.0f), std::nextafter(fm, INFINITY)}) {
      v.push_back(f);
      v.push_back(-f);
    }
  }
  for (uint32_t b : {0x00000001u, 0x00400000u, 0x007fffffu, 0x00800000u, 0x33000000u, 0x33000001u, 0x32ffffffu,
                     0x387fe000u, 0x387ff000u, 0x38800000u, 0x477fefffu, 0x477ff000u, 0x7f7fffffu, 0x7f800000u,
                     0x7f800001u, 0x7fc00000u, 0x7fffffffu, 0x7fa00000u}) {
    v.push_back(from_bits(b));
    v.push_back(from_bits(b | 0x80000000u));
  }
  std::mt19937 rng(42);
  for (int i = 0; i < 1000000; ++i) v.push_back(from_bits(rng()));
  return v;
}

TEST(DTypeTest, F16ToF32MatchesF16cForEveryValue) {
  if (!has_f16c()) GTEST_SKIP() << "CPU lacks F16C";
  for (uint32_t h = 0; h <= 0xffffu; ++h) {
    float mine = f16_to_f32(uint16_t(h)), hw = hw_f16_to_f32(uint16_t(h));
    if (f16_is_nan(uint16_t(h))) {
      ASSERT_TRUE(std::isnan(mine)) << std::hex << h;
      // Same sign and payload (F16C also sets the quiet bit).
      ASSERT_EQ(bits_of(mine) | 0x00400000u, bits_of(hw)) << std::hex << h;
    } else {
      ASSERT_EQ(bits_of(mine), bits_of(hw)) << std::hex << h;
    }
  }
}

TEST(DTypeTest, F32ToF16MatchesF16cRoundToNearestEven) {
  if (!has_f16c()) GTEST_SKIP() << "CPU lacks F16C";
  for (float f : f16_probe_values()) {
    uint16_t mine = f32_to_f16(f), hw = hw_f32_to_f16(f);
    if (std::isnan(f)) {
      ASSERT_TRUE(f16_is_nan(mine)) << std::hex << bits_of(f);
      ASSERT_EQ(mine & 0x8000u, hw & 0x8000u) << std::hex << bits_of(f);
    } else {
      ASSERT_EQ(mine, hw) << std::hex << "f32 bits " << bits_of(f) << " value " << f;
    }
  }
}

TEST(DTypeTest, F16RoundTripsEveryNonNanValue) {
  for (uint32_t h = 0; h <= 0xffffu; ++h) {
    if (f16_is_nan(uint16_t(h))) {
      EXPECT_TRUE(f16_is_nan(f32_to_f16(f16_to_f32(uint16_t(h)))));
      continue;
    }
    ASSERT_EQ(f32_to_f16(f16_to_f32(uint16_t(h))), h) << std::hex << h;
  }
}

// Independent bf16 rounding: pick the nearer of the two bf16 neighbours in
// double precision, ties to the even one; beyond the largest finite bf16 the
// upper neighbour is 2^128 (rounds to inf), as in IEEE.
uint16_t bf16_reference(float f) {
  uint32_t b = bits_of(f);
  uint16_t lo = uint16_t(b >> 16), hi = uint16_t(lo + 1);
  if ((b & 0xffffu) == 0) return lo;
  double df = std::fabs(double(f));
  double dlo = std::fabs(double(bf16_to_f32(lo)));
  double dhi = (hi & 0x7fffu) == 0x7f80u ? std::ldexp(1.0, 128) : std::fabs(double(bf16_to_f32(hi)));
  double elo = df - dlo, ehi = dhi - df;
  if (elo < ehi) return lo;
  if (ehi < elo) return hi;
  return (lo & 1u) ? hi : lo;
}

TEST(DTypeTest, F32ToBf16RoundsToNearestEven) {
  std::vector<uint32_t> cases = {0x3f808000u, 0x3f818000u, 0x3f807fffu, 0x3f808001u, 0x00000001u, 0x00008000u,
                                 0x00018000u, 0x007fffffu, 0x7f7f7fffu, 0x7f7f8000u, 0x7f7fffffu, 0x7f800000u,
                                 0x00000000u, 0x3f800000u};
  std::mt19937 rng(7);
  for (int i = 0; i < 1000000; ++i) {
    uint32_t r = rng();
    cases.push_back(r);
    cases.push_back((r & 0xffff0000u) | 0x8000u);  // an exact tie
  }
  for (uint32_t c : cases) {
    for (uint32_t b : {c, c | 0x80000000u}) {
      float f = from_bits(b);
      if (std::isnan(f)) {
        EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(f)))) << std::hex << b;
        continue;
      }
      ASSERT_EQ(f32_to_bf16(f), bf16_reference(f)) << std::hex << b;
    }
  }
}

TEST(DTypeTest, Bf16SpecialValues) {
  EXPECT_EQ(f32_to_bf16(INFINITY), 0x7f80u);
  EXPECT_EQ(f32_to_bf16(-INFINITY), 0xff80u);
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7f80u);  // above the last midpoint
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(from_bits(0x7f800001u)))));  // NaN with low payload only
  EXPECT_EQ(bf16_to_f32(0x3f80u), 1.0f);
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80u);
}

// to_float for every instruction set is an exact conversion.
TEST(DTypeTest, ToFloatEveryIsaMatchesScalarConversion) {
  std::vector<uint16_t> h(65536 + 37);
  for (size_t i = 0; i < h.size(); ++i) h[i] = uint16_t(i * 40503u);
  for (const char* isa : available_kernel_isas()) {
    for (size_t count : {size_t(0), size_t(1), size_t(7), size_t(15), size_t(16), size_t(33), h.size()}) {
      std::vector<float> out(count + 1, 123.0f);
      to_float_isa(isa, h.data(), DType::BF16, count, out.data());
      for (size_t i = 0; i < count; ++i) ASSERT_EQ(bits_of(out[i]), bits_of(bf16_to_f32(h[i]))) << isa << " " << i;
      EXPECT_EQ(out[count], 123.0f) << isa << " wrote past the end";
      to_float_isa(isa, h.data(), DType::F16, count, out.data());
      for (size_t i = 0; i < count; ++i) {
        float ref = f16_to_f32(h[i]);
        if (std::isnan(ref)) ASSERT_TRUE(std::isnan(out[i])) << isa << " " << i;
        else ASSERT_EQ(bits_of(out[i]), bits_of(ref)) << isa << " " << i;
      }
      EXPECT_EQ(out[count], 123.0f) << isa << " wrote past the end";
      std::vector<float> f(count);
      for (size_t i = 0; i < count; ++i) f[i] = float(i) * 0.5f - 3.0f;
      to_float_isa(isa, f.data(), DType::F32, count, out.data());
      for (size_t i = 0; i < count; ++i) ASSERT_EQ(out[i], f[i]);
    }
  }
}

}  // namespace
}  // namespace strata
