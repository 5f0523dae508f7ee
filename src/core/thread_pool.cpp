#include "core/thread_pool.h"

#include <algorithm>

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
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_work_.wait(lk, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      job = job_;
      chunk = chunks_[index];
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

void parallel_for(ThreadPool* pool, size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn) {
  if (pool) pool->parallel_for(n, grain, fn);
  else if (n) fn(0, n);
}

}  // namespace strata
