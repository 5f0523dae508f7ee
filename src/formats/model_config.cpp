#include "formats/model_config.h"

#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"

namespace strata {
namespace {

using nlohmann::json;

std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) throw Error(p.string() + ": cannot open");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

json parse_json(const std::string& text, const std::string& name) {
  try {
    json j = json::parse(text);
    if (!j.is_object()) throw Error(name + ": expected a JSON object");
    return j;
  } catch (const json::exception& e) {
    throw Error(name + ": invalid JSON: " + e.what());
  }
}

int64_t get_int(const json& j, const char* key, const std::string& name, int64_t fallback = -1, bool required = true) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) throw Error(fmt::format("{}: missing required field '{}'", name, key));
    return fallback;
  }
  if (!it->is_number_integer()) throw Error(fmt::format("{}: field '{}' must be an integer", name, key));
  int64_t v = it->get<int64_t>();
  if (v <= 0 || v > (int64_t(1) << 32)) throw Error(fmt::format("{}: field '{}' = {} is out of range", name, key, v));
  return v;
}

double get_double(const json& j, const char* key, const std::string& name, double fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_number()) throw Error(fmt::format("{}: field '{}' must be a number", name, key));
  return it->get<double>();
}

// eos_token_id may be an integer or a list of integers.
void add_ids(const json& j, const char* key, std::vector<int32_t>& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  auto add = [&](const json& v) {
    if (v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() < (int64_t(1) << 31)) {
      int32_t id = int32_t(v.get<int64_t>());
      for (int32_t e : out)
        if (e == id) return;
      out.push_back(id);
    }
  };
  if (it->is_array())
    for (const auto& v : *it) add(v);
  else
    add(*it);
}

// Mixtral names its expert count num_local_experts and sizes experts by
// intermediate_size; the Qwen MoE families use num_experts and
// moe_intermediate_size. transformers' defaults where a field is absent.
void parse_moe(const json& j, const std::string& name, ModelConfig& c) {
  const bool mixtral = c.architecture == "MixtralForCausalLM";
  const bool qwen = c.architecture == "Qwen2MoeForCausalLM" || c.architecture == "Qwen3MoeForCausalLM";
  if (!mixtral && !qwen) return;
  c.num_experts = get_int(j, mixtral ? "num_local_experts" : "num_experts", name, mixtral ? 8 : 60, false);
  c.experts_per_token = get_int(j, "num_experts_per_tok", name, mixtral ? 2 : 4, false);
  if (c.experts_per_token > c.num_experts)
    throw Error(fmt::format("{}: num_experts_per_tok {} exceeds the {} experts", name, c.experts_per_token,
                            c.num_experts));
  if (mixtral) {
    c.moe_intermediate_size = c.intermediate_size;
    c.norm_topk_prob = true;  // transformers' Mixtral always renormalizes the top-k
    return;
  }
  c.moe_intermediate_size = get_int(j, "moe_intermediate_size", name, 0, true);
  if (c.architecture == "Qwen2MoeForCausalLM")
    c.shared_expert_intermediate_size = get_int(j, "shared_expert_intermediate_size", name, 0, true);
  if (j.contains("norm_topk_prob") && j["norm_topk_prob"].is_boolean()) c.norm_topk_prob = j["norm_topk_prob"];
  c.decoder_sparse_step = get_int(j, "decoder_sparse_step", name, 1, false);
  auto it = j.find("mlp_only_layers");
  if (it != j.end() && !it->is_null()) {
    if (!it->is_array()) throw Error(name + ": mlp_only_layers must be a list of layer indices");
    for (const auto& v : *it) {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= c.num_layers)
        throw Error(fmt::format("{}: mlp_only_layers holds {}, not a layer index below {}", name, v.dump(),
                                c.num_layers));
      c.mlp_only_layers.push_back(v.get<int64_t>());
    }
  }
}

