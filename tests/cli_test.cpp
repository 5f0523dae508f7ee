// The strata command as a user runs it: output formats, exit statuses, and
// clear errors for bad arguments and bad models.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "test_models.h"
#include "test_util.h"

namespace strata::test {
namespace {

using nlohmann::json;

std::string stories() { return stories_dir().string(); }

json reference() { return json::parse(read_text(stories_dir() / "reference.json")); }

std::string join_ids(const std::vector<int32_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(ids[i]);
  }
  return s;
}

TEST(Cli, RunJsonMatchesGreedyReference) {
  json ref = reference();
  const auto& c = ref["greedy"][2];
  auto prompt = c["prompt_ids"].get<std::vector<int32_t>>();
  auto r = run_strata({"run", stories(), "--prompt-ids", join_ids(prompt), "-n", "48", "--format", "json",
                       "--max-memory", "2MiB", "--profile"});
  ASSERT_EQ(r.status, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["prompt_ids"].get<std::vector<int32_t>>(), prompt);
  EXPECT_EQ(j["output_ids"], c["output_ids"]);
  EXPECT_EQ(j["finish_reason"], "length");
  EXPECT_TRUE(j["timings"].contains("prefill_s"));
  EXPECT_TRUE(j["timings"].contains("decode_s"));
  EXPECT_EQ(j["passes"].size(), 48u);
  EXPECT_LE(j["peak_planned_bytes_used"].get<uint64_t>(), j["memory"]["budget_bytes"].get<uint64_t>());
}

// Without a tokenizer the streamed output is the ids, space separated.
TEST(Cli, RunTextStreamsIds) {
  TempDir tmp;
  copy_model_files(stories_dir(), tmp / "m", {"tokenizer.json", "tokenizer_config.json"});
  const json ref = reference();
  const json& c = ref["greedy"][0];
  auto r = run_strata({"run", (tmp / "m").string(), "--prompt-ids", join_ids(c["prompt_ids"].get<std::vector<int32_t>>()), "-n", "5"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto want = c["output_ids"].get<std::vector<int32_t>>();
  want.resize(5);
  std::string expected;
  for (size_t i = 0; i < want.size(); ++i) {
    if (i) expected += ' ';
    expected += std::to_string(want[i]);
  }
  EXPECT_EQ(r.out, expected + "\n");
}

TEST(Cli, ScoreJsonAndDumpLogits) {
  json ref = reference();
  auto ids = ref["logits_case"]["ids"].get<std::vector<int32_t>>();
  TempDir tmp;
  auto dump = (tmp / "logits.f32").string();
  auto r = run_strata({"score", stories(), "--prompt-ids", join_ids(ids), "--format", "json", "--dump-logits", dump});
  ASSERT_EQ(r.status, 0) << r.err;
  json j = json::parse(r.out);
  ASSERT_EQ(j["argmax"].size(), ids.size());
  ASSERT_EQ(j["logprobs"].size(), ids.size() - 1);
  double ppl = j["perplexity"];
  EXPECT_GT(ppl, 1.0);
  std::vector<float> logits = read_f32_file(dump), expected = read_f32_file(stories_dir() / "logits_f32.bin");
  ASSERT_EQ(logits.size(), expected.size());
  for (size_t i = 0; i < logits.size(); ++i) ASSERT_NEAR(logits[i], expected[i], 1e-4) << "at " << i;
  // The argmax of each row is the reference's argmax.
  for (size_t t = 0; t < ids.size(); ++t) {
    const float* row = expected.data() + t * 512;
    int best = int(std::max_element(row, row + 512) - row);
    EXPECT_EQ(j["argmax"][t].get<int>(), best);
  }
  // Text output ends with the perplexity.
  auto text = run_strata({"score", stories(), "--prompt-ids", "1,461,461"});
  ASSERT_EQ(text.status, 0);
  EXPECT_NE(text.out.find("perplexity:"), std::string::npos);
}

TEST(Cli, InfoJsonStatesPlanAndMinimum) {
  auto r = run_strata({"info", stories(), "--format", "json", "--max-memory", "64MiB"});
  ASSERT_EQ(r.status, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["architecture"], "LlamaForCausalLM");
  EXPECT_EQ(j["layers"], 5);
  EXPECT_EQ(j["parameters"], 260032);
  EXPECT_TRUE(j["tied_embeddings"].get<bool>());
  uint64_t min = j["min_memory_bytes"];
  EXPECT_GT(min, 0u);
  EXPECT_EQ(j["plan"]["resident_units"], j["plan"]["units"]);

  // Just below the minimum is refused, naming the minimum.
  auto low = run_strata({"info", stories(), "--max-memory", std::to_string(min - 1)});
  EXPECT_EQ(low.status, 1);
  EXPECT_NE(low.err.find("below the minimum"), std::string::npos) << low.err;
  auto at = run_strata({"info", stories(), "--max-memory", std::to_string(min), "--format", "json"});
  ASSERT_EQ(at.status, 0) << at.err;
  EXPECT_EQ(json::parse(at.out)["plan"]["resident_units"], 0);
}

TEST(Cli, HelpForEveryCommand) {
  for (std::string cmd : {"", "run", "score", "info", "synth"}) {
    std::vector<std::string> args;
    if (!cmd.empty()) args.push_back(cmd);
    args.push_back("--help");
    auto r = run_strata(args);
    EXPECT_EQ(r.status, 0) << cmd;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << cmd;
  }
}

TEST(Cli, UsageErrorsExitTwo) {
  const std::vector<std::vector<std::string>> bad = {
      {},
      {"frobnicate"},
      {"run", stories()},                                        // no prompt
      {"run", stories(), "--prompt-ids", "1,abc"},
      {"run", stories(), "--prompt-ids", "1", "--top-p", "2"},
      {"run", stories(), "--prompt-ids", "1", "--temperature", "-1"},
      {"run", stories(), "--prompt-ids", "1", "--max-memory", "12XB"},
      {"run", stories(), "--prompt-ids", "1", "--max-memory", "-5MiB"},
      {"run", stories(), "--prompt-ids", "1", "--format", "xml"},
      {"run", stories(), "--prompt-ids", "1", "--bogus"},
      {"run", stories(), "--prompt-ids", "1,600"},               // outside the vocabulary
      {"run", stories(), "--prompt-ids", "1", "-n", "600"},      // beyond the context of 512
      {"synth", "--preset", "nope", "-o", "/tmp/x"},
  };
  for (const auto& args : bad) {
    auto r = run_strata(args);
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    EXPECT_EQ(r.status, 2) << joined << "\n" << r.err;
    EXPECT_FALSE(r.err.empty()) << joined;
  }
}

// A model broken in one way: the command fails cleanly, naming the problem.
struct BadModelCase {
  const char* name;
  std::function<void(const std::filesystem::path&)> make;
  const char* expect;  // substring of the error
};

void truncate_file(const std::filesystem::path& p, uint64_t size) { std::filesystem::resize_file(p, size); }

TEST(Cli, BadModelsFailWithClearErrors) {
  TempDir tmp;
  auto edit = [](const char* from, const char* to) {
    return [=](const std::filesystem::path& d) {
      copy_with_config(stories_dir(), d, [&](std::string& c) { c.replace(c.find(from), std::strlen(from), to); });
    };
  };
  const std::vector<BadModelCase> cases = {
      {"unknown_arch", edit("LlamaForCausalLM", "GPTNeoXForCausalLM"), "unknown architecture 'GPTNeoXForCausalLM'"},
      {"wrong_hidden", edit("\"hidden_size\": 64", "\"hidden_size\": 96"), "model.embed_tokens.weight"},
      {"wrong_ffn", edit("\"intermediate_size\": 172", "\"intermediate_size\": 170"),
       "has shape [172, 64] but config.json implies [170, 64]"},
      {"fewer_layers", edit("\"num_hidden_layers\": 5", "\"num_hidden_layers\": 4"), "more layers"},
      {"more_layers", edit("\"num_hidden_layers\": 5", "\"num_hidden_layers\": 6"), "model.layers.5."},
      {"untied_no_head", edit("\"tie_word_embeddings\": true", "\"tie_word_embeddings\": false"), "lm_head.weight"},
      {"bad_json", edit("{", "{{"), "invalid JSON"},
      {"truncated_data",
       [](const std::filesystem::path& d) {
         copy_with_config(stories_dir(), d, [](std::string&) {});
         truncate_file(d / "model.safetensors", 500000);
       },
       "model.safetensors"},
      {"truncated_header",
       [](const std::filesystem::path& d) {
         copy_with_config(stories_dir(), d, [](std::string&) {});
         truncate_file(d / "model.safetensors", 100);
       },
       "model.safetensors"},
      {"missing_shard",
       [](const std::filesystem::path& d) {
         copy_model(stories_dir(), d, DType::F32, 300 * 1024);
         std::filesystem::remove(d / "model-00002-of-00004.safetensors");
       },
       "model-00002-of-00004.safetensors"},
      {"no_weights",
       [](const std::filesystem::path& d) {
         std::filesystem::create_directories(d);
         std::filesystem::copy_file(stories_dir() / "config.json", d / "config.json");
       },
       "model.safetensors"},
      {"no_config", [](const std::filesystem::path& d) { std::filesystem::create_directories(d); }, "config.json"},
  };
  for (const auto& c : cases) {
    auto dir = tmp / c.name;
    c.make(dir);
    for (std::string cmd : {"run", "info"}) {
      std::vector<std::string> args = {cmd, dir.string()};
      if (cmd == "run") args.insert(args.end(), {"--prompt-ids", "1", "-n", "2"});
      auto r = run_strata(args);
      EXPECT_EQ(r.status, 1) << c.name << " " << cmd << ": " << r.err;
      EXPECT_NE(r.err.find(c.expect), std::string::npos) << c.name << " " << cmd << ": " << r.err;
    }
  }
  auto missing = run_strata({"info", (tmp / "does-not-exist").string()});
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.err.find("does-not-exist"), std::string::npos);
}

}  // namespace
}  // namespace strata::test
