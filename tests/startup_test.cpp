// Startup: Engine::load builds the runtime (resident units read) before any
// request, later requests reuse it, and `strata info --load` reports what it
// cost.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "strata/strata.h"
#include "test_util.h"

namespace strata {
namespace {

using test::run_strata;
using test::stories_dir;

TEST(Startup, LoadReadsResidentUnitsOnceBeforeTheFirstRequest) {
  EngineOptions o;
  o.max_memory = 64 << 20;  // stories260K fits whole: every unit resident
  o.context = 256;
  auto e = Engine::open(stories_dir(), o);
  EXPECT_EQ(e->stats().resident_bytes_read, 0u);  // open reads no weights
  e->load(256);
  const EngineStats loaded = e->stats();
  EXPECT_GT(loaded.resident_bytes_read, 0u);
  EXPECT_GT(loaded.startup_s, 0.0);
  EXPECT_EQ(loaded.passes, 0u);

  GenerateRequest req;
  req.prompt_ids = {1, 403, 407};
  req.max_new_tokens = 8;
  GenerateResult r = e->generate(req);
  EXPECT_FALSE(r.output_ids.empty());
  const EngineStats after = e->stats();
  EXPECT_EQ(after.resident_bytes_read, loaded.resident_bytes_read);  // not read again
  EXPECT_EQ(after.startup_s, loaded.startup_s);
  e->load(256);  // built already: nothing
  EXPECT_EQ(e->stats().resident_bytes_read, loaded.resident_bytes_read);

  EXPECT_THROW(e->load(0), UsageError);
  EXPECT_THROW(e->load(1 << 30), UsageError);  // beyond the model's context
}

TEST(Startup, InfoLoadReportsStartupTime) {
  auto r = run_strata({"info", stories_dir().string(), "--load", "--format", "json", "--max-memory", "64MiB"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  const double open_s = j["open_s"], runtime_s = j["runtime_s"], startup_s = j["startup_s"];
  EXPECT_GT(open_s, 0.0);
  EXPECT_GT(runtime_s, 0.0);
  EXPECT_DOUBLE_EQ(startup_s, open_s + runtime_s);
  // Every unit is resident at 64 MiB: what was read is the whole plan's residents.
  EXPECT_EQ(j["plan"]["resident_units"], j["plan"]["units"]);
  EXPECT_GE(j["resident_bytes_read"].get<uint64_t>(), j["plan"]["resident_bytes"].get<uint64_t>() / 2);
  EXPECT_GT(j["resident_bytes_read"].get<uint64_t>(), 0u);

  auto text = run_strata({"info", stories_dir().string(), "--load", "--max-memory", "64MiB"});
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find("startup:"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("resident units"), std::string::npos) << text.out;

  // Without --load nothing is read: only the open is timed.
  auto plain = run_strata({"info", stories_dir().string(), "--format", "json"});
  ASSERT_EQ(plain.status, 0) << plain.err;
  auto pj = nlohmann::json::parse(plain.out);
  EXPECT_TRUE(pj.contains("open_s"));
  EXPECT_FALSE(pj.contains("startup_s"));
}

}  // namespace
}  // namespace strata
