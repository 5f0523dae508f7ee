#include "convert/synthetic_model.h"

#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "arch/arch.h"
#include "core/error.h"
#include "formats/safetensors_writer.h"

namespace strata {
namespace {

ModelConfig base(const char* arch, const char* type, int64_t hidden, int64_t ffn, int64_t layers, int64_t heads,
                 int64_t kv_heads, int64_t vocab, int64_t ctx, double theta, bool tied) {
  ModelConfig c;
  c.architecture = arch;
  c.model_type = type;
  c.hidden_size = hidden;
  c.intermediate_size = ffn;
  c.num_layers = layers;
  c.num_heads = heads;
  c.num_kv_heads = kv_heads;
  c.head_dim = hidden / heads;
  c.vocab_size = vocab;
  c.max_position_embeddings = ctx;
  c.rope_theta = theta;
  c.rms_norm_eps = 1e-5;
  c.tie_word_embeddings = tied;
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  return c;
}

ModelConfig llama3(int64_t hidden, int64_t ffn, int64_t layers, int64_t heads, bool tied) {
  ModelConfig c = base("LlamaForCausalLM", "llama", hidden, ffn, layers, heads, 8, 128256, 131072, 500000.0, tied);
  c.rope_scaling.type = RopeScaling::Type::Llama3;
  c.rope_scaling.factor = tied ? 32.0 : 8.0;
  c.rope_scaling.low_freq_factor = 1.0;
  c.rope_scaling.high_freq_factor = 4.0;
  c.rope_scaling.original_max_position_embeddings = 8192;
  c.bos_token_id = 128000;
  c.eos_token_ids = {128001, 128008, 128009};
  return c;
}

// DeepSeek-V3's config.json (deepseek-ai/DeepSeek-V3): MLA with ranks
// 1536 (q) and 512 (kv), heads of 128 nope + 64 rope, values of 128; 256
// routed experts of 2048 in 8 groups keeping 4, top-8, one shared expert,
// scaled by 2.5; the first 3 layers dense; yarn x40 over 4096 positions.
ModelConfig deepseek_v3(int64_t hidden, int64_t ffn, int64_t layers, int64_t heads, int64_t vocab) {
  ModelConfig c = base("DeepseekV3ForCausalLM", "deepseek_v3", hidden, ffn, layers, heads, heads, vocab, 163840,
                       10000.0, false);
  c.rms_norm_eps = 1e-6;
  c.mla = true;
  c.rope_interleaved = true;
  c.q_lora_rank = 1536;
  c.kv_lora_rank = 512;
  c.qk_nope_head_dim = 128;
  c.qk_rope_head_dim = 64;
  c.v_head_dim = 128;
  c.head_dim = 192;
  c.num_experts = 256;
  c.experts_per_token = 8;
  c.moe_intermediate_size = 2048;
  c.shared_expert_intermediate_size = 2048;  // n_shared_experts 1
  c.sigmoid_router = true;
  c.n_group = 8;
  c.topk_group = 4;
  c.routed_scaling_factor = 2.5;
  c.norm_topk_prob = true;
  c.first_k_dense_replace = 3;
  c.rope_scaling.type = RopeScaling::Type::Yarn;
  c.rope_scaling.factor = 40;
  c.rope_scaling.original_max_position_embeddings = 4096;
  c.rope_scaling.beta_fast = 32;
  c.rope_scaling.beta_slow = 1;
  c.rope_scaling.mscale = 1.0;
  c.rope_scaling.mscale_all_dim = 1.0;
  c.bos_token_id = 0;
  c.eos_token_ids = {1};
  return c;
}

std::vector<SynthPreset> make_presets() {
  std::vector<SynthPreset> p;
  p.push_back({"llama3-8b", "Llama 3.1 8B shapes (16 GB in bf16)", llama3(4096, 14336, 32, 32, false)});
  p.push_back({"llama3-70b", "Llama 3.1 70B shapes (141 GB in bf16)", llama3(8192, 28672, 80, 64, false)});
  p.push_back({"llama3.2-1b", "Llama 3.2 1B shapes (2.5 GB in bf16, tied embeddings)",
               llama3(2048, 8192, 16, 32, true)});
  p.push_back({"llama3.2-3b", "Llama 3.2 3B shapes (6.4 GB in bf16, tied embeddings)",
               llama3(3072, 8192, 28, 24, true)});
  {
    ModelConfig c = base("MistralForCausalLM", "mistral", 4096, 14336, 32, 32, 8, 32768, 32768, 1000000.0, false);
    p.push_back({"mistral-7b", "Mistral 7B v0.3 shapes (14.5 GB in bf16)", c});
  }
  {
    ModelConfig c = base("Qwen2ForCausalLM", "qwen2", 3584, 18944, 28, 28, 4, 152064, 32768, 1000000.0, false);
    c.eos_token_ids = {151643, 151645};
    c.bos_token_id = 151643;
    p.push_back({"qwen2.5-7b", "Qwen2.5 7B shapes (15 GB in bf16, q/k/v biases)", c});
  }
  {
    ModelConfig c = base("Qwen3ForCausalLM", "qwen3", 4096, 12288, 36, 32, 8, 151936, 40960, 1000000.0, false);
    c.head_dim = 128;
    c.rms_norm_eps = 1e-6;
    c.eos_token_ids = {151645, 151643};
    c.bos_token_id = 151643;
    p.push_back({"qwen3-8b", "Qwen3 8B shapes (16 GB in bf16, q/k norms)", c});
  }
  {
    // Small enough for unit tests, every feature of the Qwen3 family.
    ModelConfig c = base("Qwen3ForCausalLM", "qwen3", 128, 320, 3, 4, 2, 1000, 1024, 1000000.0, true);
    c.head_dim = 48;
    p.push_back({"tiny-qwen3", "3-layer Qwen3-style model for tests", c});
  }
  {
    ModelConfig c = base("Qwen2ForCausalLM", "qwen2", 128, 320, 3, 4, 2, 1000, 1024, 1000000.0, false);
    p.push_back({"tiny-qwen2", "3-layer Qwen2-style model for tests (q/k/v biases)", c});
  }
  {
    ModelConfig c = base("MixtralForCausalLM", "mixtral", 4096, 14336, 32, 32, 8, 32000, 32768, 1000000.0, false);
    c.num_experts = 8;
    c.experts_per_token = 2;
    c.moe_intermediate_size = 14336;
    c.norm_topk_prob = true;
    p.push_back({"mixtral-8x7b", "Mixtral 8x7B shapes (93 GB in bf16; 2 of 8 experts per token)", c});
  }
  {
    ModelConfig c = base("Qwen3MoeForCausalLM", "qwen3_moe", 2048, 6144, 48, 32, 4, 151936, 40960, 1000000.0, false);
    c.head_dim = 128;
    c.rms_norm_eps = 1e-6;
    c.num_experts = 128;
    c.experts_per_token = 8;
    c.moe_intermediate_size = 768;
    c.norm_topk_prob = true;
    c.eos_token_ids = {151645, 151643};
    c.bos_token_id = 151643;
    p.push_back({"qwen3-30b-a3b", "Qwen3-30B-A3B shapes (61 GB in bf16; 8 of 128 experts per token)", c});
  }
  {
    // Small MoE models for tests: 8 experts, top-2 (Mixtral), top-3 of 6
    // with a dense layer (Qwen3MoE), and routed + shared (Qwen2MoE).
    ModelConfig c = base("MixtralForCausalLM", "mixtral", 64, 96, 3, 4, 2, 300, 1024, 1000000.0, false);
    c.num_experts = 8;
    c.experts_per_token = 2;
    c.moe_intermediate_size = 96;
    c.norm_topk_prob = true;
    p.push_back({"tiny-mixtral", "3-layer Mixtral-style model for tests (top-2 of 8 experts)", c});
  }
  {
    ModelConfig c = base("Qwen3MoeForCausalLM", "qwen3_moe", 64, 160, 3, 4, 2, 300, 1024, 1000000.0, true);
    c.head_dim = 32;
    c.num_experts = 6;
    c.experts_per_token = 3;
    c.moe_intermediate_size = 48;
    c.norm_topk_prob = true;
    c.mlp_only_layers = {1};
    p.push_back({"tiny-qwen3moe", "3-layer Qwen3MoE-style model for tests (top-3 of 6, layer 1 dense)", c});
  }
  {
    ModelConfig c = base("Qwen2MoeForCausalLM", "qwen2_moe", 64, 160, 3, 4, 2, 300, 1024, 1000000.0, false);
    c.num_experts = 6;
    c.experts_per_token = 2;
    c.moe_intermediate_size = 48;
    c.shared_expert_intermediate_size = 80;
    c.norm_topk_prob = false;
    p.push_back({"tiny-qwen2moe", "3-layer Qwen2MoE-style model for tests (top-2 of 6 + shared expert)", c});
  }
  {
    ModelConfig c = base("Qwen3MoeForCausalLM", "qwen3_moe", 4096, 12288, 94, 64, 4, 151936, 40960, 1000000.0, false);
    c.head_dim = 128;
    c.rms_norm_eps = 1e-6;
    c.num_experts = 128;
    c.experts_per_token = 8;
    c.moe_intermediate_size = 1536;
    c.norm_topk_prob = true;
    c.eos_token_ids = {151645, 151643};
    c.bos_token_id = 151643;
    p.push_back({"qwen3-235b-a22b", "Qwen3-235B-A22B shapes (470 GB in bf16; 8 of 128 experts per token)", c});
  }
  {
    ModelConfig c = deepseek_v3(7168, 18432, 61, 128, 129280);
    p.push_back({"deepseek-v3", "DeepSeek-V3 shapes (1.34 TB in bf16; 8 of 256 routed experts + 1 shared, MLA)", c});
  }
  {
    // Every DeepSeek-V3 feature at toy size: q through a low-rank
    // bottleneck, yarn with mscale != mscale_all_dim, 4 groups of 4 experts
    // keeping 2, 2 shared experts, layer 0 dense.
    ModelConfig c = deepseek_v3(64, 160, 3, 4, 300);
    c.max_position_embeddings = 1024;
    c.q_lora_rank = 24;
    c.kv_lora_rank = 32;
    c.qk_nope_head_dim = 16;
    c.qk_rope_head_dim = 8;
    c.v_head_dim = 12;
    c.head_dim = 24;
    c.num_experts = 16;
    c.experts_per_token = 4;
    c.moe_intermediate_size = 24;
    c.shared_expert_intermediate_size = 2 * 24;
    c.n_group = 4;
    c.topk_group = 2;
    c.first_k_dense_replace = 1;
    c.rope_scaling.factor = 4;
    c.rope_scaling.original_max_position_embeddings = 256;
    c.rope_scaling.mscale = 1.0;
    c.rope_scaling.mscale_all_dim = 0.8;
    p.push_back({"tiny-deepseek-v3", "3-layer DeepSeek-V3-style model for tests (MLA, yarn, grouped top-4 of 16)", c});
  }
  {
    ModelConfig c = llama3(256, 640, 4, 8, false);
    c.num_kv_heads = 2;
    c.vocab_size = 2000;
    p.push_back({"tiny-llama3", "4-layer Llama 3-style model for tests (llama3 RoPE scaling)", c});
  }
  return p;
}

// A counter-based generator: element i of tensor t is the same whatever
// chunk it is produced in, so files are reproducible from the seed.
inline uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

void store(DType t, float v, uint8_t* dst) {
  switch (t) {
    case DType::F32: std::memcpy(dst, &v, 4); break;
    case DType::F16: { uint16_t h = f32_to_f16(v); std::memcpy(dst, &h, 2); break; }
    case DType::BF16: { uint16_t h = f32_to_bf16(v); std::memcpy(dst, &h, 2); break; }
    default: throw Error("synthetic models are written in f32, f16 or bf16 (convert to GGUF to quantize)");
  }
}

// Weights uniform with std `scale`; 1-D norm weights near 1.
SafetensorsWriter::Fill filler(DType dt, uint64_t stream, float scale, float center) {
  return [=](uint64_t off, uint8_t* dst, size_t len) {
    const size_t es = dtype_size(dt);
    for (size_t b = 0; b < len; b += es) {
      uint64_t idx = (off + b) / es;
      uint64_t r = mix(stream ^ mix(idx));
      float u = float(r >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f;  // [-1, 1)
      store(dt, center + u * scale * 1.7320508f, dst + b);
    }
  };
}

}  // namespace

const std::vector<SynthPreset>& synth_presets() {
  static const std::vector<SynthPreset> presets = make_presets();
  return presets;
}

const SynthPreset& find_synth_preset(const std::string& name) {
  std::string list;
  for (const auto& p : synth_presets()) {
    if (name == p.name) return p;
    list += (list.empty() ? "" : ", ") + std::string(p.name);
  }
  throw UsageError(fmt::format("unknown preset '{}' (available: {})", name, list));
}

std::string model_config_json(const ModelConfig& c, DType dtype) {
  nlohmann::ordered_json j;
  j["architectures"] = {c.architecture};
  j["model_type"] = c.model_type;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.num_layers;
  j["num_attention_heads"] = c.num_heads;
  j["num_key_value_heads"] = c.num_kv_heads;
  if (!c.mla) j["head_dim"] = c.head_dim;  // DeepSeek derives it from qk_nope/qk_rope_head_dim
  j["vocab_size"] = c.vocab_size;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["rope_theta"] = c.rope_theta;
  if (c.rope_scaling.type == RopeScaling::Type::Llama3) {
    j["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", c.rope_scaling.factor},
                         {"low_freq_factor", c.rope_scaling.low_freq_factor},
                         {"high_freq_factor", c.rope_scaling.high_freq_factor},
                         {"original_max_position_embeddings", c.rope_scaling.original_max_position_embeddings}};
  } else if (c.rope_scaling.type == RopeScaling::Type::Yarn) {
    j["rope_scaling"] = {{"type", "yarn"},
                         {"factor", c.rope_scaling.factor},
                         {"original_max_position_embeddings", c.rope_scaling.original_max_position_embeddings},
                         {"beta_fast", c.rope_scaling.beta_fast},
                         {"beta_slow", c.rope_scaling.beta_slow}};
    if (c.rope_scaling.mscale != 0) j["rope_scaling"]["mscale"] = c.rope_scaling.mscale;
    if (c.rope_scaling.mscale_all_dim != 0) j["rope_scaling"]["mscale_all_dim"] = c.rope_scaling.mscale_all_dim;
  } else if (c.rope_scaling.type == RopeScaling::Type::Linear) {
    j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", c.rope_scaling.factor}};
  } else {
    j["rope_scaling"] = nullptr;
  }
  j["hidden_act"] = c.hidden_act;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["attention_bias"] = c.attention_bias;
  j["bos_token_id"] = c.bos_token_id;
  j["eos_token_id"] = c.eos_token_ids.size() == 1 ? nlohmann::ordered_json(c.eos_token_ids[0])
                                                  : nlohmann::ordered_json(c.eos_token_ids);
  if (c.mla) {
    j["q_lora_rank"] = c.q_lora_rank > 0 ? nlohmann::ordered_json(c.q_lora_rank) : nlohmann::ordered_json(nullptr);
    j["kv_lora_rank"] = c.kv_lora_rank;
    j["qk_nope_head_dim"] = c.qk_nope_head_dim;
    j["qk_rope_head_dim"] = c.qk_rope_head_dim;
    j["v_head_dim"] = c.v_head_dim;
    j["rope_interleave"] = c.rope_interleaved;
  }
  if (c.is_moe() && c.sigmoid_router) {
    j["n_routed_experts"] = c.num_experts;
    j["num_experts_per_tok"] = c.experts_per_token;
    j["moe_intermediate_size"] = c.moe_intermediate_size;
    j["n_shared_experts"] = c.shared_expert_intermediate_size / c.moe_intermediate_size;
    j["n_group"] = c.n_group;
    j["topk_group"] = c.topk_group;
    j["topk_method"] = "noaux_tc";
    j["scoring_func"] = "sigmoid";
    j["routed_scaling_factor"] = c.routed_scaling_factor;
    j["norm_topk_prob"] = c.norm_topk_prob;
    j["first_k_dense_replace"] = c.first_k_dense_replace;
    j["moe_layer_freq"] = c.moe_layer_freq;
  } else if (c.is_moe()) {
    if (c.architecture == "MixtralForCausalLM") {
      j["num_local_experts"] = c.num_experts;
    } else {
      j["num_experts"] = c.num_experts;
      j["moe_intermediate_size"] = c.moe_intermediate_size;
      j["norm_topk_prob"] = c.norm_topk_prob;
      j["decoder_sparse_step"] = c.decoder_sparse_step;
      j["mlp_only_layers"] = c.mlp_only_layers;
      if (c.architecture == "Qwen2MoeForCausalLM")
        j["shared_expert_intermediate_size"] = c.shared_expert_intermediate_size;
    }
    j["num_experts_per_tok"] = c.experts_per_token;
  }
  j["torch_dtype"] = dtype == DType::F32 ? "float32" : dtype == DType::F16 ? "float16" : "bfloat16";
  return j.dump(2) + "\n";
}

uint64_t write_synthetic_model(const std::filesystem::path& dir, const ModelConfig& cfg, const SynthOptions& opt) {
  ModelConfig c = cfg;
  if (opt.layers > 0) c.num_layers = opt.layers;
  std::erase_if(c.mlp_only_layers, [&](int64_t l) { return l >= c.num_layers; });
  c.first_k_dense_replace = std::min(c.first_k_dense_replace, c.num_layers);
  const ArchFamily& arch = find_arch(c.architecture, "preset");
  std::filesystem::create_directories(dir);
  std::vector<TensorSource> tensors;
  uint64_t stream = mix(opt.seed);
  const float w_scale = opt.weight_std;
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    stream = mix(stream);
    bool vector = shape.size() == 1;
    bool bias = name.find("bias") != std::string::npos;  // also DeepSeek's e_score_correction_bias
    float center = vector && !bias ? 1.0f : 0.0f;
    float scale = vector ? 0.05f : w_scale;
    tensors.push_back({name, opt.dtype, shape, filler(opt.dtype, stream, scale, center)});
  };
  for (const auto& t : model_tensors(arch, c)) add(t.name, t.shape);

