// An opened model: its config, family and every tensor it needs, located in
// the checkpoint files and checked against the shapes the config implies.
// Immutable once built; per-sequence state lives elsewhere (KvCache).
#pragma once

#include <array>
#include <filesystem>
#include <string>
#include <vector>

#include "arch/arch.h"
#include "formats/model_config.h"
#include "formats/safetensors.h"

namespace strata {

struct LayerLayout {
  // Tensors indexed by Role; nullptr for roles this family lacks.
  std::array<const TensorInfo*, size_t(Role::kCount)> by_role{};
  std::vector<const TensorInfo*> in_order;  // as listed by layer_tensors()
  uint64_t bytes = 0;
};

struct ModelLayout {
  std::filesystem::path dir;
  ModelConfig config;
  const ArchFamily* arch = nullptr;
  TensorIndex index;
  std::vector<LayerLayout> layers;   // [num_layers]
  const TensorInfo* embed = nullptr;       // (vocab, hidden)
  const TensorInfo* final_norm = nullptr;  // (hidden)
  const TensorInfo* lm_head = nullptr;     // (vocab, hidden); == embed when tied

  uint64_t total_bytes() const;   // every tensor used, counted once
  uint64_t parameter_count() const;
  const std::filesystem::path& file_of(const TensorInfo& t) const { return index.files[size_t(t.file)]; }
};

// Reads config.json and the safetensors headers of `dir` and validates them;
// or, when `dir` is a regular file, reads it as GGUF (formats/gguf.h).
// Errors name the file, the tensor, and the expected vs found shape.
ModelLayout open_model_layout(const std::filesystem::path& dir);

}  // namespace strata
