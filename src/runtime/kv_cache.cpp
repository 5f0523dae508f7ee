#include "runtime/kv_cache.h"

namespace strata {

KvCache::KvCache(int64_t layers, int64_t capacity, int64_t kv_dim, MemoryLedger* ledger)
    : layers_(layers), capacity_(capacity), kv_dim_(kv_dim),
      k_(bytes_for(layers, capacity, kv_dim) / 2, ledger, "KV cache"),
      v_(bytes_for(layers, capacity, kv_dim) / 2, ledger, "KV cache") {}

uint64_t KvCache::bytes_for(int64_t layers, int64_t capacity, int64_t kv_dim) {
  uint64_t half = uint64_t(layers) * uint64_t(capacity) * uint64_t(kv_dim) * sizeof(float);
  half = (half + 4095) / 4096 * 4096;
  return 2 * half;
}

}  // namespace strata
