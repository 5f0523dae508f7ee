// A fixed set of worker threads for data-parallel kernels. parallel_for
// splits [0, n) into contiguous chunks and every thread, the caller
// included, claims chunks until none is left, so results never depend on
// scheduling: each output element is computed by exactly one chunk with
// the same arithmetic whichever thread runs it and whatever the thread
// count. A late worker (not yet woken, or descheduled on a busy machine)
// never holds the caller up: the caller runs the chunks nobody claimed.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace strata {

class ThreadPool {
 public:
  // n_threads includes the calling thread; 0 means hardware concurrency.
  explicit ThreadPool(size_t n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t size() const { return workers_.size() + 1; }

  // fn(begin, end) over disjoint chunks covering [0, n): one chunk per
  // thread (at most size() chunks; chunk i is [i * c, (i + 1) * c) for a c
  // that is a multiple of `grain`, the last one shorter), so a caller may
  // index per-chunk scratch by begin / c. Blocks until all chunks are done.
  // Exceptions thrown by fn are rethrown on the calling thread.
  void parallel_for(size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn);

  // The same with chunks of exactly `grain` (the last one shorter), more
  // of them than threads: a thread that finishes early, or one that starts
  // late, is balanced by the others taking more chunks. (Over 2^20 chunks,
  // the grain is multiplied until there are not.)
  void parallel_chunks(size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn);

 private:
  void run(size_t n, size_t chunk, size_t chunks, const std::function<void(size_t, size_t)>& fn);
  // Claims and runs chunks of job `gen` until none is left.
  void work(uint32_t gen);
  void worker_loop();

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_work_, cv_done_;
  // The current job: written under mu_ before generation_ moves on, read by
  // the threads that claimed a chunk of it (a claim checks the generation).
  const std::function<void(size_t, size_t)>* job_ = nullptr;
  size_t n_ = 0, chunk_ = 0;
  // generation | chunk count | next chunk to claim (thread_pool.cpp).
  std::atomic<uint64_t> claim_{0};
  std::atomic<size_t> done_{0};
  uint32_t generation_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

// A single-thread fallback used when no pool is given.
void parallel_for(ThreadPool* pool, size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn);
void parallel_chunks(ThreadPool* pool, size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn);

}  // namespace strata
