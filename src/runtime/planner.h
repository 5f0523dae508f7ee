// Decides, before anything is loaded, how the memory budget is spent: which
// units stay resident (read once, never again), how many streaming slots
// cycle through the rest, and what the KV cache, activations and logits
// take. A plan that does not fit is refused with the minimum budget stated.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/stream_unit.h"

namespace strata {

struct PlanRequest {
  uint64_t budget = 0;           // bytes; 0 = automatic (see auto_budget)
  uint64_t kv_bytes = 0;         // KV cache for every sequence
  uint64_t activation_bytes = 0; // forward-pass scratch at the largest pass
  uint64_t logits_bytes = 0;     // logits rows kept for sampling/scoring
  size_t max_slots = 4;          // prefetch depth cap (automatic depth)
  // Streaming slots (prefetch depth + 1), fixed before residents; 0 =
  // automatic: three when the budget allows (two loading ahead, so one loader
  // starts the next unit while the other's requests drain), then residents,
  // then deeper up to max_slots.
  size_t slots = 0;
  // Routed experts (MoE): their count over all layers, the slot one takes,
  // and the slots the cache needs at least (the experts one decode row
  // reads per layer, top-k; a pass needing more reads them in waves).
  size_t experts = 0;
  uint64_t expert_slot_bytes = 0;
  size_t min_expert_slots = 0;
};

struct Plan {
  uint64_t budget = 0;
  std::vector<bool> resident;    // per unit
  size_t n_slots = 0;
  uint64_t slot_bytes = 0;
  uint64_t resident_bytes = 0;   // memory of resident units
  uint64_t kv_bytes = 0, activation_bytes = 0, logits_bytes = 0;
  uint64_t fixed_bytes = 0;      // kv + activations + logits + reserve
  uint64_t min_budget = 0;       // smallest budget that can run this request
  uint64_t total_bytes = 0;      // what this plan charges at most
  uint64_t streamed_bytes_per_pass = 0;  // file bytes read per forward pass (layer and head units)
  size_t expert_slots = 0;       // expert cache (ExpertCache); == experts: all cached after first use
  uint64_t expert_slot_bytes = 0;
  size_t resident_units() const;
};

// Budget used when the user gives none: everything resident if that fits in
// 80% of the available memory, else 80% of it (MemAvailable, capped by the
// process's memory cgroup: see memory_limit.h).
uint64_t auto_budget(uint64_t everything_bytes);

// Throws Error (with the minimum) when the budget is too small.
Plan make_plan(const std::vector<StreamUnit>& units, const PlanRequest& req);

// Bytes reserved for small allocations outside the big buffers (embedding
// rows, norm weights converted to f32, sampler state).
inline constexpr uint64_t kPlanReserveBytes = 1 << 20;

}  // namespace strata
