#include "core/thread_pool.h"

#include <algorithm>
#include <utility>

namespace strata {

ThreadPool::ThreadPool(size_t n_threads) {
  if (n_threads == 0) n_threads = std::max(1u, std::thread::hardware_concurrency());
  for (size_t i = 1; i < n_threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_work_.notify_all();
  for (auto& t : workers_) t.join();
}

namespace {

// The claim word: generation (24 bits) | chunk count (20) | next chunk (20).
// One atomic holds all three, so a thread that woke for an older job reads
// that job's own count and can never claim a chunk of the next one.
constexpr int kCountShift = 20, kGenShift = 40;
constexpr uint64_t kField = (uint64_t(1) << 20) - 1;
constexpr size_t kMaxChunks = size_t(kField);

}  // namespace

void ThreadPool::work(uint32_t gen) {
  for (;;) {
    uint64_t c = claim_.load(std::memory_order_acquire);
    do {
      if (uint32_t(c >> kGenShift) != gen || (c & kField) >= ((c >> kCountShift) & kField)) return;
    } while (!claim_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel));
    // Claimed: the job cannot change before this chunk is counted done.
    const size_t i = size_t(c & kField), chunks = size_t((c >> kCountShift) & kField);
    const size_t b = i * chunk_, e = std::min(n_, b + chunk_);
    try {
      (*job_)(b, e);
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu_);
      if (!error_) error_ = std::current_exception();
    }
    if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == chunks) {
      std::lock_guard<std::mutex> lk(mu_);
      cv_done_.notify_one();
    }
  }
}

void ThreadPool::worker_loop() {
  uint32_t seen = 0;
  for (;;) {
    uint32_t gen;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_work_.wait(lk, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = gen = generation_;
    }
    // job_, n_ and chunk_ are only read after a claim of this
    // generation succeeds, and the caller does not start the next job
    // before every claimed chunk is done.
    work(gen);
  }
}

void ThreadPool::run(size_t n, size_t chunk, size_t chunks, const std::function<void(size_t, size_t)>& fn) {
  uint32_t gen;
  {
    std::lock_guard<std::mutex> lk(mu_);
    job_ = &fn;
    n_ = n;
    chunk_ = chunk;
    error_ = nullptr;
    done_.store(0, std::memory_order_relaxed);
    gen = generation_ = (generation_ + 1) & ((uint32_t(1) << 24) - 1);
    claim_.store(uint64_t(gen) << kGenShift | uint64_t(chunks) << kCountShift, std::memory_order_release);
  }
  cv_work_.notify_all();
  work(gen);
  if (done_.load(std::memory_order_acquire) != chunks) {
    std::unique_lock<std::mutex> lk(mu_);
    cv_done_.wait(lk, [&] { return done_.load(std::memory_order_acquire) == chunks; });
  }
  std::lock_guard<std::mutex> lk(mu_);
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

void ThreadPool::parallel_for(size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn) {
  if (n == 0) return;
  grain = std::max<size_t>(grain, 1);
  const size_t blocks = (n + grain - 1) / grain;
  const size_t nt = std::min(size(), blocks);
  if (nt <= 1) return fn(0, n);
  const size_t chunk = (blocks + nt - 1) / nt * grain;
  run(n, chunk, (n + chunk - 1) / chunk, fn);
}

void ThreadPool::parallel_chunks(size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn) {
  if (n == 0) return;
  grain = std::max<size_t>(grain, 1);
  // At most kMaxChunks: a larger grain (still a multiple of the asked one).
  if ((n + grain - 1) / grain > kMaxChunks) grain *= ((n + grain - 1) / grain + kMaxChunks - 1) / kMaxChunks;
  const size_t chunks = (n + grain - 1) / grain;
  if (size() <= 1 || chunks <= 1) return fn(0, n);
  run(n, grain, chunks, fn);
}

void parallel_for(ThreadPool* pool, size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn) {
  if (pool) pool->parallel_for(n, grain, fn);
  else if (n) fn(0, n);
}

void parallel_chunks(ThreadPool* pool, size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn) {
  if (pool) pool->parallel_chunks(n, grain, fn);
  else if (n) fn(0, n);
}

}  // namespace strata
