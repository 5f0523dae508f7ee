// A fixed set of worker threads for data-parallel kernels. parallel_for
// splits [0, n) into contiguous chunks, one per thread, so results never
// depend on scheduling: each output element is computed by exactly one
// thread with the same arithmetic regardless of the thread count.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstddef>
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

  // fn(begin, end) over disjoint chunks covering [0, n). Chunk boundaries are
  // multiples of `grain` (except the last). Blocks until all chunks are done.
  // Exceptions thrown by fn are rethrown on the calling thread.
  void parallel_for(size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn);

  // fn(begin, end) over the chunks [c * grain, (c + 1) * grain) of [0, n),
  // claimed one at a time by whichever thread is free; the caller starts at
  // once and returns when every chunk is done, without waiting for a worker
  // that has not woken up (on a shared machine a descheduled worker would
  // otherwise hold the caller for its whole share). Which thread runs a
  // chunk varies from call to call, so fn must compute each element the same
  // way on any thread and must not own per-thread state. Exceptions thrown by
  // fn are rethrown on the calling thread once all chunks are done.
  void parallel_chunks(size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn);

 private:
  // Claims and runs chunks of dynamic job `gen` until none is left.
  void run_chunks(size_t gen, const std::function<void(size_t, size_t)>& fn, size_t n, size_t grain);

  void worker_loop(size_t index);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_work_, cv_done_;
  const std::function<void(size_t, size_t)>* job_ = nullptr;
  std::vector<std::pair<size_t, size_t>> chunks_;
  size_t generation_ = 0;
  size_t pending_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
  // The dynamic job: next chunk to claim, tagged with the low 32 bits of its
  // generation so a worker that wakes late can never claim a later job's
  // chunk for an earlier job's fn.
  bool dynamic_ = false;
  size_t dyn_n_ = 0, dyn_grain_ = 0, dyn_chunks_ = 0, dyn_done_ = 0;
  std::atomic<uint64_t> dyn_next_{0};
};

// A single-thread fallback used when no pool is given.
void parallel_for(ThreadPool* pool, size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn);

}  // namespace strata
