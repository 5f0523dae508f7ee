// Tokenizers built from GGUF metadata (tokenizer/gguf_vocab.h):
// - every input of every vocabulary file in testdata/gguf/vocab (globbed)
//   gives llama.cpp's expected ids (test-tokenizer-0: no BOS/EOS, special
//   tokens in the text not parsed);
// - the Llama 2 vocabulary from GGUF encodes and decodes the 200 reference
//   cases as Hugging Face's tokenizer.json does;
// - stories260K converted by llama.cpp encodes, generates and decodes the
//   same text as the safetensors original with its tokenizer.json;
// - metadata of the wrong type or size is an error naming the key;
// - `strata tokenize|detokenize|run "text"` work on a GGUF file alone.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "formats/gguf.h"
#include "formats/gguf_writer.h"
#include "strata/strata.h"
#include "test_util.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/tokenizer.h"

namespace strata {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path vocab_dir() { return test::testdata() / "gguf" / "vocab"; }
fs::path stories_gguf() { return test::testdata() / "gguf" / "stories260K-llamacpp-f32.gguf"; }

std::vector<std::string> vocab_files() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(vocab_dir(), ec))
    if (e.path().extension() == ".gguf" && fs::exists(e.path().string() + ".inp")) out.push_back(e.path().filename());
  std::sort(out.begin(), out.end());
  return out;
}

// The texts of a .inp file: split on "\n__ggml_vocab_test__\n", the rest
// after the last separator being the last text.
std::vector<std::string> read_inputs(const fs::path& p) {
  const std::string all = test::read_text(p), sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t at; (at = all.find(sep, start)) != std::string::npos; start = at + sep.size())
    out.push_back(all.substr(start, at - start));
  out.push_back(all.substr(start));
  return out;
}

std::vector<std::vector<int32_t>> read_outputs(const fs::path& p) {
  std::vector<std::vector<int32_t>> out;
  std::stringstream ss(test::read_text(p));
  std::string line;
  while (std::getline(ss, line)) {
    std::vector<int32_t> ids;
    std::stringstream ls(line);
    int32_t id;
    while (ls >> id) ids.push_back(id);
    out.push_back(std::move(ids));
  }
  return out;
}

class VocabFile : public ::testing::TestWithParam<std::string> {};

TEST_P(VocabFile, EveryInputGivesLlamaCppIds) {
  const fs::path gguf = vocab_dir() / GetParam();
  const Tokenizer tok = Tokenizer::from_gguf(gguf);
  const auto inputs = read_inputs(gguf.string() + ".inp");
  const auto expected = read_outputs(gguf.string() + ".out");
  ASSERT_GE(expected.size(), inputs.size() - 1);
  size_t ok = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::vector<int32_t> want = i < expected.size() ? expected[i] : std::vector<int32_t>{};
    const std::vector<int32_t> got = tok.encode(inputs[i], /*add_special_tokens=*/false, /*special_as_text=*/true);
    EXPECT_EQ(got, want) << GetParam() << " input " << i << ": '" << inputs[i] << "'";
    ok += got == want;
  }
  std::printf("[ %s ] %zu/%zu inputs give llama.cpp's ids\n", GetParam().c_str(), ok, inputs.size());
}

INSTANTIATE_TEST_SUITE_P(TestData, VocabFile, ::testing::ValuesIn(vocab_files()), [](const auto& info) {
  std::string n = info.param;
  for (auto& ch : n)
    if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
});

TEST(GgufVocab, DirectoryHasVocabularies) { EXPECT_GE(vocab_files().size(), 4u); }

// The Llama 2 vocabulary as llama.cpp stores it (scores, no merges) against
// Hugging Face's tokenizer.json with its merges, on the 200 reference cases.
TEST(GgufVocab, SentencepieceFromScoresEqualsTokenizerJsonMerges) {
  const Tokenizer gguf = Tokenizer::from_gguf(vocab_dir() / "ggml-vocab-llama-spm.gguf");
  const Tokenizer hf = Tokenizer::from_file(test::testdata() / "tokenizers" / "llama2" / "tokenizer.json");
  std::ifstream in(test::testdata() / "tokenizers" / "llama2" / "cases.jsonl");
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    const json c = json::parse(line);
    const std::string text = c["text"];
    EXPECT_EQ(gguf.encode(text, false), c["ids"].get<std::vector<int32_t>>()) << n << ": " << text;
    EXPECT_EQ(gguf.encode(text, true), c["ids_with_special"].get<std::vector<int32_t>>()) << n << ": " << text;
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(gguf.decode(ids), hf.decode(ids)) << n;
    ++n;
  }
  EXPECT_EQ(n, 200u);
  EXPECT_EQ(gguf.bos_id(), 1);
  EXPECT_EQ(gguf.eos_id(), 2);
  EXPECT_TRUE(gguf.config().add_bos_token.value_or(false));
  EXPECT_TRUE(gguf.is_special(1));
}

