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
#define STRATA_ATTENTION_ROWS                                                                                       \
  {Role::Embed, "model.embed_tokens.weight", "token_embd.weight", Placement::Input, P::Required, 2, {D::Vocab, D::Hidden}}, \
  {Role::AttnNorm, "model.layers.%d.input_layernorm.weight", "blk.%d.attn_norm.weight", Placement::Repeating, P::Required, 1, {D::Hidden}}, \
  {Role::Q, "model.layers.%d.self_attn.q_proj.weight", "blk.%d.attn_q.weight", Placement::Repeating, P::Required, 2, {D::QDim, D::Hidden}}, \
  {Role::K, "model.layers.%d.self_attn.k_proj.weight", "blk.%d.attn_k.weight", Placement::Repeating, P::Required, 2, {D::KvDim, D::Hidden}}, \
  {Role::V, "model.layers.%d.self_attn.v_proj.weight", "blk.%d.attn_v.weight", Placement::Repeating, P::Required, 2, {D::KvDim, D::Hidden}}, \
  {Role::QBias, "model.layers.%d.self_attn.q_proj.bias", "blk.%d.attn_q.bias", Placement::Repeating, P::IfQkvBias, 1, {D::QDim}}, \
  {Role::KBias, "model.layers.%d.self_attn.k_proj.bias", "blk.%d.attn_k.bias", Placement::Repeating, P::IfQkvBias, 1, {D::KvDim}}, \
  {Role::VBias, "model.layers.%d.self_attn.v_proj.bias", "blk.%d.attn_v.bias", Placement::Repeating, P::IfQkvBias, 1, {D::KvDim}}, \
  {Role::QNorm, "model.layers.%d.self_attn.q_norm.weight", "blk.%d.attn_q_norm.weight", Placement::Repeating, P::IfQkNorm, 1, {D::HeadDim}}, \
  {Role::KNorm, "model.layers.%d.self_attn.k_norm.weight", "blk.%d.attn_k_norm.weight", Placement::Repeating, P::IfQkNorm, 1, {D::HeadDim}}, \
  {Role::O, "model.layers.%d.self_attn.o_proj.weight", "blk.%d.attn_output.weight", Placement::Repeating, P::Required, 2, {D::Hidden, D::QDim}}, \
  {Role::FfnNorm, "model.layers.%d.post_attention_layernorm.weight", "blk.%d.ffn_norm.weight", Placement::Repeating, P::Required, 1, {D::Hidden}}

#define STRATA_DENSE_MLP_ROWS(presence)                                                                              \
  {Role::Gate, "model.layers.%d.mlp.gate_proj.weight", "blk.%d.ffn_gate.weight", Placement::Repeating, presence, 2, {D::Ffn, D::Hidden}}, \
  {Role::Up, "model.layers.%d.mlp.up_proj.weight", "blk.%d.ffn_up.weight", Placement::Repeating, presence, 2, {D::Ffn, D::Hidden}}, \
  {Role::Down, "model.layers.%d.mlp.down_proj.weight", "blk.%d.ffn_down.weight", Placement::Repeating, presence, 2, {D::Hidden, D::Ffn}}

#define STRATA_OUTPUT_ROWS                                                                                          \
  {Role::FinalNorm, "model.norm.weight", "output_norm.weight", Placement::Output, P::Required, 1, {D::Hidden}}, \
  {Role::LmHead, "lm_head.weight", "output.weight", Placement::Output, P::IfUntied, 2, {D::Vocab, D::Hidden}}

// The decoder of every dense family: Llama's tensors, with Qwen2's q/k/v
// biases and Qwen3's per-head q/k norms as optional rows. Names as in
// transformers and in llama.cpp's llama-arch.cpp (LLM_TENSOR_*).
constexpr TensorDef kDecoderTensors[] = {
    STRATA_ATTENTION_ROWS,
    STRATA_DENSE_MLP_ROWS(P::Required),
    STRATA_OUTPUT_ROWS,
};

