// Hyper-parameters of a Hugging Face model directory: config.json, plus the
// end-of-sequence ids that generation_config.json may add.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace strata {

struct RopeScaling {
  enum class Type { None, Linear, Llama3 } type = Type::None;
  double factor = 1.0;
  // llama3 only
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  std::string architecture;  // architectures[0], e.g. "LlamaForCausalLM"
  std::string model_type;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;  // explicit in config (Qwen3) or hidden_size / num_heads
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v biases (Qwen2 always; Llama when set)
  // RoPE pairs (2i, 2i+1) instead of (i, i + head_dim/2): GGUF `llama` files
  // store q/k rows permuted to that (Meta) layout.
  bool rope_interleaved = false;
  std::string hidden_act = "silu";
  int32_t bos_token_id = -1;
  std::vector<int32_t> eos_token_ids;  // from config.json and generation_config.json

  // Mixture of experts (0 experts = dense). Mixtral: num_local_experts,
  // experts of intermediate_size; Qwen2MoE/Qwen3MoE: num_experts of
  // moe_intermediate_size, dense layers (mlp_only_layers, or off the
  // decoder_sparse_step) of intermediate_size.
  int64_t num_experts = 0;
  int64_t experts_per_token = 0;       // top-k
  int64_t moe_intermediate_size = 0;   // per routed expert
  int64_t shared_expert_intermediate_size = 0;  // Qwen2MoE; 0 = none
  bool norm_topk_prob = false;         // renormalize the top-k probabilities (Mixtral always)
  int64_t decoder_sparse_step = 1;
  std::vector<int64_t> mlp_only_layers;

  int64_t q_dim() const { return num_heads * head_dim; }
  int64_t kv_dim() const { return num_kv_heads * head_dim; }
  bool is_moe() const { return num_experts > 0; }
  // Whether layer `l` has routed experts (else a dense MLP), as in
  // transformers' Qwen2Moe/Qwen3Moe decoder layers.
  bool moe_layer(int64_t l) const;
};

// Parses config.json text; `display_name` prefixes every error.
ModelConfig parse_model_config(const std::string& json_text, const std::string& display_name);
// Reads dir/config.json and, when present, dir/generation_config.json.
ModelConfig load_model_config(const std::filesystem::path& model_dir);

}  // namespace strata
