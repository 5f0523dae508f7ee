#include "core/aligned_buffer.h"

#include <cstdlib>
#include <cstring>
#include <utility>

#include "core/error.h"
#include "core/memory_ledger.h"

namespace strata {

AlignedBuffer::AlignedBuffer(size_t bytes, MemoryLedger* ledger, const char* what) {
  if (bytes == 0) return;
  size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  if (ledger) ledger->charge(rounded, what);
  void* p = std::aligned_alloc(kAlignment, rounded);
  if (!p) {
    if (ledger) ledger->release(rounded);
    throw Error(std::string("out of memory allocating ") + what);
  }
  std::memset(p, 0, rounded);
  data_ = static_cast<uint8_t*>(p);
  size_ = rounded;
  ledger_ = ledger;
}

AlignedBuffer::~AlignedBuffer() { reset(); }

void AlignedBuffer::reset() {
  if (data_) {
    std::free(data_);
    if (ledger_) ledger_->release(size_);
  }
  data_ = nullptr;
  size_ = 0;
  ledger_ = nullptr;
}

AlignedBuffer::AlignedBuffer(AlignedBuffer&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)), ledger_(std::exchange(o.ledger_, nullptr)) {}

AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& o) noexcept {
  if (this != &o) {
    reset();
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    ledger_ = std::exchange(o.ledger_, nullptr);
  }
  return *this;
}

}  // namespace strata
