// The tokenizer.ggml.* metadata convert_to_gguf writes from tokenizer.json,
// read back from the GGUF file and checked against the tokenizer.json of
// ../shared/testdata/tokenizers parsed here on its own: Llama 2
// (sentencepiece-style BPE with byte fallback -> "llama") and Llama 3
// (byte-level BPE -> "gpt2"). The token table is also checked by decoding
// every reference case's ids through it, as a GGUF reader would.
//
// strata loads its tokenizer only from tokenizer.json (Tokenizer::from_file),
// never from GGUF metadata, so an encode round trip through a tokenizer built
// from the GGUF keys is not possible here.
#include "convert/gguf_tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "convert/gguf_convert.h"
#include "convert/synthetic_model.h"
#include "core/error.h"
#include "arch/gguf_model.h"
#include "formats/gguf.h"
#include "formats/gguf_writer.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace strata {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::read_text;
using test::TempDir;

// GGUF spec (docs/gguf.md, tokenizer.ggml.token_type) / llama.cpp llama_token_type.
constexpr int64_t kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6;

fs::path tokdir(const std::string& name) { return test::testdata() / "tokenizers" / name; }

// What the GGUF keys should say, from tokenizer.json read independently of
// src/convert (and of src/tokenizer).
struct Expected {
  std::vector<std::string> tokens;  // by id: model vocab, then added tokens over it
  std::vector<int64_t> types;
  std::vector<std::string> merges;  // "a b"
  std::string model;                // "llama" | "gpt2"
  int64_t unk_id = -1;
  json pre_tokenizer;
};

bool looks_like_byte_token(const std::string& t) {
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); };
  return t.size() == 6 && t.starts_with("<0x") && hex(t[3]) && hex(t[4]) && t[5] == '>';
}

const Expected& expected(const std::string& name) {
  static std::map<std::string, Expected> cache;
  if (auto it = cache.find(name); it != cache.end()) return it->second;
  const json j = json::parse(read_text(tokdir(name) / "tokenizer.json"));
  const json& m = j["model"];
  Expected e;
  e.pre_tokenizer = j["pre_tokenizer"];
  // These two files say what they are in the decoder: ByteFallback for the
  // sentencepiece style, ByteLevel for GPT-2 style.
  const std::string decoder = j["decoder"].dump();
  e.model = decoder.find("\"ByteLevel\"") != std::string::npos ? "gpt2" : "llama";
  EXPECT_EQ(e.model == "llama", m.value("byte_fallback", false)) << name;
  size_t n = 0;
  for (const auto& [tok, id] : m["vocab"].items()) n = std::max(n, id.get<size_t>() + 1);
  for (const auto& a : j["added_tokens"]) n = std::max(n, a["id"].get<size_t>() + 1);
  e.tokens.resize(n);
  e.types.assign(n, 0);
  for (const auto& [tok, id] : m["vocab"].items()) {
    e.tokens[id.get<size_t>()] = tok;
    e.types[id.get<size_t>()] = e.model == "llama" && looks_like_byte_token(tok) ? kByte : kNormal;
  }
  for (const auto& a : j["added_tokens"]) {
    e.tokens[a["id"].get<size_t>()] = a["content"].get<std::string>();
    e.types[a["id"].get<size_t>()] = a["special"].get<bool>() ? kControl : kUserDefined;
  }
  if (m["unk_token"].is_string()) {
    e.unk_id = m["vocab"][m["unk_token"].get<std::string>()].get<int64_t>();
    e.types[size_t(e.unk_id)] = kUnknown;
  }
  for (const auto& t : e.tokens) EXPECT_FALSE(t.empty()) << name << ": a hole in the vocabulary";
  for (const auto& mg : m["merges"])
    e.merges.push_back(mg.is_string() ? mg.get<std::string>() : mg[0].get<std::string>() + " " + mg[1].get<std::string>());
  return cache[name] = std::move(e);
}

