// Holds the model's units in memory as the forward pass needs them.
// Resident units are loaded once at start (by two loaders in parallel) and
// never re-read. The others
// cycle through a ring of slots: background I/O threads load units in the
// order passes use them (layers, then head blocks, then the next pass),
// running ahead of compute by as many units as there are slots. Two loaders
// work on consecutive units when there are three slots or more, so the disk
// queue never drains at a unit boundary.
//
//   const uint8_t* w = store.acquire(u);   // blocks until unit u is loaded
//   ... compute with w ...
//   store.release(u);                      // its slot may now take the next unit
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "core/aligned_buffer.h"
#include "runtime/planner.h"
#include "runtime/stream_unit.h"

namespace strata {

class IoEngine;
class MemoryLedger;

struct StoreStats {
  // Bytes of the streamed units handed to compute (plus resident loads): the
  // reads a pass caused, whenever the I/O thread actually did them.
  uint64_t bytes_read = 0;
  uint64_t bytes_loaded = 0;   // everything the I/O thread read, prefetch included
  uint64_t io_wait_ns = 0;     // time acquire() blocked
};

class LayerStore {
 public:
  LayerStore(const std::vector<StreamUnit>& units, const Plan& plan, IoEngine& io, MemoryLedger& ledger);
  ~LayerStore();
  LayerStore(const LayerStore&) = delete;
  LayerStore& operator=(const LayerStore&) = delete;

  // Units must be acquired in pass order (0, 1, ..., n-1, 0, 1, ...), each
  // released before the next pass reaches it. Throws the I/O thread's Error.
  const uint8_t* acquire(size_t unit);
  void release(size_t unit);

  StoreStats stats() const;
  const std::vector<StreamUnit>& units() const { return units_; }

 private:
  void io_loop();
  void load_residents(const std::vector<size_t>& residents);
  void load(const StreamUnit& u, uint8_t* dest);

  const std::vector<StreamUnit>& units_;
  IoEngine& io_;
  std::vector<AlignedBuffer> resident_;     // per unit; empty when streamed
  std::vector<AlignedBuffer> slots_;
  std::vector<size_t> schedule_;            // streamed units in pass order

  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t claimed_ = 0;   // schedule positions a loader has taken
  std::vector<uint64_t> slot_loaded_;  // per slot: 1 + the position it holds, 0 = none
  uint64_t acquired_ = 0;  // positions handed to compute
  uint64_t released_ = 0;  // positions whose slot is free again
  bool stop_ = false;
  std::exception_ptr error_;
  std::atomic<uint64_t> bytes_read_{0};
  std::atomic<uint64_t> bytes_loaded_{0};
  std::atomic<uint64_t> io_wait_ns_{0};
  std::vector<std::thread> threads_;
};

}  // namespace strata
