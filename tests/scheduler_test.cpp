// The scheduler: requests submitted at any time from any thread share the
// Engine's one decode loop and its passes; results equal a fresh single run
// whatever else is running (greedy and seeded sampling, bitwise); cancel and
// preemption free KV pages; stop strings are cut in the library; kept
// caches let a conversation compute only its new tokens.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "convert/synthetic_model.h"
#include "core/error.h"
#include "strata/strata.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace strata::test {
namespace {

using nlohmann::json;

struct Case {
  std::vector<int32_t> prompt;
  int n = 0;
  SamplingParams sampling;
};

// Prompts of 1..25 tokens from the model's own outputs, -n 4..40, greedy or
// seeded sampling.
std::vector<Case> cases(size_t count) {
  json ref = json::parse(read_text(stories_dir() / "reference.json"));
  std::vector<Case> out;
  for (size_t i = 0; i < count; ++i) {
    auto src = ref["greedy"][i % 6]["output_ids"].get<std::vector<int32_t>>();
    Case c;
    c.prompt = {1};
    for (size_t k = 0; k < (i * 7) % 25; ++k) c.prompt.push_back(src[(i + k) % src.size()]);
    c.n = 4 + int(i * 13 % 37);
    if (i % 3 == 1) {
      c.sampling.temperature = 0.8f;
      c.sampling.top_k = int(i % 5) * 10;
      c.sampling.seed = i;
    }
    out.push_back(c);
  }
  return out;
}

Request request(const Case& c) {
  Request r;
  r.prompt_ids = c.prompt;
  r.max_new_tokens = c.n;
  r.sampling = c.sampling;
  r.stop_at_eos = false;
  return r;
}

// What a fresh Engine alone gives for the case.
std::vector<int32_t> fresh(const Case& c, const EngineOptions& o = {}) {
  GenerateRequest g;
  g.prompt_ids = c.prompt;
  g.max_new_tokens = c.n;
  g.sampling = c.sampling;
  g.stop_at_eos = false;
  return Engine::open(stories_dir(), o)->generate(g).output_ids;
}

TEST(Scheduler, SubmitReturnsAtOnceStreamsTokensAndEqualsAFreshRun) {
  auto cs = cases(6);
  EngineOptions o;
  o.max_sequences = 4;
  o.context = 128;
  auto e = Engine::open(stories_dir(), o);
  std::vector<RequestHandle> hs;
  std::vector<std::vector<TokenEvent>> events(cs.size());
  for (size_t i = 0; i < cs.size(); ++i) {
    Request r = request(cs[i]);
    r.on_token = [&events, i](const TokenEvent& ev) { events[i].push_back(ev); };
    hs.push_back(e->submit(std::move(r)));
  }
  for (size_t i = 0; i < cs.size(); ++i) {
    const RequestResult& r = hs[i].wait();
    EXPECT_EQ(r.finish_reason, "length");
    EXPECT_EQ(r.output_ids, fresh(cs[i])) << i;
    ASSERT_EQ(events[i].size(), r.output_ids.size());
    std::string text;
    for (size_t k = 0; k < events[i].size(); ++k) {
      EXPECT_EQ(events[i][k].index, k);
      EXPECT_EQ(events[i][k].id, r.output_ids[k]);
      EXPECT_EQ(events[i][k].request_id, hs[i].id());
      text += events[i][k].text;
    }
    EXPECT_EQ(text, r.text);
    EXPECT_EQ(r.text, e->tokenizer()->decode(r.output_ids, true));
    EXPECT_EQ(r.prompt_tokens, cs[i].prompt.size());
    EXPECT_GT(r.passes, 0u);
  }
  EngineStats s = e->stats();
  EXPECT_EQ(s.requests_submitted, cs.size());
  EXPECT_EQ(s.requests_finished, cs.size());
  EXPECT_EQ(s.kv_pages_used, 0u);
  // Sequences shared passes: fewer passes than tokens.
  EXPECT_LT(s.passes, s.generated_tokens);
}

TEST(Scheduler, LogprobsAndTopAlternatives) {
  auto e = Engine::open(stories_dir());
  Request r;
  r.prompt_ids = {1};
  r.max_new_tokens = 4;
  r.logprobs = true;
  r.top_logprobs = 3;
  const RequestResult res = e->submit(r).wait();
  ASSERT_EQ(res.tokens.size(), 4u);
  for (const auto& t : res.tokens) {
    ASSERT_EQ(t.top.size(), 3u);
    EXPECT_EQ(t.top[0].id, t.id);  // greedy: the chosen one is the most likely
    EXPECT_FLOAT_EQ(t.top[0].logprob, t.logprob);
    EXPECT_LE(t.logprob, 0.0f);
    EXPECT_GE(t.top[0].logprob, t.top[1].logprob);
  }
  r.top_logprobs = 21;
  EXPECT_THROW(e->submit(r), UsageError);
}

TEST(Scheduler, StopStringsAreCutAndNeverStreamed) {
  auto e = Engine::open(stories_dir());
  Request r;
  r.prompt_ids = {1};
  r.max_new_tokens = 40;
  r.stop_at_eos = false;
  const RequestResult whole = e->submit(r).wait();
  const std::string& t = whole.text;
  ASSERT_GT(t.size(), 30u);
  // A stop string spanning a token boundary in the middle of the output,
  // and one that never occurs but shares a prefix with the text.
  const std::string stop = t.substr(t.size() / 2, 5);
  const size_t at = t.find(stop);
  r.stop_strings = {"zzzzqq", stop};
  std::string streamed;
  r.on_token = [&](const TokenEvent& ev) {
    streamed += ev.text;
    EXPECT_EQ(streamed.find(stop), std::string::npos);
  };
  const RequestResult cut = e->submit(r).wait();
  EXPECT_EQ(cut.finish_reason, "stop");
  EXPECT_EQ(cut.text, t.substr(0, at));
  EXPECT_EQ(streamed, cut.text);
  ASSERT_LE(cut.output_ids.size(), whole.output_ids.size());
  EXPECT_TRUE(std::equal(cut.output_ids.begin(), cut.output_ids.end(), whole.output_ids.begin()));
  EXPECT_LT(cut.output_ids.size(), whole.output_ids.size());
  // Stop ids end it too, the id included.
  Request ids = request({{1}, 40, {}});
  ids.stop_ids = {whole.output_ids[3]};
  const RequestResult byid = e->submit(ids).wait();
  EXPECT_EQ(byid.finish_reason, "stop");
  EXPECT_EQ(byid.output_ids.back(), whole.output_ids[3]);
}

TEST(Scheduler, KeptCacheComputesOnlyTheNewTokens) {
  EngineOptions o;
  o.context = 256;
  auto e = Engine::open(stories_dir(), o);
  Request a = request({{1, 403, 407}, 12, {}});
  a.keep_cache = true;
  RequestResult ra = e->submit(a).wait();
  ASSERT_TRUE(ra.cache);
  EXPECT_GT(e->stats().kv_pages_used, 0u);  // the kept pages count against the pool
  std::vector<int32_t> turn = ra.cache->ids();
  EXPECT_EQ(turn.size(), 3u + 12u - 1u);  // the last token was never computed
  turn.push_back(ra.output_ids.back());
  for (int32_t id : {401, 402, 403}) turn.push_back(id);
  Request b = request({turn, 10, {}});
  b.prefix = ra.cache;
  const RequestResult rb = e->submit(b).wait();
  EXPECT_EQ(rb.cached_prompt_tokens, ra.cache->ids().size());
  EXPECT_EQ(rb.output_ids, fresh({turn, 10, {}}));
  ra.cache.reset();
  b.prefix.reset();
  EXPECT_EQ(e->stats().kv_pages_used, 0u);
}

TEST(Scheduler, SmallPoolQueuesAndPreemptsWithoutChangingResults) {
  // Four sequences that reach 61 positions (4 pages each) in 7 pages.
  std::vector<Case> cs = {{{1}, 60, {}}, {{1, 403}, 59, {}}, {{1, 401}, 59, {}}, {{1, 402, 405}, 58, {}}};
  for (const auto& c : cases(4)) cs.push_back(c);
  EngineOptions o;
  o.max_sequences = 4;
  o.context = 128;
  o.kv_page_positions = 16;
  o.kv_pages = 7;
  auto e = Engine::open(stories_dir(), o);
  std::vector<RequestHandle> hs;
  for (const auto& c : cs) hs.push_back(e->submit(request(c)));
  for (size_t i = 0; i < cs.size(); ++i) EXPECT_EQ(hs[i].wait().output_ids, fresh(cs[i])) << i;
  EngineStats s = e->stats();
  EXPECT_EQ(s.kv_pages_total, 7u);
  EXPECT_EQ(s.kv_pages_used, 0u);
  EXPECT_GT(s.preemptions, 0u);
  // Alone and too long for the pool: a clear error, not a hang.
  Request big = request({{1}, 120, {}});
  const RequestResult r = e->submit(big).wait();
  EXPECT_EQ(r.finish_reason, "error");
  EXPECT_NE(r.error.find("KV"), std::string::npos) << r.error;
}

// Sequences whose pages already hold their longest length need no page of
// headroom: 8 one-page sequences in a pool of 9 pages run together (counting
// headroom for them too admitted 5, then 3, about twice the passes).
TEST(Scheduler, OnePageSequencesAllRunTogether) {
  EngineOptions o;
  o.max_sequences = 8;
  o.context = 16;
  o.kv_page_positions = 16;
  o.kv_pages = 9;
  auto e = Engine::open(stories_dir(), o);
  std::vector<Case> cs;
  for (int32_t i = 0; i < 8; ++i) cs.push_back({{1, 300 + i}, 6, {}});
  std::vector<RequestHandle> hs;
  for (const auto& c : cs) hs.push_back(e->submit(request(c)));
  for (size_t i = 0; i < cs.size(); ++i) EXPECT_EQ(hs[i].wait().output_ids, fresh(cs[i])) << i;
  const EngineStats s = e->stats();
  EXPECT_EQ(s.preemptions, 0u);
  EXPECT_LE(s.passes, 8u) << "6 tokens each: 6 passes together, 1-2 more if the first pass starts early";
}

TEST(Scheduler, CancelFreesPagesAndLeavesOthersUnchanged) {
  auto cs = cases(4);
  EngineOptions o;
  o.max_sequences = 4;
  o.context = 128;
  auto e = Engine::open(stories_dir(), o);
  std::vector<RequestHandle> hs;
  Case longest{{1, 403}, 120, {}};
  std::atomic<size_t> seen{0};
  size_t pages_mid = 0;
  Request lr = request(longest);
  std::atomic<RequestHandle*> lh{nullptr};
  lr.on_token = [&](const TokenEvent&) {
    if (++seen == 10) {
      pages_mid = e->stats().kv_pages_used;
      while (!lh.load()) std::this_thread::yield();
      lh.load()->cancel();
    }
  };
  hs.reserve(cs.size() + 1);
  hs.push_back(e->submit(lr));
  lh = &hs[0];
  for (const auto& c : cs) hs.push_back(e->submit(request(c)));
  const RequestResult& cancelled = hs[0].wait();
  EXPECT_EQ(cancelled.finish_reason, "cancelled");
  EXPECT_LT(cancelled.output_ids.size(), 120u);
  EXPECT_GE(cancelled.output_ids.size(), 10u);
  for (size_t i = 0; i < cs.size(); ++i) EXPECT_EQ(hs[i + 1].wait().output_ids, fresh(cs[i])) << i;
  EXPECT_GT(pages_mid, 0u);
  EngineStats s = e->stats();
  EXPECT_EQ(s.kv_pages_used, 0u);
  EXPECT_EQ(s.requests_cancelled, 1u);
}

// 30 requests of different lengths, -n and sampling on one Engine at a
// budget with some units resident and the rest streamed: one after another,
// then 10 at a time from 3 threads. Residents are read once; every result
// equals a fresh run of the same request.
TEST(Scheduler, ThirtyRequestsSequentialAndConcurrentEqualFreshRuns) {
  auto cs = cases(30);
  EngineOptions o;
  o.max_sequences = 10;
  o.context = 80;
  {
    MemoryPlan p = Engine::open(stories_dir(), o)->plan_for(80, 10, 10);
    o.max_memory = p.min_budget + 3 * p.slot_bytes;
  }
  std::vector<std::vector<int32_t>> expected;
  for (const auto& c : cs) expected.push_back(fresh(c));
  auto e = Engine::open(stories_dir(), o);
  for (size_t i = 0; i < cs.size(); ++i) EXPECT_EQ(e->submit(request(cs[i])).wait().output_ids, expected[i]) << i;
  const EngineStats s1 = e->stats();
  EXPECT_GT(s1.resident_bytes_read, 0u);
  MemoryPlan plan = e->plan_for(80, 10, 10);
  EXPECT_LT(plan.resident_units, plan.units);
  EXPECT_GT(plan.resident_units, 0u);

  std::vector<std::vector<int32_t>> got(cs.size());
  for (size_t round = 0; round < 3; ++round) {
    std::vector<std::thread> ts;
    for (size_t t = 0; t < 3; ++t)
      ts.emplace_back([&, t] {
        std::vector<std::pair<size_t, RequestHandle>> mine;
        for (size_t i = round * 10 + t; i < round * 10 + 10; i += 3) mine.emplace_back(i, e->submit(request(cs[i])));
        for (auto& [i, h] : mine) got[i] = h.wait().output_ids;
      });
    for (auto& t : ts) t.join();
  }
  for (size_t i = 0; i < cs.size(); ++i) EXPECT_EQ(got[i], expected[i]) << i;
  const EngineStats s2 = e->stats();
  EXPECT_EQ(s2.resident_bytes_read, s1.resident_bytes_read);  // read once per Engine
  EXPECT_EQ(s2.bytes_read, s2.passes * plan.streamed_bytes_per_pass);
  EXPECT_EQ(s2.kv_pages_used, 0u);
  EXPECT_EQ(s2.requests_finished, 60u);
}

// 8 threads submit and cancel at random; every request finishes, the pool
// is empty at the end, and the ones not cancelled equal fresh runs.
TEST(Scheduler, EightThreadsHammerSubmitAndCancel) {
  auto cs = cases(6);
  std::vector<std::vector<int32_t>> expected;
  for (const auto& c : cs) expected.push_back(fresh(c));
  EngineOptions o;
  o.max_sequences = 6;
  o.context = 80;
  o.kv_page_positions = 16;
  o.kv_pages = 12;
  auto e = Engine::open(stories_dir(), o);
  std::atomic<size_t> checked{0}, cancelled{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; ++t)
    ts.emplace_back([&, t] {
      std::mt19937 rng{uint32_t(t)};
      std::vector<std::pair<size_t, RequestHandle>> hs;
      for (int k = 0; k < 6; ++k) {
        size_t i = rng() % cs.size();
        hs.emplace_back(i, e->submit(request(cs[i])));
        if (rng() % 3 == 0) hs.back().second.cancel();
        if (rng() % 4 == 0) hs[rng() % hs.size()].second.cancel();
      }
      for (auto& [i, h] : hs) {
        const RequestResult& r = h.wait();
        if (r.finish_reason == "cancelled") {
          ++cancelled;
          continue;
        }
        EXPECT_EQ(r.finish_reason, "length");
        EXPECT_EQ(r.output_ids, expected[i]);
        ++checked;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_GT(checked.load(), 0u);
  EXPECT_GT(cancelled.load(), 0u);
  EngineStats s = e->stats();
  EXPECT_EQ(s.requests_finished, 48u);
  EXPECT_EQ(s.kv_pages_used, 0u);
  e->shutdown();
  // After shutdown a request ends at once with an error.
  EXPECT_EQ(e->submit(request(cs[0])).wait().finish_reason, "error");
}

// f16 KV pages against the f32 reference: logits within a tolerance set by
// f16's 11-bit mantissa, greedy outputs equal where the reference's margin
// between the two best tokens allows.
TEST(Scheduler, F16KvMatchesTheF32Reference) {
  json ref = json::parse(read_text(stories_dir() / "reference.json"));
  auto ids = ref["logits_case"]["ids"].get<std::vector<int32_t>>();
  std::vector<float> expected = read_f32_file(stories_dir() / "logits_f32.bin");
  EngineOptions o;
  o.kv_type = "f16";
  auto e = Engine::open(stories_dir(), o);
  ScoreResult s = e->score(ids, true);
  ASSERT_EQ(s.logits.size(), expected.size());
  float worst = 0;
  for (size_t i = 0; i < expected.size(); ++i) worst = std::max(worst, std::fabs(s.logits[i] - expected[i]));
  std::printf("f16 KV: largest logit difference %.5f\n", worst);
  EXPECT_LT(worst, 0.05f);
  EXPECT_GT(worst, 0.0f);  // really f16: the f32 path is exact to 1e-4
  size_t equal = 0;
  for (const auto& c : ref["greedy"]) {
    GenerateRequest g;
    g.prompt_ids = c["prompt_ids"].get<std::vector<int32_t>>();
    auto want = c["output_ids"].get<std::vector<int32_t>>();
    g.max_new_tokens = int(want.size());
    g.stop_at_eos = false;
    auto got = e->generate(g).output_ids;
    size_t same = 0;
    while (same < got.size() && got[same] == want[same]) ++same;
    std::printf("f16 KV: greedy case of %zu prompt ids: %zu of %zu tokens equal\n", g.prompt_ids.size(), same,
                want.size());
    equal += same == want.size();
    EXPECT_GE(same, std::min<size_t>(want.size(), 8));  // the first tokens have clear margins
  }
  EXPECT_GE(equal, ref["greedy"].size() / 2);
  EXPECT_EQ(e->stats().kv_pool_bytes, Engine::open(stories_dir(), o)->plan_for(512).kv_cache_bytes);
}

// A 2,000-token prompt at a budget that fits the activations of 2,000 rows:
// the planner sizes the pass to the prompt, so each streamed layer is read
// once for the whole prompt (not once per 512 rows).
TEST(Scheduler, LongPromptIsReadAgainstEachStreamedLayerOnce) {
  TempDir tmp;
  ModelConfig c = find_synth_preset("tiny-llama3").config;
  c.num_layers = 2;
  c.hidden_size = 64;
  c.num_heads = 2;
  c.num_kv_heads = 1;
  c.head_dim = 32;
  c.intermediate_size = 128;
  SynthOptions so;
  so.seed = 7;
  write_synthetic_model(tmp / "m", c, so);
  std::vector<int32_t> prompt;
  for (int i = 0; i < 2000; ++i) prompt.push_back(int32_t(1 + (i * 37) % 1999));
  EngineOptions probe;
  probe.max_prefill_rows = 2001;  // the plan of a pass of the whole prompt
  const MemoryPlan need = Engine::open(tmp / "m", probe)->plan_for(2001);
  EngineOptions o;
  o.max_memory = need.min_budget;  // one streaming slot: every layer streamed
  auto e = Engine::open(tmp / "m", o);
  GenerateRequest g;
  g.prompt_ids = prompt;
  g.max_new_tokens = 1;
  GenerateResult r = e->generate(g);
  EXPECT_EQ(r.plan.resident_units, 0u);
  ASSERT_EQ(r.passes.size(), 1u);
  EXPECT_EQ(r.passes[0].rows, 2000u);
  EXPECT_EQ(r.passes[0].bytes_read, r.plan.streamed_bytes_per_pass);
  EXPECT_EQ(e->stats().bytes_read, r.plan.streamed_bytes_per_pass);
  // The same tokens as passes of 512 rows (four reads of the model).
  EngineOptions fixed = o;
  fixed.max_prefill_rows = 512;
  GenerateResult f = Engine::open(tmp / "m", fixed)->generate(g);
  EXPECT_EQ(f.passes.size(), 4u);
  EXPECT_EQ(f.output_ids, r.output_ids);
}

}  // namespace
}  // namespace strata::test
