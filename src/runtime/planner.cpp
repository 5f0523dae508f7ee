#include "runtime/planner.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <string>

#include "core/byte_size.h"
#include "core/error.h"
#include "runtime/memory_limit.h"

namespace strata {

namespace {

// 0..n-1 in bit-reversed (van der Corput) order: every prefix is spread
// evenly over the range.
std::vector<size_t> spread_order(size_t n) {
  size_t bits = 0;
  while ((size_t(1) << bits) < n) ++bits;
  std::vector<size_t> order;
  order.reserve(n);
  for (size_t k = 0; k < (size_t(1) << bits); ++k) {
    size_t r = 0;
    for (size_t b = 0; b < bits; ++b)
      if (k & (size_t(1) << b)) r |= size_t(1) << (bits - 1 - b);
    if (r < n) order.push_back(r);
  }
  return order;
}

}  // namespace

size_t Plan::resident_units() const { return size_t(std::count(resident.begin(), resident.end(), true)); }

uint64_t auto_budget(uint64_t everything) {
  uint64_t cap = available_memory() / 10 * 8;
  return std::min(everything, cap);
}

Plan make_plan(const std::vector<StreamUnit>& units, const PlanRequest& req) {
  Plan p;
  p.kv_bytes = req.kv_bytes;
  p.activation_bytes = req.activation_bytes;
  p.logits_bytes = req.logits_bytes;
  p.fixed_bytes = req.kv_bytes + req.activation_bytes + req.logits_bytes + kPlanReserveBytes;
  uint64_t all = 0;
  for (const auto& u : units) {
    p.slot_bytes = std::max(p.slot_bytes, u.slot_bytes);
    all += u.slot_bytes;
  }
  p.expert_slot_bytes = req.expert_slot_bytes;
  const uint64_t all_experts = uint64_t(req.experts) * req.expert_slot_bytes;
  const size_t min_experts = std::min(req.experts, std::max<size_t>(req.min_expert_slots, req.experts ? 1 : 0));
  const uint64_t min_expert_bytes = uint64_t(min_experts) * req.expert_slot_bytes;
  p.min_budget = p.fixed_bytes + std::min(all, p.slot_bytes) + min_expert_bytes;
  p.budget = req.budget ? req.budget : auto_budget(p.fixed_bytes + all + all_experts);
  p.resident.assign(units.size(), false);
  if (p.budget < p.min_budget) {
    const std::string experts =
        min_experts ? fmt::format(", {} expert slots of {} (top-k)", min_experts, format_bytes(req.expert_slot_bytes))
                    : "";
    throw Error(fmt::format(
        "max_memory {} is below the minimum of {} for this model and request (one streaming slot {} for the "
        "largest layer{}, KV cache {}, activations {}, logits {}, reserve {})",
        format_bytes(p.budget), format_bytes(p.min_budget), format_bytes(p.slot_bytes), experts,
        format_bytes(p.kv_bytes), format_bytes(p.activation_bytes), format_bytes(p.logits_bytes),
        format_bytes(kPlanReserveBytes)));
  }
  uint64_t room = p.budget - p.fixed_bytes;
  if (all + all_experts <= room) {
    p.resident.assign(units.size(), true);
    p.resident_bytes = all;
    p.expert_slots = req.experts;
    p.total_bytes = p.fixed_bytes + all + all_experts;
    return p;
  }
  // The experts one decode row needs come first; more cache comes after
  // the resident units, which every pass reads (an expert only when routed).
  p.expert_slots = min_experts;
  room -= min_expert_bytes;
  // Two slots let the next unit load while this one computes; a third keeps
  // the disk queue full across unit boundaries (two loaders). Residents come
  // next (each resident byte is a byte never read again); spare room then
  // deepens the prefetch.
  const size_t want = req.slots ? req.slots : 3;
  size_t slots = std::max<size_t>(1, std::min<size_t>(want, room / std::max<uint64_t>(p.slot_bytes, 1)));
  slots = std::min(slots, std::max<size_t>(units.size(), 1));
  room -= slots * p.slot_bytes;
  // Residents are spread over the pass (units taken in van der Corput order:
  // 0, n/2, n/4, 3n/4, ...), not the first ones: while compute works through a
  // run of residents the loaders can only fill the slots and then wait, so a
  // long run of them at the start of the pass leaves the disk idle.
  for (size_t i : spread_order(units.size())) {
    // Keep at least `slots` units streaming, else a slot would sit idle and
    // it could have held a resident unit instead.
    size_t streaming = units.size() - p.resident_units();
    if (streaming <= slots) break;
    if (units[i].slot_bytes <= room) {
      p.resident[i] = true;
      room -= units[i].slot_bytes;
      p.resident_bytes += units[i].slot_bytes;
    }
  }
  if (req.expert_slot_bytes) {
    const size_t more = size_t(std::min<uint64_t>(req.experts - p.expert_slots, room / req.expert_slot_bytes));
    p.expert_slots += more;
    room -= more * req.expert_slot_bytes;
  }
  size_t streaming = units.size() - p.resident_units();
  while (!req.slots && slots < req.max_slots && slots < streaming && room >= p.slot_bytes) {
    ++slots;
    room -= p.slot_bytes;
  }
  slots = std::min(slots, streaming);
  p.n_slots = slots;
  for (size_t i = 0; i < units.size(); ++i)
    if (!p.resident[i]) p.streamed_bytes_per_pass += units[i].file_bytes;
  p.total_bytes = p.fixed_bytes + p.resident_bytes + p.n_slots * p.slot_bytes + p.expert_slots * p.expert_slot_bytes;
  return p;
}

}  // namespace strata
