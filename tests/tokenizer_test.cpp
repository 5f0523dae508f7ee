// Tokenizer against the Hugging Face reference (../shared/testdata/tokenizers):
// every case of every tokenizer must match exactly, for encode with and
// without special tokens, decode, and streaming decode. Plus the defined
// behaviour for invalid UTF-8, special tokens as text, and bad files.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "core/error.h"
#include "test_util.h"
#include "tokenizer/stream_decoder.h"
#include "tokenizer/unicode.h"

namespace strata {
namespace {

using nlohmann::json;

std::filesystem::path tokdir(const std::string& name) { return test::testdata() / "tokenizers" / name; }

// Loading takes a noticeable fraction of a second; share one per tokenizer.
const Tokenizer& load(const std::string& name) {
  static std::map<std::string, Tokenizer> cache;
  auto it = cache.find(name);
  if (it == cache.end()) it = cache.emplace(name, Tokenizer::from_file(tokdir(name))).first;
  return it->second;
}

struct Case {
  std::string text;
  std::vector<int32_t> ids, ids_with_special;
  std::string decoded;
};

std::vector<Case> load_cases(const std::string& name) {
  std::ifstream in(tokdir(name) / "cases.jsonl");
  std::vector<Case> cases;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    json j = json::parse(line);
    cases.push_back({j["text"], j["ids"], j["ids_with_special"], j["decoded"]});
  }
  return cases;
}

std::string show(const std::vector<int32_t>& v, size_t from) {
  std::ostringstream s;
  for (size_t i = from; i < v.size() && i < from + 8; ++i) s << v[i] << ' ';
  return s.str();
}

// "" when equal, else where and how the two id lists first differ.
std::string id_mismatch(const std::vector<int32_t>& want, const std::vector<int32_t>& got) {
  size_t i = 0;
  while (i < want.size() && i < got.size() && want[i] == got[i]) ++i;
  if (i == want.size() && i == got.size()) return "";
  std::ostringstream s;
  s << "first difference at id " << i << " (lengths " << want.size() << " vs " << got.size() << "): want [" << show(want, i)
    << "] got [" << show(got, i) << "]";
  return s.str();
}

std::string text_mismatch(const std::string& want, const std::string& got) {
  size_t i = 0;
  while (i < want.size() && i < got.size() && want[i] == got[i]) ++i;
  if (i == want.size() && i == got.size()) return "";
  return "first difference at byte " + std::to_string(i) + ": want '" + want.substr(i, 24) + "' got '" + got.substr(i, 24) + "'";
}

class TokenizerCorpus : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerCorpus, MatchesReference) {
  const std::string name = GetParam();
  const Tokenizer& tok = load(name);
  auto cases = load_cases(name);
  ASSERT_FALSE(cases.empty());
  size_t ok_ids = 0, ok_special = 0, ok_decoded = 0;
  for (size_t k = 0; k < cases.size(); ++k) {
    const Case& c = cases[k];
    std::string where = name + " case " + std::to_string(k) + " text=" + json(c.text).dump();
    auto m1 = id_mismatch(c.ids, tok.encode(c.text, false));
    auto m2 = id_mismatch(c.ids_with_special, tok.encode(c.text, true));
    auto m3 = text_mismatch(c.decoded, tok.decode(c.ids));
    EXPECT_EQ(m1, "") << where << " [ids]";
    EXPECT_EQ(m2, "") << where << " [ids_with_special]";
    EXPECT_EQ(m3, "") << where << " [decoded]";
    ok_ids += m1.empty();
    ok_special += m2.empty();
    ok_decoded += m3.empty();
  }
  std::printf("[ tokenizer ] %-12s %zu cases: ids %zu/%zu, ids_with_special %zu/%zu, decoded %zu/%zu\n", name.c_str(),
              cases.size(), ok_ids, cases.size(), ok_special, cases.size(), ok_decoded, cases.size());
}

