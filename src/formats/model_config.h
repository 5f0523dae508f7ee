// Hyper-parameters of a Hugging Face model directory: config.json, plus the
// end-of-sequence ids that generation_config.json may add.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace strata {

struct RopeScaling {
  enum class Type { None, Linear, Llama3, Yarn } type = Type::None;
  double factor = 1.0;
  // llama3 only
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;  // llama3 and yarn
  // yarn only (transformers' _compute_yarn_parameters and DeepSeek's
  // yarn_get_mscale): the band of rotations between beta_slow and beta_fast
  // blends interpolated and original frequencies; cos/sin are scaled by
  // mscale(factor, mscale) / mscale(factor, mscale_all_dim), and DeepSeek's
  // attention scale by mscale(factor, mscale_all_dim)^2.
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  double mscale = 0.0;          // 0 = absent
  double mscale_all_dim = 0.0;  // 0 = absent
  double attention_factor = 0.0;  // explicit factor on cos/sin; 0 = derived from mscale
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

  // DeepSeek-V3 (DeepseekV3ForCausalLM). Multi-head latent attention: q
  // through a rank-q_lora_rank bottleneck (0 = a plain q_proj), keys and
  // values decompressed per head from a kv_lora_rank latent, plus one
  // qk_rope_head_dim RoPE key shared by all heads. head_dim is the key's
  // width, qk_nope_head_dim + qk_rope_head_dim, and num_kv_heads equals
  // num_heads: the KV cache holds the decompressed per-head keys, and the
  // values (v_head_dim <= head_dim) in the first v_head_dim of each head's
  // slot. Routing: sigmoid scores, e_score_correction_bias for the choice
  // only, n_group groups of which topk_group are kept.
  bool mla = false;
  int64_t q_lora_rank = 0;
  int64_t kv_lora_rank = 0;
  int64_t qk_nope_head_dim = 0;
  int64_t qk_rope_head_dim = 0;
  int64_t v_head_dim = 0;
  bool sigmoid_router = false;  // DeepSeek-V3: sigmoid scores + correction bias, grouped top-k
  int64_t n_group = 1;
  int64_t topk_group = 1;
  double routed_scaling_factor = 1.0;
  int64_t first_k_dense_replace = 0;
  int64_t moe_layer_freq = 1;

  int64_t q_dim() const { return num_heads * head_dim; }
  int64_t kv_dim() const { return num_kv_heads * head_dim; }
  // The width RoPE rotates: DeepSeek's decoupled rope part, else the head.
  int64_t rope_dim() const { return mla ? qk_rope_head_dim : head_dim; }
  // Attention's input width to o_proj: num_heads * v_head_dim under MLA.
  int64_t attn_out_dim() const { return mla ? num_heads * v_head_dim : q_dim(); }
  // The softmax scale: 1/sqrt(head_dim), times DeepSeek's yarn mscale^2.
  double attention_scale() const;
  // yarn's factor on cos and sin (1 without yarn).
  double rope_attention_factor() const;
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
