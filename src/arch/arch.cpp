#include "arch/arch.h"

#include <fmt/format.h>

#include "core/error.h"

namespace strata {
namespace {

using D = Dim;
using P = Presence;

// The decoder of every supported family: Llama's tensors, with Qwen2's q/k/v
// biases and Qwen3's per-head q/k norms as optional rows. Names as in
// transformers and in llama.cpp's llama-arch.cpp (LLM_TENSOR_*).
constexpr TensorDef kDecoderTensors[] = {
    {Role::Embed, "model.embed_tokens.weight", "token_embd.weight", Placement::Input, P::Required, 2, {D::Vocab, D::Hidden}},
    {Role::AttnNorm, "model.layers.%d.input_layernorm.weight", "blk.%d.attn_norm.weight", Placement::Repeating, P::Required, 1, {D::Hidden}},
    {Role::Q, "model.layers.%d.self_attn.q_proj.weight", "blk.%d.attn_q.weight", Placement::Repeating, P::Required, 2, {D::QDim, D::Hidden}},
    {Role::K, "model.layers.%d.self_attn.k_proj.weight", "blk.%d.attn_k.weight", Placement::Repeating, P::Required, 2, {D::KvDim, D::Hidden}},
    {Role::V, "model.layers.%d.self_attn.v_proj.weight", "blk.%d.attn_v.weight", Placement::Repeating, P::Required, 2, {D::KvDim, D::Hidden}},
    {Role::QBias, "model.layers.%d.self_attn.q_proj.bias", "blk.%d.attn_q.bias", Placement::Repeating, P::IfQkvBias, 1, {D::QDim}},
    {Role::KBias, "model.layers.%d.self_attn.k_proj.bias", "blk.%d.attn_k.bias", Placement::Repeating, P::IfQkvBias, 1, {D::KvDim}},
    {Role::VBias, "model.layers.%d.self_attn.v_proj.bias", "blk.%d.attn_v.bias", Placement::Repeating, P::IfQkvBias, 1, {D::KvDim}},
    {Role::QNorm, "model.layers.%d.self_attn.q_norm.weight", "blk.%d.attn_q_norm.weight", Placement::Repeating, P::IfQkNorm, 1, {D::HeadDim}},
    {Role::KNorm, "model.layers.%d.self_attn.k_norm.weight", "blk.%d.attn_k_norm.weight", Placement::Repeating, P::IfQkNorm, 1, {D::HeadDim}},
    {Role::O, "model.layers.%d.self_attn.o_proj.weight", "blk.%d.attn_output.weight", Placement::Repeating, P::Required, 2, {D::Hidden, D::QDim}},
    {Role::FfnNorm, "model.layers.%d.post_attention_layernorm.weight", "blk.%d.ffn_norm.weight", Placement::Repeating, P::Required, 1, {D::Hidden}},
    {Role::Gate, "model.layers.%d.mlp.gate_proj.weight", "blk.%d.ffn_gate.weight", Placement::Repeating, P::Required, 2, {D::Ffn, D::Hidden}},
    {Role::Up, "model.layers.%d.mlp.up_proj.weight", "blk.%d.ffn_up.weight", Placement::Repeating, P::Required, 2, {D::Ffn, D::Hidden}},
    {Role::Down, "model.layers.%d.mlp.down_proj.weight", "blk.%d.ffn_down.weight", Placement::Repeating, P::Required, 2, {D::Hidden, D::Ffn}},
    {Role::FinalNorm, "model.norm.weight", "output_norm.weight", Placement::Output, P::Required, 1, {D::Hidden}},
    {Role::LmHead, "lm_head.weight", "output.weight", Placement::Output, P::IfUntied, 2, {D::Vocab, D::Hidden}},
};

// Mistral is Llama with a different name (and llama.cpp writes its files as
// `llama`); Qwen2 adds q/k/v biases; Qwen3 replaces them with per-head q/k
// norms and states head_dim explicitly.
const ArchFamily kFamilies[] = {
    {"LlamaForCausalLM", "Llama", "llama", false, false, true, kDecoderTensors},
    {"MistralForCausalLM", "Mistral", "llama", false, false, true, kDecoderTensors},
    {"Qwen2ForCausalLM", "Qwen2", "qwen2", true, false, false, kDecoderTensors},
    {"Qwen3ForCausalLM", "Qwen3", "qwen3", false, true, false, kDecoderTensors},
};

int64_t dim_value(Dim d, const ModelConfig& c) {
  switch (d) {
    case Dim::Hidden: return c.hidden_size;
    case Dim::QDim: return c.q_dim();
    case Dim::KvDim: return c.kv_dim();
    case Dim::Ffn: return c.intermediate_size;
    case Dim::HeadDim: return c.head_dim;
    case Dim::Vocab: return c.vocab_size;
  }
  return 0;
}

bool present(const TensorDef& t, const ArchFamily& a, const ModelConfig& c) {
  switch (t.presence) {
    case Presence::Required: return true;
    case Presence::IfQkvBias: return a.qkv_bias || c.attention_bias;
    case Presence::IfQkNorm: return a.qk_norm;
    case Presence::IfUntied: return !c.tie_word_embeddings;
  }
  return false;
}

// "model.layers.%d.x" with layer 3 -> "model.layers.3.x".
std::string expand(const char* pattern, int64_t layer) {
  std::string s(pattern);
  size_t p = s.find("%d");
  if (p != std::string::npos) s.replace(p, 2, std::to_string(layer));
  return s;
}

// Matches `name` against `pattern`; a "%d" takes 1 to 9 digits.
bool match(std::string_view pattern, std::string_view name, int64_t* layer) {
  size_t p = pattern.find("%d");
  if (p == std::string_view::npos) {
    if (name != pattern) return false;
    *layer = -1;
    return true;
  }
  std::string_view head = pattern.substr(0, p), tail = pattern.substr(p + 2);
  if (!name.starts_with(head) || !name.ends_with(tail) || name.size() <= head.size() + tail.size()) return false;
  std::string_view digits = name.substr(head.size(), name.size() - head.size() - tail.size());
  if (digits.size() > 9 || (digits.size() > 1 && digits[0] == '0')) return false;
  int64_t v = 0;
  for (char ch : digits) {
    if (ch < '0' || ch > '9') return false;
    v = v * 10 + (ch - '0');
  }
  *layer = v;
  return true;
}

TensorSpec spec_of(const TensorDef& t, const ModelConfig& c, int64_t layer) {
  TensorSpec s{&t, expand(t.hf, layer), expand(t.gguf, layer), {}};
  for (uint8_t i = 0; i < t.rank; ++i) s.shape.push_back(dim_value(t.shape[i], c));
  return s;
}

}  // namespace

const ArchFamily& find_arch(const std::string& hf_class, const std::string& config_name) {
  for (const auto& f : kFamilies)
    if (hf_class == f.hf_class) return f;
  std::string list;
  for (const auto& f : kFamilies) list += (list.empty() ? "" : ", ") + std::string(f.hf_class);
  throw Error(fmt::format("{}: unknown architecture '{}' (supported: {})", config_name, hf_class, list));
}

const ArchFamily* find_arch_by_gguf(std::string_view gguf_arch) {
  for (const auto& f : kFamilies)
    if (gguf_arch == f.gguf_arch) return &f;
  return nullptr;
}

std::vector<std::string> supported_architectures() {
  std::vector<std::string> v;
  for (const auto& f : kFamilies) v.push_back(f.hf_class);
  return v;
}

std::vector<std::string> supported_gguf_architectures() {
  std::vector<std::string> v;
  for (const auto& f : kFamilies)
    if (v.empty() || v.back() != f.gguf_arch) v.push_back(f.gguf_arch);
  return v;
}

std::vector<TensorSpec> layer_tensors(const ArchFamily& arch, const ModelConfig& c, int64_t layer) {
  std::vector<TensorSpec> out;
  for (const TensorDef& t : arch.tensors)
    if (t.placement == Placement::Repeating && present(t, arch, c)) out.push_back(spec_of(t, c, layer));
  return out;
}

std::vector<TensorSpec> global_tensors(const ArchFamily& arch, const ModelConfig& c, Placement where) {
  std::vector<TensorSpec> out;
  for (const TensorDef& t : arch.tensors)
    if (t.placement == where && present(t, arch, c)) out.push_back(spec_of(t, c, -1));
  return out;
}

std::vector<TensorSpec> model_tensors(const ArchFamily& arch, const ModelConfig& c) {
  std::vector<TensorSpec> out = global_tensors(arch, c, Placement::Input);
  for (int64_t l = 0; l < c.num_layers; ++l)
    for (auto& t : layer_tensors(arch, c, l)) out.push_back(std::move(t));
  for (auto& t : global_tensors(arch, c, Placement::Output)) out.push_back(std::move(t));
  return out;
}

std::optional<std::string> gguf_to_hf_name(const ArchFamily& arch, std::string_view n) {
  int64_t layer = -1;
  for (const TensorDef& t : arch.tensors)
    if (match(t.gguf, n, &layer)) return expand(t.hf, layer);
  return std::nullopt;
}

std::optional<std::string> hf_to_gguf_name(const ArchFamily& arch, std::string_view n) {
  int64_t layer = -1;
  for (const TensorDef& t : arch.tensors)
    if (match(t.hf, n, &layer)) return expand(t.gguf, layer);
  return std::nullopt;
}

const TensorDef* find_tensor_def(const ArchFamily& arch, std::string_view n, int64_t* layer) {
  int64_t l = -1;
  for (const TensorDef& t : arch.tensors)
    if (match(t.hf, n, &l)) {
      if (layer) *layer = l;
      return &t;
    }
  return nullptr;
}

}  // namespace strata
