// Speculative decoding through the scheduler on stories260K: greedy output
// identical to plain decoding for every reference case, resident and
// streamed at the minimum budget; rejected drafts rolled back so that later
// log-probabilities are bitwise those of a plain run; several tokens per
// pass where the output copies the prompt; every sequence of a batch with
// its own drafts; and sampled tokens distributed as the target's.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <vector>

#include "convert/gguf_convert.h"
#include "convert/synthetic_model.h"
#include "runtime/kv_pool.h"
#include "strata/strata.h"
#include "test_util.h"

namespace strata::test {
namespace {

using nlohmann::json;

struct Case {
  std::vector<int32_t> prompt, output;
};

std::vector<Case> reference_cases() {
  json ref = json::parse(read_text(stories_dir() / "reference.json"));
  std::vector<Case> out;
  for (const auto& c : ref["greedy"])
    out.push_back({c["prompt_ids"].get<std::vector<int32_t>>(), c["output_ids"].get<std::vector<int32_t>>()});
  return out;
}

std::unique_ptr<Engine> open_engine(bool min_budget, size_t draft_tokens, size_t sequences = 1) {
  EngineOptions o;
  o.kv_type = "f32";
  o.draft_tokens = draft_tokens;
  o.max_sequences = sequences;
  o.context = 512;
  if (min_budget) o.max_memory = Engine::open(stories_dir(), o)->plan_for(512, 1 + draft_tokens).min_budget;
  else o.max_memory = 64ull << 20;
  return Engine::open(stories_dir(), o);
}

// A story, then BOS and its first words again: the model retells it, so
// prompt lookup drafts are mostly right.
std::vector<int32_t> copy_heavy_prompt(Engine& e) {
  GenerateRequest g;
  g.prompt_ids = {1, 403, 407, 261, 378};
  g.max_new_tokens = 200;
  g.stop_at_eos = false;
  std::vector<int32_t> p = g.prompt_ids;
  for (int32_t id : e.generate(g).output_ids) p.push_back(id);
  for (int32_t id : {1, 403, 407, 261, 378}) p.push_back(id);
  return p;
}

// Draft models: stories260K's own Q4_0 copy (most drafts accepted) and an
// unrelated random-weight model with the same 512-token vocabulary (most
// rejected). Made once for the suite.
const std::filesystem::path& draft_model(bool related) {
  static TempDir dir;
  static std::filesystem::path q4, random;
  if (related && q4.empty()) {
    GgufConvertOptions o;
    o.type = DType::Q4_0;
    q4 = dir / "stories-q4_0.gguf";
    convert_to_gguf(stories_dir(), q4, o);
  }
  if (!related && random.empty()) {
    ModelConfig c = find_synth_preset("tiny-llama3").config;
    c.vocab_size = 512;
    c.bos_token_id = 1;
    c.eos_token_ids = {2};
    c.max_position_embeddings = 1024;
    SynthOptions so;
    so.seed = 3;
    so.dtype = DType::F32;
    random = dir / "random";
    write_synthetic_model(random, c, so);
  }
  return related ? q4 : random;
}

// The smallest budget that holds the draft model resident (as the engine
// plans it: a kept cache per target sequence plus two) and the target
// streamed with one slot.
uint64_t min_budget_with_draft(const std::filesystem::path& draft, EngineOptions o) {
  EngineOptions d;
  d.kv_type = o.kv_type;
  d.max_sequences = 1;
  d.context = o.context;
  d.kv_pages = (o.max_sequences + 2) * KvPool::pages_for(d.context, o.kv_page_positions);
  const MemoryPlan dp = Engine::open(draft, d)->plan_for(d.context);
  EXPECT_EQ(dp.resident_units, dp.units);
  o.draft_model.clear();
  return Engine::open(stories_dir(), o)->plan_for(o.context, 1 + o.draft_tokens).min_budget + dp.total_bytes;
}

TEST(SpeculativeEngine, DraftModelGreedyIdsEqualThePlainRun) {
  for (bool related : {true, false}) {
    for (bool min_budget : {false, true}) {
      EngineOptions o;
      o.kv_type = "f32";
      o.draft_tokens = 4;
      o.max_sequences = 1;
      o.context = 512;
      o.draft_model = draft_model(related);
      o.max_memory = min_budget ? min_budget_with_draft(o.draft_model, o) : 64ull << 20;
      auto e = Engine::open(stories_dir(), o);
      if (min_budget) {
        EXPECT_EQ(e->plan_for(512, 5).resident_units, 0u);
      }
      size_t drafted = 0, accepted = 0, tokens = 0, passes = 0;
      for (const Case& c : reference_cases()) {
        GenerateRequest g;
        g.prompt_ids = c.prompt;
        g.max_new_tokens = int(c.output.size());
        g.stop_at_eos = false;
        GenerateResult r = e->generate(g);
        EXPECT_EQ(r.output_ids, c.output) << (related ? "Q4_0 draft" : "random draft") << ", min budget " << min_budget;
        drafted += r.drafted_tokens;
        accepted += r.accepted_tokens;
        tokens += r.output_ids.size();
        passes += r.token_passes;
      }
      std::printf("[ stories260K, %s draft, %s ] drafted %zu, accepted %zu (%.2f), %.2f tokens per pass\n",
                  related ? "own Q4_0" : "random-weight", min_budget ? "minimum budget" : "resident", drafted,
                  accepted, double(accepted) / double(drafted), double(tokens) / double(passes));
      EXPECT_GT(drafted, 0u);
      if (related) {
        EXPECT_GT(double(tokens) / double(passes), 2.0);
      } else {
        EXPECT_LT(double(accepted) / double(drafted), 0.5);  // mostly rejected: rollback exercised
      }
    }
  }
}

TEST(SpeculativeEngine, GreedyIdsEqualThePlainRunForEveryReferenceCase) {
  for (bool min_budget : {false, true}) {
    auto e = open_engine(min_budget, 4);
    if (min_budget) {
      EXPECT_EQ(e->plan_for(512, 5).resident_units, 0u);
    }
    size_t drafted = 0;
    for (const Case& c : reference_cases()) {
      GenerateRequest g;
      g.prompt_ids = c.prompt;
      g.max_new_tokens = int(c.output.size());
      g.stop_at_eos = false;
      g.lookup_ngram = 3;
      GenerateResult r = e->generate(g);
      EXPECT_EQ(r.output_ids, c.output) << "prompt of " << c.prompt.size() << " ids, min budget " << min_budget;
      drafted += r.drafted_tokens;
    }
    EXPECT_GT(drafted, 0u) << "nothing was drafted: the test would not test speculation";
  }
}

// The logprob of every token (and its top alternatives) after rejected
// drafts equals the plain run's bit for bit: the rejected positions were
// rolled back, not left in the KV cache.
TEST(SpeculativeEngine, RollbackLeavesLaterLogitsBitwiseEqual) {
  auto plain = open_engine(false, 0), spec = open_engine(false, 8);
  const std::vector<int32_t> prompt = copy_heavy_prompt(*plain);
  Request r;
  r.prompt_ids = prompt;
  r.max_new_tokens = 120;
  r.stop_at_eos = false;
  r.logprobs = true;
  r.top_logprobs = 5;
  const RequestResult a = plain->submit(r).wait();
  r.lookup_ngram = 3;
  r.draft_tokens = 8;
  const RequestResult b = spec->submit(r).wait();
  ASSERT_EQ(a.output_ids, b.output_ids);
  ASSERT_EQ(a.tokens.size(), b.tokens.size());
  EXPECT_GT(b.drafted_tokens, b.accepted_tokens) << "no draft was rejected";
  EXPECT_GT(b.accepted_tokens, 0u);
  for (size_t i = 0; i < a.tokens.size(); ++i) {
    ASSERT_EQ(0, std::memcmp(&a.tokens[i].logprob, &b.tokens[i].logprob, sizeof(float))) << "token " << i;
    ASSERT_EQ(a.tokens[i].top.size(), b.tokens[i].top.size());
    for (size_t j = 0; j < a.tokens[i].top.size(); ++j) {
      EXPECT_EQ(a.tokens[i].top[j].id, b.tokens[i].top[j].id);
      EXPECT_EQ(0, std::memcmp(&a.tokens[i].top[j].logprob, &b.tokens[i].top[j].logprob, sizeof(float)));
    }
  }
  // Where the output copies the prompt, several tokens per pass.
  const double per_pass = double(b.output_ids.size()) / double(b.token_passes);
  std::printf("[ stories260K copy-heavy, lookup 3, K=8 ] drafted %zu, accepted %zu, %.2f tokens per pass\n",
              b.drafted_tokens, b.accepted_tokens, per_pass);
  EXPECT_GT(per_pass, 1.5);
  EXPECT_EQ(a.token_passes, a.output_ids.size());
}

TEST(SpeculativeEngine, EverySequenceOfABatchDraftsOnItsOwn) {
  auto e = open_engine(false, 4, 6);
  std::vector<Case> cases = reference_cases();
  std::vector<RequestHandle> hs;
  for (const Case& c : cases) {
    Request r;
    r.prompt_ids = c.prompt;
    r.max_new_tokens = int(c.output.size());
    r.stop_at_eos = false;
    r.lookup_ngram = 2;
    hs.push_back(e->submit(r));
  }
  size_t drafted = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const RequestResult& r = hs[i].wait();
    EXPECT_EQ(r.output_ids, cases[i].output) << "case " << i;
    drafted += r.drafted_tokens;
  }
  EXPECT_GT(drafted, 0u);
  const EngineStats st = e->stats();
  EXPECT_EQ(st.drafted_tokens, drafted);
  EXPECT_EQ(st.kv_pages_used, 0u);  // every draft page went back
}

// Temperature 2 (a flatter distribution, so the test sees many tokens):
// after "... Once upon a" + "time" the next token is drawn
// by a verification against drafts (the retold story). Over many seeds its
// distribution equals the target's p(. | prompt, "time"), computed by
// scoring, within a chi-squared test at significance 0.001 over the tokens
// with expected count >= 5 (the rest pooled).
TEST(SpeculativeEngine, SampledTokensFollowTheModelsDistribution) {
  auto e = open_engine(false, 4, 16);
  std::vector<int32_t> prompt = copy_heavy_prompt(*e);
  prompt.pop_back();  // ends "... Once upon a"; the model then says "time" (378) almost surely
  // p(. | prompt + time), exactly.
  std::vector<int32_t> with_time = prompt;
  with_time.push_back(378);
  ScoreResult sc = e->score(with_time, true);
  const size_t vocab = 512;
  std::vector<double> p(vocab);
  {
    const float* row = sc.logits.data() + (with_time.size() - 1) * vocab;
    double mx = row[0], z = 0;
    for (size_t i = 1; i < vocab; ++i) mx = std::max(mx, double(row[i]));
    for (size_t i = 0; i < vocab; ++i) z += (p[i] = std::exp((double(row[i]) - mx) / 2.0));
    for (auto& x : p) x /= z;
  }
  Request base;
  base.prompt_ids = prompt;
  base.max_new_tokens = 1;
  base.keep_cache = true;
  const RequestResult first = e->submit(base).wait();
  ASSERT_TRUE(first.cache);
  const size_t n = 2000;
  std::vector<RequestHandle> hs;
  for (size_t seed = 0; seed < n; ++seed) {
    Request r;
    r.prompt_ids = prompt;
    r.prefix = first.cache;
    // Drafts ride with the last prompt row: "time" and its continuation, so
    // both the first and the second token are verified draws.
    r.max_new_tokens = 3;
    r.stop_at_eos = false;
    r.sampling.temperature = 2.0f;
    r.sampling.seed = seed + 1;
    r.lookup_ngram = 3;
    hs.push_back(e->submit(r));
  }
  std::vector<double> counts(vocab, 0);
  size_t used = 0, drafted = 0;
  for (auto& h : hs) {
    const RequestResult& r = h.wait();
    ASSERT_EQ(r.output_ids.size(), 3u);
    drafted += r.drafted_tokens;
    if (r.output_ids[0] != 378) continue;  // condition on "time"
    counts[size_t(r.output_ids[1])] += 1;
    ++used;
  }
  ASSERT_GT(used, n / 2);
  EXPECT_GT(drafted, used / 2) << "most second tokens should be verified against drafts";
  double x = 0, pooled_e = 0, pooled_o = 0;
  size_t bins = 0;
  for (size_t i = 0; i < vocab; ++i) {
    const double ex = p[i] * double(used);
    if (ex >= 5) {
      x += (counts[i] - ex) * (counts[i] - ex) / ex;
      ++bins;
    } else {
      pooled_e += ex;
      pooled_o += counts[i];
    }
  }
  if (pooled_e > 0) {
    x += (pooled_o - pooled_e) * (pooled_o - pooled_e) / pooled_e;
    ++bins;
  }
  ASSERT_GE(bins, 2u);
  // Upper 0.001 point of chi-squared with bins-1 degrees of freedom
  // (Wilson-Hilferty approximation).
  const double k = double(bins - 1), z = 3.0902;
  const double critical = k * std::pow(1 - 2 / (9 * k) + z * std::sqrt(2 / (9 * k)), 3);
  std::printf("[ stories260K sampled with lookup drafts ] %zu draws, %zu bins, chi-squared %.2f (critical %.2f)\n",
              used, bins, x, critical);
  EXPECT_LT(x, critical);
}

}  // namespace
}  // namespace strata::test

