#include "core/aligned_buffer.h"

#include <sys/mman.h>

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
  // Large buffers (layers, slots) start on a 2 MiB boundary and ask for huge
  // pages over their whole 2 MiB blocks: first-touching fresh memory is what
  // makes loading resident layers slow on VMs (measured 0.3 GB/s with 4 KiB
  // pages, 0.5 GB/s with 2 MiB ones). The tail stays in small pages, so the
  // memory used is still `rounded`, what the ledger was charged.
  constexpr size_t kHuge = size_t(2) << 20;
  const bool huge = rounded >= 4 * kHuge;
  void* p = huge ? std::aligned_alloc(kHuge, (rounded + kHuge - 1) / kHuge * kHuge) : std::aligned_alloc(kAlignment, rounded);
  if (!p) {
    if (ledger) ledger->release(rounded);
    throw Error(std::string("out of memory allocating ") + what);
  }
  if (huge) ::madvise(p, rounded / kHuge * kHuge, MADV_HUGEPAGE);
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