// transformers' DeepseekV3Config (defaults where a field is absent, as
// there): multi-head latent attention and the grouped sigmoid router. The
// key's width is the head width; the cache keeps one key per head.
void parse_deepseek(const json& j, const std::string& name, ModelConfig& c) {
  if (c.architecture != "DeepseekV3ForCausalLM") return;
  c.mla = true;
  c.q_lora_rank = get_int(j, "q_lora_rank", name, 0, false);  // null: a plain q_proj
  c.kv_lora_rank = get_int(j, "kv_lora_rank", name, 512, false);
  c.qk_nope_head_dim = get_int(j, "qk_nope_head_dim", name, 128, false);
  c.qk_rope_head_dim = get_int(j, "qk_rope_head_dim", name, 64, false);
  c.v_head_dim = get_int(j, "v_head_dim", name, 128, false);
  if (c.qk_rope_head_dim % 2 != 0)
    throw Error(fmt::format("{}: qk_rope_head_dim {} must be even for RoPE", name, c.qk_rope_head_dim));
  c.head_dim = c.qk_nope_head_dim + c.qk_rope_head_dim;
  if (c.v_head_dim > c.head_dim)
    throw Error(fmt::format("{}: v_head_dim {} wider than qk_nope_head_dim + qk_rope_head_dim = {} is not supported",
                            name, c.v_head_dim, c.head_dim));
  c.num_kv_heads = c.num_heads;
  if (j.contains("attention_bias") && j["attention_bias"].is_boolean() && j["attention_bias"].get<bool>())
    throw Error(name + ": attention_bias is not supported for DeepseekV3ForCausalLM");
  if (j.contains("rope_interleave") && j["rope_interleave"].is_boolean()) c.rope_interleaved = j["rope_interleave"];
  else c.rope_interleaved = true;  // DeepseekV3Config's default: RoPE on pairs (2i, 2i+1)

  auto routed = j.find("n_routed_experts");
  if (routed == j.end() || routed->is_null()) return;  // a dense DeepSeek
  c.num_experts = get_int(j, "n_routed_experts", name, 256, true);
  c.experts_per_token = get_int(j, "num_experts_per_tok", name, 8, false);
  if (c.experts_per_token > c.num_experts)
    throw Error(fmt::format("{}: num_experts_per_tok {} exceeds the {} experts", name, c.experts_per_token,
                            c.num_experts));
  c.moe_intermediate_size = get_int(j, "moe_intermediate_size", name, 2048, false);
  const int64_t shared = get_int(j, "n_shared_experts", name, 0, false);
  c.shared_expert_intermediate_size = shared > 0 ? shared * c.moe_intermediate_size : 0;
  c.sigmoid_router = true;
  if (j.contains("scoring_func") && j["scoring_func"].is_string() && j["scoring_func"] != "sigmoid")
    throw Error(fmt::format("{}: scoring_func '{}' is not supported (only sigmoid)", name,
                            j["scoring_func"].get<std::string>()));
  c.n_group = get_int(j, "n_group", name, 1, false);
  c.topk_group = get_int(j, "topk_group", name, 1, false);
  if (c.num_experts % c.n_group != 0 || c.topk_group > c.n_group)
    throw Error(fmt::format("{}: n_routed_experts {} in n_group {} groups keeping topk_group {} is inconsistent", name,
                            c.num_experts, c.n_group, c.topk_group));
  if (c.n_group > 1 && c.num_experts / c.n_group < 2)
    throw Error(fmt::format("{}: groups of fewer than 2 experts cannot be scored (sum of the top 2)", name));
  if (c.topk_group * (c.num_experts / c.n_group) < c.experts_per_token)
    throw Error(fmt::format("{}: topk_group {} groups hold fewer than num_experts_per_tok {} experts", name,
                            c.topk_group, c.experts_per_token));
  c.routed_scaling_factor = get_double(j, "routed_scaling_factor", name, 1.0);
  c.norm_topk_prob = true;
  if (j.contains("norm_topk_prob") && j["norm_topk_prob"].is_boolean()) c.norm_topk_prob = j["norm_topk_prob"];
  auto dense = j.find("first_k_dense_replace");
  if (dense != j.end() && dense->is_number_integer()) {
    c.first_k_dense_replace = dense->get<int64_t>();
    if (c.first_k_dense_replace < 0 || c.first_k_dense_replace > c.num_layers)
      throw Error(fmt::format("{}: first_k_dense_replace {} is not a layer count", name, c.first_k_dense_replace));
  }
  c.moe_layer_freq = get_int(j, "moe_layer_freq", name, 1, false);
}

