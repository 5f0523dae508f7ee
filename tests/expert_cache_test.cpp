// The expert cache on its own: every expert handed to compute holds its
// own bytes (cached, read in one batch, or read in waves when a layer needs
// more experts than slots), and the two eviction policies keep what they
// promise: LRU the most recent experts, LFU the most often routed ones.
#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "core/error.h"
#include "core/memory_ledger.h"
#include "runtime/expert_cache.h"
#include "runtime/io_engine.h"
#include "runtime/model_files.h"
#include "runtime/stream_unit.h"
#include "test_util.h"

namespace strata::test {
namespace {

constexpr size_t kExperts = 8;
constexpr uint64_t kBytes = 8192;  // per expert: every byte is its index

struct Fixture {
  TempDir tmp;
  std::unique_ptr<ModelFiles> files;
  std::unique_ptr<IoEngine> io;
  std::vector<StreamUnit> units;
  MemoryLedger ledger{uint64_t(1) << 30};

  Fixture() {
    {
      std::ofstream f(tmp / "experts.bin", std::ios::binary);
      for (size_t e = 0; e < kExperts; ++e) f << std::string(kBytes, char(e));
    }
    files = std::make_unique<ModelFiles>(std::vector<std::filesystem::path>{tmp / "experts.bin"});
    // io_uring where it works (all of a wave in one ring), else pread.
    try {
      io = make_io_engine(IoMethod::Uring, *files);
    } catch (const Error&) {
      io = make_pread_engine(*files);
    }
    StreamUnit layer;
    for (size_t e = 0; e < kExperts; ++e) {
      StreamUnit x;
      x.kind = StreamUnit::Kind::Expert;
      x.layer = 0;
      x.expert = int64_t(e);
      // Two reads per expert, so a group spans several requests.
      x.reads = {{0, e * kBytes, kBytes / 2, reinterpret_cast<void*>(uintptr_t(0))},
                 {0, e * kBytes + kBytes / 2, kBytes / 2, reinterpret_cast<void*>(uintptr_t(kBytes / 2))}};
      x.slot_bytes = x.file_bytes = kBytes;
      layer.experts.push_back(x);
    }
    units.push_back(std::move(layer));
  }

  // Runs `needed` and returns, per expert handed over, whether its bytes were its own.
  std::map<int, bool> run(ExpertCache& c, const std::vector<int>& needed) {
    std::map<int, bool> seen;
    c.run(0, needed, [&](int e, const uint8_t* w) {
      bool ok = true;
      for (uint64_t i = 0; i < kBytes; ++i) ok = ok && w[i] == uint8_t(e);
      EXPECT_FALSE(seen.count(e)) << "expert " << e << " handed over twice";
      seen[e] = ok;
    });
    return seen;
  }
};

TEST(ExpertCache, EveryExpertGetsItsOwnBytesInWavesOrCached) {
  for (bool overlap : {true, false}) {
    Fixture f;
    ExpertCache c(f.units, 3, kBytes, *f.io, f.ledger, ExpertPolicy::Lru, overlap);
    auto seen = f.run(c, {0, 1});
    EXPECT_EQ(seen, (std::map<int, bool>{{0, true}, {1, true}}));
    // 7 experts, 3 slots, 2 of them cached: waves of 1 (the hits pinned), 3, 3.
    seen = f.run(c, {0, 1, 2, 3, 4, 5, 6});
    EXPECT_EQ(seen.size(), 7u);
    for (auto [e, ok] : seen) EXPECT_TRUE(ok) << "expert " << e << " overlap " << overlap;
    const ExpertStats s = c.stats();
    EXPECT_EQ(s.routed, 9u);
    EXPECT_EQ(s.hits, 2u);
    EXPECT_EQ(s.bytes_read, 7 * kBytes);
  }
}

TEST(ExpertCache, LruKeepsRecentLfuKeepsFrequent) {
  for (ExpertPolicy p : {ExpertPolicy::Lru, ExpertPolicy::Lfu}) {
    Fixture f;
    ExpertCache c(f.units, 2, kBytes, *f.io, f.ledger, p, true);
    for (int i = 0; i < 3; ++i) f.run(c, {0});  // expert 0: popular
    f.run(c, {1});
    f.run(c, {2});  // evicts 0 under LRU (least recent), 1 under LFU (least used)
    const uint64_t hits = c.stats().hits;
    f.run(c, {0});
    EXPECT_EQ(c.stats().hits - hits, p == ExpertPolicy::Lfu ? 1u : 0u) << expert_policy_name(p);
  }
  EXPECT_EQ(parse_expert_policy("lfu"), ExpertPolicy::Lfu);
  EXPECT_EQ(parse_expert_policy("lru"), ExpertPolicy::Lru);
  EXPECT_FALSE(parse_expert_policy("fifo"));
}

TEST(ExpertCache, ReadErrorIsThrownAndTheCacheStaysUsable) {
  Fixture f;
  ExpertCache c(f.units, 4, kBytes, *f.io, f.ledger, ExpertPolicy::Lru, true);
  inject_read_error_after(3);
  EXPECT_THROW(f.run(c, {0, 1, 2, 3}), Error);
  inject_read_error_after(0);
  auto seen = f.run(c, {0, 1, 2, 3});
  EXPECT_EQ(seen.size(), 4u);
  for (auto [e, ok] : seen) EXPECT_TRUE(ok) << "expert " << e;
}

}  // namespace
}  // namespace strata::test
