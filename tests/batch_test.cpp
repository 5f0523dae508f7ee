// Batched generation: results equal single-sequence generation for every
// batch size; the JSONL job survives SIGKILL and resumes without loss or
// duplicates; bad lines are answered by line number.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "strata/strata.h"
#include "test_models.h"
#include "test_util.h"

namespace strata::test {
namespace {

using nlohmann::json;

// Prompts of 1..21 tokens: BOS plus slices of the model's own outputs.
std::vector<std::vector<int32_t>> prompts(size_t count) {
  json ref = json::parse(read_text(stories_dir() / "reference.json"));
  std::vector<std::vector<int32_t>> out;
  for (size_t i = 0; i < count; ++i) {
    auto src = ref["greedy"][i % 6]["output_ids"].get<std::vector<int32_t>>();
    size_t len = (i * 7) % 21, start = (i * 5) % 20;
    std::vector<int32_t> p = {1};
    for (size_t k = 0; k < len; ++k) p.push_back(src[(start + k) % src.size()]);
    out.push_back(p);
  }
  return out;
}

// The smallest budget for the batch: one streaming slot, nothing resident.
uint64_t streaming_budget(int64_t context, size_t sequences, size_t prefill_rows = 512) {
  EngineOptions o;
  o.max_prefill_rows = prefill_rows;
  return Engine::open(stories_dir(), o)->plan_for(context, sequences, sequences).min_budget;
}

TEST(Batch, GreedyEqualsSingleSequenceAtEveryBatchSize) {
  auto ps = prompts(24);
  auto single = Engine::open(stories_dir());
  std::vector<std::vector<int32_t>> expected;
  std::vector<int> lengths;
  for (size_t i = 0; i < ps.size(); ++i) {
    GenerateRequest r;
    r.prompt_ids = ps[i];
    r.max_new_tokens = 8 + int(i % 5) * 6;
    r.stop_at_eos = false;
    lengths.push_back(r.max_new_tokens);
    expected.push_back(single->generate(r).output_ids);
  }
  for (size_t bs : {1, 3, 8}) {
    EngineOptions o;
    o.max_memory = streaming_budget(64, bs, 16);
    o.max_prefill_rows = 16;  // long prompts are split across passes too
    auto e = Engine::open(stories_dir(), o);
    size_t next = 0;
    std::map<uint64_t, std::vector<int32_t>> got;
    BatchOptions bo;
    bo.max_sequences = bs;
    bo.context = 64;
    BatchStats st = e->generate_batch(
        [&]() -> std::optional<SequenceRequest> {
          if (next == ps.size()) return std::nullopt;
          SequenceRequest r;
          r.key = next;
          r.prompt_ids = ps[next];
          r.max_new_tokens = lengths[next];
          r.stop_at_eos = false;
          ++next;
          return r;
        },
        [&](SequenceResult&& r) {
          EXPECT_EQ(r.finish_reason, "length");
          got[r.key] = r.output_ids;
        },
        bo);
    EXPECT_LT(st.plan.resident_units, st.plan.units) << "the budget must force streaming";
    EXPECT_EQ(st.sequences, bs);
    ASSERT_EQ(got.size(), ps.size());
    for (size_t i = 0; i < ps.size(); ++i) EXPECT_EQ(got[i], expected[i]) << "batch " << bs << " prompt " << i;
    // One layer read serves the whole batch: fewer passes than tokens.
    if (bs > 1) {
      EXPECT_LT(st.passes, st.generated_tokens);
    }
  }
}

void write_input(const std::filesystem::path& p, size_t count, int n, bool sample) {
  auto ps = prompts(count);
  std::ofstream f(p);
  for (size_t i = 0; i < count; ++i) {
    json j = {{"id", "doc-" + std::to_string(i)}, {"prompt_ids", ps[i]}, {"max_new_tokens", n}};
    if (sample) {
      j["temperature"] = 0.9;
      j["seed"] = i;
    }
    f << j.dump() << "\n";
  }
}

std::map<std::string, json> read_results(const std::filesystem::path& p, size_t* lines = nullptr) {
  std::map<std::string, json> out;
  std::ifstream f(p);
  std::string l;
  size_t n = 0;
  while (std::getline(f, l)) {
    json j = json::parse(l);
    EXPECT_FALSE(out.count(j["id"].dump())) << "duplicate " << j["id"];
    out[j["id"].dump()] = j;
    ++n;
  }
  if (lines) *lines = n;
  return out;
}

TEST(Batch, SamplingPerLineIsIndependentOfBatchSize) {
  TempDir tmp;
  write_input(tmp / "in.jsonl", 10, 12, true);
  std::map<std::string, json> first;
  for (std::string bs : {"1", "4"}) {
    auto out = tmp / ("out" + bs + ".jsonl");
    auto r = run_strata({"batch", stories_dir().string(), "--input", (tmp / "in.jsonl").string(), "--output",
                         out.string(), "--batch-size", bs, "--quiet"});
    ASSERT_EQ(r.status, 0) << r.err;
    auto res = read_results(out);
    ASSERT_EQ(res.size(), 10u);
    if (first.empty()) first = res;
    for (auto& [id, j] : res) EXPECT_EQ(j["output_ids"], first[id]["output_ids"]) << id;
  }
}

TEST(Batch, SurvivesSigkillAndResumesWithoutLossOrDuplicates) {
  TempDir tmp;
  const size_t count = 100;
  write_input(tmp / "in.jsonl", count, 60, false);
  const std::string model = stories_dir().string(), in = (tmp / "in.jsonl").string();
  const std::string budget = std::to_string(streaming_budget(100, 2));
  auto args = [&](const std::filesystem::path& out) {
    return std::vector<std::string>{"batch", model, "--input", in, "--output", out.string(), "--batch-size", "2",
                                    "--max-memory", budget, "--quiet"};
  };
  auto whole = run_strata(args(tmp / "whole.jsonl"));
  ASSERT_EQ(whole.status, 0) << whole.err;
  auto expected = read_results(tmp / "whole.jsonl");
  ASSERT_EQ(expected.size(), count);

  // Kill it as soon as some results are out, repeatedly, then finish.
  auto out = tmp / "out.jsonl";
  int kills = 0;
  for (int attempt = 0; attempt < 3; ++attempt) {
    size_t before = 0;
    read_results(out, &before);
    int pid = spawn_strata(args(out), tmp / "o", tmp / "e");
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      size_t now = 0;
      std::ifstream f(out);
      std::string l;
      while (std::getline(f, l)) ++now;
      if (now >= before + 10) break;
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    kill(pid, SIGKILL);
    if (wait_strata(pid) == 128 + SIGKILL) ++kills;
  }
  EXPECT_GT(kills, 0) << "the job finished before it could be killed: make it longer";
  // A torn last line, as a kill in mid-write would leave.
  { std::ofstream(out, std::ios::app) << R"({"id":"doc-99","line":100,"output_id)"; }
  auto rest = run_strata(args(out));
  ASSERT_EQ(rest.status, 0) << rest.err;
  size_t lines = 0;
  auto got = read_results(out, &lines);
  EXPECT_EQ(lines, count);
  ASSERT_EQ(got.size(), count);
  for (auto& [id, j] : expected) EXPECT_EQ(got[id]["output_ids"], j["output_ids"]) << id;

  // Everything answered: a re-run does nothing.
  auto again = run_strata(args(out));
  EXPECT_EQ(again.status, 0);
  read_results(out, &lines);
  EXPECT_EQ(lines, count);
}

// Text prompts through the model's tokenizer: each reference case with a
// prompt text gives the reference's prompt ids and greedy continuation, and
// the line's text is their decode, whatever the batch size.
TEST(Batch, TextPromptsGiveTheReferenceContinuations) {
  json ref = json::parse(read_text(stories_dir() / "reference.json"));
  TempDir tmp;
  std::map<std::string, json> want;
  {
    std::ofstream f(tmp / "in.jsonl");
    for (size_t i = 0; i < ref["greedy"].size(); ++i) {
      const json& c = ref["greedy"][i];
      if (!c.contains("prompt_text")) continue;
      const std::string id = "case" + std::to_string(i);
      f << json{{"id", id}, {"prompt", c["prompt_text"]}, {"max_new_tokens", c["new_tokens"]}}.dump() << "\n";
      want[id] = c;
    }
  }
  ASSERT_GE(want.size(), 3u);
  for (std::string bs : {"1", "3"}) {
    auto out = tmp / ("out" + bs + ".jsonl");
    auto r = run_strata({"batch", stories_dir().string(), "--input", (tmp / "in.jsonl").string(), "--output",
                         out.string(), "--batch-size", bs, "--quiet"});
    ASSERT_EQ(r.status, 0) << r.err;
    auto res = read_results(out);
    ASSERT_EQ(res.size(), want.size());
    for (auto& [id, c] : want) {
      const json& got = res[json(id).dump()];  // read_results keys by the id's JSON
      EXPECT_EQ(got["output_ids"], c["output_ids"]) << id << " batch size " << bs;
      EXPECT_EQ(got["prompt_tokens"], c["prompt_ids"].size()) << id;
      EXPECT_FALSE(got["text"].get<std::string>().empty()) << id;
    }
  }
}

TEST(Batch, BadLinesAreAnsweredByLineNumberOrStopTheJobWhenStrict) {
  TempDir tmp;
  {
    std::ofstream f(tmp / "in.jsonl");
    f << R"({"id": "a", "prompt_ids": [1, 461], "max_new_tokens": 3})" << "\n";
    f << "this is not json\n";
    f << R"({"id": "a", "prompt_ids": [1]})" << "\n";
    f << R"({"prompt_ids": [1]})" << "\n";
    f << "\n";
    f << R"({"id": "big", "prompt_ids": [1, 512]})" << "\n";
    f << R"({"id": "long", "prompt_ids": [1], "max_new_tokens": 600})" << "\n";
    f << R"({"id": "text", "prompt": "Once upon a time"})" << "\n";
    f << R"({"id": "temp", "prompt_ids": [1], "temperature": -2})" << "\n";
    f << R"({"id": 5, "prompt_ids": [1, 461], "max_new_tokens": 2})" << "\n";
  }
  // Line 8 is a text prompt for a model without a tokenizer.
  const std::string model = (tmp / "no-tokenizer").string();
  copy_model_files(stories_dir(), model, {"tokenizer.json", "tokenizer_config.json"});
  auto r = run_strata({"batch", model, "--input", (tmp / "in.jsonl").string(), "--output",
                       (tmp / "out.jsonl").string(), "--quiet"});
  ASSERT_EQ(r.status, 0) << r.err;
  std::map<size_t, json> by_line;
  std::ifstream f(tmp / "out.jsonl");
  std::string l;
  while (std::getline(f, l)) {
    json j = json::parse(l);
    by_line[j["line"]] = j;
  }
  ASSERT_EQ(by_line.size(), 9u);
  EXPECT_EQ(by_line[1]["completion_tokens"], 3);
  EXPECT_EQ(by_line[1]["prompt_tokens"], 2);
  EXPECT_NE(by_line[2]["error"].get<std::string>().find("malformed JSON"), std::string::npos);
  EXPECT_NE(by_line[3]["error"].get<std::string>().find("duplicate id"), std::string::npos);
  EXPECT_NE(by_line[4]["error"].get<std::string>().find("missing 'id'"), std::string::npos);
  EXPECT_NE(by_line[6]["error"].get<std::string>().find("not a token id"), std::string::npos);
  EXPECT_NE(by_line[7]["error"].get<std::string>().find("context"), std::string::npos);
  EXPECT_NE(by_line[8]["error"].get<std::string>().find("tokenizer"), std::string::npos);
  EXPECT_NE(by_line[9]["error"].get<std::string>().find("temperature"), std::string::npos);
  EXPECT_EQ(by_line[10]["id"], 5);
  EXPECT_EQ(by_line[10]["output_ids"].size(), 2u);

  auto strict = run_strata({"batch", model, "--input", (tmp / "in.jsonl").string(), "--output",
                            (tmp / "strict.jsonl").string(), "--strict"});
  EXPECT_NE(strict.status, 0);
  EXPECT_NE(strict.err.find(":2:"), std::string::npos) << strict.err;
}

}  // namespace
}  // namespace strata::test
