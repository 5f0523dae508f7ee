// Text in and out of the strata command: prompts through the model's
// tokenizer.json, streamed text, and the tokenize/detokenize commands.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "convert/synthetic_model.h"
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
  auto none = run_strata({"run", stories_dir().string(), "hello"});
  EXPECT_EQ(none.status, 2);
  EXPECT_NE(none.err.find("tokenizer.json"), std::string::npos);
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
    for (auto& v : c["ids"]) ids += (ids.empty() ? "" : ",") + std::to_string(v.get<int>());
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
