// ThreadPool: the static split (one chunk per thread) and parallel_chunks
// (chunks claimed by free threads) each cover [0, n) exactly once, mixed in
// any order and in quick succession (a worker waking late must never run an
// earlier job's function on a later job's chunks), and rethrow exceptions.
#include "core/thread_pool.h"

#include <atomic>
#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

namespace strata {
namespace {

TEST(ThreadPool, ChunksCoverEveryIndexOnceAcrossManyMixedJobs) {
  for (size_t threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    for (size_t job = 0; job < 2000; ++job) {
      const size_t n = 1 + (job * 37) % 301, grain = 1 + job % 17;
      std::vector<std::atomic<int>> hits(n);
      auto fn = [&](size_t b, size_t e) {
        ASSERT_LT(b, e);
        ASSERT_LE(e, n);
        ASSERT_EQ(b % grain, 0u);
        for (size_t i = b; i < e; ++i) hits[i]++;
      };
      if (job % 3 == 0) pool.parallel_for(n, grain, fn);
      else pool.parallel_chunks(n, grain, fn);
      for (size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "threads " << threads << " job " << job << " i " << i;
    }
  }
}

TEST(ThreadPool, ParallelChunksRethrowsAndStaysUsable) {
  ThreadPool pool(2);
  EXPECT_THROW(pool.parallel_chunks(100, 10,
                                    [](size_t b, size_t) {
                                      if (b == 50) throw std::runtime_error("chunk 5");
                                    }),
               std::runtime_error);
  std::atomic<size_t> sum{0};
  pool.parallel_chunks(100, 7, [&](size_t b, size_t e) { sum += e - b; });
  EXPECT_EQ(sum.load(), 100u);
  pool.parallel_for(100, 7, [&](size_t b, size_t e) { sum += e - b; });
  EXPECT_EQ(sum.load(), 200u);
}

}  // namespace
}  // namespace strata
