// The GGUF reader against a corpus of corrupted files generated here:
// truncations, byte flips over the whole header, and targeted bad counts,
// lengths, types, shapes and offsets. Each variant either loads (with every
// tensor inside the file) or throws strata::Error naming the file; it never
// crashes (this suite also runs under ASan/UBSan).
#include "arch/gguf_model.h"
#include "formats/gguf.h"

#include <cmath>
#include <cstring>
#include <functional>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "arch/model_layout.h"
#include "convert/gguf_convert.h"
#include "formats/gguf_writer.h"
#include "core/error.h"
#include "kernels/ops.h"
#include "test_util.h"

namespace strata {
namespace {

using test::stories_dir;
using test::TempDir;

// A little-endian GGUF assembler for hand-made files.
struct Bytes {
  std::string b;
  template <class T>
  Bytes& put(T v) {
    b.append(reinterpret_cast<const char*>(&v), sizeof(T));
    return *this;
  }
  Bytes& str(const std::string& s) {
    put<uint64_t>(s.size());
    b += s;
    return *this;
  }
};

struct TensorSpec {
  std::string name;
  std::vector<uint64_t> ne;
  uint32_t type = 0;
  uint64_t offset = 0;
  uint32_t n_dims_override = 0;
};

struct FileSpec {
  uint32_t version = 3;
  uint64_t n_tensors_extra = 0, n_kv_extra = 0;
  std::vector<std::string> kv;  // encoded key/values
  std::vector<TensorSpec> tensors;
  uint64_t alignment = 32;
  uint64_t data_bytes = 0;
};

std::string kv_u32(const std::string& k, uint32_t v) { return Bytes().str(k).put<uint32_t>(4).put(v).b; }
std::string kv_f32(const std::string& k, float v) { return Bytes().str(k).put<uint32_t>(6).put(v).b; }
std::string kv_str(const std::string& k, const std::string& v) { return Bytes().str(k).put<uint32_t>(8).str(v).b; }

std::string build(const FileSpec& f) {
  Bytes out;
  out.b = "GGUF";
  out.put(f.version).put<uint64_t>(f.tensors.size() + f.n_tensors_extra).put<uint64_t>(f.kv.size() + f.n_kv_extra);
  for (const auto& kv : f.kv) out.b += kv;
  for (const auto& t : f.tensors) {
    out.str(t.name).put<uint32_t>(t.n_dims_override ? t.n_dims_override : uint32_t(t.ne.size()));
    for (uint64_t d : t.ne) out.put(d);
    out.put(t.type).put(t.offset);
  }
  out.b.resize((out.b.size() + f.alignment - 1) / f.alignment * f.alignment, '\0');
  out.b.resize(out.b.size() + f.data_bytes, '\0');
  return out.b;
}

// A valid tiny llama: hidden 32, 1 layer, vocab 8, every tensor type.
FileSpec tiny() {
  FileSpec f;
  f.kv = {kv_str("general.architecture", "llama"), kv_u32("general.alignment", 32),
          kv_u32("llama.block_count", 1),          kv_u32("llama.embedding_length", 32),
          kv_u32("llama.feed_forward_length", 64), kv_u32("llama.attention.head_count", 2),
          kv_u32("llama.attention.head_count_kv", 1), kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f),
          kv_f32("llama.rope.freq_base", 10000.0f)};
  struct T {
    const char* name;
    std::vector<uint64_t> ne;
    uint32_t type;
  };
  const T ts[] = {{"token_embd.weight", {32, 8}, 8},        {"blk.0.attn_norm.weight", {32}, 0},
                  {"blk.0.attn_q.weight", {32, 32}, 2},     {"blk.0.attn_k.weight", {32, 16}, 1},
                  {"blk.0.attn_v.weight", {32, 16}, 30},    {"blk.0.attn_output.weight", {32, 32}, 8},
                  {"blk.0.ffn_norm.weight", {32}, 0},       {"blk.0.ffn_gate.weight", {32, 64}, 2},
                  {"blk.0.ffn_up.weight", {32, 64}, 2},     {"blk.0.ffn_down.weight", {64, 32}, 8},
                  {"output_norm.weight", {32}, 0}};
  uint64_t off = 0;
  for (const T& t : ts) {
    uint64_t count = 1;
    for (uint64_t d : t.ne) count *= d;
    const DType dt = dtype_of_ggml_type(t.type, "");
    f.tensors.push_back({t.name, t.ne, t.type, off});
    off = (off + dtype_bytes(dt, count) + 31) / 32 * 32;
  }
  f.data_bytes = off;
  return f;
}

// Parses `bytes` as a whole file: either an Error naming the file, or a
// header whose tensors are inside the file and a config or an Error.
// Returns true when it parsed.
bool parses(const std::string& bytes, std::string* error = nullptr) {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  try {
    GgufHeader h = parse_gguf_header(p, bytes.size(), bytes.size(), "t.gguf");
    uint64_t prev_end = h.data_start;
    for (const TensorInfo& t : h.infos) {
      EXPECT_GE(t.offset, prev_end) << t.name;
      EXPECT_LE(t.offset + t.nbytes, bytes.size()) << t.name;
      EXPECT_EQ(t.nbytes, dtype_bytes(t.dtype, t.numel())) << t.name;
      prev_end = t.offset + t.nbytes;
    }
    try {
      gguf_model_config(h, "t.gguf");
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).rfind("t.gguf: ", 0), 0u) << e.what();
    }
    return true;
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("t.gguf: ", 0), 0u) << e.what();
    if (error) *error = e.what();
    return false;
  }
}