TEST(GgufVocab, Stories260KFromLlamaCppGeneratesTheSameTextAsTheOriginal) {
  const Tokenizer gguf_tok = Tokenizer::from_gguf(stories_gguf());
  const Tokenizer hf_tok = Tokenizer::from_file(test::stories_dir());
  const json ref = json::parse(test::read_text(test::stories_dir() / "reference.json"));
  EngineOptions o;
  o.max_memory = 64ull << 20;
  auto gguf = Engine::open(stories_gguf(), o);
  auto st = Engine::open(test::stories_dir(), o);
  size_t cases = 0;
  for (const auto& c : ref["greedy"]) {
    if (!c.contains("prompt_text") || !c["prompt_text"].is_string()) continue;
    const std::string text = c["prompt_text"];
    const std::vector<int32_t> ids = gguf_tok.encode(text, true);
    EXPECT_EQ(ids, c["prompt_ids"].get<std::vector<int32_t>>()) << text;
    EXPECT_EQ(ids, hf_tok.encode(text, true)) << text;
    GenerateRequest req;
    req.prompt_ids = ids;
    req.max_new_tokens = 24;
    req.stop_at_eos = false;
    const GenerateResult a = gguf->generate(req), b = st->generate(req);
    EXPECT_EQ(a.output_ids, b.output_ids) << text;
    const std::string out = gguf_tok.decode(a.output_ids, true);
    EXPECT_EQ(out, hf_tok.decode(b.output_ids, true)) << text;
    EXPECT_GT(out.size(), 20u);
    std::printf("[ stories260K GGUF ] '%s' ->%s\n", text.c_str(), out.c_str());
    ++cases;
  }
  EXPECT_GE(cases, 3u);
}

// A tiny vocabulary GGUF with one key replaced.
struct VocabSpec {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "b", "\xE2\x96\x81" "a", "ab"};
  std::vector<float> scores = {0, 0, 0, -1, -2, -3, -4, -5};
  std::vector<int32_t> types = {2, 3, 3, 1, 1, 1, 1, 1};
};

fs::path write_vocab(const fs::path& p, const std::function<void(GgufWriter&)>& keys) {
  GgufWriter w(p, 32);
  w.add_string("general.architecture", "llama");
  keys(w);
  w.begin_data();
  w.finish();
  return p;
}