// A 1-layer random Llama model with `vocab` embedding rows, and the
// tokenizer files of `tokenizer` copied in (none when empty).
fs::path make_model(const fs::path& dir, int64_t vocab, int32_t bos, int32_t eos, const std::string& tokenizer) {
  ModelConfig c = find_synth_preset("tiny-llama3").config;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_layers = 1;
  c.num_heads = 2;
  c.num_kv_heads = 1;
  c.head_dim = 16;
  c.tie_word_embeddings = true;
  c.vocab_size = vocab;
  c.bos_token_id = bos;
  c.eos_token_ids = {eos};
  SynthOptions so;
  so.seed = 3;
  write_synthetic_model(dir, c, so);
  if (!tokenizer.empty())
    for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
      if (fs::exists(tokdir(tokenizer) / f)) fs::copy_file(tokdir(tokenizer) / f, dir / f);
  return dir;
}

struct Converted {
  GgufHeader header;
  GgufConvertReport report;
  fs::path path;
};

GgufConvertReport convert(const fs::path& model, const fs::path& out) {
  GgufConvertOptions o;
  o.type = DType::F16;
  o.threads = 2;
  return convert_to_gguf(model, out, o);
}

// One model and one conversion per tokenizer for the whole suite; bos/eos in
// config.json are the ids of the tokenizer's own bos/eos tokens.
const Converted& converted(const std::string& name) {
  static TempDir dir;
  static std::map<std::string, Converted> cache;
  if (auto it = cache.find(name); it != cache.end()) return it->second;
  const Expected& e = expected(name);
  int32_t bos = 1, eos = 2;  // <s>, </s>
  if (name == "llama3") {
    const json cfg = json::parse(read_text(tokdir(name) / "tokenizer_config.json"));
    auto id_of = [&](const std::string& t) {
      return int32_t(std::find(e.tokens.begin(), e.tokens.end(), t) - e.tokens.begin());
    };
    bos = id_of(cfg["bos_token"].get<std::string>());
    eos = id_of(cfg["eos_token"].get<std::string>());
  }
  const fs::path model = make_model(dir / name, int64_t(e.tokens.size()), bos, eos, name);
  Converted c;
  c.report = convert(model, dir / (name + ".gguf"));
  c.header = read_gguf(dir / (name + ".gguf")).header;
  c.path = dir / (name + ".gguf");
  return cache[name] = std::move(c);
}

// The header of a GGUF file that may hold no tensors.
GgufHeader read_header(const fs::path& p) {
  const std::string bytes = read_text(p);
  return parse_gguf_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), bytes.size(), p.string());
}

const GgufValue& key(const GgufHeader& h, const std::string& k) {
  const GgufValue* v = h.find(k);
  if (!v) throw Error("missing key " + k);
  return *v;
}

void expect_array(const GgufValue& v, GgufType elem, size_t n, const std::string& what) {
  EXPECT_EQ(v.type, GgufType::Array) << what;
  EXPECT_EQ(v.elem_type, elem) << what;
  EXPECT_EQ(v.array_len, n) << what;
}

void expect_types_equal(const std::vector<int64_t>& got, const std::vector<int64_t>& want) {
  ASSERT_EQ(got.size(), want.size());
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (got[i] != want[i] && ++bad <= 5) ADD_FAILURE() << "token_type[" << i << "] = " << got[i] << ", want " << want[i];
  EXPECT_EQ(bad, 0u);
}

