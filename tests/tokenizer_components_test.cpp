// The tokenizer.json components one by one, on small inputs whose expected
// outputs are those of the Hugging Face reference (many are its own unit
// test examples), including options the five real tokenizers do not use.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <thread>

#include "test_util.h"
#include "tokenizer/decoder.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/regex.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace strata {
namespace {

using nlohmann::json;
using Strings = std::vector<std::string>;

Strings pre_tokenize(const std::string& spec, const std::string& text, size_t orig_start = 0) {
  auto p = tok::PreTokenizer::from_json(json::parse(spec));
  std::vector<tok::Piece> pieces{{text, orig_start}};
  p->pre_tokenize(pieces);
  Strings out;
  for (auto& piece : pieces) out.push_back(piece.text);
  return out;
}

std::string normalize(const std::string& spec, std::string text) {
  tok::Normalizer::from_json(json::parse(spec))->normalize(text);
  return text;
}

std::string decode(const std::string& spec, const Strings& tokens) {
  return tok::Decoder::from_json(json::parse(spec))->decode(tokens);
}

std::string split_spec(const std::string& pattern_kind, const std::string& pattern, const std::string& behavior,
                       bool invert = false) {
  json j = {{"type", "Split"}, {"pattern", {{pattern_kind, pattern}}}, {"behavior", behavior}, {"invert", invert}};
  return j.dump();
}

TEST(TokenizerPreTokenizer, SplitBehaviors) {
  const std::string text = "How are you doing?";
  EXPECT_EQ(pre_tokenize(split_spec("String", " ", "Removed"), text), (Strings{"How", "are", "you", "doing?"}));
  EXPECT_EQ(pre_tokenize(split_spec("String", " ", "Isolated"), text),
            (Strings{"How", " ", "are", " ", "you", " ", "doing?"}));
  EXPECT_EQ(pre_tokenize(split_spec("String", " ", "MergedWithPrevious"), text),
            (Strings{"How ", "are ", "you ", "doing?"}));
  EXPECT_EQ(pre_tokenize(split_spec("String", " ", "MergedWithNext"), text),
            (Strings{"How", " are", " you", " doing?"}));
  EXPECT_EQ(pre_tokenize(split_spec("String", "-", "Contiguous"), "The-final--countdown"),
            (Strings{"The", "-", "final", "--", "countdown"}));
  EXPECT_EQ(pre_tokenize(split_spec("String", "-", "MergedWithNext"), "a--b-"), (Strings{"a", "-", "-b", "-"}));
  EXPECT_EQ(pre_tokenize(split_spec("String", "-", "MergedWithPrevious"), "-a--b"), (Strings{"-", "a-", "-", "b"}));
  // invert: the matches are the "non-delimiters".
  EXPECT_EQ(pre_tokenize(split_spec("Regex", R"(\w+)", "Removed", true), "Hey, man!"), (Strings{"Hey", "man"}));
  EXPECT_EQ(pre_tokenize(split_spec("String", "", "Isolated"), "abc"), (Strings{"abc"}));
  // String patterns are literal, not regexes.
  EXPECT_EQ(pre_tokenize(split_spec("String", ".", "Removed"), "a.b+c"), (Strings{"a", "b+c"}));
}

TEST(TokenizerPreTokenizer, RegexFollowsOniguruma) {
  EXPECT_EQ(pre_tokenize(split_spec("Regex", R"(\p{N}{1,3})", "Isolated"), "x12345"), (Strings{"x", "123", "45"}));
  // \s is Unicode White_Space: U+180E (in PCRE2's \h) is not, NBSP is.
  EXPECT_EQ(pre_tokenize(split_spec("Regex", R"(\s+)", "Removed"), "a\xE1\xA0\x8E" "b"), (Strings{"a\xE1\xA0\x8E" "b"}));
  EXPECT_EQ(pre_tokenize(split_spec("Regex", R"(\s+)", "Removed"), "a\xC2\xA0" "b"), (Strings{"a", "b"}));
  EXPECT_EQ(pre_tokenize(split_spec("Regex", R"([^\s\p{L}]+)", "Isolated"), "ab 12"), (Strings{"ab ", "12"}));
  // Case-insensitive contractions, possessive and lazy quantifiers, lookahead.
  EXPECT_EQ(pre_tokenize(split_spec("Regex", "(?i:'s|'t)", "Isolated"), "IT'S"), (Strings{"IT", "'S"}));
  EXPECT_EQ(pre_tokenize(split_spec("Regex", R"(a++|b+?)", "Isolated"), "aabb"), (Strings{"aa", "b", "b"}));
  EXPECT_EQ(pre_tokenize(split_spec("Regex", R"(\s+(?!\S))", "Isolated"), "a   b"), (Strings{"a", "  ", " b"}));
  // ^ and $ match at line breaks (Ruby syntax).
  EXPECT_EQ(pre_tokenize(split_spec("Regex", "^x", "Removed"), "x1\nx2"), (Strings{"1\n", "2"}));
  EXPECT_EQ(tok::Regex("a*").find_all("ba"), (std::vector<std::pair<size_t, size_t>>{{0, 0}, {1, 2}}));
}

TEST(TokenizerPreTokenizer, ByteLevel) {
  EXPECT_EQ(pre_tokenize(R"({"type":"ByteLevel","add_prefix_space":true,"use_regex":true})", "Hello my friend"),
            (Strings{"\xC4\xA0Hello", "\xC4\xA0my", "\xC4\xA0" "friend"}));
  EXPECT_EQ(pre_tokenize(R"({"type":"ByteLevel","add_prefix_space":false,"use_regex":false})", "a b\n\xC3\xA9"),
            (Strings{"a\xC4\xA0" "b\xC4\x8A\xC3\x83\xC2\xA9"}));
  EXPECT_EQ(pre_tokenize(R"({"type":"ByteLevel","add_prefix_space":false})", "I'm 42"),
            (Strings{"I", "'m", "\xC4\xA0" "42"}));
}

TEST(TokenizerPreTokenizer, Metaspace) {
  const std::string always = R"({"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true})";
  EXPECT_EQ(pre_tokenize(always, "Hey friend!"), (Strings{"▁Hey", "▁friend!"}));
  EXPECT_EQ(pre_tokenize(always, "Hey   friend!"), (Strings{"▁Hey", "▁", "▁", "▁friend!"}));
  const std::string first = R"({"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":false})";
  EXPECT_EQ(pre_tokenize(first, "Hey friend", 0), (Strings{"▁Hey▁friend"}));
  EXPECT_EQ(pre_tokenize(first, "Hey friend", 7), (Strings{"Hey▁friend"}));
  EXPECT_EQ(pre_tokenize(R"({"type":"Metaspace","replacement":"▁","add_prefix_space":false})", "a b"),
            (Strings{"a", "▁b"}));
}

