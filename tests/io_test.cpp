// The I/O engines: every method reads exactly the bytes asked for, whatever
// the alignment; faults (truncated or rewritten files, injected read
// errors) give an error naming the file, never a hang; and generation gives
// the same tokens for every method and prefetch depth.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "convert/synthetic_model.h"
#include "core/aligned_buffer.h"
#include "core/error.h"
#include "runtime/io_engine.h"
#include "runtime/io_select.h"
#include "runtime/model_files.h"
#include "strata/strata.h"
#include "test_util.h"

namespace strata::test {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = uint8_t(rng());
  return v;
}

void write_file(const fs::path& p, const std::vector<uint8_t>& data) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size()));
}

std::vector<IoMethod> methods_here(const ModelFiles& files) { return available_io_methods(files); }

class IoFile : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = random_bytes((9u << 20) + 12345, 7);
    path_ = tmp_ / "data.bin";
    write_file(path_, data_);
  }
  TempDir tmp_;
  fs::path path_;
  std::vector<uint8_t> data_;
};

TEST_F(IoFile, EveryMethodReadsExactBytesAtAnyAlignment) {
  ModelFiles files({path_});
  auto methods = methods_here(files);
  ASSERT_FALSE(methods.empty());
  // (offset, size, offset of the destination in an aligned buffer)
  const std::vector<std::tuple<uint64_t, uint64_t, uint64_t>> cases = {
      {0, data_.size(), 0},                // whole file, unaligned end
      {4096, 8u << 20, 0},                 // aligned, several chunks
      {100, 5000, 100},                    // same misalignment: direct middle + edges
      {100, (5u << 20) + 7, 3},            // different misalignment: all through the cache
      {data_.size() - 777, 777, 0},        // the tail of the file
      {12288, 4096, 0},                    // one block
  };
  for (IoMethod m : methods) {
    auto io = make_io_engine(m, files);
    for (auto [off, size, dst] : cases) {
      AlignedBuffer buf(size + dst + 8192, nullptr, "test");
      std::vector<ReadRequest> reqs = {{0, off, size, buf.data() + dst}};
      io->read(reqs);
      ASSERT_EQ(0, std::memcmp(buf.data() + dst, data_.data() + off, size))
          << io_method_name(m) << " offset " << off << " size " << size << " dest+" << dst;
    }
    // Many requests in one call, in any order.
    AlignedBuffer buf(3u << 20, nullptr, "test");
    std::vector<ReadRequest> reqs;
    for (int i = 0; i < 3; ++i) reqs.push_back({0, uint64_t(2 - i) * (1u << 20) + 4096, 1u << 20, buf.data() + i * (1u << 20)});
    io->read(reqs);
    for (int i = 0; i < 3; ++i)
      EXPECT_EQ(0, std::memcmp(buf.data() + i * (1u << 20), data_.data() + (2 - i) * (1u << 20) + 4096, 1u << 20));
  }
}

TEST_F(IoFile, ConcurrentCallersGetTheirOwnBytes) {
  ModelFiles files({path_});
  for (IoMethod m : methods_here(files)) {
    auto io = make_io_engine(m, files);
    std::vector<std::thread> th;
    std::atomic<int> bad{0};
    for (int t = 0; t < 4; ++t)
      th.emplace_back([&, t] {
        AlignedBuffer buf(2u << 20, nullptr, "test");
        for (int k = 0; k < 5; ++k) {
          uint64_t off = uint64_t((t * 5 + k) % 7) * (1u << 20);
          std::vector<ReadRequest> reqs = {{0, off, 2u << 20, buf.data()}};
          io->read(reqs);
          if (std::memcmp(buf.data(), data_.data() + off, 2u << 20) != 0) ++bad;
        }
      });
    for (auto& t : th) t.join();
    EXPECT_EQ(bad.load(), 0) << io_method_name(m);
  }
}

