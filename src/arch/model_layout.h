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

// One routed expert's SwiGLU: gate (ffn, hidden), up (ffn, hidden), down (hidden, ffn).
struct ExpertLayout {
  const TensorInfo* gate = nullptr;
  const TensorInfo* up = nullptr;
  const TensorInfo* down = nullptr;
  uint64_t bytes() const { return gate->nbytes + up->nbytes + down->nbytes; }
};

struct LayerLayout {
  // Tensors indexed by Role; nullptr for roles this family lacks (and for
  // the per-expert roles, which are in `experts`).
  std::array<const TensorInfo*, size_t(Role::kCount)> by_role{};
  // The tensors read for every pass (attention, norms, dense MLP or router
  // and shared expert), as listed by layer_tensors().
  std::vector<const TensorInfo*> in_order;
  std::vector<ExpertLayout> experts;  // [num_experts] in an MoE layer, else empty
  uint64_t bytes = 0;        // everything, experts included
  uint64_t dense_bytes = 0;  // in_order only
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