void expect_error(const FileSpec& f, const std::string& needle) {
  std::string err;
  EXPECT_FALSE(parses(build(f), &err)) << "expected an error containing '" << needle << "'";
  EXPECT_NE(err.find(needle), std::string::npos) << err;
}

TEST(Gguf, TinyFileParsesWithHfNamesAndShapes) {
  std::string bytes = build(tiny());
  GgufHeader h = parse_gguf_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), bytes.size(), "t");
  ModelConfig c = gguf_model_config(h, "t");
  EXPECT_EQ(c.architecture, "LlamaForCausalLM");
  EXPECT_EQ(c.hidden_size, 32);
  EXPECT_EQ(c.vocab_size, 8);
  EXPECT_EQ(c.num_kv_heads, 1);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_TRUE(c.rope_interleaved);
  bool found = false;
  for (const auto& t : gguf_hf_index(h, *find_arch_by_gguf("llama"), "t").tensors)
    if (t.name == "model.layers.0.self_attn.k_proj.weight") {
      found = true;
      EXPECT_EQ(t.shape, (std::vector<int64_t>{16, 32}));
      EXPECT_EQ(t.dtype, DType::F16);
    }
  EXPECT_TRUE(found);
}

TEST(Gguf, InterleavedRopeOnPermutedRowsEqualsRotateHalf) {
  // q rows permuted as the converter does, roped interleaved, equal the
  // rotate-half rope of the original bitwise (same layout out).
  const int64_t heads = 3, hd = 8;
  std::vector<float> w(size_t(heads * hd)), perm(w.size());
  for (size_t i = 0; i < w.size(); ++i) w[i] = float(i) * 0.37f - 2.0f;
  permute_rows_to_interleaved(w.data(), perm.data(), heads, hd, 1);
  ModelConfig c;
  c.head_dim = hd;
  c.rope_theta = 10000.0;
  const std::vector<float> inv = rope_inv_freq(c);
  rope(w.data(), size_t(heads), size_t(hd), 5, inv.data(), false);
  rope(perm.data(), size_t(heads), size_t(hd), 5, inv.data(), true);
  EXPECT_EQ(0, std::memcmp(w.data(), perm.data(), w.size() * sizeof(float)));
}

const ArchFamily& qwen3() { return *find_arch_by_gguf("qwen3"); }