TEST(GgufTokenizer, Llama2IsSentencepieceStyle) {
  const Expected& e = expected("llama2");
  const Converted& c = converted("llama2");
  const GgufHeader& h = c.header;
  EXPECT_TRUE(c.report.tokenizer);
  ASSERT_EQ(e.tokens.size(), 32000u);

  EXPECT_EQ(key(h, "tokenizer.ggml.model").type, GgufType::String);
  EXPECT_EQ(key(h, "tokenizer.ggml.model").s, "llama");

  const GgufValue& tokens = key(h, "tokenizer.ggml.tokens");
  expect_array(tokens, GgufType::String, 32000, "tokens");
  EXPECT_EQ(tokens.strs, e.tokens);
  EXPECT_EQ(tokens.strs[15043], "▁Hello");  // README: Llama 2's id, not Mistral's
  EXPECT_EQ(tokens.strs[29871], "▁");

  const GgufValue& types = key(h, "tokenizer.ggml.token_type");
  expect_array(types, GgufType::I32, 32000, "token_type");
  expect_types_equal(types.ints, e.types);
  EXPECT_EQ(tokens.strs[0], "<unk>");
  EXPECT_EQ(types.ints[0], kUnknown);
  EXPECT_EQ(tokens.strs[1], "<s>");
  EXPECT_EQ(types.ints[1], kControl);
  EXPECT_EQ(tokens.strs[2], "</s>");
  EXPECT_EQ(types.ints[2], kControl);
  EXPECT_EQ(tokens.strs[3], "<0x00>");
  EXPECT_EQ(types.ints[3], kByte);
  EXPECT_EQ(tokens.strs[258], "<0xFF>");
  EXPECT_EQ(types.ints[258], kByte);
  EXPECT_EQ(types.ints[15043], kNormal);
  EXPECT_EQ(std::count(types.ints.begin(), types.ints.end(), kByte), 256);

  EXPECT_EQ(key(h, "tokenizer.ggml.unknown_token_id").u, 0u);
  EXPECT_EQ(key(h, "tokenizer.ggml.bos_token_id").u, 1u);
  EXPECT_EQ(key(h, "tokenizer.ggml.eos_token_id").u, 2u);

  // Not needed by a "llama" reader, but when written it must be the file's.
  if (const GgufValue* merges = h.find("tokenizer.ggml.merges")) {
    expect_array(*merges, GgufType::String, e.merges.size(), "merges");
    EXPECT_EQ(merges->strs, e.merges);
  }
  // llama.cpp's sentencepiece tokenizer merges the pair whose result has the
  // highest score: a token scores minus the rank of the first merge making it
  // (ids are not merge order: "▁▁" is id 259 but a late merge), and tokens no
  // merge makes score below all of those.
  const GgufValue& scores = key(h, "tokenizer.ggml.scores");
  expect_array(scores, GgufType::F32, 32000, "scores");
  std::map<std::string, size_t> id_of;
  for (size_t i = 0; i < e.tokens.size(); ++i) id_of.emplace(e.tokens[i], i);
  std::vector<bool> made(e.tokens.size(), false);
  for (size_t r = 0; r < e.merges.size(); ++r) {
    std::string m = e.merges[r];
    m.erase(m.find(' '), 1);
    const size_t id = id_of.at(m);
    if (made[id]) continue;
    made[id] = true;
    ASSERT_EQ(scores.floats[id], -float(r)) << e.tokens[id];
  }
  for (size_t i = 0; i < made.size(); ++i) {
    if (!made[i]) {
      ASSERT_LT(scores.floats[i], -float(e.merges.size())) << e.tokens[i];
    }
  }
  if (const GgufValue* pre = h.find("tokenizer.ggml.pre")) {
    EXPECT_EQ(pre->s, "default");
  }
}

TEST(GgufTokenizer, Llama3IsByteLevelBpe) {
  const Expected& e = expected("llama3");
  const Converted& c = converted("llama3");
  const GgufHeader& h = c.header;
  EXPECT_TRUE(c.report.tokenizer);
  ASSERT_EQ(e.tokens.size(), 128256u);

  EXPECT_EQ(key(h, "tokenizer.ggml.model").s, "gpt2");

  const GgufValue& tokens = key(h, "tokenizer.ggml.tokens");
  expect_array(tokens, GgufType::String, 128256, "tokens");
  EXPECT_EQ(tokens.strs, e.tokens);
  EXPECT_EQ(tokens.strs[128000], "<|begin_of_text|>");
  EXPECT_EQ(tokens.strs[128255], "<|reserved_special_token_250|>");

  const GgufValue& types = key(h, "tokenizer.ggml.token_type");
  expect_array(types, GgufType::I32, 128256, "token_type");
  expect_types_equal(types.ints, e.types);
  // No byte tokens in a byte-level vocabulary; the 256 added tokens are special.
  EXPECT_EQ(std::count(types.ints.begin(), types.ints.end(), kNormal), 128000);
  EXPECT_EQ(std::count(types.ints.begin(), types.ints.end(), kControl), 256);

  // A "gpt2" reader cannot tokenize without the merges (llama.cpp refuses the file).
  const GgufValue& merges = key(h, "tokenizer.ggml.merges");
  expect_array(merges, GgufType::String, 280147, "merges");
  EXPECT_EQ(merges.strs, e.merges);
  EXPECT_EQ(merges.strs[0], "Ġ Ġ");

  EXPECT_EQ(h.find("tokenizer.ggml.unknown_token_id"), nullptr);  // unk_token is null
  EXPECT_EQ(key(h, "tokenizer.ggml.bos_token_id").u, 128000u);    // <|begin_of_text|>
  EXPECT_EQ(key(h, "tokenizer.ggml.eos_token_id").u, 128001u);    // <|end_of_text|> (base model)
  if (const GgufValue* scores = h.find("tokenizer.ggml.scores"))
    expect_array(*scores, GgufType::F32, 128256, "scores");
  // llama.cpp's name for this pre-tokenizer (Split with the \p{N}{1,3} regex);
  // without it llama.cpp splits with GPT-2's rules.
  EXPECT_EQ(key(h, "tokenizer.ggml.pre").s, "llama-bpe");
}