  uint64_t total = 0;
  for (const auto& t : tensors) {
    uint64_t n = dtype_size(t.dtype);
    for (int64_t d : t.shape) n *= uint64_t(d);
    total += n;
  }
  uint64_t done = 0;  // outlives the fills below, which write_sharded calls
  if (opt.progress) {
    for (auto& t : tensors) {
      uint64_t n = dtype_size(t.dtype);
      for (int64_t d : t.shape) n *= uint64_t(d);
      auto inner = t.fill;
      uint64_t tensor_bytes = n;
      t.fill = [inner, &done, total, tensor_bytes, progress = opt.progress](uint64_t off, uint8_t* dst, size_t len) {
        inner(off, dst, len);
        if (off + len == tensor_bytes) {
          done += tensor_bytes;
          progress(done, total);
        }
      };
    }
  }
  write_sharded(dir, tensors, opt.max_shard_bytes, {{"format", "pt"}});
  // A single shard is renamed to the plain layout most tools expect.
  if (total <= opt.max_shard_bytes && std::filesystem::exists(dir / "model-00001-of-00001.safetensors")) {
    std::filesystem::rename(dir / "model-00001-of-00001.safetensors", dir / "model.safetensors");
    std::filesystem::remove(dir / "model.safetensors.index.json");
  }
  {
    std::ofstream f(dir / "config.json");
    f << model_config_json(c, opt.dtype);
    if (!f) throw Error((dir / "config.json").string() + ": cannot write");
  }
  {
    nlohmann::ordered_json g = {{"bos_token_id", c.bos_token_id}, {"eos_token_id", c.eos_token_ids}};
    std::ofstream f(dir / "generation_config.json");
    f << g.dump(2) << "\n";
  }
  return total;
}

}  // namespace strata
