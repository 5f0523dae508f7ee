#include "formats/model_config.h"

#include <fmt/format.h>

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

}  // namespace

bool ModelConfig::moe_layer(int64_t l) const {
  if (num_experts <= 0) return false;
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

  auto rs = j.find("rope_scaling");
  if (rs != j.end() && !rs->is_null()) {
    if (!rs->is_object()) throw Error(name + ": rope_scaling must be an object or null");
    std::string type;
    if (rs->contains("rope_type") && (*rs)["rope_type"].is_string()) type = (*rs)["rope_type"];
    else if (rs->contains("type") && (*rs)["type"].is_string()) type = (*rs)["type"];
    c.rope_scaling.factor = get_double(*rs, "factor", name, 1.0);
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
    } else if (type == "default" || type.empty()) {
      c.rope_scaling.type = RopeScaling::Type::None;
    } else {
      throw Error(fmt::format("{}: rope_scaling type '{}' is not supported (supported: linear, llama3)", name, type));
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
