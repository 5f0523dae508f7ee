#include "runtime/layer_store.h"

#include <chrono>

#include "core/error.h"
#include "runtime/io_engine.h"

namespace strata {

LayerStore::LayerStore(const std::vector<StreamUnit>& units, const Plan& plan, IoEngine& io, MemoryLedger& ledger)
    : units_(units), io_(io) {
  resident_.resize(units.size());
  for (size_t i = 0; i < units.size(); ++i) {
    if (plan.resident[i]) {
      resident_[i] = AlignedBuffer(units[i].slot_bytes, &ledger, "resident layer");
      load(units[i], resident_[i].data());
      bytes_read_ += units[i].file_bytes;
    } else {
      schedule_.push_back(i);
    }
  }
  for (size_t s = 0; s < plan.n_slots && !schedule_.empty(); ++s)
    slots_.emplace_back(plan.slot_bytes, &ledger, "streaming slot");
  if (!schedule_.empty()) {
    if (slots_.empty()) throw Error("internal: streamed units but no streaming slot in the plan");
    thread_ = std::thread([this] { io_loop(); });
  }
}

LayerStore::~LayerStore() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LayerStore::load(const StreamUnit& u, uint8_t* dest) {
  std::vector<ReadRequest> reqs = u.reads;
  for (auto& r : reqs) r.dest = dest + reinterpret_cast<uintptr_t>(r.dest);
  io_.read(reqs);
  bytes_loaded_ += u.file_bytes;
}

void LayerStore::io_loop() {
  for (uint64_t pos = 0;; ++pos) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stop_ || pos < released_ + slots_.size(); });
      if (stop_) return;
    }
    const StreamUnit& u = units_[schedule_[pos % schedule_.size()]];
    try {
      load(u, slots_[pos % slots_.size()].data());
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu_);
      error_ = std::current_exception();
      cv_.notify_all();
      return;
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      loaded_ = pos + 1;
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
  cv_.wait(lk, [&] { return error_ || loaded_ > pos; });
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
