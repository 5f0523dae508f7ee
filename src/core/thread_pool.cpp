#include "core/thread_pool.h"

#include <algorithm>
#include <stdexcept>

namespace strata {

ThreadPool::ThreadPool(size_t n_threads) {
  if (n_threads == 0) n_threads = std::max(1u, std::thread::hardware_concurrency());
  for (size_t i = 1; i < n_threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_work_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::worker_loop(size_t index) {
  size_t seen = 0;
  for (;;) {
    const std::function<void(size_t, size_t)>* job;
    std::pair<size_t, size_t> chunk;
    bool dynamic;
    size_t n, grain;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_work_.wait(lk, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      job = job_;
      dynamic = dynamic_;
      n = dyn_n_;
      grain = dyn_grain_;
      if (!dynamic) chunk = chunks_[index];
    }
    if (dynamic) {
      run_chunks(seen, *job, n, grain);
      continue;
    }
    std::exception_ptr err;
    if (chunk.first < chunk.second) {
      try {
        (*job)(chunk.first, chunk.second);
      } catch (...) {
        err = std::current_exception();
      }
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (err && !error_) error_ = err;
      if (--pending_ == 0) cv_done_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn) {
  if (n == 0) return;
  grain = std::max<size_t>(grain, 1);
  size_t blocks = (n + grain - 1) / grain;
  size_t nt = std::min(size(), blocks);
  if (nt <= 1) {
    fn(0, n);
    return;
  }
  std::vector<std::pair<size_t, size_t>> chunks(size(), {0, 0});
  for (size_t t = 0; t < nt; ++t) {
    size_t b0 = blocks * t / nt, b1 = blocks * (t + 1) / nt;
    chunks[t] = {std::min(n, b0 * grain), std::min(n, b1 * grain)};
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    job_ = &fn;
    dynamic_ = false;
    chunks_ = chunks;
    pending_ = workers_.size();
    error_ = nullptr;
    ++generation_;
  }
  cv_work_.notify_all();
  std::exception_ptr mine;
  try {
    fn(chunks[0].first, chunks[0].second);
  } catch (...) {
    mine = std::current_exception();
  }
  std::unique_lock<std::mutex> lk(mu_);
  cv_done_.wait(lk, [&] { return pending_ == 0; });
  if (mine) std::rethrow_exception(mine);
  if (error_) std::rethrow_exception(error_);
}

void ThreadPool::run_chunks(size_t gen, const std::function<void(size_t, size_t)>& fn, size_t n, size_t grain) {
  const uint64_t tag = uint64_t(gen & 0xffffffffu) << 32;
  for (;;) {
    uint64_t cur = dyn_next_.load();
    size_t c;
    do {
      if ((cur & ~uint64_t(0xffffffffu)) != tag) return;  // a later job: not ours
      c = size_t(cur & 0xffffffffu);
      if (c * grain >= n) return;
    } while (!dyn_next_.compare_exchange_weak(cur, cur + 1));
    std::exception_ptr err;
    try {
      fn(c * grain, std::min(n, (c + 1) * grain));
    } catch (...) {
      err = std::current_exception();
    }
    std::lock_guard<std::mutex> lk(mu_);
    if (err && !error_) error_ = err;
    if (++dyn_done_ == dyn_chunks_) cv_done_.notify_all();
  }
}

void ThreadPool::parallel_chunks(size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn) {
  if (n == 0) return;
  grain = std::max<size_t>(grain, 1);
  const size_t chunks = (n + grain - 1) / grain;
  if (size() == 1 || chunks == 1) {
    fn(0, n);
    return;
  }
  if (chunks >= (size_t(1) << 32)) throw std::length_error("parallel_chunks: too many chunks");
  size_t gen;
  {
    std::lock_guard<std::mutex> lk(mu_);
    gen = ++generation_;
    job_ = &fn;
    dynamic_ = true;
    dyn_n_ = n;
    dyn_grain_ = grain;
    dyn_chunks_ = chunks;
    dyn_done_ = 0;
    error_ = nullptr;
    dyn_next_.store(uint64_t(gen & 0xffffffffu) << 32);
  }
  cv_work_.notify_all();
  run_chunks(gen, fn, n, grain);
  std::unique_lock<std::mutex> lk(mu_);
  // dynamic_ stays set: a worker waking late for this generation must see it
  // as the dynamic job it was (and find no chunk left), not as a static one.
  cv_done_.wait(lk, [&] { return dyn_done_ == dyn_chunks_; });
  if (error_) std::rethrow_exception(error_);
}

void parallel_for(ThreadPool* pool, size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn) {
  if (pool) pool->parallel_for(n, grain, fn);
  else if (n) fn(0, n);
}

}  // namespace strata
