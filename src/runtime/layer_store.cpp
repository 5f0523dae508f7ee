#include "runtime/layer_store.h"

#include <chrono>

#include "core/error.h"
#include "runtime/io_engine.h"
#include "runtime/model_files.h"

namespace strata {

LayerStore::LayerStore(const std::vector<StreamUnit>& units, const Plan& plan, IoEngine& io, MemoryLedger& ledger)
    : units_(units), io_(io) {
  resident_.resize(units.size());
  std::vector<size_t> residents;
  for (size_t i = 0; i < units.size(); ++i) {
    if (plan.resident[i]) {
      resident_[i] = AlignedBuffer(units[i].slot_bytes, &ledger, "resident layer");
      residents.push_back(i);
    } else {
      schedule_.push_back(i);
    }
  }
  load_residents(residents);
  for (size_t s = 0; s < plan.n_slots && !schedule_.empty(); ++s)
    slots_.emplace_back(plan.slot_bytes, &ledger, "streaming slot");
  if (!schedule_.empty()) {
    if (slots_.empty()) throw Error("internal: streamed units but no streaming slot in the plan");
    slot_loaded_.assign(slots_.size(), 0);
    const size_t loaders = slots_.size() >= 3 ? 2 : 1;
    for (size_t t = 0; t < loaders; ++t) threads_.emplace_back([this] { io_loop(); });
  }
}

// Two loaders, as for streaming: one unit's requests drain while the other's
// are queued, so the disk never idles between units (one at a time took 23 s
// for 6.67 GiB of residents).
void LayerStore::load_residents(const std::vector<size_t>& residents) {
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex mu;
  auto work = [&] {
    for (size_t k; (k = next++) < residents.size();) {
      const size_t i = residents[k];
      try {
        load(units_[i], resident_[i].data());
        bytes_read_ += units_[i].file_bytes;
      } catch (...) {
        std::lock_guard<std::mutex> lk(mu);
        if (!error) error = std::current_exception();
        next = residents.size();
      }
    }
  };
  std::vector<std::thread> ts;
  if (residents.size() > 1) ts.emplace_back(work);
  work();
  for (auto& t : ts) t.join();
  if (error) std::rethrow_exception(error);
}

LayerStore::~LayerStore() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void LayerStore::load(const StreamUnit& u, uint8_t* dest) {
  std::vector<ReadRequest> reqs = u.reads;
  for (auto& r : reqs) r.dest = dest + reinterpret_cast<uintptr_t>(r.dest);
  io_.read(reqs);
  // A file rewritten in place while being read would give garbage weights.
  for (size_t f = 0; f < u.reads.size(); ++f)
    if (f == 0 || u.reads[f].file != u.reads[f - 1].file) io_.files().check_unchanged(u.reads[f].file);
  bytes_loaded_ += u.file_bytes;
}

void LayerStore::io_loop() {
  for (;;) {
    uint64_t pos;
    {
      std::unique_lock<std::mutex> lk(mu_);
      // A position may load once its slot's previous occupant was released.
      cv_.wait(lk, [&] { return stop_ || error_ || claimed_ < released_ + slots_.size(); });
      if (stop_ || error_) return;
      pos = claimed_++;
    }
    const StreamUnit& u = units_[schedule_[pos % schedule_.size()]];
    try {
      load(u, slots_[pos % slots_.size()].data());
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu_);
      if (!error_) error_ = std::current_exception();
      cv_.notify_all();
      return;
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      slot_loaded_[pos % slots_.size()] = pos + 1;
    }
    cv_.notify_all();
  }
}

const uint8_t* LayerStore::acquire(size_t unit) {
  if (resident_[unit].data()) return resident_[unit].data();
  std::unique_lock<std::mutex> lk(mu_);
  uint64_t pos = acquired_;
  if (schedule_[pos % schedule_.size()] != unit)
    throw Error("internal: units acquired out of pass order");
  auto t0 = std::chrono::steady_clock::now();
  uint64_t& slot = slot_loaded_[pos % slots_.size()];
  cv_.wait(lk, [&] { return error_ || slot == pos + 1; });
  io_wait_ns_ += uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
  if (error_) std::rethrow_exception(error_);
  ++acquired_;
  bytes_read_ += units_[unit].file_bytes;
  return slots_[pos % slots_.size()].data();
}

void LayerStore::release(size_t unit) {
  if (resident_[unit].data()) return;
  {
    std::lock_guard<std::mutex> lk(mu_);
    ++released_;
  }
  cv_.notify_all();
}

StoreStats LayerStore::stats() const { return {bytes_read_.load(), bytes_loaded_.load(), io_wait_ns_.load()}; }

}  // namespace strata