double yarn_mscale(double factor, double m) { return factor <= 1 ? 1.0 : 0.1 * m * std::log(factor) + 1.0; }

}  // namespace

double ModelConfig::attention_scale() const {
  double s = 1.0 / std::sqrt(double(head_dim));
  // DeepseekV3Attention: with rope_scaling's mscale_all_dim, scaled by its mscale^2.
  if (mla && rope_scaling.type != RopeScaling::Type::None && rope_scaling.mscale_all_dim != 0) {
    const double m = yarn_mscale(rope_scaling.factor, rope_scaling.mscale_all_dim);
    s *= m * m;
  }
  return s;
}

double ModelConfig::rope_attention_factor() const {
  const RopeScaling& s = rope_scaling;
  if (s.type != RopeScaling::Type::Yarn) return 1.0;
  if (s.attention_factor > 0) return s.attention_factor;
  if (s.mscale != 0 && s.mscale_all_dim != 0) return yarn_mscale(s.factor, s.mscale) / yarn_mscale(s.factor, s.mscale_all_dim);
  return yarn_mscale(s.factor, 1.0);
}

bool ModelConfig::moe_layer(int64_t l) const {
  if (num_experts <= 0) return false;
  // DeepSeek: the first first_k_dense_replace layers dense, then every
  // moe_layer_freq-th (DeepSeek's modeling code; 1 in every released config).
  if (sigmoid_router) return l >= first_k_dense_replace && l % moe_layer_freq == 0;
  for (int64_t m : mlp_only_layers)
    if (m == l) return false;
  return (l + 1) % decoder_sparse_step == 0;
}

