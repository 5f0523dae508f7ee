// Model families as data. Each family is a row of options plus a table of
// every tensor it may hold: Hugging Face and GGUF names, role, shape,
// required or optional, and where it belongs (input, repeating layer,
// output). Loading, planning, streaming, conversion and synth all walk the
// same table (layer_tensors / model_tensors) instead of keeping their own
// lists, and GGUF names are mapped to Hugging Face names through it.
//
//   const ArchFamily& f = find_arch("Qwen2ForCausalLM", "config.json");
//   for (const auto& t : layer_tensors(f, cfg, 3)) ...   // t.name, t.gguf_name, t.shape
//   const ArchFamily* g = find_arch_by_gguf("qwen2");     // general.architecture
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "formats/model_config.h"

namespace strata {

// What a tensor does. The layer roles come first: LayerLayout indexes its
// tensors by them.
enum class Role : uint8_t {
  AttnNorm, Q, K, V, O, QBias, KBias, VBias, QNorm, KNorm, FfnNorm, Gate, Up, Down,
  // Mixture of experts: the router (expert logits), a shared expert that
  // every row uses and its sigmoid gate (Qwen2MoE).
  Router, SharedGate, SharedUp, SharedDown, SharedExpertGate,
  // One routed expert's SwiGLU matrices (TensorDef::per_expert); held in
  // LayerLayout::experts, not in by_role.
  ExpertGate, ExpertUp, ExpertDown,
  // DeepSeek's multi-head latent attention: q through a low-rank bottleneck
  // (QA, its norm, QB; or a plain Q), the compressed kv plus the shared RoPE
  // key (KvA), the latent's norm, and its per-head decompression into nope
  // keys and values (KvB); the router's correction bias (choice only).
  QA, QANorm, QB, KvA, KvANorm, KvB, RouterBias,
  Embed, FinalNorm, LmHead,
  kCount
};

// Where a tensor belongs: read once (input, output) or once per layer
// (repeating: exactly what the layer streamer reads).
enum class Placement : uint8_t { Input, Repeating, Output };

// A dimension of a tensor's shape, resolved against a ModelConfig.
// QLora/KvLora: DeepSeek's ranks; KvA: kv_lora_rank + qk_rope_head_dim;
// KvB: heads * (qk_nope_head_dim + v_head_dim); AttnOut: o_proj's input.
enum class Dim : uint8_t {
  Hidden, QDim, KvDim, Ffn, HeadDim, Vocab, Experts, MoeFfn, SharedFfn, One, QLora, KvLora, KvA, KvB, AttnOut
};

// When a tensor is part of a model.
enum class Presence : uint8_t {
  Required,
  IfQkvBias,   // the family has q/k/v biases, or config.attention_bias
  IfQkNorm,    // the family normalizes q and k per head
  IfUntied,    // a separate output head (else the embedding is reused)
  IfDenseMlp,  // a layer without routed experts (every layer of a dense family)
  IfMoe,       // a layer with routed experts (ModelConfig::moe_layer)
  IfSharedExpert,  // an MoE layer of a config with shared_expert_intermediate_size
  IfQLora,     // DeepSeek with q_lora_rank: q_a_proj, q_a_layernorm, q_b_proj
  IfNoQLora,   // DeepSeek without: a plain q_proj
};

struct TensorDef {
  Role role;
  const char* hf;    // Hugging Face name, "%d" for the layer index, "%e" for the expert's
  const char* gguf;  // GGUF name (llama.cpp's), "%d" for the layer index; "" when none
  Placement placement;
  Presence presence;
  uint8_t rank;
  Dim shape[2];      // outermost first: [out, in] for matrices
  bool per_expert = false;  // one tensor per routed expert ("%e" in hf)
};

struct ArchFamily {
  const char* hf_class;      // config.json "architectures" entry
  const char* display;       // "Llama", "Qwen3", ...
  const char* gguf_arch;     // general.architecture of its GGUF files
  bool qkv_bias;             // q/k/v projections carry biases
  bool qk_norm;              // per-head RMSNorm on q and k before RoPE
  // llama.cpp's converter permutes q/k rows of `llama` files so that RoPE
  // rotates interleaved pairs (2i, 2i+1); qwen2/qwen3 files keep the
  // Hugging Face rotate-half order.
  bool gguf_rope_interleaved;
  std::span<const TensorDef> tensors;
  // Routed experts (ModelConfig::num_experts > 0). gguf_arch is nullptr for
  // the MoE families whose GGUF files strata does not read yet.
  bool moe = false;
};

// Throws Error listing the supported classes when `hf_class` is unknown.
const ArchFamily& find_arch(const std::string& hf_class, const std::string& config_name);
// The family of a GGUF general.architecture ("llama" is Llama, also for
// Mistral files); nullptr when strata has none.
const ArchFamily* find_arch_by_gguf(std::string_view gguf_arch);
std::vector<std::string> supported_architectures();
std::vector<std::string> supported_gguf_architectures();

struct TensorSpec {
  const TensorDef* def;
  std::string name;            // Hugging Face name
  std::string gguf_name;       // GGUF name
  std::vector<int64_t> shape;  // expected shape, outermost first
  int64_t expert = -1;         // for per-expert tensors
  Role role() const { return def->role; }
};
using LayerTensorSpec = TensorSpec;

// The tensors of decoder layer `layer`, in the order they are used.
std::vector<TensorSpec> layer_tensors(const ArchFamily& arch, const ModelConfig& cfg, int64_t layer);
// Tensors outside the layers of this placement (Input or Output), for this
// config: the output head only when untied.
std::vector<TensorSpec> global_tensors(const ArchFamily& arch, const ModelConfig& cfg, Placement where);
// Every tensor of the model in file order: input, layers, output.
std::vector<TensorSpec> model_tensors(const ArchFamily& arch, const ModelConfig& cfg);

// Name mapping through the family's table; nullopt for names it lacks.
std::optional<std::string> gguf_to_hf_name(const ArchFamily& arch, std::string_view gguf_name);
std::optional<std::string> hf_to_gguf_name(const ArchFamily& arch, std::string_view hf_name);
// Hugging Face name of routed expert `expert`'s tensor of `role`
// (ExpertGate/Up/Down) in `layer`; nullopt when the family has none.
std::optional<std::string> expert_tensor_name(const ArchFamily& arch, Role role, int64_t layer, int64_t expert);
// GGUF files stack a layer's experts in one tensor per role:
// blk.N.ffn_gate_exps / ffn_up_exps / ffn_down_exps ([experts, out, in]).
// The role and layer of such a name, or nullopt.
std::optional<std::pair<Role, int64_t>> gguf_stacked_expert(std::string_view gguf_name);

// The table entry a Hugging Face name matches (and its layer, -1 outside).
const TensorDef* find_tensor_def(const ArchFamily& arch, std::string_view hf_name, int64_t* layer = nullptr);

// Tensor names outside the layers.
inline constexpr const char* kEmbedName = "model.embed_tokens.weight";
inline constexpr const char* kFinalNormName = "model.norm.weight";
inline constexpr const char* kLmHeadName = "lm_head.weight";

}  // namespace strata