// GPT-2's bytes_to_unicode, inverted: the byte each vocabulary character stands for.
std::map<char32_t, uint8_t> unicode_to_byte() {
  std::map<char32_t, uint8_t> m;
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    m[printable ? char32_t(b) : char32_t(256 + n++)] = uint8_t(b);
  }
  return m;
}

std::vector<char32_t> code_points(const std::string& s) {
  std::vector<char32_t> out;
  for (size_t i = 0; i < s.size();) {
    const auto c = uint8_t(s[i]);
    const int len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    char32_t cp = len == 1 ? c : c & (0x7F >> len);
    for (int k = 1; k < len; ++k) cp = (cp << 6) | (uint8_t(s[i + size_t(k)]) & 0x3F);
    out.push_back(cp);
    i += size_t(len);
  }
  return out;
}

// What a GGUF reader's detokenizer does with only the token table: "gpt2"
// maps each character back to its byte; "llama" turns ▁ into a space and
// <0xXX> into the byte, then drops the one leading space (the decoder of
// these tokenizer.json files: Replace, ByteFallback, Fuse, Strip).
std::string decode_with_table(const std::string& model, const std::vector<std::string>& tokens,
                              const std::vector<int32_t>& ids) {
  static const std::map<char32_t, uint8_t> bytes = unicode_to_byte();
  std::string out;
  for (int32_t id : ids) {
    const std::string& t = tokens.at(size_t(id));
    if (model == "gpt2") {
      for (char32_t cp : code_points(t)) out.push_back(char(bytes.at(cp)));
    } else if (looks_like_byte_token(t)) {
      out.push_back(char(std::stoi(t.substr(3, 2), nullptr, 16)));
    } else {
      for (size_t p = 0; p < t.size();) {
        if (t.compare(p, 3, "\xE2\x96\x81") == 0) {
          out += ' ';
          p += 3;
        } else {
          out += t[p++];
        }
      }
    }
  }
  if (model == "llama" && out.starts_with(' ')) out.erase(0, 1);
  return out;
}

// Every reference case's ids, turned back into text through the GGUF token
// table alone, give the reference decoding: ids, strings and byte tokens all
// line up, added tokens included (the corpus holds their strings).
TEST(GgufTokenizer, TokenTableDecodesReferenceCases) {
  for (const std::string name : {"llama2", "llama3"}) {
    const GgufHeader& h = converted(name).header;
    const std::string model = key(h, "tokenizer.ggml.model").s;
    const std::vector<std::string>& tokens = key(h, "tokenizer.ggml.tokens").strs;
    std::istringstream lines(read_text(tokdir(name) / "cases.jsonl"));
    std::string line;
    int n = 0, bad = 0;
    while (std::getline(lines, line)) {
      if (line.empty()) continue;
      const json c = json::parse(line);
      ++n;
      const std::string got = decode_with_table(model, tokens, c["ids"].get<std::vector<int32_t>>());
      if (got != c["decoded"].get<std::string>() && ++bad <= 3)
        ADD_FAILURE() << name << " case " << n << ": decoded " << json(got).dump() << ", want " << c["decoded"].dump();
    }
    EXPECT_EQ(n, 200) << name;
    EXPECT_EQ(bad, 0) << name;
  }
}

