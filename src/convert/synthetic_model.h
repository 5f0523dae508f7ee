// Writing Hugging Face model directories with random weights at the real
// shapes of known models, so benchmarks and memory tests run on realistic
// sizes without downloading anything, and users can see the speed a model
// would get on their machine before fetching it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "formats/model_config.h"

namespace strata {

struct SynthPreset {
  const char* name;
  const char* description;
  ModelConfig config;
};

const std::vector<SynthPreset>& synth_presets();
// Throws UsageError listing the presets.
const SynthPreset& find_synth_preset(const std::string& name);

struct SynthOptions {
  DType dtype = DType::BF16;
  uint64_t seed = 0;
  int64_t layers = 0;            // 0 = the preset's
  float weight_std = 0.02f;      // of matrices; norms are 1 +- 0.05*sqrt(3)
  uint64_t max_shard_bytes = uint64_t(4) << 30;
  // Called after each tensor with (bytes written so far, total bytes).
  std::function<void(uint64_t, uint64_t)> progress;
};

// Writes config.json, generation_config.json and safetensors (sharded when
// larger than max_shard_bytes) into `dir`. Returns the bytes of tensor data.
uint64_t write_synthetic_model(const std::filesystem::path& dir, const ModelConfig& config, const SynthOptions& opt);

// The config.json text strata writes for `c` (readable by Hugging Face too).
std::string model_config_json(const ModelConfig& c, DType dtype);

}  // namespace strata
