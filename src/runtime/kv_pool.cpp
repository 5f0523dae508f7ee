#include "runtime/kv_pool.h"

#include <algorithm>
#include <cstring>

#include "core/dtype.h"
#include "core/error.h"

namespace strata {

KvType parse_kv_type(const std::string& name) {
  if (name == "f16") return KvType::F16;
  if (name == "f32") return KvType::F32;
  throw UsageError("kv_type must be \"f16\" or \"f32\" (got \"" + name + "\")");
}

const char* kv_type_name(KvType t) { return t == KvType::F16 ? "f16" : "f32"; }

uint64_t KvPool::bytes_for(int64_t layers, int64_t kv_dim, size_t page_positions, size_t pages, KvType type) {
  uint64_t e = type == KvType::F16 ? 2 : 4;
  uint64_t b = uint64_t(layers) * 2 * page_positions * uint64_t(kv_dim) * e * pages;
  return (b + 4095) / 4096 * 4096;
}

KvPool::KvPool(int64_t layers, int64_t kv_dim, size_t page_positions, size_t pages, KvType type, MemoryLedger* ledger)
    : layers_(layers), kv_dim_(kv_dim), page_positions_(page_positions), pages_(pages), type_(type) {
  if (page_positions == 0) throw UsageError("kv_page_positions must be positive");
  layer_bytes_ = 2 * page_positions * uint64_t(kv_dim) * element_bytes();
  page_bytes_ = layer_bytes_ * uint64_t(layers);
  buf_ = AlignedBuffer(bytes_for(layers, kv_dim, page_positions, pages, type), ledger, "KV pool");
  free_.reserve(pages);
  // Lowest page first, so a lone sequence uses memory from the start.
  for (size_t p = pages; p-- > 0;) free_.push_back(uint32_t(p));
}

size_t KvPool::pages_used() const {
  std::lock_guard<std::mutex> lk(mu_);
  return pages_ - free_.size();
}

bool KvPool::allocate(size_t n, std::vector<uint32_t>& out) {
  std::lock_guard<std::mutex> lk(mu_);
  if (free_.size() < n) return false;
  for (size_t i = 0; i < n; ++i) {
    out.push_back(free_.back());
    free_.pop_back();
  }
  return true;
}

void KvPool::release(std::vector<uint32_t>& pages) {
  std::lock_guard<std::mutex> lk(mu_);
  for (uint32_t p : pages) free_.push_back(p);
  pages.clear();
}

KvSequence::KvSequence(KvSequence&& o) noexcept : length(o.length), pool_(o.pool_), pages_(std::move(o.pages_)) {
  o.pages_.clear();
  o.length = 0;
}

KvSequence& KvSequence::operator=(KvSequence&& o) noexcept {
  if (this != &o) {
    release();
    pool_ = o.pool_;
    pages_ = std::move(o.pages_);
    length = o.length;
    o.pages_.clear();
    o.length = 0;
  }
  return *this;
}

bool KvSequence::reserve(int64_t positions) {
  if (!pool_) return false;
  size_t need = KvPool::pages_for(positions, pool_->page_positions());
  if (need <= pages_.size()) return true;
  return pool_->allocate(need - pages_.size(), pages_);
}

void KvSequence::release() {
  if (pool_ && !pages_.empty()) pool_->release(pages_);
  length = 0;
}

void KvSequence::copy_from(const KvSequence& from, int64_t n) {
  const size_t P = pool_->page_positions();
  const size_t full = KvPool::pages_for(n, P);
  if (full > pages_.size() || full > from.pages_.size()) throw Error("internal: KV copy beyond the reserved pages");
  // Whole pages: their unused tail is never read (attention stops at length).
  const size_t page_bytes = pool_->page_bytes();
  for (size_t i = 0; i < full; ++i)
    std::memcpy(pool_->k(pages_[i], 0), from.pool_->k(from.pages_[i], 0), page_bytes);
  length = std::max(length, n);
}

void KvSequence::store(int64_t layer, int64_t pos, const float* k, const float* v) {
  const size_t P = pool_->page_positions();
  const uint32_t page = pages_[size_t(pos) / P];
  const size_t off = size_t(pos) % P, d = size_t(pool_->kv_dim());
  if (pool_->type() == KvType::F32) {
    std::memcpy(pool_->k(page, layer) + off * d * 4, k, d * 4);
    std::memcpy(pool_->v(page, layer) + off * d * 4, v, d * 4);
  } else {
    uint16_t* kd = reinterpret_cast<uint16_t*>(pool_->k(page, layer)) + off * d;
    uint16_t* vd = reinterpret_cast<uint16_t*>(pool_->v(page, layer)) + off * d;
    for (size_t i = 0; i < d; ++i) {
      kd[i] = f32_to_f16(k[i]);
      vd[i] = f32_to_f16(v[i]);
    }
  }
}

const uint8_t* KvSequence::k_at(int64_t layer, int64_t pos) const {
  const size_t P = pool_->page_positions();
  return pool_->k(pages_[size_t(pos) / P], layer) + (size_t(pos) % P) * size_t(pool_->kv_dim()) * pool_->element_bytes();
}

const uint8_t* KvSequence::v_at(int64_t layer, int64_t pos) const {
  const size_t P = pool_->page_positions();
  return pool_->v(pages_[size_t(pos) / P], layer) + (size_t(pos) % P) * size_t(pool_->kv_dim()) * pool_->element_bytes();
}

}  // namespace strata
