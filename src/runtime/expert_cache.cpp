#include "runtime/expert_cache.h"

#include <algorithm>
#include <chrono>
#include <numeric>

#include "core/error.h"
#include "runtime/io_engine.h"
#include "runtime/model_files.h"

namespace strata {
namespace {
constexpr uint64_t kEmpty = ~uint64_t(0);
}

ExpertCache::ExpertCache(const std::vector<StreamUnit>& units, size_t slots, uint64_t slot_bytes, IoEngine& io,
                         MemoryLedger& ledger)
    : units_(units), io_(io) {
  for (size_t s = 0; s < slots; ++s) slots_.emplace_back(slot_bytes, &ledger, "expert cache");
  slot_key_.assign(slots, kEmpty);
  last_use_.assign(slots, 0);
}

void ExpertCache::run(size_t unit, const std::vector<int>& needed,
                      const std::function<void(int, const uint8_t*)>& fn) {
  const std::vector<StreamUnit>& experts = units_.at(unit).experts;
  std::vector<int> missing;
  for (int e : needed) {
    if (e < 0 || size_t(e) >= experts.size()) throw Error("internal: expert index out of range");
    ++stats_.routed;
    auto it = where_.find(key(unit, e));
    if (it == where_.end()) {
      missing.push_back(e);
      continue;
    }
    ++stats_.hits;
    last_use_[it->second] = ++clock_;
    fn(e, slots_[it->second].data());
  }
  if (missing.empty()) return;
  if (slots_.empty()) throw Error("internal: an MoE layer but no expert slot in the plan");
  // Slots by age: a wave takes the least recently used ones. The experts a
  // wave loads are used before the next wave evicts anything.
  std::vector<size_t> order(slots_.size());
  for (size_t done = 0; done < missing.size();) {
    std::iota(order.begin(), order.end(), size_t(0));
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return last_use_[a] < last_use_[b]; });
    const size_t wave = std::min(slots_.size(), missing.size() - done);
    std::vector<ReadRequest> reqs;
    for (size_t w = 0; w < wave; ++w) {
      const size_t s = order[w];
      if (slot_key_[s] != kEmpty) where_.erase(slot_key_[s]);
      slot_key_[s] = kEmpty;
      const StreamUnit& u = experts[size_t(missing[done + w])];
      for (ReadRequest r : u.reads) {
        r.dest = slots_[s].data() + reinterpret_cast<uintptr_t>(r.dest);
        reqs.push_back(r);
      }
    }
    // One batch for the whole wave, so the I/O engine keeps every read of
    // it in flight at once.
    const auto t0 = std::chrono::steady_clock::now();
    io_.read(reqs);
    stats_.read_ns += uint64_t(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
    for (size_t w = 0; w < wave; ++w) {
      const StreamUnit& u = experts[size_t(missing[done + w])];
      for (size_t f = 0; f < u.reads.size(); ++f)
        if (f == 0 || u.reads[f].file != u.reads[f - 1].file) io_.files().check_unchanged(u.reads[f].file);
      stats_.bytes_read += u.file_bytes;
    }
    for (size_t w = 0; w < wave; ++w) {
      const size_t s = order[w];
      const int e = missing[done + w];
      slot_key_[s] = key(unit, e);
      where_[slot_key_[s]] = s;
      last_use_[s] = ++clock_;
      fn(e, slots_[s].data());
    }
    done += wave;
  }
}

}  // namespace strata