// Written by strata, read back by strata: the tokenizer built from the GGUF
// metadata encodes and decodes the 200 reference cases as tokenizer.json does.
TEST(GgufTokenizer, ReadBackTokenizerEncodesReferenceCases) {
  for (const std::string name : {"llama2", "llama3"}) {
    const Tokenizer tok = Tokenizer::from_gguf(converted(name).path);
    std::istringstream lines(read_text(tokdir(name) / "cases.jsonl"));
    std::string line;
    int n = 0, bad = 0;
    while (std::getline(lines, line)) {
      if (line.empty()) continue;
      const json c = json::parse(line);
      ++n;
      const std::string text = c["text"];
      const auto ids = c["ids"].get<std::vector<int32_t>>();
      if ((tok.encode(text, false) != ids || tok.decode(ids) != c["decoded"].get<std::string>()) && ++bad <= 3)
        ADD_FAILURE() << name << " case " << n << ": " << json(text).dump();
    }
    EXPECT_EQ(n, 200) << name;
    EXPECT_EQ(bad, 0) << name;
  }
}

// An instruct model ends with several ids: the first is eos, the others
// become eot/eom so llama.cpp's end-of-generation set holds them all, and
// strata reads them all back as end ids.
TEST(GgufTokenizer, ExtraEndIdsBecomeEotAndEom) {
  TempDir tmp;
  const Expected& e = expected("llama3");
  const fs::path model = make_model(tmp / "m", int64_t(e.tokens.size()), 128000, 128001, "llama3");
  {
    // config.json's eos list as Llama 3 Instruct has it.
    std::string cfg = read_text(model / "config.json");
    json j = json::parse(cfg);
    j["eos_token_id"] = {128001, 128009, 128008};
    std::ofstream(model / "config.json") << j.dump();
    fs::remove(model / "generation_config.json");
  }
  convert(model, tmp / "m.gguf");
  const GgufModel g = read_gguf_model(tmp / "m.gguf");
  EXPECT_EQ(key(g.header, "tokenizer.ggml.eos_token_id").u, 128001u);
  ASSERT_EQ(e.tokens[128009], "<|eot_id|>");
  EXPECT_EQ(key(g.header, "tokenizer.ggml.eot_token_id").u, 128009u);  // by its text, not its place in the list
  if (e.tokens[128008] == "<|eom_id|>") {
    EXPECT_EQ(key(g.header, "tokenizer.ggml.eom_token_id").u, 128008u);
  }
  // (GGUF has keys for eos, eot and eom only: a third end id of no known
  // kind cannot be kept.)
  for (int32_t id : {128001, 128009})
    EXPECT_NE(std::find(g.config.eos_token_ids.begin(), g.config.eos_token_ids.end(), id), g.config.eos_token_ids.end())
        << id;
}

// strata's own tokenizer, loaded from the same tokenizer.json, agrees with
// the GGUF table on every id's string and on the special tokens.
TEST(GgufTokenizer, TokensAgreeWithStrataTokenizer) {
  for (const std::string name : {"llama2", "llama3"}) {
    const GgufHeader& h = converted(name).header;
    const Tokenizer tok = Tokenizer::from_file(tokdir(name));
    const std::vector<std::string>& tokens = key(h, "tokenizer.ggml.tokens").strs;
    const std::vector<int64_t>& types = key(h, "tokenizer.ggml.token_type").ints;
    ASSERT_EQ(tok.vocab_size(), tokens.size()) << name;
    size_t bad = 0;
    for (size_t i = 0; i < tokens.size(); ++i) {
      const auto id = int32_t(i);
      const bool ok = tok.id_to_token(id) == tokens[i] && tok.is_special(id) == (types[i] == kControl || types[i] == kUnknown);
      if (!ok && ++bad <= 5) ADD_FAILURE() << name << " id " << i << ": " << tokens[i] << " type " << types[i];
    }
    EXPECT_EQ(bad, 0u) << name;
    if (tok.bos_id()) {
      EXPECT_EQ(key(h, "tokenizer.ggml.bos_token_id").i, *tok.bos_id()) << name;
    }
    if (tok.eos_id()) {
      EXPECT_EQ(key(h, "tokenizer.ggml.eos_token_id").i, *tok.eos_id()) << name;
    }
  }
}

