// Model families as data. Each family is a row of options plus the list of
// tensors one decoder layer holds; loading, planning, prefetching and
// conversion all walk the same list (for_each_layer_tensor) instead of
// keeping their own.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "formats/model_config.h"

namespace strata {

// What a tensor does in a decoder layer.
enum class Role : uint8_t {
  AttnNorm, Q, K, V, O, QBias, KBias, VBias, QNorm, KNorm, FfnNorm, Gate, Up, Down,
  kCount
};

struct ArchFamily {
  const char* hf_class;      // config.json "architectures" entry
  const char* display;       // "Llama", "Qwen3", ...
  bool qkv_bias;             // q/k/v projections carry biases
  bool qk_norm;              // per-head RMSNorm on q and k before RoPE
};

// Throws Error listing the supported classes when `hf_class` is unknown.
const ArchFamily& find_arch(const std::string& hf_class, const std::string& config_name);
std::vector<std::string> supported_architectures();

struct LayerTensorSpec {
  Role role;
  std::string name;            // full tensor name in the checkpoint
  std::vector<int64_t> shape;  // expected shape, outermost first
};

// The tensors of decoder layer `layer`, in the order they are used.
std::vector<LayerTensorSpec> layer_tensors(const ArchFamily& arch, const ModelConfig& cfg, int64_t layer);

// Tensor names outside the layers.
inline constexpr const char* kEmbedName = "model.embed_tokens.weight";
inline constexpr const char* kFinalNormName = "model.norm.weight";
inline constexpr const char* kLmHeadName = "lm_head.weight";

}  // namespace strata
