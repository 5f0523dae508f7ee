// Keys and values of one sequence for every layer, in f32:
//   k, v: (layer, position, kv_dim)
// One KvCache per sequence keeps per-sequence state out of the immutable
// model, so a batch is just several caches.
#pragma once

#include <cstdint>

#include "core/aligned_buffer.h"

namespace strata {

class MemoryLedger;

class KvCache {
 public:
  KvCache(int64_t layers, int64_t capacity, int64_t kv_dim, MemoryLedger* ledger);

  static uint64_t bytes_for(int64_t layers, int64_t capacity, int64_t kv_dim);

  float* k(int64_t layer, int64_t pos) { return k_.as<float>() + index(layer, pos); }
  float* v(int64_t layer, int64_t pos) { return v_.as<float>() + index(layer, pos); }
  int64_t capacity() const { return capacity_; }
  int64_t kv_dim() const { return kv_dim_; }

  int64_t length = 0;  // positions filled so far

 private:
  int64_t index(int64_t layer, int64_t pos) const { return (layer * capacity_ + pos) * kv_dim_; }
  int64_t layers_, capacity_, kv_dim_;
  AlignedBuffer k_, v_;
};

}  // namespace strata