// Streaming the ids of every case (with and without specials, and skipping
// specials) gives exactly decode(all ids), and no piece ends mid-character.
TEST_P(TokenizerCorpus, StreamDecodeMatchesDecode) {
  const std::string name = GetParam();
  const Tokenizer& tok = load(name);
  for (const Case& c : load_cases(name)) {
    for (const auto* ids : {&c.ids, &c.ids_with_special}) {
      for (bool skip : {false, true}) {
        StreamDecoder sd(tok, skip);
        std::string all;
        for (int32_t id : *ids) {
          std::string piece = sd.step(id);
          EXPECT_FALSE(piece.ends_with("\xEF\xBF\xBD") && !c.text.empty() && c.text.find("\xEF\xBF\xBD") == std::string::npos)
              << name << ": piece ends with U+FFFD for " << json(c.text).dump();
          all += piece;
        }
        all += sd.flush();
        ASSERT_EQ(text_mismatch(tok.decode(*ids, skip), all), "") << name << " skip=" << skip << " " << json(c.text).dump();
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Tokenizer, TokenizerCorpus,
                         ::testing::Values("llama3", "qwen3", "deepseek_v3", "mistral", "llama2"));

TEST(TokenizerStream, HoldsIncompleteUtf8) {
  const Tokenizer& tok = load("llama2");
  // "你" has no single token in Llama 2's vocabulary pieces used here: check
  // through the byte tokens directly.
  auto b0 = tok.token_to_id("<0xE4>"), b1 = tok.token_to_id("<0xBD>"), b2 = tok.token_to_id("<0xA0>");
  ASSERT_TRUE(b0 && b1 && b2);
  StreamDecoder sd(tok);
  EXPECT_EQ(sd.step(*tok.token_to_id("\xE2\x96\x81Hi")), "Hi");
  EXPECT_EQ(sd.step(*b0), "");
  EXPECT_EQ(sd.step(*b1), "");
  EXPECT_EQ(sd.step(*b2), "\xE4\xBD\xA0");
  EXPECT_EQ(sd.step(*b0), "");
  EXPECT_EQ(sd.flush(), "\xEF\xBF\xBD");  // a lone lead byte at the end
  // A byte that cannot continue the completed run: the stream emits it alone
  // (decode() of the whole list would replace the whole run, see the header).
  EXPECT_EQ(sd.step(*b0), "");
  EXPECT_EQ(sd.step(*b1), "");
  EXPECT_EQ(sd.step(*b2), "\xE4\xBD\xA0");
  EXPECT_EQ(sd.step(*b2), "");
  EXPECT_EQ(sd.step(*tok.token_to_id("\xE2\x96\x81Hi")), "\xEF\xBF\xBD Hi");
  EXPECT_EQ(sd.flush(), "");
}

TEST(TokenizerInvalidUtf8, ReplacedLikePythonErrorsReplace) {
  const Tokenizer& tok = load("llama3");
  // Each maximal ill-formed subpart becomes one U+FFFD.
  struct {
    std::string raw, as_python;
  } cases[] = {
      {"abc\xFF" "def", "abc\xEF\xBF\xBD" "def"},
      {"x\xE2\x82", "x\xEF\xBF\xBD"},                                    // truncated 3-byte sequence: one U+FFFD
      {"\xC0\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD"},                         // overlong: two
      {"\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},         // surrogate: three
      {"\xF0\x9F\x98", "\xEF\xBF\xBD"},                                 // truncated emoji
      {"\xF4\x90\x80\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},  // above U+10FFFF
      {std::string("a\0b\x80", 4), std::string("a\0b\xEF\xBF\xBD", 6)},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(tok.encode(c.raw, false), tok.encode(c.as_python, false)) << json(c.as_python).dump();
    EXPECT_EQ(tok.decode(tok.encode(c.raw, false)), c.as_python);
  }
  const Tokenizer& sp = load("mistral");
  EXPECT_EQ(sp.encode("\xFFok", true), sp.encode("\xEF\xBF\xBDok", true));
}

// Random bytes and random ids never crash and always give valid UTF-8 text
// (run under the sanitizers too).
TEST(TokenizerRobustness, RandomBytesAndIds) {
  std::mt19937 rng(7);
  static const char kAlphabet[] = "<|> \n\xE2\x96\x81\xC4\xA0" "a1";  // pieces of special and marker text
  for (const char* name : {"llama3", "qwen3", "deepseek_v3", "mistral", "llama2"}) {
    const Tokenizer& tok = load(name);
    for (int k = 0; k < 30; ++k) {
      std::string bytes(rng() % 200, '\0');
      for (auto& b : bytes) b = static_cast<char>(k % 2 ? rng() % 256 : kAlphabet[rng() % (sizeof(kAlphabet) - 1)]);
      for (bool special_as_text : {false, true}) {
        auto ids = tok.encode(bytes, true, special_as_text);
        std::string text = tok.decode(ids);
        EXPECT_EQ(unicode::sanitize_utf8(text), text) << name;
      }
      std::vector<int32_t> ids(rng() % 50);
      for (auto& id : ids) id = static_cast<int32_t>(rng() % (tok.vocab_size() + 10)) - 5;
      std::string text = tok.decode(ids);
      EXPECT_EQ(unicode::sanitize_utf8(text), text) << name;
      StreamDecoder sd(tok);
      std::string streamed;
      for (int32_t id : ids) streamed += sd.step(id);
      streamed += sd.flush();
      EXPECT_EQ(unicode::sanitize_utf8(streamed), streamed) << name;
    }
  }
}

TEST(TokenizerSpecial, SpecialAsTextForUntrustedInput) {
  const Tokenizer& tok = load("qwen3");
  int32_t im_start = *tok.token_to_id("<|im_start|>");
  auto trusted = tok.encode("<|im_start|>user", false);
  ASSERT_GE(trusted.size(), 2u);
  EXPECT_EQ(trusted[0], im_start);
  auto untrusted = tok.encode("<|im_start|>user", false, /*special_as_text=*/true);
  EXPECT_EQ(std::count(untrusted.begin(), untrusted.end(), im_start), 0);
  EXPECT_GT(untrusted.size(), trusted.size());
  EXPECT_EQ(tok.decode(untrusted), "<|im_start|>user");
  // Non-special added tokens stay tokens either way.
  int32_t think = *tok.token_to_id("<think>");
  EXPECT_FALSE(tok.is_special(think));
  EXPECT_EQ(tok.encode("<think>", false, true), std::vector<int32_t>{think});
  // skip_special drops special tokens only.
  std::vector<int32_t> ids = {im_start, think};
  EXPECT_EQ(tok.decode(ids, true), "<think>");
  EXPECT_EQ(tok.decode(ids, false), "<|im_start|><think>");
}

TEST(TokenizerSpecial, Llama2BosAndSpecialText) {
  const Tokenizer& tok = load("llama2");
  auto ids = tok.encode("Hello", true);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(tok.encode("</s>", false), std::vector<int32_t>{2});
  auto as_text = tok.encode("</s>", false, true);
  EXPECT_NE(as_text, std::vector<int32_t>{2});
  EXPECT_EQ(tok.decode(as_text), "</s>");  // Prepend("▁")'s space, removed by the Strip decoder
}

TEST(TokenizerApi, VocabAndConfig) {
  const Tokenizer& l3 = load("llama3");
  EXPECT_EQ(l3.vocab_size(), 128256u);
  EXPECT_EQ(l3.token_to_id("<|begin_of_text|>"), 128000);
  EXPECT_EQ(l3.id_to_token(128001), "<|end_of_text|>");
  EXPECT_EQ(l3.id_to_token(1 << 30), "");
  EXPECT_EQ(l3.config().bos_token, "<|begin_of_text|>");
  EXPECT_EQ(l3.bos_id(), 128000);
  EXPECT_EQ(l3.eos_id(), 128001);
  EXPECT_FALSE(l3.token_to_id("no such token at all"));

  const Tokenizer& ds = load("deepseek_v3");
  EXPECT_EQ(ds.config().add_bos_token, true);
  EXPECT_EQ(ds.config().add_eos_token, false);
  EXPECT_EQ(ds.bos_id(), 0);
  EXPECT_TRUE(ds.config().chat_template.has_value());

  const Tokenizer& mi = load("mistral");
  EXPECT_EQ(mi.config().bos_token, "<s>");
  EXPECT_EQ(mi.eos_id(), 2);
  EXPECT_EQ(mi.vocab_size(), 32000u);

  const Tokenizer& l2 = load("llama2");  // no tokenizer_config.json
  EXPECT_FALSE(l2.config().bos_token);
  EXPECT_FALSE(l2.bos_id());
  // Unknown ids are skipped when decoding, as in the reference.
  std::vector<int32_t> ids = {15043, -5, 99999999};
  EXPECT_EQ(l2.decode(ids), "Hello");
}

TEST(TokenizerApi, LoadsFromFileOrDirectory) {
  auto a = Tokenizer::from_file(tokdir("llama2"));
  auto b = Tokenizer::from_file(tokdir("llama2") / "tokenizer.json");
  EXPECT_EQ(a.encode("Hello world", true), b.encode("Hello world", true));
}

// A minimal valid tokenizer.json with one component replaced.
std::string tiny_tokenizer(const std::string& key, const std::string& value) {
  json j = json::parse(R"({
    "added_tokens": [], "normalizer": null, "pre_tokenizer": null, "post_processor": null, "decoder": null,
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}
  })");
  if (!key.empty()) j[key] = json::parse(value);
  return j.dump();
}

std::string load_error(const std::string& text) {
  try {
    Tokenizer::from_json(text, "/models/x/tokenizer.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(TokenizerErrors, UnsupportedComponentsAreNamed) {
  EXPECT_EQ(load_error(tiny_tokenizer("pre_tokenizer", R"({"type": "Foo"})")),
            "/models/x/tokenizer.json: unsupported pre_tokenizer type 'Foo'");
  EXPECT_EQ(load_error(tiny_tokenizer("normalizer", R"({"type": "Precompiled", "precompiled_charsmap": ""})")),
            "/models/x/tokenizer.json: unsupported normalizer type 'Precompiled'");
  EXPECT_EQ(load_error(tiny_tokenizer("decoder", R"({"type": "CTC"})")),
            "/models/x/tokenizer.json: unsupported decoder type 'CTC'");
  EXPECT_EQ(load_error(tiny_tokenizer("post_processor", R"({"type": "Bar"})")),
            "/models/x/tokenizer.json: unsupported post_processor type 'Bar'");
  EXPECT_EQ(load_error(tiny_tokenizer("model", R"({"type": "Unigram", "vocab": []})")),
            "/models/x/tokenizer.json: unsupported model type 'Unigram'");
  EXPECT_EQ(load_error(tiny_tokenizer("pre_tokenizer", R"({"type": "Sequence", "pretokenizers": [{"type": "Nope"}]})")),
            "/models/x/tokenizer.json: unsupported pre_tokenizer type 'Nope'");
}

TEST(TokenizerErrors, MalformedFilesGiveClearErrors) {
  EXPECT_EQ(load_error(tiny_tokenizer("", "")), "no error");
  EXPECT_NE(load_error("{\"model\": ").find("/models/x/tokenizer.json: invalid JSON"), std::string::npos);
  EXPECT_NE(load_error("[1, 2]").find("/models/x/tokenizer.json: "), std::string::npos);
  EXPECT_NE(load_error("{}").find("missing field 'model'"), std::string::npos);
  EXPECT_NE(load_error(tiny_tokenizer("model", R"({"type": "BPE", "vocab": {"a": 0}})")).find("missing field 'merges'"),
            std::string::npos);
  EXPECT_NE(load_error(tiny_tokenizer("model", R"({"type": "BPE", "vocab": {"a": 0}, "merges": ["a c"]})"))
                .find("not in the vocabulary"),
            std::string::npos);
  EXPECT_NE(load_error(tiny_tokenizer("model", R"({"type": "BPE", "vocab": {"a": "zero"}, "merges": []})")).find("valid id"),
            std::string::npos);
  EXPECT_NE(load_error(tiny_tokenizer("pre_tokenizer", R"({"type": "Split", "pattern": {"Regex": "("}, "behavior": "Isolated"})"))
                .find("invalid regex"),
            std::string::npos);
  EXPECT_NE(load_error(tiny_tokenizer("pre_tokenizer", R"({"type": "Split", "pattern": {"Regex": "a"}, "behavior": "Sideways"})"))
                .find("unsupported split behavior 'Sideways'"),
            std::string::npos);
  EXPECT_NE(load_error(tiny_tokenizer("added_tokens", R"([{"content": "x"}])")).find("missing field 'id'"), std::string::npos);
  EXPECT_NE(load_error(tiny_tokenizer("normalizer", R"({"type": "Replace", "content": "x"})")).find("missing field 'pattern'"),
            std::string::npos);
  EXPECT_NE(load_error(tiny_tokenizer("normalizer", R"("NFC")")).find("not a JSON object"), std::string::npos);
  try {
    Tokenizer::from_file("/nonexistent/dir/tokenizer.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/tokenizer.json: cannot open"), std::string::npos);
  }
}

TEST(TokenizerErrors, BadConfigIsNamed) {
  test::TempDir dir;
  {
    std::ofstream(dir / "tokenizer.json") << tiny_tokenizer("", "");
    std::ofstream(dir / "tokenizer_config.json") << "{\"bos_token\": 5}";
  }
  try {
    Tokenizer::from_file(dir.path());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer_config.json: 'bos_token'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace strata
