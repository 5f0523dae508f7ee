// The single account every engine allocation is charged to. The Planner
// proves a plan fits before anything is loaded; the ledger enforces it at
// run time, so a planning mistake becomes a clear error rather than a
// silently exceeded --max-memory.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

namespace strata {

class MemoryLedger {
 public:
  explicit MemoryLedger(uint64_t limit_bytes) : limit_(limit_bytes) {}

  // Throws Error naming `what` if the charge would exceed the limit.
  void charge(uint64_t bytes, const char* what);
  void release(uint64_t bytes) { used_.fetch_sub(bytes); }

  uint64_t limit() const { return limit_; }
  uint64_t used() const { return used_.load(); }
  uint64_t peak() const { return peak_.load(); }

 private:
  uint64_t limit_;
  std::atomic<uint64_t> used_{0};
  std::atomic<uint64_t> peak_{0};
};

}  // namespace strata