std::string load_error(const fs::path& p) {
  try {
    Tokenizer::from_gguf(p);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(GgufVocab, MetadataOfTheWrongTypeIsAnErrorNamingTheKey) {
  test::TempDir tmp;
  const VocabSpec v;
  auto base = [&](GgufWriter& w) {
    w.add_string("tokenizer.ggml.model", "llama");
    w.add_string_array("tokenizer.ggml.tokens", v.tokens);
    w.add_f32_array("tokenizer.ggml.scores", v.scores);
    w.add_i32_array("tokenizer.ggml.token_type", v.types);
  };
  // The valid file works: "a b" -> "▁a" "b" and "ab" merges only after "▁a".
  const Tokenizer ok = Tokenizer::from_gguf(write_vocab(tmp / "ok.gguf", base));
  EXPECT_EQ(ok.encode("a b", false), (std::vector<int32_t>{6, 3, 5}));
  EXPECT_EQ(ok.decode(std::vector<int32_t>{6, 3, 5}), "a b");

  struct Case {
    const char* name;
    std::function<void(GgufWriter&)> keys;
    const char* needle;
  };
  const std::vector<Case> cases = {
      {"tokens_as_ints", [&](GgufWriter& w) {
         w.add_string("tokenizer.ggml.model", "llama");
         w.add_i32_array("tokenizer.ggml.tokens", {1, 2, 3});
       }, "'tokenizer.ggml.tokens' is not an array of strings"},
      {"tokens_as_string", [&](GgufWriter& w) {
         w.add_string("tokenizer.ggml.model", "llama");
         w.add_string("tokenizer.ggml.tokens", "abc");
       }, "'tokenizer.ggml.tokens' is not an array of strings"},
      {"model_as_int", [&](GgufWriter& w) { w.add_u32("tokenizer.ggml.model", 1); }, "'tokenizer.ggml.model' is not a string"},
      {"scores_as_strings", [&](GgufWriter& w) {
         w.add_string("tokenizer.ggml.model", "llama");
         w.add_string_array("tokenizer.ggml.tokens", v.tokens);
         w.add_string_array("tokenizer.ggml.scores", v.tokens);
       }, "'tokenizer.ggml.scores' is not an array of floats"},
      {"scores_short", [&](GgufWriter& w) {
         w.add_string("tokenizer.ggml.model", "llama");
         w.add_string_array("tokenizer.ggml.tokens", v.tokens);
         w.add_f32_array("tokenizer.ggml.scores", {1.0f});
       }, "tokenizer.ggml.scores has 1 entries for 8 tokens"},
      {"types_as_floats", [&](GgufWriter& w) {
         w.add_string("tokenizer.ggml.model", "llama");
         w.add_string_array("tokenizer.ggml.tokens", v.tokens);
         w.add_f32_array("tokenizer.ggml.scores", v.scores);
         w.add_f32_array("tokenizer.ggml.token_type", v.scores);
       }, "'tokenizer.ggml.token_type' is not an array of integers"},
      {"bos_out_of_range", [&](GgufWriter& w) {
         base(w);
         w.add_u32("tokenizer.ggml.bos_token_id", 8);
       }, "'tokenizer.ggml.bos_token_id' = 8 is not a token id"},
      {"bos_as_string", [&](GgufWriter& w) {
         base(w);
         w.add_string("tokenizer.ggml.bos_token_id", "1");
       }, "'tokenizer.ggml.bos_token_id' is not an integer"},
      {"add_bos_as_int", [&](GgufWriter& w) {
         base(w);
         w.add_u32("tokenizer.ggml.add_bos_token", 1);
       }, "'tokenizer.ggml.add_bos_token' is not a bool"},
      {"merges_as_ints", [&](GgufWriter& w) {
         w.add_string("tokenizer.ggml.model", "gpt2");
         w.add_string_array("tokenizer.ggml.tokens", v.tokens);
         w.add_i32_array("tokenizer.ggml.merges", {1});
       }, "'tokenizer.ggml.merges' is not an array of strings"},
      {"merge_not_a_pair", [&](GgufWriter& w) {
         w.add_string("tokenizer.ggml.model", "gpt2");
         w.add_string_array("tokenizer.ggml.tokens", v.tokens);
         w.add_string_array("tokenizer.ggml.merges", {"ab"});
       }, "tokenizer.ggml.merges entry 0 'ab' is not two tokens"},
      {"merge_unknown_token", [&](GgufWriter& w) {
         w.add_string("tokenizer.ggml.model", "gpt2");
         w.add_string_array("tokenizer.ggml.tokens", v.tokens);
         w.add_string_array("tokenizer.ggml.merges", {"x y"});
       }, "not in the vocabulary"},
      {"unknown_pre", [&](GgufWriter& w) {
         w.add_string("tokenizer.ggml.model", "gpt2");
         w.add_string("tokenizer.ggml.pre", "no-such-pre");
         w.add_string_array("tokenizer.ggml.tokens", v.tokens);
         w.add_string_array("tokenizer.ggml.merges", {});
       }, "tokenizer.ggml.pre 'no-such-pre' is not supported"},
      {"unknown_model", [&](GgufWriter& w) { w.add_string("tokenizer.ggml.model", "bert"); }, "'bert' is not supported"},
      {"no_vocab", [&](GgufWriter& w) { w.add_string("tokenizer.ggml.model", "no_vocab"); }, "has no vocabulary"},
  };
  for (const Case& c : cases) {
    const fs::path p = write_vocab(tmp / (std::string(c.name) + ".gguf"), c.keys);
    const std::string err = load_error(p);
    EXPECT_EQ(err.rfind(p.string() + ": ", 0), 0u) << c.name << ": " << err;
    EXPECT_NE(err.find(c.needle), std::string::npos) << c.name << ": " << err;
  }
  EXPECT_FALSE(Tokenizer::from_gguf_if_any(tmp / "no_vocab.gguf"));
}

TEST(GgufVocab, CliTokenizesDetokenizesAndRunsOnAGgufAlone) {
  const std::string model = stories_gguf().string();
  const Tokenizer tok = Tokenizer::from_gguf(stories_gguf());
  auto t = test::run_strata({"tokenize", model, "Once upon a time", "--format", "json"});
  ASSERT_EQ(t.status, 0) << t.err;
  const auto ids = json::parse(t.out).get<std::vector<int32_t>>();
  EXPECT_EQ(ids, tok.encode("Once upon a time", true));
  std::string csv;
  for (int32_t id : ids) csv += (csv.empty() ? "" : ",") + std::to_string(id);
  auto d = test::run_strata({"detokenize", model, csv});
  ASSERT_EQ(d.status, 0) << d.err;
  EXPECT_NE(d.out.find("Once upon a time"), std::string::npos) << d.out;
  auto r = test::run_strata({"run", model, "Once upon a time", "-n", "8", "--format", "json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["prompt_ids"].get<std::vector<int32_t>>(), ids);
  EXPECT_EQ(j["text"].get<std::string>(), tok.decode(j["output_ids"].get<std::vector<int32_t>>(), true));
}

}  // namespace
}  // namespace strata