TEST(TokenizerPreTokenizer, CharacterClasses) {
  EXPECT_EQ(pre_tokenize(R"({"type":"Digits","individual_digits":true})", "Hey 123 friend!"),
            (Strings{"Hey ", "1", "2", "3", " friend!"}));
  EXPECT_EQ(pre_tokenize(R"({"type":"Digits","individual_digits":false})", "Hey 123 friend!"),
            (Strings{"Hey ", "123", " friend!"}));
  EXPECT_EQ(pre_tokenize(R"({"type":"Punctuation","behavior":"Isolated"})", "Hey friend!     How are you?!?"),
            (Strings{"Hey friend", "!", "     How are you", "?", "!", "?"}));
  EXPECT_EQ(pre_tokenize(R"({"type":"Whitespace"})", "Hey man!"), (Strings{"Hey", "man", "!"}));
  EXPECT_EQ(pre_tokenize(R"({"type":"WhitespaceSplit"})", "Hey man!\t ok"), (Strings{"Hey", "man!", "ok"}));
  EXPECT_EQ(pre_tokenize(R"({"type":"BertPreTokenizer"})", "Hey friend!  How?"),
            (Strings{"Hey", "friend", "!", "How", "?"}));
  EXPECT_EQ(pre_tokenize(R"({"type":"Sequence","pretokenizers":[{"type":"WhitespaceSplit"},{"type":"Digits","individual_digits":true}]})",
                         "ab12 c3"),
            (Strings{"ab", "1", "2", "c", "3"}));
}