TEST(Gguf, NameMappingRoundTrips) {
  for (const char* n : {"token_embd.weight", "output.weight", "output_norm.weight", "blk.12.attn_q.weight",
                        "blk.3.attn_k.bias", "blk.0.attn_k_norm.weight", "blk.7.ffn_down.weight"}) {
    auto hf = gguf_to_hf_name(qwen3(), n);
    ASSERT_TRUE(hf) << n;
    EXPECT_EQ(hf_to_gguf_name(qwen3(), *hf).value_or(""), n);
  }
  EXPECT_EQ(gguf_to_hf_name(qwen3(), "blk.12.attn_q.weight").value_or(""), "model.layers.12.self_attn.q_proj.weight");
  EXPECT_FALSE(gguf_to_hf_name(qwen3(), "blk.x.attn_q.weight"));
  EXPECT_FALSE(gguf_to_hf_name(qwen3(), "blk..attn_q.weight"));
  EXPECT_FALSE(gguf_to_hf_name(qwen3(), "blk.01.attn_q.weight"));
  EXPECT_FALSE(gguf_to_hf_name(qwen3(), "blk.1"));
  EXPECT_FALSE(gguf_to_hf_name(qwen3(), "rope_freqs.weight"));
}

// The data section ends padded to the alignment after the last tensor, as
// llama.cpp's gguf reader expects (it reads whole aligned blocks).
TEST(Gguf, WriterPadsTheDataSectionAfterTheLastTensor) {
  TempDir tmp;
  for (uint64_t align : {32u, 4096u}) {
    const auto p = tmp / ("a" + std::to_string(align) + ".gguf");
    GgufWriter w(p, align);
    w.add_string("general.architecture", "llama");
    std::vector<float> a(40, 1.0f), b(3, 2.0f);  // 160 and 12 bytes, neither aligned
    w.add_tensor("a", DType::F32, {40});
    w.add_tensor("b", DType::F32, {3});
    w.begin_data();
    w.write(a.data(), a.size() * 4);
    w.end_tensor();
    w.write(b.data(), b.size() * 4);
    w.end_tensor();
    w.finish();
    const GgufFile g = read_gguf(p);
    const uint64_t size = std::filesystem::file_size(p);
    EXPECT_EQ(size % align, 0u) << align;
    EXPECT_EQ(size, g.header.data_start + (160 + align - 1) / align * align + align) << align;
  }
  // llama.cpp's own files have the same structure.
  const auto ref = test::testdata() / "gguf" / "stories260K-llamacpp-f32.gguf";
  EXPECT_EQ(std::filesystem::file_size(ref) % read_gguf(ref).header.alignment, 0u);
}

// llama.cpp writes Llama 3 RoPE scaling only as rope_freqs.weight (one
// divisor per frequency): the parameters are recovered from it and must
// reproduce it; other factors are refused.
TEST(Gguf, RopeFreqsTensorGivesLlama3Scaling) {
  FileSpec f = tiny();  // head_dim 16: 8 frequencies
  f.kv.push_back(kv_u32("llama.rope.scaling.original_context_length", 32));
  f.tensors.push_back({"rope_freqs.weight", {8}, 0, f.data_bytes});
  f.data_bytes += 32;
  const std::string bytes = build(f);
  GgufHeader h = parse_gguf_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), bytes.size(), "t");
  EXPECT_THROW(gguf_model_config(h, "t"), Error);  // the data is needed
  // The factors as llama.cpp's converter computes them: factor 8, low 1, high 4, context 32.
  std::vector<float> freqs;
  const double pi = 3.14159265358979323846;
  for (int i = 0; i < 8; ++i) {
    const double wavelen = 2 * pi * std::pow(10000.0, 2.0 * i / 16);
    if (wavelen < 32.0 / 4) freqs.push_back(1.0f);
    else if (wavelen > 32.0 / 1) freqs.push_back(8.0f);
    else {
      const double smooth = (32 / wavelen - 1) / (4 - 1);
      freqs.push_back(float(1 / ((1 - smooth) / 8 + smooth)));
    }
  }
  ASSERT_EQ(freqs.front(), 1.0f);
  ASSERT_EQ(freqs.back(), 8.0f);
  const ModelConfig c = gguf_model_config(h, "t", &freqs);
  EXPECT_EQ(c.rope_scaling.type, RopeScaling::Type::Llama3);
  EXPECT_EQ(c.rope_scaling.factor, 8.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 32);
  // strata's RoPE then divides each base frequency by the file's factor.
  ModelConfig plain = c;
  plain.rope_scaling = RopeScaling{};
  const std::vector<float> base = rope_inv_freq(plain), scaled = rope_inv_freq(c);
  for (size_t i = 0; i < 8; ++i) EXPECT_NEAR(scaled[i], base[i] / freqs[i], 1e-6 * base[i]) << i;
  std::vector<float> other = freqs;
  other[4] *= 1.1f;
  EXPECT_THROW(gguf_model_config(h, "t", &other), Error);
  std::vector<float> short_freqs(3, 1.0f);
  EXPECT_THROW(gguf_model_config(h, "t", &short_freqs), Error);
}

