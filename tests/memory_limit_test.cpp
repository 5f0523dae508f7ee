// The automatic budget inside a memory cgroup: limits read from a fake
// cgroup file system (v1 and v2), the innermost tightest one counting.
#include <gtest/gtest.h>

#include <fstream>

#include "runtime/memory_limit.h"
#include "test_util.h"

namespace strata::test {
namespace {

void put(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p) << text << "\n";
}

TEST(MemoryLimit, CgroupV1LimitMinusUsageTightestOnThePath) {
  TempDir t;
  put(t / "memory/a/b/memory.limit_in_bytes", "1000");
  put(t / "memory/a/b/memory.usage_in_bytes", "300");
  const std::string self = "5:cpu:/\n4:memory:/a/b\n0::/\n";
  EXPECT_EQ(cgroup_memory_available(self, t.path()), 700u);
  put(t / "memory/a/memory.limit_in_bytes", "500");
  put(t / "memory/a/memory.usage_in_bytes", "450");
  EXPECT_EQ(cgroup_memory_available(self, t.path()), 50u);
  // v1's "unlimited" is a huge number.
  put(t / "memory/a/b/memory.limit_in_bytes", "9223372036854771712");
  put(t / "memory/a/memory.limit_in_bytes", "9223372036854771712");
  EXPECT_FALSE(cgroup_memory_available(self, t.path()));
}

TEST(MemoryLimit, CgroupV2MemoryMax) {
  TempDir t;
  put(t / "cgroup.controllers", "cpu memory");
  put(t / "x/memory.max", "2000");
  put(t / "x/memory.current", "500");
  EXPECT_EQ(cgroup_memory_available("0::/x\n", t.path()), 1500u);
  put(t / "x/memory.max", "max");
  EXPECT_FALSE(cgroup_memory_available("0::/x\n", t.path()));
  EXPECT_FALSE(cgroup_memory_available("", t.path()));
  EXPECT_GT(available_memory(), 0u);
}

}  // namespace
}  // namespace strata::test