TEST(TokenizerNormalizer, AllTypes) {
  EXPECT_EQ(normalize(R"({"type":"NFC"})", "cafe\xCC\x81"), "caf\xC3\xA9");
  EXPECT_EQ(normalize(R"({"type":"NFD"})", "caf\xC3\xA9"), "cafe\xCC\x81");
  EXPECT_EQ(normalize(R"({"type":"NFKC"})", "\xEF\xAC\x81" "x\xC2\xB2"), "fix2");    // ﬁ ², compatibility forms
  EXPECT_EQ(normalize(R"({"type":"NFKD"})", "\xE2\x84\xAB"), "A\xCC\x8A");          // Å sign
  EXPECT_EQ(normalize(R"({"type":"NFC"})", std::string("a\0b", 3)), std::string("a\0b", 3));  // NUL survives
  EXPECT_EQ(normalize(R"({"type":"Lowercase"})", "HeLLo \xC3\x89 \xC4\xB0"), "hello \xC3\xA9 i\xCC\x87");
  EXPECT_EQ(normalize(R"({"type":"Strip","strip_left":true,"strip_right":false})", " \t a b \n"), "a b \n");
  EXPECT_EQ(normalize(R"({"type":"Strip","strip_left":true,"strip_right":true})", "\xE3\x80\x80" "a "), "a");
  EXPECT_EQ(normalize(R"({"type":"StripAccents"})", "cafe\xCC\x81"), "cafe");
  EXPECT_EQ(normalize(R"({"type":"Prepend","prepend":"▁"})", "a"), "▁a");
  EXPECT_EQ(normalize(R"({"type":"Prepend","prepend":"▁"})", ""), "");
  EXPECT_EQ(normalize(R"({"type":"Replace","pattern":{"String":" "},"content":"▁"})", "a b  c"), "a▁b▁▁c");
  EXPECT_EQ(normalize(R"({"type":"Replace","pattern":{"Regex":"\\s+"},"content":" "})", "a \t\nb"), "a b");
  EXPECT_EQ(normalize(R"({"type":"Sequence","normalizers":[{"type":"NFD"},{"type":"StripAccents"},{"type":"Lowercase"}]})",
                      "\xC3\x89t\xC3\xA9"),
            "ete");
}

TEST(TokenizerDecoder, AllTypes) {
  EXPECT_EQ(decode(R"({"type":"ByteFallback"})", {"<0x61>", "<0xE4>", "<0xBD>", "<0xA0>", "x"}), "a\xE4\xBD\xA0x");
  // An invalid run gives one U+FFFD per byte.
  EXPECT_EQ(decode(R"({"type":"ByteFallback"})", {"<0xE4>", "<0xBD>", "y"}), "\xEF\xBF\xBD\xEF\xBF\xBDy");
  EXPECT_EQ(decode(R"({"type":"ByteFallback"})", {"<0xZZ>", "<0x+A>"}), "<0xZZ>\n");
  // ByteLevel: invalid bytes follow from_utf8_lossy; foreign tokens pass through.
  EXPECT_EQ(decode(R"({"type":"ByteLevel"})", {"\xC4\xA0hi", "\xC3\xA4"}), " hi\xEF\xBF\xBD");
  EXPECT_EQ(decode(R"({"type":"ByteLevel"})", {"<\xEF\xBD\x9C" "x>", "\xC4\x8A"}), "<\xEF\xBD\x9C" "x>\n");
  EXPECT_EQ(decode(R"({"type":"Strip","content":" ","start":1,"stop":1})", {"  a  ", " "}), " a ");
  EXPECT_EQ(decode(R"({"type":"Metaspace","replacement":"▁","prepend_scheme":"always"})", {"▁Hey", "▁friend!"}),
            "Hey friend!");
  EXPECT_EQ(decode(R"({"type":"Metaspace","replacement":"▁","prepend_scheme":"never"})", {"▁Hey"}), " Hey");
  EXPECT_EQ(decode(R"({"type":"Replace","pattern":{"String":"▁"},"content":" "})", {"▁a▁", "b"}), " a b");
  EXPECT_EQ(decode(R"({"type":"BPEDecoder","suffix":"</w>"})", {"hel", "lo</w>", "you</w>"}), "hello you");
  EXPECT_EQ(decode(R"({"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},
                     {"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]})",
                   {"▁Hi", "<0x21>", "▁", "<0xF0>", "<0x9F>", "<0x98>", "<0x80>"}),
            "Hi! \xF0\x9F\x98\x80");
}