// Grouped reads (the expert cache's): every group lands exactly once, with
// all its bytes in memory when it is reported, for every method; empty
// groups land too.
TEST_F(IoFile, ReadGroupsLandsEachGroupOnceWithItsBytes) {
  ModelFiles files({path_});
  for (IoMethod m : methods_here(files)) {
    auto io = make_io_engine(m, files);
    // (offset, size) per request; groups of 3, 0, 1 and 2 requests.
    const std::vector<std::pair<uint64_t, uint64_t>> spans = {
        {0, 3u << 20}, {(3u << 20) + 17, 5000}, {4096, 4096}, {123, 6u << 20}, {8192, 1}, {(9u << 20), 12345}};
    const std::vector<size_t> ends = {3, 3, 4, 6};
    uint64_t total = 0;
    for (auto [off, size] : spans) total += (size + 4095) / 4096 * 4096;
    AlignedBuffer buf(total, nullptr, "test");
    std::vector<ReadRequest> reqs;
    std::vector<uint8_t*> dests;
    uint64_t at = 0;
    for (auto [off, size] : spans) {
      reqs.push_back({0, off, size, buf.data() + at});
      dests.push_back(buf.data() + at);
      at += (size + 4095) / 4096 * 4096;
    }
    std::vector<int> landed(ends.size(), 0);
    io->read_groups(reqs, ends, [&](size_t g) {
      ++landed[g];
      for (size_t r = g == 0 ? 0 : ends[g - 1]; r < ends[g]; ++r)
        EXPECT_EQ(std::memcmp(dests[r], data_.data() + spans[r].first, spans[r].second), 0)
            << io_method_name(m) << " group " << g << " request " << r;
    });
    EXPECT_EQ(landed, std::vector<int>(ends.size(), 1)) << io_method_name(m);
    EXPECT_THROW(io->read_groups(reqs, std::vector<size_t>{2}, [](size_t) {}), Error);  // ends short of the requests
    // An injected error is thrown after the reads drain; the engine still works.
    inject_read_error_after(2);
    EXPECT_THROW(io->read_groups(reqs, ends, [](size_t) {}), Error) << io_method_name(m);
    inject_read_error_after(0);
    landed.assign(ends.size(), 0);
    io->read_groups(reqs, ends, [&](size_t g) { ++landed[g]; });
    EXPECT_EQ(landed, std::vector<int>(ends.size(), 1)) << io_method_name(m);
  }
}

TEST_F(IoFile, TruncatedFileGivesErrorNamingIt) {
  ModelFiles files({path_});
  auto methods = methods_here(files);
  ASSERT_EQ(::truncate(path_.c_str(), 3u << 20), 0);
  for (IoMethod m : methods) {
    auto io = make_io_engine(m, files);
    AlignedBuffer buf(8u << 20, nullptr, "test");
    std::vector<ReadRequest> reqs = {{0, 0, 8u << 20, buf.data()}};
    try {
      io->read(reqs);
      ADD_FAILURE() << io_method_name(m) << " read past the end of a truncated file";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path_.string()), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(files.check_unchanged(0), Error);
}

TEST_F(IoFile, InjectedReadErrorNamesTheFileAndLeavesTheEngineUsable) {
  ModelFiles files({path_});
  for (IoMethod m : methods_here(files)) {
    auto io = make_io_engine(m, files);
    AlignedBuffer buf(2u << 20, nullptr, "test");
    std::vector<ReadRequest> reqs = {{0, 0, 1u << 20, buf.data()}, {0, 1u << 20, 1u << 20, buf.data() + (1u << 20)}};
    inject_read_error_after(2);
    try {
      io->read(reqs);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path_.string()), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("injected"), std::string::npos) << e.what();
    }
    inject_read_error_after(0);
    io->read(reqs);
    EXPECT_EQ(0, std::memcmp(buf.data(), data_.data(), 2u << 20)) << io_method_name(m);
  }
}

TEST_F(IoFile, ThroughputMeasurementReadsTheFile) {
  ModelFiles files({path_});
  for (IoMethod m : methods_here(files)) {
    std::string note;
    double t = measure_read_throughput(files, m, 0, 0, data_.size(), 5.0, &note);
    EXPECT_GT(t, 0) << io_method_name(m) << ": " << note;
  }
}

TEST(IoSelect, UnknownOrUnavailableMethodsAreReported) {
  EXPECT_FALSE(parse_io_method("mmap"));
  EXPECT_EQ(parse_io_method("uring"), IoMethod::Uring);
  EngineOptions o;
  o.io = "fast";
  EXPECT_THROW(Engine::open(stories_dir(), o), UsageError);
  // /dev/shm is tmpfs, which refuses O_DIRECT: a requested direct method
  // falls back to another and says why.
  if (fs::is_directory("/dev/shm")) {
    fs::path p = fs::path("/dev/shm") / ("strata-io-test-" + std::to_string(getpid()));
    write_file(p, random_bytes(1 << 20, 1));
    {
      ModelFiles files({p});
      if (!files.direct_available()) {
        EXPECT_NE(files.direct_error().find("O_DIRECT"), std::string::npos);
        EXPECT_THROW(make_io_engine(IoMethod::Uring, files), Error);
        IoChoice c = choose_io_method(files, IoMethod::Direct);
        EXPECT_FALSE(io_method_needs_direct(c.method));
        EXPECT_NE(c.reason.find("unavailable"), std::string::npos) << c.reason;
      }
    }
    fs::remove(p);
  }
}

