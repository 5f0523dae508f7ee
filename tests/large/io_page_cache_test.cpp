// Streaming through the page cache must not fill it: the buffered and pread
// methods drop every page they copy out, so after several passes over a
// synthetic model little of its files remains cached (checked with
// mincore), and the tokens equal those of the O_DIRECT methods.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <filesystem>

#include "convert/synthetic_model.h"
#include "runtime/model_files.h"
#include "strata/strata.h"
#include "test_util.h"

namespace strata::test {
namespace {

namespace fs = std::filesystem;

// Pages of the file in the page cache, and of the file in total.
std::pair<uint64_t, uint64_t> cached_pages(const fs::path& p) {
  int fd = ::open(p.c_str(), O_RDONLY);
  EXPECT_GE(fd, 0);
  const uint64_t size = fs::file_size(p), page = uint64_t(sysconf(_SC_PAGESIZE)), pages = (size + page - 1) / page;
  void* m = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  EXPECT_NE(m, MAP_FAILED);
  std::vector<unsigned char> v(pages);
  EXPECT_EQ(::mincore(m, size, v.data()), 0);
  uint64_t n = 0;
  for (unsigned char c : v) n += c & 1;
  ::munmap(m, size);
  ::close(fd);
  return {n, pages};
}

TEST(LargeIo, BufferedStreamingLeavesLittleInThePageCacheAndMatchesDirect) {
  TempDir tmp;
  const fs::path dir = tmp / "m";
  SynthOptions so;
  so.seed = 11;
  so.layers = 3;
  so.max_shard_bytes = uint64_t(512) << 20;
  write_synthetic_model(dir, find_synth_preset("llama3.2-1b").config, so);
  std::vector<fs::path> shards;
  for (auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".safetensors") shards.push_back(e.path());
  ASSERT_FALSE(shards.empty());
  {
    ModelFiles files(shards);  // writing left the files cached
    for (size_t i = 0; i < files.count(); ++i) files.evict_from_page_cache(i);
  }

  std::vector<std::vector<int32_t>> outputs;
  for (const char* io : {"buffered", "pread", "uring"}) {
    EngineOptions o;
    o.io = io;
    o.max_memory = Engine::open(dir, o)->plan_for(16).min_budget;
    auto e = Engine::open(dir, o);
    if (e->io_method() != io) continue;  // O_DIRECT refused here
    GenerateRequest req;
    req.prompt_ids = {128000, 9906, 1917};
    req.max_new_tokens = 4;
    req.stop_at_eos = false;
    for (int rep = 0; rep < 2; ++rep) {
      GenerateResult r = e->generate(req);
      EXPECT_EQ(r.io_method, io);
      EXPECT_EQ(r.plan.resident_units, 0u);
      outputs.push_back(r.output_ids);
    }
    if (std::string(io) != "uring") {
      uint64_t cached = 0, total = 0;
      for (const auto& s : shards) {
        auto [c, t] = cached_pages(s);
        cached += c;
        total += t;
      }
      std::printf("%s: %.1f%% of %.0f MiB cached after 8 passes\n", io, 100.0 * double(cached) / double(total),
                  double(total) * 4096 / (1 << 20));
      EXPECT_LT(cached, total / 20) << io << ": " << cached << " of " << total << " pages cached";
    }
  }
  ASSERT_GE(outputs.size(), 4u);
  for (const auto& o : outputs) EXPECT_EQ(o, outputs[0]);
}

}  // namespace
}  // namespace strata::test
