// The f16 KV pool halves what each sequence's cache costs, so at a budget
// where the KV pages are what limits the batch, the automatic batch size
// (what generate_batch and submit choose) at least doubles against f32 KV.
// Checked on Llama 3.1 8B shapes at 2 GiB and context 2048 through the
// Engine's own planning (Engine::auto_batch_size): the model is a real
// safetensors directory whose data area is a sparse file, so nothing of its
// 16 GB is written and planning (which reads no weights) sees the real
// manifest.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "convert/synthetic_model.h"
#include "strata/strata.h"
#include "test_util.h"

namespace strata {
namespace {

struct SparseTensor {
  std::string name;
  std::vector<int64_t> shape;
};

// A llama-family model at the preset's shapes: config.json and one
// model.safetensors whose header is real and whose data is a hole.
void write_sparse_llama(const std::filesystem::path& dir, const ModelConfig& c) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "config.json") << model_config_json(c, DType::BF16);
  std::vector<SparseTensor> t;
  t.push_back({"model.embed_tokens.weight", {c.vocab_size, c.hidden_size}});
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    t.push_back({p + "input_layernorm.weight", {c.hidden_size}});
    t.push_back({p + "self_attn.q_proj.weight", {c.q_dim(), c.hidden_size}});
    t.push_back({p + "self_attn.k_proj.weight", {c.kv_dim(), c.hidden_size}});
    t.push_back({p + "self_attn.v_proj.weight", {c.kv_dim(), c.hidden_size}});
    t.push_back({p + "self_attn.o_proj.weight", {c.hidden_size, c.q_dim()}});
    t.push_back({p + "post_attention_layernorm.weight", {c.hidden_size}});
    t.push_back({p + "mlp.gate_proj.weight", {c.intermediate_size, c.hidden_size}});
    t.push_back({p + "mlp.up_proj.weight", {c.intermediate_size, c.hidden_size}});
    t.push_back({p + "mlp.down_proj.weight", {c.hidden_size, c.intermediate_size}});
  }
  t.push_back({"model.norm.weight", {c.hidden_size}});
  if (!c.tie_word_embeddings) t.push_back({"lm_head.weight", {c.vocab_size, c.hidden_size}});

  nlohmann::json h = nlohmann::json::object();
  h["__metadata__"] = {{"format", "pt"}};
  uint64_t off = 0;
  for (const auto& x : t) {
    uint64_t n = 2;  // bf16
    for (int64_t d : x.shape) n *= uint64_t(d);
    h[x.name] = {{"dtype", "BF16"}, {"shape", x.shape}, {"data_offsets", {off, off + n}}};
    off += n;
  }
  std::string text = h.dump();
  text.resize((text.size() + 8 + 4095) / 4096 * 4096 - 8, ' ');  // data area page-aligned
  const std::filesystem::path f = dir / "model.safetensors";
  {
    std::ofstream out(f, std::ios::binary);
    uint64_t len = text.size();
    out.write(reinterpret_cast<const char*>(&len), 8);  // little-endian on x86-64
    out << text;
  }
  std::filesystem::resize_file(f, 8 + text.size() + off);  // a hole: no blocks written
}

size_t auto_batch(const std::filesystem::path& model, const std::string& kv_type) {
  EngineOptions o;
  o.max_memory = uint64_t(2) << 30;
  o.kv_type = kv_type;
  auto engine = Engine::open(model, o);
  return engine->auto_batch_size(2048, 64);
}

TEST(KvBatch, F16KvAtLeastDoublesTheAutomaticBatchOfAn8BAt2GiB) {
  test::TempDir tmp;
  const std::filesystem::path model = tmp / "llama3-8b";
  write_sparse_llama(model, find_synth_preset("llama3-8b").config);
  ASSERT_GT(std::filesystem::file_size(model / "model.safetensors"), uint64_t(16e9));  // 8.03B params in bf16

  const size_t f32 = auto_batch(model, "f32");
  const size_t f16 = auto_batch(model, "f16");
  std::printf("automatic batch at context 2048, 2 GiB: f32 KV %zu, f16 KV %zu\n", f32, f16);
  EXPECT_GE(f32, 1u);
  EXPECT_GE(f16, 2 * f32);

  // The plans behind the choice: the f16 batch's KV pool is no larger than
  // the f32 one of half the sequences (same positions, half the bytes).
  EngineOptions o;
  o.max_memory = uint64_t(2) << 30;
  o.kv_type = "f16";
  MemoryPlan p16 = Engine::open(model, o)->plan_for(2048, 1, f16);
  o.kv_type = "f32";
  MemoryPlan p32 = Engine::open(model, o)->plan_for(2048, 1, f32);
  EXPECT_EQ(p16.kv_type, "f16");
  EXPECT_EQ(p32.kv_type, "f32");
  EXPECT_LE(p16.kv_cache_bytes / f16, p32.kv_cache_bytes / f32 / 2 + 4096);
  EXPECT_LE(p16.budget, uint64_t(2) << 30);
}

}  // namespace
}  // namespace strata
