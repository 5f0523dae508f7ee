// The Planner's choices that are not visible in the output ids: which units
// stay resident and how deep the prefetch is.
#include <gtest/gtest.h>

#include "runtime/planner.h"
#include "runtime/stream_unit.h"

namespace strata {
namespace {

std::vector<StreamUnit> equal_units(size_t n, uint64_t bytes) {
  std::vector<StreamUnit> u(n);
  for (size_t i = 0; i < n; ++i) {
    u[i].layer = int64_t(i);
    u[i].slot_bytes = u[i].file_bytes = bytes;
  }
  return u;
}

size_t longest_resident_run(const Plan& p) {
  size_t best = 0, run = 0;
  for (bool r : p.resident) best = std::max(best, run = r ? run + 1 : 0);
  return best;
}

// A run of residents is compute during which the loaders can only fill the
// slots and wait; spread over the pass, residents keep the disk busy.
TEST(Planner, ResidentsAreSpreadOverThePass) {
  const uint64_t mb = 1 << 20;
  const auto units = equal_units(35, 100 * mb);
  for (size_t residents : {2, 5, 11, 17, 25}) {
    PlanRequest req;
    req.budget = kPlanReserveBytes + (3 + residents) * 100 * mb;
    Plan p = make_plan(units, req);
    ASSERT_EQ(p.n_slots, 3u) << residents;
    ASSERT_EQ(p.resident_units(), residents);
    // Evenly spread: no run longer than the ratio of residents to streamed
    // units (rounded up), plus one.
    const size_t streamed = units.size() - residents;
    EXPECT_LE(longest_resident_run(p), (residents + streamed - 1) / streamed + 1) << residents;
    EXPECT_EQ(p.streamed_bytes_per_pass, streamed * 100 * mb);
  }
}

TEST(Planner, SlotsFirstThenResidentsThenDeeperPrefetch) {
  const uint64_t mb = 1 << 20;
  const auto units = equal_units(10, 100 * mb);
  PlanRequest req;
  req.budget = kPlanReserveBytes + 2 * 100 * mb;
  EXPECT_EQ(make_plan(units, req).n_slots, 2u);
  req.budget = kPlanReserveBytes + 3 * 100 * mb;
  Plan three = make_plan(units, req);
  EXPECT_EQ(three.n_slots, 3u);
  EXPECT_EQ(three.resident_units(), 0u);
  req.budget = kPlanReserveBytes + 10 * 100 * mb;
  EXPECT_EQ(make_plan(units, req).resident_units(), 10u);  // everything fits: no slots needed
  req.budget = kPlanReserveBytes + 1 * 100 * mb - 1;
  EXPECT_THROW(make_plan(units, req), std::exception);
}

}  // namespace
}  // namespace strata