TEST(TokenizerUnicode, SanitizeMatchesPython) {
  EXPECT_EQ(unicode::sanitize_utf8("ok"), "ok");
  EXPECT_EQ(unicode::sanitize_utf8("\xE0\x80\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(unicode::sanitize_utf8("\xF0\x9F\x98\x80\xF0\x9F"), "\xF0\x9F\x98\x80\xEF\xBF\xBD");
  EXPECT_EQ(unicode::sanitize_utf8("\x80\xBF"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(unicode::sanitize_utf8("\xE2\x28\xA1"), "\xEF\xBF\xBD(\xEF\xBF\xBD");
  EXPECT_TRUE(unicode::is_valid_utf8("\xF4\x8F\xBF\xBF"));
  EXPECT_FALSE(unicode::is_valid_utf8("\xF4\x90\x80\x80"));
}

// A tokenizer.json with a character vocabulary and options set per test.
Tokenizer tiny(const json& model_extra, const json& added = json::array(), const json& post = nullptr) {
  json model = {{"type", "BPE"},
                {"vocab", {{"<unk>", 0}, {"a", 1}, {"b", 2}, {"c", 3}, {" ", 4}, {"ab", 5}, {"bc", 6}, {"abc", 7},
                           {"<", 8}, {">", 9}, {"x", 10}, {"<0x7A>", 11}}},
                {"merges", {"b c", "a b"}}};
  if (model_extra.is_object()) model.update(model_extra);
  json j = {{"model", model}, {"added_tokens", added}, {"post_processor", post}};
  return Tokenizer::from_json(j.dump());
}

TEST(TokenizerBpe, MergesUnkAndByteFallback) {
  auto t = tiny(json::object());
  EXPECT_EQ(t.encode("abc", false), (std::vector<int32_t>{1, 6}));  // "b c" ranks before "a b"
  EXPECT_EQ(t.encode("ab", false), (std::vector<int32_t>{5}));
  // Without unk_token unknown characters are dropped, and their neighbours merge.
  EXPECT_EQ(t.encode("aqqb", false), (std::vector<int32_t>{5}));
  EXPECT_EQ(tiny({{"ignore_merges", true}}).encode("abc", false), (std::vector<int32_t>{7}));
  EXPECT_EQ(tiny({{"unk_token", "<unk>"}, {"fuse_unk", true}}).encode("qqab", false), (std::vector<int32_t>{0, 5}));
  EXPECT_EQ(tiny({{"unk_token", "<unk>"}, {"fuse_unk", false}}).encode("qqab", false), (std::vector<int32_t>{0, 0, 5}));
  EXPECT_EQ(tiny({{"unk_token", "<unk>"}, {"byte_fallback", true}}).encode("zq", false), (std::vector<int32_t>{11, 0}));
}

TEST(TokenizerBpe, SubwordPrefixAndSuffix) {
  json model = {{"type", "BPE"},
                {"vocab", {{"a", 0}, {"##b", 1}, {"ab", 2}, {"##a", 3}}},
                {"merges", {"a ##b"}},
                {"continuing_subword_prefix", "##"}};
  auto t = Tokenizer::from_json(json{{"model", model}}.dump());
  EXPECT_EQ(t.encode("ab", false), (std::vector<int32_t>{2}));
  EXPECT_EQ(t.encode("aab", false), (std::vector<int32_t>{0, 3, 1}));
  json model2 = {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b</w>", 1}, {"ab</w>", 2}, {"b", 3}}},
                 {"merges", {"a b</w>"}}, {"end_of_word_suffix", "</w>"}};
  auto t2 = Tokenizer::from_json(json{{"model", model2}}.dump());
  EXPECT_EQ(t2.encode("ab", false), (std::vector<int32_t>{2}));
  EXPECT_EQ(t2.encode("ba", false), (std::vector<int32_t>{3}));  // "a</w>" unknown: dropped
  // No decoder: tokens joined with spaces, as in the reference.
  EXPECT_EQ(t2.decode(std::vector<int32_t>{2, 3}), "ab</w> b");
}

TEST(TokenizerAddedTokens, StripAndSingleWord) {
  json added = json::array({
      {{"id", 20}, {"content", "<x>"}, {"lstrip", true}, {"rstrip", true}, {"special", true}, {"normalized", false}},
      {{"id", 21}, {"content", "ab"}, {"single_word", true}, {"special", false}, {"normalized", false}},
      {{"id", 22}, {"content", "c"}, {"special", false}, {"normalized", true}},
  });
  auto t = tiny(json::object(), added);
  EXPECT_EQ(t.encode("a  <x> b", false), (std::vector<int32_t>{1, 20, 2}));
  EXPECT_EQ(t.encode("ab ab", false), (std::vector<int32_t>{5, 4, 5}));  // 5 is the model's own "ab"
  EXPECT_EQ(t.token_to_id("ab"), 5);
  EXPECT_EQ(t.encode("aab", false), (std::vector<int32_t>{1, 5}));      // not a single word: BPE
  EXPECT_EQ(t.encode("a <x>", false, /*special_as_text=*/true), (std::vector<int32_t>{1, 4, 8, 10, 9}));
  EXPECT_EQ(t.decode(t.encode("a  <x> b", false), true), "a b");
}

TEST(TokenizerPostProcessor, TemplateAndBert) {
  json tmpl = json::parse(R"({"type":"TemplateProcessing",
      "single":[{"SpecialToken":{"id":"<","type_id":0}},{"Sequence":{"id":"A","type_id":0}},{"SpecialToken":{"id":">","type_id":0}}],
      "pair":[], "special_tokens":{"<":{"id":"<","ids":[8],"tokens":["<"]},">":{"id":">","ids":[9],"tokens":[">"]}}})");
  auto t = tiny(json::object(), json::array(), tmpl);
  EXPECT_EQ(t.encode("ab", true), (std::vector<int32_t>{8, 5, 9}));
  EXPECT_EQ(t.encode("ab", false), (std::vector<int32_t>{5}));
  auto bert = tiny(json::object(), json::array(), json::parse(R"({"type":"BertProcessing","sep":["[SEP]",9],"cls":["[CLS]",8]})"));
  EXPECT_EQ(bert.encode("c", true), (std::vector<int32_t>{8, 3, 9}));
  auto seq = tiny(json::object(), json::array(), json::parse(R"({"type":"Sequence","processors":[{"type":"ByteLevel"},)"
                                                 R"({"type":"RobertaProcessing","sep":["</s>",9],"cls":["<s>",8]}]})"));
  EXPECT_EQ(seq.encode("c", true), (std::vector<int32_t>{8, 3, 9}));
}

TEST(TokenizerThreads, ConcurrentEncodeIsConsistent) {
  auto t = Tokenizer::from_file(test::testdata() / "tokenizers" / "llama3");
  std::string text;
  for (int i = 0; i < 300; ++i) text += "Thread " + std::to_string(i * 7919) + " says hello, world! ";
  auto want = t.encode(text, true);
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&, k] {
      Tokenizer fresh = Tokenizer::from_json(test::read_text(test::testdata() / "tokenizers" / "llama2" / "tokenizer.json"));
      (void)fresh;
      for (int r = 0; r < 5; ++r) ok[k] += t.encode(text, true) == want;
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok, (std::vector<int>{5, 5, 5, 5}));
}

}  // namespace
}  // namespace strata
