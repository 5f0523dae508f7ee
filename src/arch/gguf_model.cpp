#include "arch/gguf_model.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <optional>
#include <set>

#include "core/error.h"

namespace strata {

ModelConfig gguf_model_config(const GgufHeader& h, const std::string& name) {
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
    for (const TensorInfo& t : h.infos)
      if (t.name == "rope_freqs.weight")
        throw Error(fmt::format("{}: tensor rope_freqs.weight (Llama 3 RoPE scaling written by another converter) is "
                                "not supported yet",
                                name));
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
  idx.tensors = h.infos;
  for (size_t i = 0; i < idx.tensors.size(); ++i) {
    TensorInfo& t = idx.tensors[i];
    t.name = gguf_to_hf_name(arch, t.name).value_or(t.name);
    if (!idx.by_name.emplace(t.name, i).second)
      throw Error(fmt::format("{}: two tensors are named '{}' (after mapping GGUF names)", file.string(), t.name));
  }
  return idx;
}

GgufModel read_gguf_model(const std::filesystem::path& path) {
  GgufFile f = read_gguf(path);
  GgufModel g;
  g.config = gguf_model_config(f.header, path.string());
  g.arch = &find_arch(g.config.architecture, path.string());
  g.index = gguf_hf_index(f.header, *g.arch, path);
  g.header = std::move(f.header);
  return g;
}

}  // namespace strata
