// Page-aligned memory (usable as an O_DIRECT target) optionally charged to a
// MemoryLedger for its whole life.
#pragma once

#include <cstddef>
#include <cstdint>

namespace strata {

class MemoryLedger;

class AlignedBuffer {
 public:
  static constexpr size_t kAlignment = 4096;

  AlignedBuffer() = default;
  // Zero-filled. Throws Error if the ledger refuses or allocation fails.
  AlignedBuffer(size_t bytes, MemoryLedger* ledger, const char* what);
  ~AlignedBuffer();
  AlignedBuffer(AlignedBuffer&& o) noexcept;
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  template <class T>
  T* as() { return reinterpret_cast<T*>(data_); }
  template <class T>
  const T* as() const { return reinterpret_cast<const T*>(data_); }

 private:
  void reset();
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  MemoryLedger* ledger_ = nullptr;
};

}  // namespace strata