TEST(Gguf, EveryTruncationLoadsOrFails) {
  const std::string full = build(tiny());
  for (size_t len = 0; len < full.size(); ++len) {
    parses(full.substr(0, len));
    if (HasFailure()) return;
  }
}

TEST(Gguf, EveryHeaderByteFlipLoadsOrFails) {
  FileSpec f = tiny();
  const std::string full = build(f);
  const size_t header = full.size() - f.data_bytes;
  for (size_t i = 0; i < header; ++i)
    for (uint8_t x : {0x01, 0x10, 0x80, 0xff}) {
      std::string v = full;
      v[i] = char(uint8_t(v[i]) ^ x);
      parses(v);
      if (HasFailure()) return;
    }
}

TEST(Gguf, ConvertedModelCorruptionsLoadOrFail) {
  TempDir tmp;
  GgufConvertOptions o;
  o.type = DType::Q4_0;
  convert_to_gguf(stories_dir(), tmp / "m.gguf", o);
  std::ifstream in(tmp / "m.gguf", std::ios::binary);
  const std::string full((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_TRUE(parses(full));
  GgufModel g = read_gguf_model(tmp / "m.gguf");
  const size_t header = size_t(g.header.data_start);
  for (size_t i = 0; i < header; i += 3) {
    std::string v = full;
    v[i] = char(uint8_t(v[i]) ^ 0xa5);
    parses(v);
    if (HasFailure()) return;
  }
  // Truncated files on disk, through open_model_layout (the path the engine uses).
  // The last tensor's end: only the final padding follows it, and a file
  // without that padding (as strata wrote before) still loads.
  uint64_t data_end = 0;
  for (const auto& t : g.header.infos) data_end = std::max(data_end, t.offset + t.nbytes);
  ASSERT_GT(full.size(), data_end);
  std::ofstream(tmp / "unpadded.gguf", std::ios::binary).write(full.data(), std::streamsize(data_end));
  EXPECT_NO_THROW(open_model_layout(tmp / "unpadded.gguf"));
  for (size_t len : {size_t(0), size_t(3), size_t(24), header / 2, header, header + 4096, size_t(data_end - 1)}) {
    std::ofstream(tmp / "t.gguf", std::ios::binary).write(full.data(), std::streamsize(len));
    try {
      open_model_layout(tmp / "t.gguf");
      ADD_FAILURE() << "truncated to " << len << " loaded";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("t.gguf"), std::string::npos) << e.what();
    }
  }
}

TEST(Gguf, BadHeaderFieldsGiveClearErrors) {
  {
    FileSpec f = tiny();
    f.version = 1;
    expect_error(f, "version 1");
  }
  {
    FileSpec f = tiny();
    f.n_tensors_extra = uint64_t(1) << 40;
    expect_error(f, "tensor count");
  }
  {
    FileSpec f = tiny();
    f.n_kv_extra = 5;
    expect_error(f, "t.gguf");
  }
  {
    FileSpec f = tiny();
    f.kv.push_back(Bytes().put<uint64_t>(uint64_t(1) << 62).b);  // key length past the file
    expect_error(f, "truncated");
  }
  {
    FileSpec f = tiny();
    f.kv.push_back(Bytes().str("bad.type").put<uint32_t>(13).put<uint32_t>(0).b);
    expect_error(f, "unknown value type 13");
  }
  {
    FileSpec f = tiny();
    f.kv.push_back(Bytes().str("arr").put<uint32_t>(9).put<uint32_t>(4).put<uint64_t>(uint64_t(1) << 60).b);
    expect_error(f, "array length");
  }
  {
    FileSpec f = tiny();
    f.kv.push_back(Bytes().str("nested").put<uint32_t>(9).put<uint32_t>(9).put<uint64_t>(1).b);
    expect_error(f, "array of arrays");
  }
  {
    FileSpec f = tiny();
    f.kv.push_back(kv_u32("llama.block_count", 2));
    expect_error(f, "duplicate metadata key");
  }
  {
    FileSpec f = tiny();
    f.kv[1] = kv_u32("general.alignment", 48);
    expect_error(f, "power of two");
  }
  {
    FileSpec f = tiny();
    f.tensors[3].type = 16;  // IQ2_XXS: a ggml type strata does not read
    expect_error(f, "IQ2_XXS (type 16) is not supported");
  }
  {
    FileSpec f = tiny();
    f.tensors[1].ne = {32, 1, 1, 1, 1};
    expect_error(f, "5 dimensions");
  }
  {
    FileSpec f = tiny();
    f.tensors[1].ne = {0};
    expect_error(f, "dimension 0");
  }
  {
    FileSpec f = tiny();
    f.tensors[2].ne = {uint64_t(1) << 32, uint64_t(1) << 32};
    expect_error(f, "t.gguf");
  }
  {
    FileSpec f = tiny();
    f.tensors[2].ne = {40, 32};  // Q4_0 rows of 40
    expect_error(f, "not a multiple of the Q4_0 block size");
  }
  {
    FileSpec f = tiny();
    f.tensors[4].offset += 4;
    expect_error(f, "not a multiple of general.alignment");
  }
  {
    FileSpec f = tiny();
    f.tensors[4].offset = f.tensors[3].offset;
    expect_error(f, "overlap");
  }
  {
    FileSpec f = tiny();
    f.tensors.back().offset = f.data_bytes + 4096;
    expect_error(f, "past the end");
  }
  {
    FileSpec f = tiny();
    f.tensors[2].name = f.tensors[1].name;
    expect_error(f, "duplicate tensor");
  }
  {
    FileSpec f = tiny();
    f.kv[0] = kv_str("general.architecture", "gpt2");
    std::string bytes = build(f);
    GgufHeader h = parse_gguf_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), bytes.size(), "t");
    EXPECT_THROW(gguf_model_config(h, "t"), Error);
  }
}

}  // namespace
}  // namespace strata