// transformers' MixtralSparseMoeBlock: a router `gate` and experts w1 (gate),
// w3 (up), w2 (down). Every layer is sparse.
constexpr TensorDef kMixtralTensors[] = {
    STRATA_ATTENTION_ROWS,
    {Role::Router, "model.layers.%d.block_sparse_moe.gate.weight", "blk.%d.ffn_gate_inp.weight", Placement::Repeating, P::IfMoe, 2, {D::Experts, D::Hidden}},
    {Role::ExpertGate, "model.layers.%d.block_sparse_moe.experts.%e.w1.weight", "", Placement::Repeating, P::IfMoe, 2, {D::MoeFfn, D::Hidden}, true},
    {Role::ExpertUp, "model.layers.%d.block_sparse_moe.experts.%e.w3.weight", "", Placement::Repeating, P::IfMoe, 2, {D::MoeFfn, D::Hidden}, true},
    {Role::ExpertDown, "model.layers.%d.block_sparse_moe.experts.%e.w2.weight", "", Placement::Repeating, P::IfMoe, 2, {D::Hidden, D::MoeFfn}, true},
    STRATA_OUTPUT_ROWS,
};

// transformers' Qwen2MoeSparseMoeBlock / Qwen3MoeSparseMoeBlock: router
// `mlp.gate`, experts with gate/up/down_proj, and (Qwen2MoE) a shared expert
// scaled by sigmoid(shared_expert_gate . x). Layers off decoder_sparse_step
// or in mlp_only_layers keep a dense MLP of intermediate_size.
constexpr TensorDef kQwenMoeTensors[] = {
    STRATA_ATTENTION_ROWS,
    STRATA_DENSE_MLP_ROWS(P::IfDenseMlp),
    {Role::Router, "model.layers.%d.mlp.gate.weight", "blk.%d.ffn_gate_inp.weight", Placement::Repeating, P::IfMoe, 2, {D::Experts, D::Hidden}},
    {Role::SharedGate, "model.layers.%d.mlp.shared_expert.gate_proj.weight", "blk.%d.ffn_gate_shexp.weight", Placement::Repeating, P::IfSharedExpert, 2, {D::SharedFfn, D::Hidden}},
    {Role::SharedUp, "model.layers.%d.mlp.shared_expert.up_proj.weight", "blk.%d.ffn_up_shexp.weight", Placement::Repeating, P::IfSharedExpert, 2, {D::SharedFfn, D::Hidden}},
    {Role::SharedDown, "model.layers.%d.mlp.shared_expert.down_proj.weight", "blk.%d.ffn_down_shexp.weight", Placement::Repeating, P::IfSharedExpert, 2, {D::Hidden, D::SharedFfn}},
    {Role::SharedExpertGate, "model.layers.%d.mlp.shared_expert_gate.weight", "blk.%d.ffn_gate_inp_shexp.weight", Placement::Repeating, P::IfSharedExpert, 2, {D::One, D::Hidden}},
    {Role::ExpertGate, "model.layers.%d.mlp.experts.%e.gate_proj.weight", "", Placement::Repeating, P::IfMoe, 2, {D::MoeFfn, D::Hidden}, true},
    {Role::ExpertUp, "model.layers.%d.mlp.experts.%e.up_proj.weight", "", Placement::Repeating, P::IfMoe, 2, {D::MoeFfn, D::Hidden}, true},
    {Role::ExpertDown, "model.layers.%d.mlp.experts.%e.down_proj.weight", "", Placement::Repeating, P::IfMoe, 2, {D::Hidden, D::MoeFfn}, true},
    STRATA_OUTPUT_ROWS,
};

