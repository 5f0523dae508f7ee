// Text in and out of the strata command: prompts through the model's
// tokenizer.json, streamed text, and the tokenize/detokenize commands.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "convert/synthetic_model.h"
#include "test_models.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace strata::test {
namespace {

using nlohmann::json;

std::filesystem::path tokenizers() { return testdata() / "tokenizers"; }

// A small random model with Llama 2's 32000-token vocabulary and tokenizer.
std::filesystem::path model_with_tokenizer(const TempDir& tmp) {
  auto dir = tmp / "model";
  ModelConfig c = find_synth_preset("tiny-llama3").config;
  c.vocab_size = 32000;
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  SynthOptions so;
  so.seed = 5;
  write_synthetic_model(dir, c, so);
  std::filesystem::copy_file(tokenizers() / "llama2" / "tokenizer.json", dir / "tokenizer.json");
  return dir;
}

TEST(CliText, RunTakesTextAndStreamsTextEqualToDecode) {
  TempDir tmp;
  auto model = model_with_tokenizer(tmp).string();
  Tokenizer tok = Tokenizer::from_file(tokenizers() / "llama2" / "tokenizer.json");
  const std::string prompt = "Once upon a time, there was a";
  auto j = run_strata({"run", model, prompt, "-n", "12", "--format", "json"});
  ASSERT_EQ(j.status, 0) << j.err;
  json r = json::parse(j.out);
  EXPECT_EQ(r["prompt_ids"].get<std::vector<int32_t>>(), tok.encode(prompt, true));
  auto out_ids = r["output_ids"].get<std::vector<int32_t>>();
  EXPECT_EQ(r["text"].get<std::string>(), tok.decode(out_ids, true));

  auto text = run_strata({"run", model, prompt, "-n", "12"});
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_EQ(text.out, tok.decode(out_ids, true) + "\n");  // a final newline for the terminal

  std::ofstream(tmp / "prompt.txt") << prompt;
  auto file = run_strata({"run", model, "--prompt-file", (tmp / "prompt.txt").string(), "-n", "12", "--format", "json"});
  ASSERT_EQ(file.status, 0) << file.err;
  EXPECT_EQ(json::parse(file.out)["output_ids"], r["output_ids"]);

  // Without a tokenizer, text prompts are refused with a usage error.
  copy_model_files(stories_dir(), tmp / "no-tokenizer", {"tokenizer.json", "tokenizer_config.json"});
  for (const char* command : {"run", "score"}) {
    auto none = run_strata({command, (tmp / "no-tokenizer").string(), "hello"});
    EXPECT_EQ(none.status, 2) << command;
    EXPECT_NE(none.err.find("tokenizer.json"), std::string::npos) << command << ": " << none.err;
  }
}

// stories260K with its own tokenizer, end to end: every reference case that
// has a prompt text, given as text, is encoded to the reference's prompt ids
// and continues with the reference's greedy ids, and the streamed text is
// the decode of those ids.
TEST(CliText, StoriesTextPromptsGiveTheReferenceContinuations) {
  json ref = json::parse(read_text(stories_dir() / "reference.json"));
  Tokenizer tok = Tokenizer::from_file(stories_dir());
  int checked = 0;
  for (const auto& c : ref["greedy"]) {
    if (!c.contains("prompt_text")) continue;
    const std::string prompt = c["prompt_text"];
    const std::string n = std::to_string(c["new_tokens"].get<int>());
    auto j = run_strata({"run", stories_dir().string(), prompt, "-n", n, "--format", "json"});
    ASSERT_EQ(j.status, 0) << j.err;
    json r = json::parse(j.out);
    EXPECT_EQ(r["prompt_ids"], c["prompt_ids"]) << prompt;
    EXPECT_EQ(r["output_ids"], c["output_ids"]) << prompt;
    const std::string text = tok.decode(c["output_ids"].get<std::vector<int32_t>>(), true);
    EXPECT_EQ(r["text"].get<std::string>(), text) << prompt;
    auto streamed = run_strata({"run", stories_dir().string(), prompt, "-n", n});
    ASSERT_EQ(streamed.status, 0) << streamed.err;
    EXPECT_EQ(streamed.out, text + "\n") << prompt;
    ++checked;
  }
  EXPECT_GE(checked, 3);
  // The first story, as the README shows it.
  auto story = run_strata({"run", stories_dir().string(), "Once upon a time", "-n", "60"});
  ASSERT_EQ(story.status, 0) << story.err;
  EXPECT_EQ(story.out.rfind(", there was a little girl named Lily. She loved to play outside in the park.", 0), 0u)
      << story.out;
}

// `score` takes text too: the ids are the tokenizer's, the logits those of
// the same ids given directly.
TEST(CliText, ScoreFromTextEqualsScoreFromIds) {
  Tokenizer tok = Tokenizer::from_file(stories_dir());
  const std::string text = "Once upon a time, there was a little girl named Lily.";
  const std::vector<int32_t> ids = tok.encode(text, true);
  std::string joined;
  for (int32_t id : ids) {
    if (!joined.empty()) joined += ',';
    joined += std::to_string(id);
  }
  auto a = run_strata({"score", stories_dir().string(), text, "--format", "json"});
  auto b = run_strata({"score", stories_dir().string(), "--prompt-ids", joined, "--format", "json"});
  ASSERT_EQ(a.status, 0) << a.err;
  ASSERT_EQ(b.status, 0) << b.err;
  json ja = json::parse(a.out), jb = json::parse(b.out);
  EXPECT_EQ(ja["ids"].get<std::vector<int32_t>>(), ids);
  EXPECT_EQ(ja["logprobs"], jb["logprobs"]);
  EXPECT_LT(ja["perplexity"].get<double>(), 20.0);  // a fluent sentence for this model (vocabulary 512)
}

TEST(CliText, TokenizeAndDetokenizeMatchTheReference) {
  std::ifstream cases(tokenizers() / "llama3" / "cases.jsonl");
  std::string line;
  int checked = 0;
  while (std::getline(cases, line) && checked < 5) {
    json c = json::parse(line);
    std::string text = c["text"];
    if (text.empty() || text[0] == '-' || text.find('\0') != std::string::npos) continue;
    auto r = run_strata({"tokenize", (tokenizers() / "llama3").string(), text, "--format", "json", "--no-special"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(json::parse(r.out), c["ids"]) << text;
    std::string ids;
    for (auto& v : c["ids"]) {
      if (!ids.empty()) ids += ',';
      ids += std::to_string(v.get<int>());
    }
    if (ids.empty()) continue;
    auto d = run_strata({"detokenize", (tokenizers() / "llama3" / "tokenizer.json").string(), ids});
    ASSERT_EQ(d.status, 0) << d.err;
    EXPECT_EQ(d.out, c["decoded"].get<std::string>() + "\n");
    ++checked;
  }
  EXPECT_EQ(checked, 5);
}

TEST(CliText, TokenizeJsonlCountsTokens) {
  TempDir tmp;
  {
    std::ofstream f(tmp / "in.jsonl");
    f << R"({"id": 1, "text": "Hello world"})" << "\n" << R"({"text": "Hello"})" << "\n";
  }
  auto r = run_strata({"tokenize", (tokenizers() / "llama2").string(), "--jsonl", (tmp / "in.jsonl").string()});
  ASSERT_EQ(r.status, 0) << r.err;
  std::istringstream lines(r.out);
  std::string l1, l2;
  std::getline(lines, l1);
  std::getline(lines, l2);
  json a = json::parse(l1), b = json::parse(l2);
  EXPECT_EQ(a["ids"], json({1, 15043, 3186}));
  EXPECT_EQ(a["count"], 3);
  EXPECT_EQ(a["id"], 1);
  EXPECT_EQ(b["count"], 2);

  { std::ofstream(tmp / "bad.jsonl") << "{\"text\": 5}\n"; }
  auto bad = run_strata({"tokenize", (tokenizers() / "llama2").string(), "--jsonl", (tmp / "bad.jsonl").string()});
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.err.find("bad.jsonl:1"), std::string::npos) << bad.err;
  auto out_of_vocab = run_strata({"detokenize", (tokenizers() / "llama2").string(), "1,99999"});
  EXPECT_EQ(out_of_vocab.status, 2);
}

}  // namespace
}  // namespace strata::test