// Without tokenizer.json nothing describes the vocabulary: the model is
// "no_vocab" (llama.cpp refuses a file without tokenizer.ggml.model), with
// bos/eos from config.json (strata reads them back to stop generation).
TEST(GgufTokenizer, ModelWithoutTokenizerJsonIsNoVocab) {
  TempDir tmp;
  const fs::path model = make_model(tmp / "m", 300, 7, 9, "");
  const GgufConvertReport r = convert(model, tmp / "m.gguf");
  EXPECT_FALSE(r.tokenizer);
  const GgufModel g = read_gguf_model(tmp / "m.gguf");
  for (const auto& [k, v] : g.header.kv) {
    if (!k.starts_with("tokenizer.")) continue;
    EXPECT_TRUE(k == "tokenizer.ggml.bos_token_id" || k == "tokenizer.ggml.eos_token_id" ||
                k == "tokenizer.ggml.model") << k;
  }
  EXPECT_EQ(key(g.header, "tokenizer.ggml.bos_token_id").u, 7u);
  EXPECT_EQ(key(g.header, "tokenizer.ggml.eos_token_id").u, 9u);
  EXPECT_EQ(g.config.bos_token_id, 7);
  EXPECT_EQ(g.config.eos_token_ids, std::vector<int32_t>{9});
  EXPECT_EQ(key(g.header, "tokenizer.ggml.model").s, "no_vocab");
  EXPECT_FALSE(Tokenizer::from_gguf_if_any(tmp / "m.gguf"));
  EXPECT_EQ(g.config.vocab_size, 300);  // from llama.vocab_size
}

// add_gguf_tokenizer on its own, into a GGUF file with no tensors.
struct Written {
  bool added = false;
  GgufHeader header;
};
Written write_tokenizer(const TempDir& tmp, const fs::path& tokenizer_json, int64_t vocab) {
  const fs::path out = tmp / "t.gguf";
  Written r;
  {
    GgufWriter w(out, 32);
    r.added = add_gguf_tokenizer(w, tokenizer_json, vocab);
    w.begin_data();
    w.finish();
  }
  r.header = read_header(out);
  return r;
}

// An embedding padded past the tokenizer: the extra ids are named and unused,
// as llama.cpp's converter writes them.
TEST(GgufTokenizer, PaddedVocabularyGetsUnusedPadTokens) {
  TempDir tmp;
  const Written r = write_tokenizer(tmp, tokdir("llama2") / "tokenizer.json", 32003);
  ASSERT_TRUE(r.added);
  const auto& tokens = key(r.header, "tokenizer.ggml.tokens").strs;
  const auto& types = key(r.header, "tokenizer.ggml.token_type").ints;
  ASSERT_EQ(tokens.size(), 32003u);
  ASSERT_EQ(types.size(), 32003u);
  EXPECT_EQ(key(r.header, "tokenizer.ggml.scores").floats.size(), 32003u);
  for (size_t i = 32000; i < 32003; ++i) {
    EXPECT_EQ(tokens[i], "[PAD" + std::to_string(i) + "]");
    EXPECT_EQ(types[i], kUnused);
  }
  EXPECT_EQ(std::vector<std::string>(tokens.begin(), tokens.begin() + 32000), expected("llama2").tokens);
}

// The "pre_tokenizer" value of a tokenizer.json, without parsing the
// megabytes of vocabulary after it (these files keep "model" last).
json pre_tokenizer_section(const std::string& name) {
  const std::string text = read_text(tokdir(name) / "tokenizer.json");
  const size_t a = text.find("\"pre_tokenizer\":"), b = text.find("\"post_processor\":");
  if (a == std::string::npos || b == std::string::npos || b < a) throw Error(name + ": no pre_tokenizer section");
  std::string v = text.substr(a + 16, b - a - 16);
  while (!v.empty() && (std::isspace(uint8_t(v.back())) || v.back() == ',')) v.pop_back();
  return json::parse(v);
}