// Generation on a streamed budget with several slots: tokens equal for every
// method and prefetch depth, and equal to the all-resident run.
std::vector<int32_t> generate(const fs::path& dir, const std::string& io, size_t slots, uint64_t budget,
                              const std::vector<int32_t>& prompt, int n) {
  EngineOptions o;
  o.io = io;
  o.streaming_slots = slots;
  o.max_memory = budget;
  o.threads = 2;
  auto e = Engine::open(dir, o);
  GenerateRequest req;
  req.prompt_ids = prompt;
  req.max_new_tokens = n;
  req.stop_at_eos = false;
  GenerateResult r = e->generate(req);
  EXPECT_EQ(r.io_method, io);
  if (budget) {
    EXPECT_LT(r.plan.resident_units, r.plan.units);
  }
  if (slots && budget) {
    EXPECT_EQ(r.plan.streaming_slots, slots);
  }
  for (size_t i = 1; i < r.passes.size(); ++i) EXPECT_EQ(r.passes[i].bytes_read, r.plan.streamed_bytes_per_pass);
  return r.output_ids;
}

void check_methods_agree(const fs::path& dir, const std::vector<int32_t>& prompt, int n) {
  EngineOptions o;
  auto probe = Engine::open(dir, o);
  MemoryPlan p = probe->plan_for(int64_t(prompt.size()) + n);
  const uint64_t budget = p.min_budget + 3 * p.slot_bytes;  // 4 slots, or fewer slots plus residents
  const auto expected = generate(dir, "pread", 0, 0, prompt, n);  // all resident
  for (const char* io : {"uring", "direct", "pread", "buffered"}) {
    for (size_t slots : {1, 2, 3, 4}) {
      EngineOptions eo;
      eo.io = io;
      auto e = Engine::open(dir, eo);
      if (e->io_method() != io) continue;  // unavailable on this file system
      EXPECT_EQ(generate(dir, io, slots, budget, prompt, n), expected) << io << " slots " << slots;
    }
  }
}

TEST(IoEngines, TokensUnchangedForEveryMethodAndDepthOnStories) {
  check_methods_agree(stories_dir(), {1, 345, 22, 400}, 12);
}

TEST(IoEngines, TokensUnchangedForEveryMethodAndDepthOnSyntheticModel) {
  TempDir tmp;
  SynthOptions so;
  so.seed = 5;
  so.max_shard_bytes = 2u << 20;  // several shards
  write_synthetic_model(tmp / "m", find_synth_preset("tiny-llama3").config, so);
  check_methods_agree(tmp / "m", {1, 2, 3, 4, 5}, 8);
}

// Copy stories260K, start streaming it, then break the file: the next pass
// fails with an error naming the file (never a hang or garbage tokens).
void expect_failure_after_edit(const std::function<void(const fs::path&)>& edit, const std::string& io,
                               const std::string& what) {
  TempDir tmp;
  fs::copy(stories_dir(), tmp / "m");
  for (auto& f : fs::directory_iterator(tmp / "m")) fs::permissions(f.path(), fs::perms::owner_all, fs::perm_options::add);
  const fs::path file = tmp / "m" / "model.safetensors";
  EngineOptions o;
  o.io = io;
  o.max_memory = Engine::open(tmp / "m", o)->plan_for(40).min_budget;
  auto e = Engine::open(tmp / "m", o);
  GenerateRequest req;
  req.prompt_ids = {1, 345};
  req.max_new_tokens = 3;
  e->generate(req);
  edit(file);
  try {
    e->generate(req);
    ADD_FAILURE() << "no error after " << what << " (" << io << ")";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find(file.string()), std::string::npos) << err.what();
  }
}

TEST(IoFaults, TruncatedOrReplacedModelFileGivesClearError) {
  for (const char* io : {"pread", "buffered", "uring", "direct"}) {
    expect_failure_after_edit([](const fs::path& f) { fs::resize_file(f, fs::file_size(f) / 2); }, io, "truncation");
    expect_failure_after_edit(
        [](const fs::path& f) {
          fs::path t = f;
          t += ".new";
          fs::copy_file(f, t);
          fs::rename(t, f);
        },
        io, "replacement");
  }
}

TEST(IoFaults, InjectedReadErrorDuringGenerationNamesTheFile) {
  for (const char* io : {"pread", "buffered", "uring", "direct"}) {
    EngineOptions o;
    o.io = io;
    o.max_memory = Engine::open(stories_dir(), o)->plan_for(40).min_budget * 2;
    auto e = Engine::open(stories_dir(), o);
    GenerateRequest req;
    req.prompt_ids = {1, 345};
    req.max_new_tokens = 4;
    inject_read_error_after(9);
    try {
      e->generate(req);
      ADD_FAILURE() << "no error (" << io << ")";
    } catch (const Error& err) {
      EXPECT_NE(std::string(err.what()).find("model.safetensors"), std::string::npos) << err.what();
    }
    inject_read_error_after(0);
    // A fresh engine works again.
    EXPECT_EQ(Engine::open(stories_dir(), o)->generate(req).output_ids.size(), 4u);
  }
}

}  // namespace
}  // namespace strata::test
