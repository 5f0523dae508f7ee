#include "arch/gguf_model.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <optional>
#include <vector>

#include "core/error.h"

namespace strata {

namespace {

// Llama 3's per-frequency RoPE factors as llama.cpp's converter bakes them
// into rope_freqs.weight (the divisor of each inverse frequency).
std::vector<double> llama3_factors(const ModelConfig& c) {
  const RopeScaling& s = c.rope_scaling;
  const double pi = 3.14159265358979323846;
  const double low_wavelen = double(s.original_max_position_embeddings) / s.low_freq_factor;
  const double high_wavelen = double(s.original_max_position_embeddings) / s.high_freq_factor;
  std::vector<double> f;
  for (int64_t i = 0; i < c.head_dim / 2; ++i) {
    const double inv = 1.0 / std::pow(c.rope_theta, double(2 * i) / double(c.head_dim));
    const double wavelen = 2 * pi / inv;
    if (wavelen < high_wavelen) f.push_back(1.0);
    else if (wavelen > low_wavelen) f.push_back(s.factor);
    else {
      const double smooth = (double(s.original_max_position_embeddings) / wavelen - s.low_freq_factor) /
                            (s.high_freq_factor - s.low_freq_factor);
      f.push_back(1.0 / ((1 - smooth) / s.factor + smooth));
    }
  }
  return f;
}

}  // namespace

ModelConfig gguf_model_config(const GgufHeader& h, const std::string& name, const std::vector<float>* rope_freqs) {
  auto str_key = [&](const std::string& key) -> std::string {
    const GgufValue* v = h.find(key);
    if (!v) throw Error(fmt::format("{}: metadata '{}' is missing", name, key));
    if (v->type != GgufType::String) throw Error(fmt::format("{}: metadata '{}' is not a string", name, key));
    return v->s;
  };
  auto int_key = [&](const std::string& key, std::optional<int64_t> dflt, int64_t lo, int64_t hi) -> int64_t {
    const GgufValue* v = h.find(key);
    if (!v) {
      if (dflt) return *dflt;
      throw Error(fmt::format("{}: metadata '{}' is missing", name, key));
    }
    if (!v->is_integer()) throw Error(fmt::format("{}: metadata '{}' is not an integer", name, key));
    const bool is_unsigned = v->type == GgufType::U8 || v->type == GgufType::U16 || v->type == GgufType::U32 ||
                             v->type == GgufType::U64;
    if ((is_unsigned && v->u > uint64_t(hi)) || (!is_unsigned && (v->i < lo || v->i > hi)))
      throw Error(fmt::format("{}: metadata '{}' = {} is out of range [{}, {}]", name, key,
                              is_unsigned ? std::to_string(v->u) : std::to_string(v->i), lo, hi));
    if (is_unsigned && int64_t(v->u) < lo)
      throw Error(fmt::format("{}: metadata '{}' = {} is out of range [{}, {}]", name, key, v->u, lo, hi));
    return v->i;
  };
  auto float_key = [&](const std::string& key, double dflt) -> double {
    const GgufValue* v = h.find(key);
    if (!v) return dflt;
    if (v->is_float()) return v->f;
    if (v->is_integer()) return double(v->i);
    throw Error(fmt::format("{}: metadata '{}' is not a number", name, key));
  };

  ModelConfig c;
  const std::string arch = str_key("general.architecture");
  const ArchFamily* family = find_arch_by_gguf(arch);
  if (!family)
    throw Error(fmt::format("{}: general.architecture '{}' is not supported ({})", name, arch,
                            fmt::join(supported_gguf_architectures(), ", ")));
  // llama.cpp writes Mixtral as `llama` with experts.
  if (arch == "llama" && h.find("llama.expert_count") && int_key("llama.expert_count", std::nullopt, 0, 1 << 16) > 0)
    family = &find_arch("MixtralForCausalLM", name);
  c.architecture = family->hf_class;
  c.model_type = arch;
  constexpr int64_t kBig = int64_t(1) << 31;
  c.num_layers = int_key(arch + ".block_count", std::nullopt, 1, 1 << 16);
  c.hidden_size = int_key(arch + ".embedding_length", std::nullopt, 1, 1 << 20);
  c.intermediate_size = int_key(arch + ".feed_forward_length", std::nullopt, 1, 1 << 24);
  c.num_heads = int_key(arch + ".attention.head_count", std::nullopt, 1, 1 << 16);
  c.num_kv_heads = int_key(arch + ".attention.head_count_kv", c.num_heads, 1, 1 << 16);
  if (c.num_heads % c.num_kv_heads != 0)
    throw Error(fmt::format("{}: head_count {} is not a multiple of head_count_kv {}", name, c.num_heads,
                            c.num_kv_heads));
  c.head_dim = int_key(arch + ".attention.key_length", c.hidden_size / c.num_heads, 2, 1 << 16);
  if (c.head_dim % 2 != 0) throw Error(fmt::format("{}: head dimension {} is odd", name, c.head_dim));
  c.max_position_embeddings = int_key(arch + ".context_length", 2048, 1, kBig);
  c.rms_norm_eps = float_key(arch + ".attention.layer_norm_rms_epsilon", 1e-6);
  c.rope_theta = float_key(arch + ".rope.freq_base", 10000.0);
  if (!(c.rms_norm_eps >= 0 && c.rms_norm_eps < 1) || !(c.rope_theta > 1))
    throw Error(fmt::format("{}: rms epsilon {} or rope.freq_base {} out of range", name, c.rms_norm_eps, c.rope_theta));

  // RoPE scaling: the standard linear keys, and Llama 3's spectrum reshaping
  // in strata's own keys (llama.cpp bakes it into a rope_freqs tensor).
  if (const GgufValue* st = h.find(arch + ".rope.scaling.type")) {
    if (st->type != GgufType::String) throw Error(fmt::format("{}: rope.scaling.type is not a string", name));
    if (st->s == "linear") {
      c.rope_scaling.type = RopeScaling::Type::Linear;
      c.rope_scaling.factor = float_key(arch + ".rope.scaling.factor", 1.0);
    } else if (st->s != "none") {
      throw Error(fmt::format("{}: rope.scaling.type '{}' is not supported", name, st->s));
    }
  }
  if (h.find("strata.rope.llama3.factor")) {
    c.rope_scaling.type = RopeScaling::Type::Llama3;
    c.rope_scaling.factor = float_key("strata.rope.llama3.factor", 1.0);
    c.rope_scaling.low_freq_factor = float_key("strata.rope.llama3.low_freq_factor", 1.0);
    c.rope_scaling.high_freq_factor = float_key("strata.rope.llama3.high_freq_factor", 4.0);
    c.rope_scaling.original_max_position_embeddings =
        int_key("strata.rope.llama3.original_context_length", 8192, 1, kBig);
  } else {
    for (const TensorInfo& t : h.infos) {
      if (t.name != "rope_freqs.weight") continue;
      // llama.cpp's files carry Llama 3 scaling as these factors only. The
      // parameters are recovered (factor = the largest factor; low/high 1
      // and 4 and the original context 8192 unless the keys say otherwise,
      // Llama 3.1-3.3's values) and must reproduce every factor.
      if (!rope_freqs)
        throw Error(fmt::format("{}: tensor rope_freqs.weight needs its data (read the file with read_gguf_model)",
                                name));
      if (rope_freqs->size() != size_t(c.head_dim / 2) || rope_freqs->empty())
        throw Error(fmt::format("{}: rope_freqs.weight has {} values for head dimension {}", name, rope_freqs->size(),
                                c.head_dim));
      c.rope_scaling.type = RopeScaling::Type::Llama3;
      c.rope_scaling.factor = *std::max_element(rope_freqs->begin(), rope_freqs->end());
      c.rope_scaling.low_freq_factor = float_key(arch + ".rope.scaling.low_freq_factor", 1.0);
      c.rope_scaling.high_freq_factor = float_key(arch + ".rope.scaling.high_freq_factor", 4.0);
      c.rope_scaling.original_max_position_embeddings =
          int_key(arch + ".rope.scaling.original_context_length", 8192, 1, kBig);
      if (!(c.rope_scaling.factor >= 1) || !(c.rope_scaling.high_freq_factor > c.rope_scaling.low_freq_factor) ||
          !(c.rope_scaling.low_freq_factor > 0))
        throw Error(fmt::format("{}: rope_freqs.weight is not Llama 3 RoPE scaling", name));
      const std::vector<double> want = llama3_factors(c);
      for (size_t i = 0; i < want.size(); ++i)
        if (!(std::fabs(double((*rope_freqs)[i]) - want[i]) <= 1e-4 * want[i]))
          throw Error(fmt::format("{}: rope_freqs.weight[{}] = {} is not Llama 3 RoPE scaling (factor {}, expected {})",
                                  name, i, (*rope_freqs)[i], c.rope_scaling.factor, want[i]));
    }
  }
  if (!(c.rope_scaling.factor > 0)) throw Error(fmt::format("{}: rope scaling factor must be positive", name));

  const TensorInfo* embd = nullptr;
  bool has_output = false, has_bias = false;
  for (const TensorInfo& t : h.infos) {
    if (t.name == "token_embd.weight") embd = &t;
    if (t.name == "output.weight") has_output = true;
    if (t.name == "blk.0.attn_q.bias") has_bias = true;
  }
  // The vocabulary is the tokenizer's, as in llama.cpp; the embedding's
  // shape is then checked against it by open_model_layout.
  if (const GgufValue* toks = h.find("tokenizer.ggml.tokens")) {
    if (toks->type != GgufType::Array || toks->elem_type != GgufType::String)
      throw Error(fmt::format("{}: metadata 'tokenizer.ggml.tokens' is not an array of strings", name));
    if (toks->array_len == 0 || toks->array_len > (uint64_t(1) << 31))
      throw Error(fmt::format("{}: tokenizer.ggml.tokens has {} tokens", name, toks->array_len));
    c.vocab_size = int64_t(toks->array_len);
  } else if (h.find(arch + ".vocab_size")) {
    c.vocab_size = int_key(arch + ".vocab_size", std::nullopt, 1, int64_t(1) << 31);
  } else {
    if (!embd) throw Error(fmt::format("{}: tensor token_embd.weight is missing", name));
    if (embd->shape.size() != 2)
      throw Error(fmt::format("{}: tensor token_embd.weight has {} dimensions (expected 2)", name, embd->shape.size()));
    c.vocab_size = embd->shape[0];
  }
  if (family->moe) {
    // As llama.cpp's graphs for these: every layer sparse; Mixtral and
    // qwen3moe renormalize the top-k weights, qwen2moe does not and adds a
    // shared expert.
    c.num_experts = int_key(arch + ".expert_count", std::nullopt, 1, 1 << 16);
    c.experts_per_token = int_key(arch + ".expert_used_count", std::nullopt, 1, c.num_experts);
    c.moe_intermediate_size = int_key(arch + ".expert_feed_forward_length", c.intermediate_size, 1, 1 << 24);
    c.norm_topk_prob = arch != "qwen2moe";  // Mixtral and qwen3moe renormalize
    if (arch == "qwen2moe")
      c.shared_expert_intermediate_size = int_key(arch + ".expert_shared_feed_forward_length", std::nullopt, 1, 1 << 24);
  }
  c.tie_word_embeddings = !has_output;
  c.attention_bias = has_bias;
  c.rope_interleaved = family->gguf_rope_interleaved;
  c.hidden_act = "silu";
  const int64_t max_id = c.vocab_size - 1;
  // Special ids: llama.cpp writes "none" as -1 in a u32 (0xFFFFFFFF), e.g.
  // tokenizer.ggml.padding_token_id; such ids are absent, not errors.
  auto token_id = [&](const std::string& key) -> std::optional<int32_t> {
    const GgufValue* v = h.find(key);
    if (!v) return std::nullopt;
    if (v->is_integer() && (v->u == 0xFFFFFFFFu || v->i == -1)) return std::nullopt;
    return int32_t(int_key(key, std::nullopt, 0, max_id));
  };
  if (auto bos = token_id("tokenizer.ggml.bos_token_id")) c.bos_token_id = *bos;
  // End of generation: eos, eot (end of turn) and eom, as llama.cpp's EOG set.
  auto add_eog = [&](int32_t id) {
    if (std::find(c.eos_token_ids.begin(), c.eos_token_ids.end(), id) == c.eos_token_ids.end())
      c.eos_token_ids.push_back(id);
  };
  for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"})
    if (auto id = token_id(key)) add_eog(*id);
  // llama.cpp also ends generation at tokens it recognizes by their text
  // (llama-vocab.cpp's EOG list), whatever the ids above say.
  if (const GgufValue* toks = h.find("tokenizer.ggml.tokens"))
    for (size_t i = 0; i < toks->strs.size(); ++i) {
      const std::string& t = toks->strs[i];
      if (t == "<|eot_id|>" || t == "<|im_end|>" || t == "<|end|>" || t == "<end_of_turn>" || t == "<|endoftext|>" ||
          t == "<|eom_id|>" || t == "<EOT>" || t == "_<EOT>")
        add_eog(int32_t(i));
    }
  return c;
}

TensorIndex gguf_hf_index(const GgufHeader& h, const ArchFamily& arch, const std::filesystem::path& file) {
  TensorIndex idx;
  idx.files.push_back(file);
  // A stacked expert tensor [experts, out, in] becomes one view per expert:
  // its rows are contiguous, so expert e is the e-th slice of the bytes and
  // is read by that byte range alone.
  for (const TensorInfo& t : h.infos) {
    const auto stacked = gguf_stacked_expert(t.name);
    if (!stacked || !arch.moe) {
      idx.tensors.push_back(t);
      // llama.cpp stores the shared expert's gate (one output) as a vector.
      if (arch.moe && t.shape.size() == 1 && t.name.ends_with(".ffn_gate_inp_shexp.weight"))
        idx.tensors.back().shape = {1, t.shape[0]};
      continue;
    }
    if (t.shape.size() != 3 || t.shape[0] <= 0 || t.nbytes % uint64_t(t.shape[0]) != 0)
      throw Error(fmt::format("{}: tensor '{}' is not a stack of experts [experts, rows, columns]", file.string(),
                              t.name));
    const uint64_t per = t.nbytes / uint64_t(t.shape[0]);
    for (int64_t e = 0; e < t.shape[0]; ++e) {
      TensorInfo v = t;
      v.name = *expert_tensor_name(arch, stacked->first, stacked->second, e);
      v.shape = {t.shape[1], t.shape[2]};
      v.offset = t.offset + uint64_t(e) * per;
      v.nbytes = per;
      idx.tensors.push_back(std::move(v));
    }
  }
  for (size_t i = 0; i < idx.tensors.size(); ++i) {
    TensorInfo& t = idx.tensors[i];
    t.name = gguf_to_hf_name(arch, t.name).value_or(t.name);  // expert views have their HF names already
    if (!idx.by_name.emplace(t.name, i).second)
      throw Error(fmt::format("{}: two tensors are named '{}' (after mapping GGUF names)", file.string(), t.name));
  }
  return idx;
}

GgufModel read_gguf_model(const std::filesystem::path& path) {
  GgufFile f = read_gguf(path);
  GgufModel g;
  std::vector<float> rope_freqs;
  bool has_rope_freqs = false;
  if (const TensorInfo* t = f.index.find("rope_freqs.weight")) {
    if (t->dtype != DType::F32 || t->shape.size() != 1 || t->shape[0] > 65536)
      throw Error(fmt::format("{}: rope_freqs.weight is not a short F32 vector", path.string()));
    rope_freqs.resize(size_t(t->shape[0]));
    std::ifstream in(path, std::ios::binary);
    in.seekg(std::streamoff(t->offset));
    in.read(reinterpret_cast<char*>(rope_freqs.data()), std::streamsize(t->nbytes));
    if (!in) throw Error(fmt::format("{}: cannot read rope_freqs.weight", path.string()));
    has_rope_freqs = true;
  }
  g.config = gguf_model_config(f.header, path.string(), has_rope_freqs ? &rope_freqs : nullptr);
  g.arch = &find_arch(g.config.architecture, path.string());
  g.index = gguf_hf_index(f.header, *g.arch, path);
  g.header = std::move(f.header);
  return g;
}

}  // namespace strata
