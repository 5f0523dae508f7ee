#include "core/memory_ledger.h"

#include <fmt/format.h>

#include "core/byte_size.h"
#include "core/error.h"

namespace strata {

void MemoryLedger::charge(uint64_t bytes, const char* what) {
  uint64_t now = used_.fetch_add(bytes) + bytes;
  if (now > limit_) {
    used_.fetch_sub(bytes);
    throw Error(fmt::format("memory budget exceeded allocating {} for {}: {} of {} already in use",
                            format_bytes(bytes), what, format_bytes(now - bytes), format_bytes(limit_)));
  }
  uint64_t p = peak_.load();
  while (now > p && !peak_.compare_exchange_weak(p, now)) {
  }
}

}  // namespace strata
