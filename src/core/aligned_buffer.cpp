#include "core/aligned_buffer.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "core/error.h"
#include "core/memory_ledger.h"

namespace strata {

namespace {

constexpr size_t kHuge = size_t(2) << 20;

// Buffers of this size or more are their own mappings (see the constructor).
bool mapped(size_t rounded) { return rounded >= (size_t(1) << 20); }

}  // namespace

AlignedBuffer::AlignedBuffer(size_t bytes, MemoryLedger* ledger, const char* what) {
  if (bytes == 0) return;
  size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  if (ledger) ledger->charge(rounded, what);
  // Large buffers (layers, slots) start on a 2 MiB boundary and ask for huge
  // pages over their whole 2 MiB blocks: first-touching fresh memory is what
  // makes loading resident layers slow on VMs (measured 0.3 GB/s with 4 KiB
  // pages, 0.5 GB/s with 2 MiB ones). The tail stays in small pages, so the
  // memory used is still `rounded`, what the ledger was charged.
  void* p = nullptr;
  if (mapped(rounded)) {
    // Mapped directly, so freeing returns the memory to the kernel at once.
    // From malloc, a freed buffer of up to 32 MiB raises glibc's mmap
    // threshold and the next ones come from the heap, which keeps what is
    // freed: a second Engine in the same process (strata bench's baseline)
    // then needed twice the budget and was OOM-killed in a memory cgroup.
    const size_t align = rounded >= 4 * kHuge ? kHuge : kAlignment;
    const size_t span = rounded + align - kAlignment;
    void* m = ::mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m != MAP_FAILED) {
      const uintptr_t base = reinterpret_cast<uintptr_t>(m);
      const uintptr_t start = (base + align - 1) / align * align;
      if (start > base) ::munmap(m, start - base);
      if (base + span > start + rounded) ::munmap(reinterpret_cast<void*>(start + rounded), base + span - start - rounded);
      p = reinterpret_cast<void*>(start);
      if (align == kHuge) ::madvise(p, rounded / kHuge * kHuge, MADV_HUGEPAGE);
    }
  } else {
    p = std::aligned_alloc(kAlignment, rounded);
  }
  if (!p) {
    if (ledger) ledger->release(rounded);
    throw Error(std::string("out of memory allocating ") + what);
  }
  // Touched now, so the kernel charges the memory when the ledger does.
  std::memset(p, 0, rounded);
  data_ = static_cast<uint8_t*>(p);
  size_ = rounded;
  ledger_ = ledger;
}

AlignedBuffer::~AlignedBuffer() { reset(); }

void AlignedBuffer::reset() {
  if (data_) {
    if (mapped(size_)) ::munmap(data_, size_);
    else std::free(data_);
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
