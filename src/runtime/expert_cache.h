// The routed experts of MoE layers, read on demand: after the router of a
// layer has chosen experts for every row of a pass, only the experts chosen
// by at least one row are read (each once, whatever the number of rows it
// serves), in place from the model files by byte range. Experts stay in a
// fixed number of slots, so experts that keep being chosen are not read
// again; with a slot per expert the cache holds the whole model's experts
// after their first use.
//
//   cache.run(layer_unit, {3, 7}, [&](int e, const uint8_t* w) { ... });
//
// Reads overlap compute: the reads of every missing expert of a layer are
// issued at once (one batch, all in flight), the cached experts are computed
// while they fly, and each missing expert is handed to compute as soon as
// its own bytes have landed. When a layer needs more experts than there are
// slots they are read and used in waves of at most `slots`; results never
// depend on the slot count or the arrival order because each expert's
// output goes to its own rows (see Transformer::moe).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/aligned_buffer.h"
#include "runtime/stream_unit.h"

namespace strata {

class IoEngine;
class MemoryLedger;

struct ExpertStats {
  uint64_t routed = 0;      // distinct (layer, expert) pairs passes needed
  uint64_t hits = 0;        // of those, found in the cache
  uint64_t bytes_read = 0;  // reading the others
  uint64_t read_ns = 0;     // time compute waited for those reads
};

// Which expert leaves the cache when a slot is needed.
enum class ExpertPolicy {
  Lru,  // least recently used
  Lfu,  // least often routed to (counts halved as they age), then least recent
};
const char* expert_policy_name(ExpertPolicy p);
std::optional<ExpertPolicy> parse_expert_policy(std::string_view s);

// Process-wide knobs for measuring the expert path, read once from the
// environment: STRATA_EXPERT_POLICY=lru|lfu (default lru) and
// STRATA_EXPERT_OVERLAP=0, which reads a whole wave before computing any of
// it (the behaviour before reads overlapped compute), for benchmarks.
ExpertPolicy default_expert_policy();
bool expert_overlap_enabled();

class ExpertCache {
 public:
  ExpertCache(const std::vector<StreamUnit>& units, size_t slots, uint64_t slot_bytes, IoEngine& io,
              MemoryLedger& ledger, ExpertPolicy policy = default_expert_policy(),
              bool overlap = expert_overlap_enabled());

  // Calls fn(expert, weights) once for each expert of `needed` (distinct
  // indices into units[unit].experts) with its weights in memory, on the
  // calling thread: cached experts first while the others are read, then
  // each of the others as it arrives. Throws the I/O Error (after every
  // read in flight has drained) or what fn throws.
  void run(size_t unit, const std::vector<int>& needed, const std::function<void(int, const uint8_t*)>& fn);

  ExpertStats stats() const { return stats_; }
  size_t slots() const { return slots_.size(); }
  ExpertPolicy policy() const { return policy_; }

 private:
  static uint64_t key(size_t unit, int expert) { return (uint64_t(unit) << 32) | uint32_t(expert); }
  // The `count` slots to refill, worst first under the policy, none pinned.
  std::vector<size_t> victims(size_t count, const std::vector<char>& pinned) const;
  void touch(size_t slot);
  void count_use(size_t unit, int expert);
  uint32_t uses(uint64_t key) const;

  const std::vector<StreamUnit>& units_;
  IoEngine& io_;
  ExpertPolicy policy_;
  bool overlap_;
  std::vector<AlignedBuffer> slots_;
  std::vector<uint64_t> slot_key_;   // key held, or kEmpty
  std::vector<uint64_t> last_use_;   // per slot, for recency
  std::unordered_map<uint64_t, size_t> where_;  // key -> slot
  // LFU: routings of each (unit, expert), resident or not, halved every
  // `age_every_` routings so that old popularity fades.
  std::vector<size_t> first_expert_;  // per unit, index of its expert 0 in uses_
  std::vector<uint32_t> uses_;
  uint64_t since_aging_ = 0, age_every_ = 0;
  uint64_t clock_ = 0;
  ExpertStats stats_;
};

}  // namespace strata
