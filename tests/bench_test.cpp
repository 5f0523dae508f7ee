// `strata bench` on a small synthetic model: every figure the issue asks for
// is present and consistent with the plan, and the passes generate what
// Engine::generate does.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "convert/synthetic_model.h"
#include "tools/bench.h"
#include "test_util.h"

namespace strata {
namespace {

using test::TempDir;

struct SmallModel {
  TempDir tmp;
  std::filesystem::path dir = tmp / "m";
  SmallModel() {
    SynthOptions so;
    so.seed = 9;
    so.max_shard_bytes = 1u << 20;  // several files, so the probes cross files
    write_synthetic_model(dir, find_synth_preset("tiny-llama3").config, so);
  }
};

TEST(Bench, ReportIsConsistentWithThePlan) {
  SmallModel m;
  EngineOptions eo;
  eo.max_memory = Engine::open(m.dir, eo)->plan_for(16).min_budget;
  BenchOptions o;
  o.model = m.dir;
  o.engine = eo;
  o.tokens = 3;
  o.disk_probe_bytes = 1u << 20;
  BenchReport r = run_bench(o);

  auto e = Engine::open(m.dir, eo);
  const ModelInfo info = e->info();
  EXPECT_EQ(r.model_bytes, info.total_bytes);
  // Streamed per pass: everything but the residents and the embedding table
  // (only its rows are read).
  EXPECT_EQ(r.strata.bytes_per_pass, r.model_bytes - r.resident_bytes - info.embedding_bytes);
  EXPECT_GE(r.streaming_slots, 1u);
  EXPECT_LT(r.resident_units, r.units);
  EXPECT_GT(r.strata.seconds_per_pass, 0);
  EXPECT_GE(r.strata.seconds_per_pass + 1e-9, r.strata.io_wait_s);
  EXPECT_NEAR(r.strata.tokens_per_s, 1.0 / r.strata.seconds_per_pass, 1e-9);

  // Every method probed (or a note saying why not), plus the plain reference.
  std::vector<std::string> methods;
  for (const auto& d : r.disk) {
    methods.push_back(d.method);
    EXPECT_TRUE(d.bytes_per_s > 0 || !d.note.empty()) << d.method;
    EXPECT_LE(d.bytes_per_s, r.disk_bytes_per_s) << d.method;
  }
  for (const char* want : {"uring", "direct", "pread", "buffered", "sequential", "loaders"})
    EXPECT_NE(std::find(methods.begin(), methods.end(), want), methods.end()) << want;
  ASSERT_GT(r.disk_bytes_per_s, 0);
  EXPECT_NEAR(r.efficiency, (double(r.strata.bytes_per_pass) / r.disk_bytes_per_s) / r.strata.seconds_per_pass,
              1e-9);
  EXPECT_GT(r.memory_bytes_per_s, 0);
  // Loading without compute cannot be slower than loading with it, give or
  // take scheduling noise on a small model.
  EXPECT_GT(r.strata.read_only_seconds_per_pass, 0);
  EXPECT_GT(r.naive.seconds_per_pass, 0);
  EXPECT_GT(r.mmap_seconds_per_pass, r.strata.compute_s);

  GenerateRequest req;
  req.prompt_ids = {1};
  req.max_new_tokens = o.tokens + 1;
  req.stop_at_eos = false;
  EXPECT_EQ(r.output_ids, e->generate(req).output_ids);
}

TEST(Bench, CliJsonHasTheRequiredFields) {
  SmallModel m;
  const uint64_t budget = Engine::open(m.dir, EngineOptions{})->plan_for(16).min_budget;
  auto res = test::run_strata({"bench", m.dir.string(), "--tokens", "2", "--no-baselines", "--format", "json",
                               "--max-memory", std::to_string(budget)});
  ASSERT_EQ(res.status, 0) << res.err;
  auto j = nlohmann::json::parse(res.out);
  for (const char* k : {"io_method", "bytes_per_pass", "disk_bytes_per_s", "io_wait_s", "compute_s",
                        "seconds_per_pass", "tokens_per_s", "efficiency", "memory_bytes_per_s",
                        "disk_bytes_per_s_by_method"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_GT(j["bytes_per_pass"].get<double>(), 0);
  EXPECT_GT(j["efficiency"].get<double>(), 0);
}

// MoE: the expert cache's figures are in the report. Everything fits, so
// only the first routing of each expert is read; later ones hit.
TEST(Bench, CliReportsExpertCacheOnMoeModels) {
  TempDir tmp;
  auto res = test::run_strata({"bench", (tmp / "m").string(), "--synthetic", "tiny-qwen3moe", "--tokens", "3",
                               "--no-baselines", "--format", "json"});
  ASSERT_EQ(res.status, 0) << res.err;
  auto j = nlohmann::json::parse(res.out);
  ASSERT_TRUE(j.contains("experts_routed") && j.contains("expert_hit_rate") && j.contains("expert_bytes_per_pass"));
  EXPECT_GT(j["experts_routed"].get<uint64_t>(), 0u);
  const uint64_t routed = j["experts_routed"], hits = j["expert_hits"], bytes = j["expert_bytes_per_pass"];
  EXPECT_GT(hits, 0u);  // decode passes route again to experts the earlier passes read
  EXPECT_LE(hits, routed);
  EXPECT_DOUBLE_EQ(j["expert_hit_rate"].get<double>(), double(hits) / double(routed));
  EXPECT_EQ(bytes > 0, hits < routed);  // only misses are read
  EXPECT_LE(bytes, j["bytes_per_pass"].get<uint64_t>());
}

TEST(Bench, CliRejectsBadArguments) {
  SmallModel m;
  EXPECT_EQ(test::run_strata({"bench", m.dir.string(), "--tokens", "0"}).status, 2);
  EXPECT_EQ(test::run_strata({"bench", m.dir.string(), "--io", "floppy"}).status, 2);
  EXPECT_EQ(test::run_strata({"bench", m.dir.string(), "--disk-probe", "lots"}).status, 2);
  auto r = test::run_strata({"bench", (m.tmp / "missing").string(), "--no-baselines"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("missing"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace strata
