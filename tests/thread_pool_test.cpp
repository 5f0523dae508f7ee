// ThreadPool: chunks cover [0, n) exactly once in the documented shapes,
// whichever thread claims them; errors come back to the caller; thousands of
// back-to-back jobs (workers that wake late see a newer job) stay exact.
#include "core/thread_pool.h"

#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace strata {
namespace {

using Chunks = std::set<std::pair<size_t, size_t>>;

Chunks collect(ThreadPool& pool, bool fixed, size_t n, size_t grain) {
  std::mutex mu;
  Chunks seen;
  auto fn = [&](size_t b, size_t e) {
    std::lock_guard<std::mutex> lk(mu);
    EXPECT_TRUE(seen.insert({b, e}).second) << b;
  };
  if (fixed) pool.parallel_chunks(n, grain, fn);
  else pool.parallel_for(n, grain, fn);
  return seen;
}

void expect_cover(const Chunks& c, size_t n) {
  size_t at = 0;
  for (auto [b, e] : c) {
    EXPECT_EQ(b, at);
    EXPECT_LT(b, e);
    at = e;
  }
  EXPECT_EQ(at, n);
}

TEST(ThreadPool, ParallelForIsOneEqualChunkPerThreadAtMost) {
  for (size_t threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    for (size_t n : {1, 7, 16, 17, 100, 1000})
      for (size_t grain : {1, 4, 16}) {
        const Chunks c = collect(pool, false, n, grain);
        expect_cover(c, n);
        EXPECT_LE(c.size(), threads);
        // Chunk i starts at i * c with c a multiple of grain (callers index
        // per-chunk scratch by begin / c).
        const size_t first = c.begin()->second;
        if (c.size() > 1) {
          EXPECT_EQ(first % grain, 0u);
        }
        size_t i = 0;
        for (auto [b, e] : c) EXPECT_EQ(b, first * i++) << threads << " " << n << " " << grain;
      }
  }
}

TEST(ThreadPool, ParallelChunksAreExactlyGrain) {
  ThreadPool pool(3);
  for (size_t n : {1, 5, 64, 65, 1000})
    for (size_t grain : {1, 4, 16}) {
      const Chunks c = collect(pool, true, n, grain);
      expect_cover(c, n);
      EXPECT_EQ(c.size(), (n + grain - 1) / grain);
      for (auto [b, e] : c) EXPECT_TRUE(e - b == grain || e == n);
    }
}

TEST(ThreadPool, ErrorsReachTheCallerAndThePoolGoesOn) {
  ThreadPool pool(2);
  for (bool fixed : {false, true}) {
    auto bad = [](size_t b, size_t) {
      if (b != 0) throw std::runtime_error("chunk failed");
    };
    EXPECT_THROW(fixed ? pool.parallel_chunks(100, 10, bad) : pool.parallel_for(100, 10, bad), std::runtime_error);
    expect_cover(collect(pool, fixed, 100, 10), 100);
  }
}

TEST(ThreadPool, ManyShortJobsStayExact) {
  ThreadPool pool(2);
  std::vector<std::atomic<int>> hits(64);
  for (int job = 0; job < 20000; ++job) {
    const size_t n = size_t(1 + job % 64);
    auto fn = [&](size_t b, size_t e) {
      for (size_t i = b; i < e; ++i) hits[i].fetch_add(1, std::memory_order_relaxed);
    };
    if (job % 2) pool.parallel_chunks(n, 1 + job % 5, fn);
    else pool.parallel_for(n, 1 + job % 3, fn);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].exchange(0), 1) << "job " << job << " i " << i;
  }
}

TEST(ThreadPool, NoPoolRunsOnTheCaller) {
  size_t calls = 0;
  parallel_chunks(nullptr, 10, 3, [&](size_t b, size_t e) {
    EXPECT_EQ(b, 0u);
    EXPECT_EQ(e, 10u);
    ++calls;
  });
  EXPECT_EQ(calls, 1u);
}

// Static and claimed jobs mixed in quick succession: a worker waking late
// must never run an earlier job's function on a later job's chunks.
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

}  // namespace
}  // namespace strata