// transformers' DeepseekV3Attention (multi-head latent attention) and
// DeepseekV3MoE (routed experts, a router with e_score_correction_bias, and
// n_shared_experts fused into one always-on MLP); the first
// first_k_dense_replace layers keep a dense MLP. GGUF names are llama.cpp's
// deepseek2 (LLM_TENSOR_ATTN_Q_A, ..., LLM_TENSOR_FFN_EXP_PROBS_B).
constexpr TensorDef kDeepseekV3Tensors[] = {
    {Role::Embed, "model.embed_tokens.weight", "token_embd.weight", Placement::Input, P::Required, 2, {D::Vocab, D::Hidden}},
    {Role::AttnNorm, "model.layers.%d.input_layernorm.weight", "blk.%d.attn_norm.weight", Placement::Repeating, P::Required, 1, {D::Hidden}},
    {Role::QA, "model.layers.%d.self_attn.q_a_proj.weight", "blk.%d.attn_q_a.weight", Placement::Repeating, P::IfQLora, 2, {D::QLora, D::Hidden}},
    {Role::QANorm, "model.layers.%d.self_attn.q_a_layernorm.weight", "blk.%d.attn_q_a_norm.weight", Placement::Repeating, P::IfQLora, 1, {D::QLora}},
    {Role::QB, "model.layers.%d.self_attn.q_b_proj.weight", "blk.%d.attn_q_b.weight", Placement::Repeating, P::IfQLora, 2, {D::QDim, D::QLora}},
    {Role::Q, "model.layers.%d.self_attn.q_proj.weight", "blk.%d.attn_q.weight", Placement::Repeating, P::IfNoQLora, 2, {D::QDim, D::Hidden}},
    {Role::KvA, "model.layers.%d.self_attn.kv_a_proj_with_mqa.weight", "blk.%d.attn_kv_a_mqa.weight", Placement::Repeating, P::Required, 2, {D::KvA, D::Hidden}},
    {Role::KvANorm, "model.layers.%d.self_attn.kv_a_layernorm.weight", "blk.%d.attn_kv_a_norm.weight", Placement::Repeating, P::Required, 1, {D::KvLora}},
    {Role::KvB, "model.layers.%d.self_attn.kv_b_proj.weight", "blk.%d.attn_kv_b.weight", Placement::Repeating, P::Required, 2, {D::KvB, D::KvLora}},
    {Role::O, "model.layers.%d.self_attn.o_proj.weight", "blk.%d.attn_output.weight", Placement::Repeating, P::Required, 2, {D::Hidden, D::AttnOut}},
    {Role::FfnNorm, "model.layers.%d.post_attention_layernorm.weight", "blk.%d.ffn_norm.weight", Placement::Repeating, P::Required, 1, {D::Hidden}},
    STRATA_DENSE_MLP_ROWS(P::IfDenseMlp),
    {Role::Router, "model.layers.%d.mlp.gate.weight", "blk.%d.ffn_gate_inp.weight", Placement::Repeating, P::IfMoe, 2, {D::Experts, D::Hidden}},
    {Role::RouterBias, "model.layers.%d.mlp.gate.e_score_correction_bias", "blk.%d.exp_probs_b.bias", Placement::Repeating, P::IfMoe, 1, {D::Experts}},
    {Role::SharedGate, "model.layers.%d.mlp.shared_experts.gate_proj.weight", "blk.%d.ffn_gate_shexp.weight", Placement::Repeating, P::IfSharedExpert, 2, {D::SharedFfn, D::Hidden}},
    {Role::SharedUp, "model.layers.%d.mlp.shared_experts.up_proj.weight", "blk.%d.ffn_up_shexp.weight", Placement::Repeating, P::IfSharedExpert, 2, {D::SharedFfn, D::Hidden}},
    {Role::SharedDown, "model.layers.%d.mlp.shared_experts.down_proj.weight", "blk.%d.ffn_down_shexp.weight", Placement::Repeating, P::IfSharedExpert, 2, {D::Hidden, D::SharedFfn}},
    {Role::ExpertGate, "model.layers.%d.mlp.experts.%e.gate_proj.weight", "", Placement::Repeating, P::IfMoe, 2, {D::MoeFfn, D::Hidden}, true},
    {Role::ExpertUp, "model.layers.%d.mlp.experts.%e.up_proj.weight", "", Placement::Repeating, P::IfMoe, 2, {D::MoeFfn, D::Hidden}, true},
    {Role::ExpertDown, "model.layers.%d.mlp.experts.%e.down_proj.weight", "", Placement::Repeating, P::IfMoe, 2, {D::Hidden, D::MoeFfn}, true},
    STRATA_OUTPUT_ROWS,
};

#undef STRATA_ATTENTION_ROWS
#undef STRATA_DENSE_MLP_ROWS
#undef STRATA_OUTPUT_ROWS

