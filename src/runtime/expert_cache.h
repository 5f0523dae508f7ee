// The routed experts of MoE layers, read on demand: after the router of a
// layer has chosen experts for every row of a pass, only the experts chosen
// by at least one row are read (each once, whatever the number of rows it
// serves), in place from the model files by byte range. Experts stay in a
// fixed number of slots, least recently used first out, so experts that
// keep being chosen are not read again; with a slot per expert the cache
// holds the whole model's experts after their first use.
//
//   cache.run(layer_unit, {3, 7}, [&](int e, const uint8_t* w) { ... });
//
// When a layer needs more experts than there are slots they are read and
// used in waves of at most `slots`; results never depend on the slot count
// because each expert's output goes to its own rows (see Transformer::moe).
#pragma once

#include <cstdint>
#include <functional>
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

class ExpertCache {
 public:
  ExpertCache(const std::vector<StreamUnit>& units, size_t slots, uint64_t slot_bytes, IoEngine& io,
              MemoryLedger& ledger);

  // Calls fn(expert, weights) once for each expert of `needed` (distinct
  // indices into units[unit].experts) with its weights in memory; cached
  // experts first, then the others in waves. Throws the I/O Error.
  void run(size_t unit, const std::vector<int>& needed, const std::function<void(int, const uint8_t*)>& fn);

  ExpertStats stats() const { return stats_; }
  size_t slots() const { return slots_.size(); }

 private:
  static uint64_t key(size_t unit, int expert) { return (uint64_t(unit) << 32) | uint32_t(expert); }

  const std::vector<StreamUnit>& units_;
  IoEngine& io_;
  std::vector<AlignedBuffer> slots_;
  std::vector<uint64_t> slot_key_;   // key held, or kEmpty
  std::vector<uint64_t> last_use_;   // per slot, for LRU
  std::unordered_map<uint64_t, size_t> where_;  // key -> slot
  uint64_t clock_ = 0;
  ExpertStats stats_;
};

}  // namespace strata
