// The pieces of a model that are loaded as one: a decoder layer, or a block
// of rows of the output head (the final norm rides with the first block).
// In an MoE layer the layer unit holds what every pass reads (attention,
// norms, router, shared expert) and each routed expert is a sub-unit of its
// own, read only when a row of the pass is routed to it (ExpertCache).
// Each unit knows where its bytes sit in the files and where each tensor
// lands in a slot, with adjacent tensors coalesced into large reads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "arch/model_layout.h"
#include "runtime/io_engine.h"

namespace strata {

struct UnitPiece {
  const TensorInfo* tensor = nullptr;
  uint64_t byte_begin = 0, byte_end = 0;  // range within the tensor's data
  uint64_t slot_offset = 0;               // where byte_begin lands in the slot
};

struct StreamUnit {
  enum class Kind { Layer, Head, Expert } kind = Kind::Layer;
  int64_t layer = -1;                 // for Layer and Expert
  int64_t expert = -1;                // for Expert
  int64_t row_begin = 0, row_end = 0; // lm_head rows, for Head
  std::vector<UnitPiece> pieces;
  std::vector<ReadRequest> reads;     // dest = slot offset (as an integer) until bound to memory
  uint64_t slot_bytes = 0;            // memory the unit occupies
  uint64_t file_bytes = 0;            // bytes read from disk to load it
  std::vector<StreamUnit> experts;    // of a Layer unit: its routed experts, [num_experts] or empty

  std::string name() const;
  // Pointer to the data of `t` (from byte_begin) when the unit sits at `base`.
  const uint8_t* data(const uint8_t* base, const TensorInfo* t) const;
};

// Layers in order, then the head in row blocks no larger than the largest
// layer unit or expert (so the head never sets the minimum memory budget).
std::vector<StreamUnit> build_stream_units(const ModelLayout& m);

// The largest expert sub-unit (slot bytes) and how many there are.
uint64_t largest_expert_bytes(const std::vector<StreamUnit>& units);
size_t expert_count(const std::vector<StreamUnit>& units);

}  // namespace strata