// Mistral is Llama with a different name (and llama.cpp writes its files as
// `llama`); Qwen2 adds q/k/v biases; Qwen3 replaces them with per-head q/k
// norms and states head_dim explicitly. The MoE families take their
// attention from the same rows (Qwen2MoE with biases, Qwen3MoE with q/k norms).
const ArchFamily kFamilies[] = {
    {"LlamaForCausalLM", "Llama", "llama", false, false, true, kDecoderTensors},
    {"MistralForCausalLM", "Mistral", "llama", false, false, true, kDecoderTensors},
    {"Qwen2ForCausalLM", "Qwen2", "qwen2", true, false, false, kDecoderTensors},
    {"Qwen3ForCausalLM", "Qwen3", "qwen3", false, true, false, kDecoderTensors},
    {"MixtralForCausalLM", "Mixtral", nullptr, false, false, true, kMixtralTensors, true},
    {"Qwen2MoeForCausalLM", "Qwen2MoE", "qwen2moe", true, false, false, kQwenMoeTensors, true},
    {"Qwen3MoeForCausalLM", "Qwen3MoE", "qwen3moe", false, true, false, kQwenMoeTensors, true},
    {"DeepseekV3ForCausalLM", "DeepSeek-V3", nullptr, false, false, true, kDeepseekV3Tensors, true},
};

int64_t dim_value(Dim d, const ModelConfig& c) {
  switch (d) {
    case Dim::Hidden: return c.hidden_size;
    case Dim::QDim: return c.q_dim();
    case Dim::KvDim: return c.kv_dim();
    case Dim::Ffn: return c.intermediate_size;
    case Dim::HeadDim: return c.head_dim;
    case Dim::Vocab: return c.vocab_size;
    case Dim::Experts: return c.num_experts;
    case Dim::MoeFfn: return c.moe_intermediate_size;
    case Dim::SharedFfn: return c.shared_expert_intermediate_size;
    case Dim::One: return 1;
    case Dim::QLora: return c.q_lora_rank;
    case Dim::KvLora: return c.kv_lora_rank;
    case Dim::KvA: return c.kv_lora_rank + c.qk_rope_head_dim;
    case Dim::KvB: return c.num_heads * (c.qk_nope_head_dim + c.v_head_dim);
    case Dim::AttnOut: return c.attn_out_dim();
  }
  return 0;
}

// `layer` is -1 outside the layers.
bool present(const TensorDef& t, const ArchFamily& a, const ModelConfig& c, int64_t layer) {
  switch (t.presence) {
    case Presence::IfDenseMlp: return !c.moe_layer(layer);
    case Presence::IfMoe: return c.moe_layer(layer);
    case Presence::IfSharedExpert: return c.moe_layer(layer) && c.shared_expert_intermediate_size > 0;
    case Presence::Required: return true;
    case Presence::IfQkvBias: return a.qkv_bias || c.attention_bias;
    case Presence::IfQkNorm: return a.qk_norm;
    case Presence::IfUntied: return !c.tie_word_embeddings;
    case Presence::IfQLora: return c.q_lora_rank > 0;
    case Presence::IfNoQLora: return c.q_lora_rank <= 0;
  }
  return false;
}

// "model.layers.%d.experts.%e.x" with layer 3, expert 5 -> "model.layers.3.experts.5.x".
std::string expand(const char* pattern, int64_t layer, int64_t expert = -1) {
  std::string s(pattern);
  size_t p = s.find("%d");
  if (p != std::string::npos) s.replace(p, 2, std::to_string(layer));
  p = s.find("%e");
  if (p != std::string::npos) s.replace(p, 2, std::to_string(expert));
  return s;
}

// Reads 1 to 9 digits (no leading zero) at the start of `s`.
bool take_number(std::string_view& s, int64_t* v) {
  size_t n = 0;
  while (n < s.size() && n < 10 && s[n] >= '0' && s[n] <= '9') ++n;
  if (n == 0 || n > 9 || (n > 1 && s[0] == '0')) return false;
  *v = 0;
  for (size_t i = 0; i < n; ++i) *v = *v * 10 + (s[i] - '0');
  s.remove_prefix(n);
  return true;
}

