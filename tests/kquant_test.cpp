// The weight-type table, ggml's block layouts for Q4_1 .. Q6_K checked
// against files llama.cpp wrote (dequantization close to the f32 source,
// our quantizers byte-identical to llama-quantize's), the reference dots
// against dequantized f32 math, and every SIMD gemm against the reference
// on awkward shapes with the determinism contract.
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/dtype.h"
#include "core/quant_blocks.h"
#include "core/quant_ref.h"
#include "core/thread_pool.h"
#include "core/error.h"
#include "formats/gguf.h"
#include "kernels/matmul.h"
#include "strata/strata.h"
#include "test_util.h"

namespace strata {
namespace {

const DType kNewTypes[] = {DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K,  DType::Q3_K,
                           DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS};
const DType kAllQuant[] = {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0,   DType::Q5_1,  DType::Q2_K,
                           DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS};
// The test data's llama-quantize files hold no IQ4 type.
bool in_test_files(DType t) { return t != DType::IQ4_NL && t != DType::IQ4_XS; }

std::vector<float> random_floats(size_t count, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(count);
  for (float& f : v) f = dist(rng);
  return v;
}

std::vector<uint8_t> quantize(DType t, const std::vector<float>& v) {
  std::vector<uint8_t> out(dtype_bytes(t, v.size()));
  dtype_traits(t).from_float(v.data(), out.data(), v.size());
  return out;
}

std::vector<float> dequantize(DType t, const uint8_t* b, size_t count) {
  std::vector<float> out(count);
  dtype_traits(t).to_float(b, out.data(), count);
  return out;
}

double rel_rms(const std::vector<float>& a, const std::vector<float>& ref) {
  double e = 0, r = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    e += (double(a[i]) - ref[i]) * (double(a[i]) - ref[i]);
    r += double(ref[i]) * ref[i];
  }
  return std::sqrt(e / r);
}

// Relative RMS error of a round trip through each type for Gaussian
// weights: a bound a little above what ggml's own quantizers reach (from
// bits per weight: Q8_0 ~0.4%, 6 bits ~2%, 5 bits ~4%, 4 bits ~8%, 3 bits
// ~17%, 2 bits ~35%), so a wrong layout or rounding (errors of ~100%) fails.
double round_trip_bound(DType t) {
  switch (t) {
    case DType::Q8_0: return 0.007;
    case DType::Q6_K: return 0.025;
    case DType::Q5_K: return 0.045;
    case DType::Q5_0: case DType::Q5_1: return 0.06;
    case DType::Q4_K: return 0.09;
    case DType::Q4_0: case DType::Q4_1: return 0.12;
    case DType::IQ4_NL: case DType::IQ4_XS: return 0.10;  // non-linear levels: below Q4_0's ~0.10
    case DType::Q3_K: return 0.20;
    case DType::Q2_K: return 0.40;
    default: return 0;
  }
}

TEST(DTypeTable, RowsDescribeGgmlTypes) {
  for (size_t i = 0; i < kDTypeCount; ++i) {
    const DTypeTraits& t = dtype_traits(DType(i));
    EXPECT_EQ(size_t(t.type), i);
    const DTypeTraits* back = dtype_of_ggml(t.ggml_type);
    ASSERT_NE(back, nullptr) << t.name;
    EXPECT_EQ(back->type, t.type);
    DType parsed;
    ASSERT_TRUE(try_parse_dtype(t.name, &parsed)) << t.name;
    EXPECT_EQ(parsed, t.type);
    EXPECT_TRUE(t.to_float && t.from_float) << t.name;
    if (t.block_elems > 1) {
      EXPECT_EQ(dtype_traits(t.act_type).block_elems, t.block_elems) << t.name;
      EXPECT_NE(dtype_traits(t.act_type).act_from_float, nullptr) << t.name;
    }
  }
  // ggml ids, elements and bytes per block (ggml.c's type_traits).
  struct Row { DType t; uint32_t id, elems, bytes; };
  for (Row r : {Row{DType::Q4_0, 2, 32, 18}, Row{DType::Q4_1, 3, 32, 20}, Row{DType::Q5_0, 6, 32, 22},
                Row{DType::Q5_1, 7, 32, 24}, Row{DType::Q8_0, 8, 32, 34}, Row{DType::Q8_1, 9, 32, 36},
                Row{DType::Q2_K, 10, 256, 84}, Row{DType::Q3_K, 11, 256, 110}, Row{DType::Q4_K, 12, 256, 144},
                Row{DType::Q5_K, 13, 256, 176}, Row{DType::Q6_K, 14, 256, 210}, Row{DType::Q8_K, 15, 256, 292},
                Row{DType::BF16, 30, 1, 2}, Row{DType::IQ4_NL, 20, 32, 18}, Row{DType::IQ4_XS, 23, 256, 136}}) {
    EXPECT_EQ(dtype_traits(r.t).ggml_type, r.id);
    EXPECT_EQ(dtype_block_elems(r.t), r.elems);
    EXPECT_EQ(dtype_block_bytes(r.t), r.bytes);
  }
  EXPECT_EQ(dtype_bytes(DType::Q4_K, 4096), 16u * 144);
  EXPECT_EQ(ggml_type_label(14), "Q6_K (type 14)");
  EXPECT_EQ(ggml_type_label(23), "IQ4_XS (type 23)");
  EXPECT_EQ(ggml_type_label(99), "type 99");
  EXPECT_EQ(dtype_of_ggml(16), nullptr);
  EXPECT_EQ(ggml_type_label(20), "IQ4_NL (type 20)");
  EXPECT_FALSE(dtype_traits(DType::Q8_K).weight);
}

TEST(KQuant, RoundTripErrorWithinBound) {
  std::mt19937 rng(3);
  const std::vector<float> v = random_floats(256 * 64, rng, 0.02f);
  for (DType t : kAllQuant) {
    const std::vector<uint8_t> q = quantize(t, v);
    const double e = rel_rms(dequantize(t, q.data(), v.size()), v);
    std::printf("[ %-4s ] round trip relative RMS error %.4f (bound %.3f)\n", std::string(dtype_name(t)).c_str(), e,
                round_trip_bound(t));
    EXPECT_LT(e, round_trip_bound(t)) << dtype_name(t);
    EXPECT_GT(e, round_trip_bound(t) / 20) << dtype_name(t) << ": suspiciously exact";
  }
  // All-zero blocks and a constant block stay exact, with no NaN.
  for (DType t : kAllQuant) {
    std::vector<float> z(256, 0.0f);
    for (float f : dequantize(t, quantize(t, z).data(), z.size())) ASSERT_EQ(f, 0.0f) << dtype_name(t);
  }
}

// The reference dot of a weight row with quantized activations equals the
// f32 dot of the two dequantized rows (up to f32 rounding): it checks that
// the integer decomposition (groups, mins, offsets) means what the
// dequantization means.
TEST(KQuant, ReferenceDotIsDequantizedDot) {
  std::mt19937 rng(4);
  for (DType t : kAllQuant) {
    const DTypeTraits& tr = dtype_traits(t);
    for (size_t k : {256, 768, 2560}) {
      const std::vector<float> w = random_floats(k, rng), x = random_floats(k, rng, 2.0f);
      const std::vector<uint8_t> wq = quantize(t, w);
      std::vector<uint8_t> xq(dtype_bytes(tr.act_type, k));
      dtype_traits(tr.act_type).act_from_float(x.data(), xq.data(), k);
      const std::vector<float> wd = dequantize(t, wq.data(), k), xd = dequantize(tr.act_type, xq.data(), k);
      double ref = 0, mag = 0;
      for (size_t i = 0; i < k; ++i) {
        ref += double(wd[i]) * xd[i];
        mag += std::fabs(double(wd[i]) * xd[i]);
      }
      // Q4_1 / Q5_1 use the activations' f16 sum s = d * sum(q), as ggml does.
      const double tol = (t == DType::Q4_1 || t == DType::Q5_1 ? 2e-3 : 1e-5) * mag;
      EXPECT_NEAR(tr.vec_dot(k, wq.data(), xq.data()), ref, tol) << dtype_name(t) << " k=" << k;
    }
  }
}

// --- llama.cpp's files: synthetic-d256-<TYPE>.gguf quantized by llama-quantize
// from synthetic-d256-f32.gguf.

struct GgufBlob {
  std::vector<uint8_t> bytes;
  GgufHeader h;
  const uint8_t* data(const GgufTensor& t) const { return bytes.data() + h.data_start + t.offset; }
  const GgufTensor* find(const std::string& name) const {
    for (const GgufTensor& t : h.tensors)
      if (t.name == name) return &t;
    return nullptr;
  }
};

GgufBlob load_blob(const std::filesystem::path& p) {
  GgufBlob b;
  std::ifstream f(p, std::ios::binary);
  b.bytes.assign(std::istreambuf_iterator<char>(f), {});
  b.h = parse_gguf_header(b.bytes.data(), b.bytes.size(), b.bytes.size(), p.filename().string());
  return b;
}

std::filesystem::path gguf_dir() { return test::testdata() / "gguf"; }

const char* kFiles[] = {"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K"};

TEST(KQuantLlamaCpp, FilesDequantizeToTheirF32SourceAndOurQuantizersMatchByteForByte) {
  if (!std::filesystem::exists(gguf_dir() / "synthetic-d256-f32.gguf")) GTEST_SKIP() << "no test data";
  const GgufBlob f32 = load_blob(gguf_dir() / "synthetic-d256-f32.gguf");
  std::map<std::string, int> seen;
  for (const char* file : kFiles) {
    const GgufBlob q = load_blob(gguf_dir() / ("synthetic-d256-" + std::string(file) + ".gguf"));
    size_t identical = 0, quantized = 0;
    for (const GgufTensor& t : q.h.tensors) {
      const DTypeTraits* tr = dtype_of_ggml(t.ggml_type);
      ASSERT_NE(tr, nullptr) << file << " " << t.name << " " << ggml_type_label(t.ggml_type);
      if (tr->block_elems == 1) continue;
      const GgufTensor* src = f32.find(t.name);
      ASSERT_NE(src, nullptr) << t.name;
      // Blocks never cross rows: the first 16 rows are enough to compare.
      const size_t count = size_t(t.ne[0]) * std::min<size_t>(t.ne.size() > 1 ? size_t(t.ne[1]) : 1, 16);
      std::vector<float> ref(count);
      std::memcpy(ref.data(), f32.data(*src), count * 4);
      const double e = rel_rms(dequantize(tr->type, q.data(t), count), ref);
      EXPECT_LT(e, round_trip_bound(tr->type)) << file << " " << t.name << " " << tr->name;
      const std::vector<uint8_t> ours = quantize(tr->type, ref);
      ++quantized;
      if (std::memcmp(ours.data(), q.data(t), ours.size()) == 0) ++identical;
      else ADD_FAILURE() << file << " " << t.name << " " << tr->name << ": our quantization differs from llama-quantize's";
      ++seen[std::string(tr->name)];
    }
    EXPECT_GT(quantized, 0u) << file;
    std::printf("[ %-6s ] %zu/%zu quantized tensors byte-identical to llama-quantize's\n", file, identical, quantized);
  }
  for (DType t : kAllQuant) {
    if (!in_test_files(t)) continue;
    EXPECT_GT(seen[std::string(dtype_name(t))], 0) << dtype_name(t) << " not in the files";
  }
}

// Matvec of each quantized tensor of the files (every type, through the
// selected ISA) against f32 math on the dequantized weights with the same
// x: the difference is the activations' 8-bit quantization only.
TEST(KQuantLlamaCpp, MatvecMatchesDequantizedF32) {
  if (!std::filesystem::exists(gguf_dir() / "synthetic-d256-f32.gguf")) GTEST_SKIP() << "no test data";
  std::mt19937 rng(5);
  for (const char* file : kFiles) {
    const GgufBlob q = load_blob(gguf_dir() / ("synthetic-d256-" + std::string(file) + ".gguf"));
    for (const GgufTensor& t : q.h.tensors) {
      const DTypeTraits* tr = dtype_of_ggml(t.ggml_type);
      if (!tr || tr->block_elems == 1 || t.ne.size() != 2) continue;
      const size_t k = size_t(t.ne[0]), m = std::min<size_t>(size_t(t.ne[1]), 64);
      const std::vector<float> x = random_floats(3 * k, rng);
      const std::vector<float> wd = dequantize(tr->type, q.data(t), m * k);
      std::vector<float> y(3 * m), ref(3 * m);
      matmul(x.data(), 3, k, q.data(t), tr->type, m, y.data(), m, nullptr);
      matmul(x.data(), 3, k, wd.data(), DType::F32, m, ref.data(), m, nullptr);
      EXPECT_LT(rel_rms(y, ref), 0.02) << file << " " << t.name << " " << tr->name;
    }
  }
}

// The whole model on each of llama.cpp's files against llama.cpp's logits
// for the same ids. Both engines quantize activations to 8 bits per block
// the same way and llama.cpp keeps its KV cache in f16, so the logits are
// close, not bitwise: the bound is 0.1 absolute on logits of magnitude ~5
// (the f32 file, with no activation quantization, is at ~1e-3: the f16 KV
// cache). The arg max must agree wherever llama.cpp's top two logits are
// further apart than twice that bound (random weights leave several
// positions with near ties, which either engine may break either way).
TEST(KQuantLlamaCpp, LogitsAgreeWithLlamaCpp) {
  if (!std::filesystem::exists(gguf_dir() / "synthetic-d256-f32.gguf")) GTEST_SKIP() << "no test data";
  std::vector<int32_t> ids;
  {
    std::ifstream f(gguf_dir() / "logits_ids.txt");
    std::string tok;
    while (std::getline(f, tok, ',')) ids.push_back(std::stoi(tok));
  }
  ASSERT_EQ(ids.size(), 40u);
  std::vector<std::string> files = {"f32"};
  for (const char* f : kFiles) files.push_back(f);
  for (const std::string& file : files) {
    const std::filesystem::path p = gguf_dir() / ("synthetic-d256-" + file + ".gguf");
    const std::vector<float> ref = test::read_f32_file(gguf_dir() / ("synthetic-d256-" + file + ".llamacpp-logits.f32"));
    EngineOptions o;
    const std::vector<float> got = Engine::open(p, o)->score(ids, true).logits;
    ASSERT_EQ(got.size(), ref.size()) << file;
    const size_t vocab = 512;
    double max_diff = 0;
    size_t top1 = 0, clear = 0, clear_agree = 0;
    for (size_t t = 0; t < ids.size(); ++t) {
      const float* r = &ref[t * vocab];
      const float* g = &got[t * vocab];
      size_t ar = 0, ag = 0;
      for (size_t i = 0; i < vocab; ++i) {
        max_diff = std::max(max_diff, std::fabs(double(g[i]) - r[i]));
        if (r[i] > r[ar]) ar = i;
        if (g[i] > g[ag]) ag = i;
      }
      float second = -INFINITY;
      for (size_t i = 0; i < vocab; ++i)
        if (i != ar) second = std::max(second, r[i]);
      top1 += ar == ag;
      if (r[ar] - second > 0.2f) {
        ++clear;
        clear_agree += ar == ag;
      }
    }
    std::printf("[ %-6s ] max |logit - llama.cpp| %.4f, top-1 agreement %zu/40 (%zu/%zu with margin > 0.2)\n",
                file.c_str(), max_diff, top1, clear_agree, clear);
    EXPECT_LT(max_diff, 0.1) << file;
    EXPECT_EQ(clear_agree, clear) << file;
    EXPECT_GE(clear, 15u) << file;
  }
}

// The IQ4 quantizers against llama.cpp's (the test data has no IQ4 file):
// ggml_quantize_chunk (what llama-quantize calls, no importance matrix) of
// llama.cpp's February 2025 build on this input gave these FNV-1a hashes of
// the output bytes (scripts/llamacpp's programs link the same library).
TEST(KQuantLlamaCpp, IQ4QuantizersMatchGgmlBytes) {
  const size_t rows = 8, k = 512;
  std::vector<float> x(rows * k);
  uint64_t s = 12345;
  for (float& v : x) {  // an LCG cubed: heavier tails than uniform
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    const float u = float(int32_t(s >> 32)) * (1.0f / 2147483648.0f);
    v = u * u * u * 0.1f;
  }
  for (size_t i = 0; i < 32; ++i) x[64 + i] = 0.0f;      // an all-zero group of 32
  for (size_t i = 0; i < 256; ++i) x[3 * k + i] = 0.0f;  // an all-zero super-block
  auto fnv = [](const std::vector<uint8_t>& b) {
    uint64_t h = 1469598103934665603ull;
    for (uint8_t c : b) h = (h ^ c) * 1099511628211ull;
    return h;
  };
  const std::vector<uint8_t> nl = quantize(DType::IQ4_NL, x), xs = quantize(DType::IQ4_XS, x);
  EXPECT_EQ(nl.size(), 2304u);
  EXPECT_EQ(xs.size(), 2176u);
  EXPECT_EQ(fnv(nl), 0xcdce559fb069562eull);
  EXPECT_EQ(fnv(xs), 0x30ecb726689f565full);
}

// --- SIMD against the reference

// Odd block counts, one block, and a long row (17 / 129 blocks).
std::vector<size_t> ks_for(DType t) {
  if (dtype_block_elems(t) == 256) return {256, 768, 4352};
  return {32, 96, 4128};
}

TEST(KQuantIsas, EverySimdPathMatchesReferenceOnAwkwardShapes) {
  const std::vector<const char*> isas = available_kernel_isas();
  std::mt19937 rng(6);
  for (DType t : kNewTypes)
    for (size_t k : ks_for(t))
      for (size_t m : {1, 2, 3, 5, 7, 18})
        for (size_t n : {1, 2, 3, 4, 5, 9, 67}) {
          if ((k > 2000 && (n > 5 || m > 5)) || (n == 67 && m > 3)) continue;
          const std::string label =
              std::string(dtype_name(t)) + " k=" + std::to_string(k) + " m=" + std::to_string(m) + " n=" + std::to_string(n);
          const std::vector<float> wf = random_floats(m * k, rng), x = random_floats(n * k, rng, 3.0f);
          const std::vector<uint8_t> w = quantize(t, wf);
          std::vector<float> ref(n * m, NAN);
          matmul_reference(x.data(), n, k, w.data(), t, m, ref.data(), m);
          double mag = 0;  // scale of the terms, for the tolerance
          for (float v : ref) mag = std::max(mag, double(std::fabs(v)));
          std::vector<float> prev;
          for (const char* isa : isas) {
            std::vector<float> y(n * m, NAN);
            matmul_isa(isa, x.data(), n, k, w.data(), t, m, y.data(), m, nullptr);
            for (size_t p = 0; p < y.size(); ++p)
              ASSERT_NEAR(y[p], ref[p], 2e-5 * (mag + std::sqrt(double(k)))) << label << " " << isa << " at " << p;
            // AVX2 and AVX-512 compute the same integer lanes and FMAs.
            if (std::string(isa) == "avx512") {
              ASSERT_EQ(0, std::memcmp(prev.data(), y.data(), y.size() * sizeof(float))) << label;
            }
            prev = y;
            // Determinism: each x row alone gives the same bits as in the batch.
            if (n > 1 && m > 1)
              for (size_t i : {size_t(0), n - 1}) {
                std::vector<float> one(m, NAN);
                matmul_isa(isa, x.data() + i * k, 1, k, w.data(), t, m, one.data(), m, nullptr);
                ASSERT_EQ(0, std::memcmp(y.data() + i * m, one.data(), m * sizeof(float))) << label << " " << isa;
              }
          }
        }
}

TEST(KQuantIsas, ThreadsAndRowRangesGiveTheSameBits) {
  std::mt19937 rng(7);
  ThreadPool pool(3);
  for (DType t : kNewTypes) {
    const size_t k = dtype_block_elems(t) == 256 ? 512 : 320, m = 75, n = 6;
    const std::vector<float> wf = random_floats(m * k, rng), x = random_floats(n * k, rng);
    const std::vector<uint8_t> w = quantize(t, wf);
    std::vector<float> a(n * m), b(n * m);
    matmul(x.data(), n, k, w.data(), t, m, a.data(), m, nullptr);
    matmul(x.data(), n, k, w.data(), t, m, b.data(), m, &pool);
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float))) << dtype_name(t);
    // A block of output columns written into a wider matrix (ldy > m).
    const size_t rows = 37, ldy = m + 3;
    std::vector<float> c(n * ldy, NAN);
    matmul(x.data(), n, k, w.data() + dtype_bytes(t, 20 * k), t, rows, c.data(), ldy, &pool);
    for (size_t i = 0; i < n; ++i)
      EXPECT_EQ(0, std::memcmp(c.data() + i * ldy, a.data() + i * m + 20, rows * sizeof(float))) << dtype_name(t);
  }
}

TEST(KQuantIsas, RowLengthMustBeWholeBlocks) {
  std::vector<uint8_t> w(dtype_bytes(DType::Q4_K, 512));
  std::vector<float> x(300), y(1);
  EXPECT_THROW(matmul(x.data(), 1, 300, w.data(), DType::Q4_K, 1, y.data(), 1, nullptr), Error);
  EXPECT_THROW(to_float(w.data(), DType::Q6_K, 300, x.data()), Error);
}

}  // namespace
}  // namespace strata
