// The KV cache of every sequence, in fixed-size pages from one pool charged
// to the budget ledger once, at start. A sequence holds a page table and
// grows page by page, so memory follows the positions actually used rather
// than the context a request could reach. Keys and values are stored in f16
// (default, half the bytes) or f32; attention converts each page to f32 as
// it reads it.
//
// Page layout: (layer, {k, v}, position in page, kv_dim).
//
//   KvPool pool(layers, kv_dim, 32, pages, KvType::F16, &ledger);
//   KvSequence seq(&pool);
//   if (!seq.reserve(40)) ...        // the pool is full: wait or preempt
//   seq.store(layer, pos, k, v);     // during the forward pass
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "core/aligned_buffer.h"

namespace strata {

class MemoryLedger;

enum class KvType { F16, F32 };

// "f16" or "f32"; throws UsageError naming kv_type.
KvType parse_kv_type(const std::string& name);
const char* kv_type_name(KvType t);

class KvPool {
 public:
  KvPool(int64_t layers, int64_t kv_dim, size_t page_positions, size_t pages, KvType type, MemoryLedger* ledger);
  KvPool(const KvPool&) = delete;
  KvPool& operator=(const KvPool&) = delete;

  static uint64_t bytes_for(int64_t layers, int64_t kv_dim, size_t page_positions, size_t pages, KvType type);
  static size_t pages_for(int64_t positions, size_t page_positions) {
    return size_t((positions + int64_t(page_positions) - 1) / int64_t(page_positions));
  }

  // All `n` pages or none; thread-safe.
  bool allocate(size_t n, std::vector<uint32_t>& out);
  void release(std::vector<uint32_t>& pages);

  size_t pages_total() const { return pages_; }
  size_t pages_used() const;
  size_t page_positions() const { return page_positions_; }
  uint64_t bytes() const { return buf_.size(); }
  KvType type() const { return type_; }
  int64_t kv_dim() const { return kv_dim_; }

  // Start of layer `layer`'s keys (values: kv_dim * page_positions elements
  // later) in page `page`.
  uint8_t* k(uint32_t page, int64_t layer) {
    return buf_.data() + page * page_bytes_ + uint64_t(layer) * layer_bytes_;
  }
  uint8_t* v(uint32_t page, int64_t layer) { return k(page, layer) + layer_bytes_ / 2; }
  uint64_t page_bytes() const { return page_bytes_; }
  size_t element_bytes() const { return type_ == KvType::F16 ? 2 : 4; }

 private:
  int64_t layers_, kv_dim_;
  size_t page_positions_, pages_;
  KvType type_;
  uint64_t layer_bytes_, page_bytes_;
  AlignedBuffer buf_;
  mutable std::mutex mu_;
  std::vector<uint32_t> free_;
};

// One sequence's page table. Pages go back to the pool on release() and in
// the destructor.
class KvSequence {
 public:
  explicit KvSequence(KvPool* pool = nullptr) : pool_(pool) {}
  ~KvSequence() { release(); }
  KvSequence(KvSequence&& o) noexcept;
  KvSequence& operator=(KvSequence&& o) noexcept;
  KvSequence(const KvSequence&) = delete;
  KvSequence& operator=(const KvSequence&) = delete;

  // Makes room for positions 0..positions-1; false when the pool is short.
  bool reserve(int64_t positions);
  void release();
  // Copies positions 0..n-1 of `from` (same pool) into this sequence, which
  // must already hold room for them.
  void copy_from(const KvSequence& from, int64_t n);

  int64_t capacity() const { return pool_ ? int64_t(pages_.size() * pool_->page_positions()) : 0; }
  size_t pages() const { return pages_.size(); }
  KvPool* pool() const { return pool_; }

  // Stores f32 key and value rows (kv_dim each) at `pos`.
  void store(int64_t layer, int64_t pos, const float* k, const float* v);
  // Element pointer of position `pos` (keys or values) in the pool's type.
  const uint8_t* k_at(int64_t layer, int64_t pos) const;
  const uint8_t* v_at(int64_t layer, int64_t pos) const;

  int64_t length = 0;  // positions filled so far

 private:
  KvPool* pool_;
  std::vector<uint32_t> pages_;
};

}  // namespace strata
