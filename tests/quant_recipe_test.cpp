// Quantization recipes: the per-tensor choices against llama.cpp's own files
// and rules, and an end-to-end K-quant conversion that loads and runs.
#include "convert/quant_recipe.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "convert/gguf_convert.h"
#include "convert/synthetic_model.h"
#include "core/error.h"
#include "formats/gguf.h"
#include "strata/strata.h"
#include "test_util.h"

namespace strata {
namespace {

GgufHeader header_of(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::vector<uint8_t> b((std::istreambuf_iterator<char>(f)), {});
  return parse_gguf_header(b.data(), b.size(), b.size(), p.filename().string());
}

int64_t layer_of(const std::string& name) {
  return name.rfind("blk.", 0) == 0 ? std::stoll(name.substr(4)) : -1;
}

// llama-quantize's choices in the test data (2 layers, 4 heads / 2 KV heads).
TEST(QuantRecipe, ChoosesWhatLlamaQuantizeChose) {
  const auto dir = test::testdata() / "gguf";
  if (!std::filesystem::exists(dir / "synthetic-d256-Q4_K_M.gguf")) GTEST_SKIP() << "no test data";
  for (const char* file : {"Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K"}) {
    const QuantRecipe* r = find_quant_recipe(file);
    ASSERT_NE(r, nullptr) << file;
    const GgufHeader h = header_of(dir / ("synthetic-d256-" + std::string(file) + ".gguf"));
    EXPECT_EQ(h.find("general.file_type")->u, r->file_type) << file;
    for (const GgufTensor& t : h.tensors) {
      RecipeTensor rt;
      rt.gguf_name = t.name;
      rt.layer = layer_of(t.name);
      rt.n_layers = 2;
      rt.n_gqa = 2;
      rt.cols = int64_t(t.ne[0]);
      rt.is_output = t.name == "output.weight";
      rt.is_matrix = t.ne.size() == 2;
      const DType want = dtype_of_ggml(t.ggml_type)->type;
      EXPECT_EQ(recipe_tensor_type(*r, rt), want) << file << " " << t.name;
    }
  }
}

// The layer rules on a deeper model: 32 layers, 8 KV groups of 4.
TEST(QuantRecipe, LayerRulesOfLlamaTensorGetType) {
  auto type = [](const char* recipe, const std::string& name, int64_t layer, int64_t n_gqa = 4) {
    RecipeTensor t;
    t.gguf_name = name;
    t.layer = layer;
    t.n_layers = 32;
    t.n_gqa = n_gqa;
    t.cols = 4096;
    t.is_output = name == "output.weight";
    return recipe_tensor_type(*find_quant_recipe(recipe), t);
  };
  // use_more_bits(i, 32): i < 4, i >= 28, or (i - 4) % 3 == 2.
  std::set<int64_t> more;
  for (int64_t i = 0; i < 32; ++i)
    if (i < 4 || i >= 28 || (i - 4) % 3 == 2) more.insert(i);
  for (int64_t i = 0; i < 32; ++i) {
    const DType q4m = more.count(i) ? DType::Q6_K : DType::Q4_K;
    EXPECT_EQ(type("q4_k_m", "blk." + std::to_string(i) + ".attn_v.weight", i), q4m) << i;
    EXPECT_EQ(type("q4_k_m", "blk." + std::to_string(i) + ".ffn_down.weight", i), q4m) << i;
    EXPECT_EQ(type("q4_k_m", "blk." + std::to_string(i) + ".ffn_up.weight", i), DType::Q4_K) << i;
    EXPECT_EQ(type("q5_k_m", "blk." + std::to_string(i) + ".attn_v.weight", i),
              more.count(i) ? DType::Q6_K : DType::Q5_K) << i;
    EXPECT_EQ(type("q3_k_m", "blk." + std::to_string(i) + ".attn_v.weight", i), i < 2 ? DType::Q5_K : DType::Q4_K);
    EXPECT_EQ(type("q3_k_m", "blk." + std::to_string(i) + ".ffn_down.weight", i), i < 2 ? DType::Q5_K : DType::Q4_K);
    EXPECT_EQ(type("q3_k_m", "blk." + std::to_string(i) + ".attn_output.weight", i), DType::Q4_K);
    EXPECT_EQ(type("q2_k", "blk." + std::to_string(i) + ".attn_v.weight", i), DType::Q4_K);  // n_gqa 4
    EXPECT_EQ(type("q2_k", "blk." + std::to_string(i) + ".attn_v.weight", i, 2), DType::Q3_K);
    EXPECT_EQ(type("q2_k", "blk." + std::to_string(i) + ".ffn_down.weight", i), DType::Q3_K);
    EXPECT_EQ(type("q2_k", "blk." + std::to_string(i) + ".attn_q.weight", i), DType::Q2_K);
    EXPECT_EQ(type("q6_k", "blk." + std::to_string(i) + ".attn_q.weight", i), DType::Q6_K);
    for (const char* r : {"iq4_nl", "iq4_xs"}) {
      const DType base = std::string(r) == "iq4_nl" ? DType::IQ4_NL : DType::IQ4_XS;
      EXPECT_EQ(type(r, "blk." + std::to_string(i) + ".attn_v.weight", i), DType::Q5_K) << r;  // n_gqa 4
      EXPECT_EQ(type(r, "blk." + std::to_string(i) + ".attn_v.weight", i, 2), base) << r;
      EXPECT_EQ(type(r, "blk." + std::to_string(i) + ".ffn_down.weight", i), i < 4 ? DType::Q5_K : base) << r;
      EXPECT_EQ(type(r, "blk." + std::to_string(i) + ".attn_output.weight", i), base) << r;
    }
  }
  for (const char* r : {"q2_k", "q3_k_m", "q4_k_m", "q5_k_m", "q6_k", "q4_0", "q5_1", "iq4_nl", "iq4_xs"})
    EXPECT_EQ(type(r, "output.weight", -1), DType::Q6_K) << r;
  EXPECT_EQ(type("q8_0", "output.weight", -1), DType::Q8_0);
  EXPECT_EQ(type("f16", "output.weight", -1), DType::F16);
  EXPECT_EQ(type("q4_k_m", "token_embd.weight", -1), DType::Q4_K);
}

TEST(QuantRecipe, RowLengthFallbacks) {
  auto type = [](const char* recipe, int64_t cols, DType source = DType::BF16) {
    RecipeTensor t;
    t.gguf_name = "blk.0.attn_q.weight";
    t.layer = 0;
    t.n_layers = 2;
    t.cols = cols;
    t.source = source;
    std::string note;
    const DType d = recipe_tensor_type(*find_quant_recipe(recipe), t, &note);
    EXPECT_EQ(note.empty(), cols % 256 == 0) << recipe << " " << cols;
    return d;
  };
  EXPECT_EQ(type("q4_k_m", 4096), DType::Q4_K);
  EXPECT_EQ(type("q4_k_m", 96), DType::Q5_0);
  EXPECT_EQ(type("q5_k_m", 96), DType::Q5_1);
  EXPECT_EQ(type("q6_k", 96), DType::Q8_0);
  EXPECT_EQ(type("q2_k", 96), DType::IQ4_NL);  // llama.cpp's fallback for Q2_K / Q3_K / IQ4_XS
  EXPECT_EQ(type("iq4_xs", 96), DType::IQ4_NL);
  EXPECT_EQ(type("q4_k_m", 100), DType::F16);
  EXPECT_EQ(type("q4_k_m", 100, DType::F32), DType::F32);
  EXPECT_EQ(find_quant_recipe("Q4_K_M"), find_quant_recipe("q4_k_m"));
  EXPECT_EQ(find_quant_recipe("q4_k_x"), nullptr);
}

// A random model whose rows are whole super-blocks (hidden 256, ffn 256,
// 4 layers, 4 heads / 1 KV head) converted with K-quant recipes: the file
// holds the recipe's types, loads, and its logits stay close to the bf16
// source's. The bounds are ~1.5x the measured loss of the formats on this
// model (relative RMS of the logits 0.05 q6_k, 0.15 q4_k_m, 0.48 q2_k);
// unrelated logits (a wrong layout) are at ~1.4.
TEST(QuantRecipe, ConvertedKQuantModelsLoadAndRun) {
  test::TempDir tmp;
  ModelConfig c;
  c.architecture = "LlamaForCausalLM";
  c.model_type = "llama";
  c.hidden_size = 256;
  c.intermediate_size = 256;
  c.num_layers = 4;
  c.num_heads = 4;
  c.num_kv_heads = 1;
  c.head_dim = 64;
  c.vocab_size = 256;
  c.max_position_embeddings = 64;
  c.rope_theta = 10000.0;
  c.rms_norm_eps = 1e-5;
  c.tie_word_embeddings = false;
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  SynthOptions so;
  so.seed = 3;
  so.weight_std = 0.05f;
  write_synthetic_model(tmp / "src", c, so);
  const std::vector<int32_t> ids = {1, 17, 200, 33, 90, 5, 64, 128};
  EngineOptions eo;
  const std::vector<float> ref = Engine::open(tmp / "src", eo)->score(ids, true).logits;
  for (auto [recipe, bound] : {std::pair{"q6_k", 0.08}, std::pair{"q4_k_m", 0.23}, std::pair{"q2_k", 0.72}}) {
    GgufConvertOptions o;
    o.recipe = recipe;
    o.threads = 2;
    const auto out = tmp / (std::string(recipe) + ".gguf");
    convert_to_gguf(tmp / "src", out, o);
    const GgufHeader h = header_of(out);
    EXPECT_EQ(h.find("general.file_type")->u, find_quant_recipe(recipe)->file_type);
    for (const GgufTensor& t : h.tensors) {
      RecipeTensor rt;
      rt.gguf_name = t.name;
      rt.layer = layer_of(t.name);
      rt.n_layers = 4;
      rt.n_gqa = 4;
      rt.cols = int64_t(t.ne[0]);
      rt.is_output = t.name == "output.weight";
      rt.is_matrix = t.ne.size() == 2;
      EXPECT_EQ(dtype_of_ggml(t.ggml_type)->type, recipe_tensor_type(*find_quant_recipe(recipe), rt))
          << recipe << " " << t.name;
    }
    const std::vector<float> got = Engine::open(out, eo)->score(ids, true).logits;
    ASSERT_EQ(got.size(), ref.size());
    double e = 0, r = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      e += (double(got[i]) - ref[i]) * (double(got[i]) - ref[i]);
      r += double(ref[i]) * ref[i];
    }
    std::printf("[ %-6s ] logits relative RMS difference from the bf16 source %.4f\n", recipe, std::sqrt(e / r));
    EXPECT_LT(std::sqrt(e / r), bound) << recipe;
  }
}

}  // namespace
}  // namespace strata