namespace strata {
namespace {

// One generated file per published class of GGUF parser vulnerability
// (integer overflows in counts and sizes, out-of-range types, type
// confusion, bad shapes, offsets and alignment, duplicates, overlaps; see
// docs/FUZZING.md). Each must be refused with an error naming the file and
// the problem, never crash or allocate what the file cannot hold.
TEST(GgufCorpus, OneFilePerVulnerabilityClass) {
  struct Case {
    const char* cls;
    std::function<void(FileSpec&)> mutate;
    const char* needle;
  };
  const uint64_t kMax = ~uint64_t(0);
  auto tok_array = [](uint32_t elem, uint64_t n) {
    return Bytes().str("tokenizer.ggml.tokens").put<uint32_t>(9).put<uint32_t>(elem).put<uint64_t>(n).b;
  };
  const std::vector<Case> cases = {
      {"tensor count near 2^64", [&](FileSpec& f) { f.n_tensors_extra = kMax - f.tensors.size(); }, "tensor count"},
      {"metadata count near 2^64", [&](FileSpec& f) { f.n_kv_extra = kMax - f.kv.size(); }, "metadata count"},
      {"array count x element size overflows",
       [&](FileSpec& f) { f.kv.push_back(Bytes().str("a").put<uint32_t>(9).put<uint32_t>(10).put<uint64_t>((uint64_t(1) << 61) + 1).b); },
       "array length"},
      {"string array count near 2^64", [&](FileSpec& f) { f.kv.push_back(tok_array(8, kMax)); }, "array length"},
      {"string length beyond the file",
       [&](FileSpec& f) { f.kv.push_back(Bytes().put<uint64_t>(uint64_t(1) << 62).b); }, "truncated"},
      {"string length near 2^64 (offset wraps)",
       [&](FileSpec& f) { f.kv.push_back(Bytes().str("k").put<uint32_t>(8).put<uint64_t>(kMax - 2).b); }, "truncated"},
      {"tensor name length beyond the file",
       [&](FileSpec& f) { f.tensors[0].name = std::string(3, 'x'); f.kv.push_back(Bytes().str("pad").put<uint32_t>(8).put<uint64_t>(kMax / 2).b); },
       "truncated"},
      {"value type out of range",
       [&](FileSpec& f) { f.kv.push_back(Bytes().str("v").put<uint32_t>(0xFFFFFFFFu).put<uint32_t>(0).b); },
       "unknown value type 4294967295"},
      {"array element type out of range",
       [&](FileSpec& f) { f.kv.push_back(Bytes().str("v").put<uint32_t>(9).put<uint32_t>(13).put<uint64_t>(1).b); },
       "unknown value type 13"},
      {"array of arrays",
       [&](FileSpec& f) { f.kv.push_back(Bytes().str("v").put<uint32_t>(9).put<uint32_t>(9).put<uint64_t>(1).b); },
       "array of arrays"},
      {"bool out of range", [&](FileSpec& f) { f.kv.push_back(Bytes().str("b").put<uint32_t>(7).put<uint8_t>(2).b); },
       "bool is 2"},
      {"type confusion: string where an integer is expected",
       [&](FileSpec& f) { f.kv[2] = kv_str("llama.block_count", "1"); }, "'llama.block_count' is not an integer"},
      {"type confusion: integer where a string is expected",
       [&](FileSpec& f) { f.kv[0] = kv_u32("general.architecture", 1); }, "'general.architecture' is not a string"},
      {"type confusion: tokens as integers", [&](FileSpec& f) { f.kv.push_back(tok_array(5, 8) + std::string(32, '\0')); },
       "'tokenizer.ggml.tokens' is not an array of strings"},
      {"type confusion: alignment as a string", [&](FileSpec& f) { f.kv[1] = kv_str("general.alignment", "32"); },
       "general.alignment must be"},
      {"type confusion: float where an integer is expected",
       [&](FileSpec& f) { f.kv[3] = kv_f32("llama.embedding_length", 32.0f); }, "'llama.embedding_length' is not an integer"},
      {"integer key out of range", [&](FileSpec& f) { f.kv[2] = kv_u32("llama.block_count", 0xFFFFFFFFu); },
       "out of range"},
      {"n_dims above 4", [&](FileSpec& f) { f.tensors[1].ne = {32, 1, 1, 1, 1}; }, "5 dimensions"},
      {"n_dims near 2^32", [&](FileSpec& f) { f.tensors[1].n_dims_override = 0xFFFFFFFFu; }, "4294967295 dimensions"},
      {"n_dims 0", [&](FileSpec& f) { f.tensors[1].ne = {}; }, "0 dimensions"},
      {"a dimension of 0", [&](FileSpec& f) { f.tensors[1].ne = {0}; }, "dimension 0"},
      {"a dimension near 2^64", [&](FileSpec& f) { f.tensors[1].ne = {kMax}; }, "has dimension 18446744073709551615"},
      {"product of dimensions overflows",
       [&](FileSpec& f) { f.tensors[2].ne = {uint64_t(1) << 32, uint64_t(1) << 32}; }, "element count overflows"},
      {"quantized byte size of a huge tensor (tiny data, huge logical tensor)",
       [&](FileSpec& f) { f.tensors[2].ne = {uint64_t(1) << 39, uint64_t(1) << 21}; }, "runs past the end of the file"},
      {"type id out of range", [&](FileSpec& f) { f.tensors[3].type = 99; }, "type id 99 is not a ggml tensor type"},
      {"type id of a removed type", [&](FileSpec& f) { f.tensors[3].type = 4; }, "type id 4 is not a ggml tensor type"},
      {"type id near 2^32", [&](FileSpec& f) { f.tensors[3].type = 0xFFFFFFFFu; }, "type id 4294967295"},
      {"type ggml has but this build does not read", [&](FileSpec& f) { f.tensors[3].type = 16; },
       "IQ2_XXS (type 16) is not supported"},
      {"offset near 2^64 (overflows when added)", [&](FileSpec& f) { f.tensors[4].offset = kMax - 31; },
       "runs past the end of the file"},
      {"offset past the file", [&](FileSpec& f) { f.tensors.back().offset = f.data_bytes + 4096; },
       "runs past the end of the file"},
      {"offset not aligned", [&](FileSpec& f) { f.tensors[4].offset += 4; }, "not a multiple of general.alignment"},
      {"alignment 0", [&](FileSpec& f) { f.kv[1] = kv_u32("general.alignment", 0); }, "power of two"},
      {"alignment not a power of two", [&](FileSpec& f) { f.kv[1] = kv_u32("general.alignment", 48); }, "power of two"},
      {"alignment huge", [&](FileSpec& f) { f.kv[1] = kv_u32("general.alignment", 1u << 31); }, "up to 16 MiB"},
      {"duplicate key", [&](FileSpec& f) { f.kv.push_back(kv_u32("llama.block_count", 2)); }, "duplicate metadata key"},
      {"empty key", [&](FileSpec& f) { f.kv.push_back(kv_u32("", 2)); }, "is empty"},
      {"duplicate tensor name", [&](FileSpec& f) { f.tensors[2].name = f.tensors[1].name; }, "duplicate tensor"},
      {"empty tensor name", [&](FileSpec& f) { f.tensors[2].name = ""; }, "empty name"},
      {"sum of padded sizes beyond the file",
       [&](FileSpec& f) {
         // Two tensors each larger than half the data, both inside the file.
         f.tensors = {f.tensors[0], f.tensors[0]};
         f.tensors[1].name = "copy";
         f.data_bytes = 8 * 34 * 3 / 2;
         f.tensors[1].offset = 64;
       },
       "add up to more than the data section"},
      {"overlapping tensors", [&](FileSpec& f) { f.tensors[4].offset = f.tensors[3].offset; }, "overlap"},
      {"version 1", [&](FileSpec& f) { f.version = 1; }, "version 1"},
      {"version near 2^32", [&](FileSpec& f) { f.version = 0xFFFFFFFFu; }, "version 4294967295"},
  };
  for (const Case& c : cases) {
    FileSpec f = tiny();
    c.mutate(f);
    const std::string bytes = build(f);
    std::string err;
    const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
    try {
      GgufHeader h = parse_gguf_header(p, bytes.size(), bytes.size(), "t.gguf");
      ModelConfig cfg = gguf_model_config(h, "t.gguf");
      gguf_hf_index(h, find_arch(cfg.architecture, "t.gguf"), "t.gguf");
    } catch (const Error& e) {
      err = e.what();
    }
    EXPECT_EQ(err.rfind("t.gguf", 0), 0u) << c.cls << ": " << (err.empty() ? "accepted" : err);
    EXPECT_NE(err.find(c.needle), std::string::npos) << c.cls << ": " << (err.empty() ? "accepted" : err);
  }
}

}  // namespace
}  // namespace strata
