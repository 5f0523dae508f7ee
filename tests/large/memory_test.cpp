// Peak resident memory of a real run against --max-memory, on a synthetic
// model of more than 1 GB streamed through a budget of 25% of its size.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_util.h"

namespace strata::test {
namespace {

using nlohmann::json;

// Code, libraries, thread stacks, allocator and stdio buffers: everything a
// process holds besides what strata charges to its budget.
constexpr long kFixedOverheadKb = 48 * 1024;

TEST(LargeModel, PeakMemoryStaysWithinBudgetAndOutputMatchesResident) {
  TempDir tmp;
  const std::string model = (tmp / "model").string();
  auto synth = run_strata({"synth", "--preset", "llama3.2-1b", "--layers", "6", "--seed", "3", "-o", model});
  ASSERT_EQ(synth.status, 0) << synth.err;

  auto info = run_strata({"info", model, "--format", "json"});
  ASSERT_EQ(info.status, 0) << info.err;
  const uint64_t model_bytes = json::parse(info.out)["total_bytes"];
  ASSERT_GE(model_bytes, uint64_t(1) << 30);
  const uint64_t budget = model_bytes / 4;

  const std::vector<std::string> gen = {"--prompt-ids", "128000,9906,1917,11,358", "-n", "6", "--format", "json"};
  auto args = [&](std::vector<std::string> head) {
    head.insert(head.end(), gen.begin(), gen.end());
    return head;
  };
  auto streamed = run_strata(args({"run", model, "--max-memory", std::to_string(budget)}));
  ASSERT_EQ(streamed.status, 0) << streamed.err;
  json s = json::parse(streamed.out);
  EXPECT_LT(s["memory"]["resident_units"].get<int>(), s["memory"]["units"].get<int>());
  EXPECT_GT(s["memory"]["streamed_bytes_per_pass"].get<uint64_t>(), model_bytes / 2);
  const long budget_kb = long(budget / 1024);
  std::printf("model %.2f GiB, budget %.1f MiB, peak RSS %.1f MiB (allowed: budget + %ld MiB)\n",
              double(model_bytes) / (1 << 30), double(budget_kb) / 1024, double(streamed.max_rss_kb) / 1024,
              kFixedOverheadKb / 1024);
  EXPECT_LE(streamed.max_rss_kb, budget_kb + kFixedOverheadKb);

  auto resident = run_strata(args({"run", model, "--max-memory", std::to_string(model_bytes * 2)}));
  ASSERT_EQ(resident.status, 0) << resident.err;
  json r = json::parse(resident.out);
  EXPECT_EQ(r["memory"]["resident_units"], r["memory"]["units"]);
  EXPECT_EQ(s["output_ids"], r["output_ids"]);
  EXPECT_EQ(s["output_ids"].size(), 6u);
}

}  // namespace
}  // namespace strata::test