namespace strata::test {
namespace {

TEST(SpeculativeCli, RunAndBatchWithLookupGiveThePlainIds) {
  const std::vector<Case> cases = reference_cases();
  const Case& c = cases[1];
  std::string ids;
  for (int32_t id : c.prompt) ids += (ids.empty() ? "" : ",") + std::to_string(id);
  auto r = run_strata({"run", stories_dir().string(), "--prompt-ids", ids, "-n", "48", "--format", "json", "--lookup",
                       "2", "--draft-tokens", "3", "--max-memory", "2MiB"});
  ASSERT_EQ(r.status, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["output_ids"].get<std::vector<int32_t>>(), c.output);
  ASSERT_TRUE(j.contains("speculative"));
  for (const char* k : {"drafted", "accepted", "acceptance_rate", "tokens_per_pass"})
    EXPECT_TRUE(j["speculative"].contains(k)) << k;
  EXPECT_GE(j["speculative"]["tokens_per_pass"].get<double>(), 1.0);

  TempDir tmp;
  {
    std::ofstream f(tmp / "in.jsonl");
    for (size_t i = 0; i < cases.size(); ++i)
      f << json{{"id", i}, {"prompt_ids", cases[i].prompt}, {"max_new_tokens", cases[i].output.size()}}.dump() << "\n";
  }
  auto b = run_strata({"batch", stories_dir().string(), "--input", (tmp / "in.jsonl").string(), "--output",
                       (tmp / "out.jsonl").string(), "--lookup", "3", "--quiet"});
  ASSERT_EQ(b.status, 0) << b.err;
  std::ifstream f(tmp / "out.jsonl");
  std::string line;
  size_t n = 0;
  while (std::getline(f, line)) {
    json o = json::parse(line);
    EXPECT_EQ(o["output_ids"].get<std::vector<int32_t>>(), cases[o["id"].get<size_t>()].output) << line;
    ++n;
  }
  EXPECT_EQ(n, cases.size());
  auto bad = run_strata({"run", stories_dir().string(), "--prompt-ids", "1", "--lookup", "99"});
  EXPECT_EQ(bad.status, 2);
}

}  // namespace
}  // namespace strata::test