ModelConfig parse_model_config(const std::string& text, const std::string& name) {
  json j = parse_json(text, name);
  ModelConfig c;
  auto arch = j.find("architectures");
  if (arch == j.end() || !arch->is_array() || arch->empty() || !(*arch)[0].is_string())
    throw Error(name + ": missing 'architectures' (a list naming the model class, e.g. [\"LlamaForCausalLM\"])");
  c.architecture = (*arch)[0].get<std::string>();
  if (j.contains("model_type") && j["model_type"].is_string()) c.model_type = j["model_type"];
  c.hidden_size = get_int(j, "hidden_size", name);
  c.intermediate_size = get_int(j, "intermediate_size", name);
  c.num_layers = get_int(j, "num_hidden_layers", name);
  c.num_heads = get_int(j, "num_attention_heads", name);
  c.num_kv_heads = get_int(j, "num_key_value_heads", name, c.num_heads, false);
  c.vocab_size = get_int(j, "vocab_size", name);
  c.max_position_embeddings = get_int(j, "max_position_embeddings", name, 2048, false);
  c.head_dim = get_int(j, "head_dim", name, 0, false);
  if (c.head_dim <= 0) {
    if (c.hidden_size % c.num_heads != 0)
      throw Error(fmt::format("{}: hidden_size {} is not divisible by num_attention_heads {}", name, c.hidden_size,
                              c.num_heads));
    c.head_dim = c.hidden_size / c.num_heads;
  }
  if (c.head_dim % 2 != 0) throw Error(fmt::format("{}: head_dim {} must be even for RoPE", name, c.head_dim));
  if (c.num_heads % c.num_kv_heads != 0)
    throw Error(fmt::format("{}: num_attention_heads {} is not a multiple of num_key_value_heads {}", name,
                            c.num_heads, c.num_kv_heads));
  c.rms_norm_eps = get_double(j, "rms_norm_eps", name, 1e-6);
  c.rope_theta = get_double(j, "rope_theta", name, 10000.0);
  if (!(c.rope_theta > 0)) throw Error(name + ": rope_theta must be positive");
  if (j.contains("tie_word_embeddings") && j["tie_word_embeddings"].is_boolean())
    c.tie_word_embeddings = j["tie_word_embeddings"];
  if (j.contains("attention_bias") && j["attention_bias"].is_boolean()) c.attention_bias = j["attention_bias"];
  if (j.contains("hidden_act") && j["hidden_act"].is_string()) c.hidden_act = j["hidden_act"];
  if (c.hidden_act != "silu")
    throw Error(fmt::format("{}: hidden_act '{}' is not supported (only silu)", name, c.hidden_act));
  if (j.contains("bos_token_id") && j["bos_token_id"].is_number_integer()) c.bos_token_id = j["bos_token_id"];
  add_ids(j, "eos_token_id", c.eos_token_ids);

  parse_moe(j, name, c);
  parse_deepseek(j, name, c);

  auto rs = j.find("rope_scaling");
  if (rs != j.end() && !rs->is_null()) {
    if (!rs->is_object()) throw Error(name + ": rope_scaling must be an object or null");
    std::string type;
    if (rs->contains("rope_type") && (*rs)["rope_type"].is_string()) type = (*rs)["rope_type"];
    else if (rs->contains("type") && (*rs)["type"].is_string()) type = (*rs)["type"];
    c.rope_scaling.factor = get_double(*rs, "factor", name, 1.0);
    c.rope_scaling.mscale = get_double(*rs, "mscale", name, 0.0);
    c.rope_scaling.mscale_all_dim = get_double(*rs, "mscale_all_dim", name, 0.0);
    if (!(c.rope_scaling.factor > 0)) throw Error(name + ": rope_scaling.factor must be positive");
    if (type == "linear") {
      c.rope_scaling.type = RopeScaling::Type::Linear;
    } else if (type == "llama3") {
      c.rope_scaling.type = RopeScaling::Type::Llama3;
      c.rope_scaling.low_freq_factor = get_double(*rs, "low_freq_factor", name, 1.0);
      c.rope_scaling.high_freq_factor = get_double(*rs, "high_freq_factor", name, 4.0);
      c.rope_scaling.original_max_position_embeddings =
          get_int(*rs, "original_max_position_embeddings", name, 8192, false);
      if (!(c.rope_scaling.high_freq_factor > c.rope_scaling.low_freq_factor))
        throw Error(name + ": rope_scaling high_freq_factor must exceed low_freq_factor");
    } else if (type == "yarn") {
      c.rope_scaling.type = RopeScaling::Type::Yarn;
      c.rope_scaling.original_max_position_embeddings =
          get_int(*rs, "original_max_position_embeddings", name, c.max_position_embeddings, false);
      c.rope_scaling.beta_fast = get_double(*rs, "beta_fast", name, 32.0);
      c.rope_scaling.beta_slow = get_double(*rs, "beta_slow", name, 1.0);
      c.rope_scaling.attention_factor = get_double(*rs, "attention_factor", name, 0.0);
      if (!(c.rope_scaling.beta_fast > c.rope_scaling.beta_slow) || !(c.rope_scaling.beta_slow > 0))
        throw Error(name + ": rope_scaling beta_fast must exceed beta_slow > 0");
    } else if (type == "default" || type.empty()) {
      c.rope_scaling.type = RopeScaling::Type::None;
    } else {
      throw Error(fmt::format("{}: rope_scaling type '{}' is not supported (supported: linear, llama3, yarn)", name, type));
    }
  }
  return c;
}

ModelConfig load_model_config(const std::filesystem::path& dir) {
  auto cfg_path = dir / "config.json";
  if (!std::filesystem::exists(cfg_path)) throw Error(dir.string() + ": no config.json (is this a model directory?)");
  ModelConfig c = parse_model_config(read_file(cfg_path), cfg_path.string());
  auto gen_path = dir / "generation_config.json";
  if (std::filesystem::exists(gen_path)) {
    json g = parse_json(read_file(gen_path), gen_path.string());
    add_ids(g, "eos_token_id", c.eos_token_ids);
    if (c.bos_token_id < 0 && g.contains("bos_token_id") && g["bos_token_id"].is_number_integer())
      c.bos_token_id = g["bos_token_id"];
  }
  return c;
}

}  // namespace strata