// Matches `name` against `pattern`; "%d" (layer) and "%e" (expert) each
// take 1 to 9 digits. An empty pattern matches nothing.
bool match(std::string_view pattern, std::string_view name, int64_t* layer, int64_t* expert = nullptr) {
  if (pattern.empty()) return false;
  *layer = -1;
  if (expert) *expert = -1;
  while (!pattern.empty()) {
    size_t p = pattern.find('%');
    if (p == std::string_view::npos || p + 1 >= pattern.size()) return name == pattern;
    if (name.substr(0, p) != pattern.substr(0, p)) return false;
    name.remove_prefix(p);
    const char kind = pattern[p + 1];
    pattern.remove_prefix(p + 2);
    int64_t v = 0;
    if (!take_number(name, &v)) return false;
    if (kind == 'd') *layer = v;
    else if (kind == 'e' && expert) *expert = v;
  }
  return name.empty();
}

TensorSpec spec_of(const TensorDef& t, const ModelConfig& c, int64_t layer, int64_t expert = -1) {
  TensorSpec s{&t, expand(t.hf, layer, expert), expand(t.gguf, layer, expert), {}, expert};
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
    if (f.gguf_arch && gguf_arch == f.gguf_arch) return &f;
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
    if (f.gguf_arch && (v.empty() || v.back() != f.gguf_arch)) v.push_back(f.gguf_arch);
  return v;
}

std::vector<TensorSpec> layer_tensors(const ArchFamily& arch, const ModelConfig& c, int64_t layer) {
  std::vector<TensorSpec> out;
  // Per-expert tensors come after the layer's others, expert by expert
  // (gate, up, down of expert 0, then expert 1, ...): the order a file
  // written from this list keeps each expert's bytes contiguous.
  for (const TensorDef& t : arch.tensors)
    if (t.placement == Placement::Repeating && !t.per_expert && present(t, arch, c, layer))
      out.push_back(spec_of(t, c, layer));
  for (int64_t e = 0; e < c.num_experts; ++e)
    for (const TensorDef& t : arch.tensors)
      if (t.placement == Placement::Repeating && t.per_expert && present(t, arch, c, layer))
        out.push_back(spec_of(t, c, layer, e));
  return out;
}

std::vector<TensorSpec> global_tensors(const ArchFamily& arch, const ModelConfig& c, Placement where) {
  std::vector<TensorSpec> out;
  for (const TensorDef& t : arch.tensors)
    if (t.placement == where && present(t, arch, c, -1)) out.push_back(spec_of(t, c, -1));
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
    if (match(t.hf, n, &layer)) {
      if (!*t.gguf) return std::nullopt;  // per-expert: GGUF stacks experts in one tensor
      return expand(t.gguf, layer);
    }
  return std::nullopt;
}

std::optional<std::string> expert_tensor_name(const ArchFamily& arch, Role role, int64_t layer, int64_t expert) {
  for (const TensorDef& t : arch.tensors)
    if (t.per_expert && t.role == role) return expand(t.hf, layer, expert);
  return std::nullopt;
}

std::optional<std::pair<Role, int64_t>> gguf_stacked_expert(std::string_view n) {
  static constexpr std::pair<const char*, Role> kStacked[] = {{"blk.%d.ffn_gate_exps.weight", Role::ExpertGate},
                                                              {"blk.%d.ffn_up_exps.weight", Role::ExpertUp},
                                                              {"blk.%d.ffn_down_exps.weight", Role::ExpertDown}};
  int64_t layer = -1;
  for (const auto& [pattern, role] : kStacked)
    if (match(pattern, n, &layer)) return std::make_pair(role, layer);
  return std::nullopt;
}

const TensorDef* find_tensor_def(const ArchFamily& arch, std::string_view n, int64_t* layer) {
  int64_t l = -1, e = -1;
  for (const TensorDef& t : arch.tensors)
    if (match(t.hf, n, &l, &e)) {
      if (layer) *layer = l;
      return &t;
    }
  return nullptr;
}

}  // namespace strata