// tokenizer.ggml.pre names the byte-level pre-tokenizers of the test data as
// llama.cpp's converter does (its names for Llama 3, Qwen 1.5-3 and
// DeepSeek-V3), and only an exact match gets a name.
TEST(GgufTokenizer, PreTokenizerNamedOnlyWhenKnown) {
  TempDir tmp;
  // A three-token byte-level tokenizer with a given pre-tokenizer.
  auto with_pre = [&](const json& pre) {
    json t = {{"model", {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 1}, {"ab", 2}}}, {"merges", {"a b"}}}},
              {"added_tokens", json::array()},
              {"pre_tokenizer", pre},
              {"decoder", {{"type", "ByteLevel"}}}};
    std::ofstream(tmp / "small.json") << t.dump();
    const Written r = write_tokenizer(tmp, tmp / "small.json", 3);
    EXPECT_TRUE(r.added);
    EXPECT_EQ(key(r.header, "tokenizer.ggml.model").s, "gpt2");
    EXPECT_EQ(key(r.header, "tokenizer.ggml.merges").strs, std::vector<std::string>{"a b"});
    const GgufValue* v = r.header.find("tokenizer.ggml.pre");
    return v ? v->s : std::string("(none)");
  };
  const json llama3 = pre_tokenizer_section("llama3");
  EXPECT_EQ(llama3, expected("llama3").pre_tokenizer);
  EXPECT_EQ(with_pre(llama3), "llama-bpe");
  EXPECT_EQ(with_pre(pre_tokenizer_section("qwen3")), "qwen2");
  EXPECT_EQ(with_pre(pre_tokenizer_section("deepseek_v3")), "deepseek-v3");

  json other_regex = llama3;
  other_regex["pretokenizers"][0]["pattern"]["Regex"] = "\\p{N}{1,4}";
  EXPECT_EQ(with_pre(other_regex), "(none)");
  json gpt2_regex_too = llama3;
  gpt2_regex_too["pretokenizers"][1]["use_regex"] = true;
  EXPECT_EQ(with_pre(gpt2_regex_too), "(none)");
  json removed = llama3;
  removed["pretokenizers"][0]["behavior"] = "Removed";
  EXPECT_EQ(with_pre(removed), "(none)");
  json deepseek_two = pre_tokenizer_section("deepseek_v3");
  deepseek_two["pretokenizers"].erase(1);
  EXPECT_EQ(with_pre(deepseek_two), "(none)");
  EXPECT_EQ(with_pre({{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}), "(none)");
  EXPECT_EQ(with_pre(nullptr), "(none)");
}

// A vocabulary the model cannot hold, or a tokenizer that is not BPE, adds no
// key at all (a partial tokenizer would be worse than none); a broken file
// is an Error naming it.
TEST(GgufTokenizer, UnusableTokenizerAddsNothing) {
  TempDir tmp;
  {
    const Written r = write_tokenizer(tmp, tokdir("llama2") / "tokenizer.json", 31999);
    EXPECT_FALSE(r.added);
    for (const auto& [k, v] : r.header.kv) EXPECT_EQ(k, "general.alignment");
  }
  const fs::path unigram = tmp / "unigram.json";
  std::ofstream(unigram) << R"({"model": {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["a", -1.0]]},
                               "added_tokens": [], "pre_tokenizer": null, "decoder": null})";
  {
    const Written r = write_tokenizer(tmp, unigram, 2);
    EXPECT_FALSE(r.added);
    for (const auto& [k, v] : r.header.kv) EXPECT_EQ(k, "general.alignment");
  }
  const fs::path broken = tmp / "broken.json";
  std::ofstream(broken) << R"({"model": {"type": "BPE", "vocab": {"a": 0,)";
  GgufWriter w(tmp / "x.gguf", 32);
  try {
    add_gguf_tokenizer(w, broken, 10);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("broken.json"), std::string::npos) << e.what();
  }
  EXPECT_THROW(add_gguf_tokenizer(w, tmp / "missing.json", 10), Error);
}

}  // namespace
}  // namespace strata
