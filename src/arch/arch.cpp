#include "arch/arch.h"

#include <fmt/format.h>

#include "core/error.h"

namespace strata {
namespace {

// Mistral is Llama with a different name; Qwen2 adds q/k/v biases; Qwen3
// replaces them with per-head q/k norms and states head_dim explicitly.
const ArchFamily kFamilies[] = {
    {"LlamaForCausalLM", "Llama", false, false},
    {"MistralForCausalLM", "Mistral", false, false},
    {"Qwen2ForCausalLM", "Qwen2", true, false},
    {"Qwen3ForCausalLM", "Qwen3", false, true},
};

}  // namespace

const ArchFamily& find_arch(const std::string& hf_class, const std::string& config_name) {
  for (const auto& f : kFamilies)
    if (hf_class == f.hf_class) return f;
  std::string list;
  for (const auto& f : kFamilies) list += (list.empty() ? "" : ", ") + std::string(f.hf_class);
  throw Error(fmt::format("{}: unknown architecture '{}' (supported: {})", config_name, hf_class, list));
}

std::vector<std::string> supported_architectures() {
  std::vector<std::string> v;
  for (const auto& f : kFamilies) v.push_back(f.hf_class);
  return v;
}

std::vector<LayerTensorSpec> layer_tensors(const ArchFamily& arch, const ModelConfig& c, int64_t layer) {
  const std::string p = fmt::format("model.layers.{}.", layer);
  const int64_t h = c.hidden_size, q = c.q_dim(), kv = c.kv_dim(), ff = c.intermediate_size;
  std::vector<LayerTensorSpec> t;
  t.push_back({Role::AttnNorm, p + "input_layernorm.weight", {h}});
  t.push_back({Role::Q, p + "self_attn.q_proj.weight", {q, h}});
  t.push_back({Role::K, p + "self_attn.k_proj.weight", {kv, h}});
  t.push_back({Role::V, p + "self_attn.v_proj.weight", {kv, h}});
  if (arch.qkv_bias || c.attention_bias) {
    t.push_back({Role::QBias, p + "self_attn.q_proj.bias", {q}});
    t.push_back({Role::KBias, p + "self_attn.k_proj.bias", {kv}});
    t.push_back({Role::VBias, p + "self_attn.v_proj.bias", {kv}});
  }
  if (arch.qk_norm) {
    t.push_back({Role::QNorm, p + "self_attn.q_norm.weight", {c.head_dim}});
    t.push_back({Role::KNorm, p + "self_attn.k_norm.weight", {c.head_dim}});
  }
  t.push_back({Role::O, p + "self_attn.o_proj.weight", {h, q}});
  t.push_back({Role::FfnNorm, p + "post_attention_layernorm.weight", {h}});
  t.push_back({Role::Gate, p + "mlp.gate_proj.weight", {ff, h}});
  t.push_back({Role::Up, p + "mlp.up_proj.weight", {ff, h}});
  t.push_back({Role::Down, p + "mlp.down_proj.weight", {h, ff}});
  return t;
}

}  // namespace strata
