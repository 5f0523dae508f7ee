#include "tokenizer/gguf_vocab.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "formats/gguf.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace strata::tok {
namespace {

using nlohmann::json;

// llama.cpp's llama_token_type.
enum TokenType : int64_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

const std::string kMetaspace = "\xE2\x96\x81";  // U+2581

// The regexes of each pre-tokenizer, as the Hugging Face tokenizer.json of
// the model family has them (llama.cpp's llm_tokenizer_bpe lists the same
// splits; where it rewrites a pattern for its own regex engine, the original
// is used here since strata's regexes follow Hugging Face's).
const std::string kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const std::string kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const std::string kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct PreTokenizerDef {
  std::vector<const char*> names;
  std::vector<std::string> regexes;
  bool ignore_merges = false;  // llama.cpp's tokenizer_ignore_merges
  bool add_bos = false;        // llama.cpp's default add_bos for this type
};

const std::vector<PreTokenizerDef>& pre_tokenizers() {
  static const std::vector<PreTokenizerDef> defs = {
      {{"default"},
       {R"([\p{P}\$\+<=>\^~\|]+)", R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))",
        R"(\p{N}+)", R"([0-9][0-9][0-9])"}},
      {{"llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral", "chatglm-bpe"}, {kLlama3}, true, true},
      {{"dbrx", "smaug-bpe"}, {kLlama3}},
      {{"qwen2", "stablelm2", "hunyuan"}, {kQwen2}},
      {{"deepseek-llm"},
       {"[\r\n]",
        "\\s?[A-Za-z\u00b5\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u01ba\u01bc-\u01bf\u01c4-\u0293\u0295-\u02af\u0370-"
        "\u0373\u0376\u0377\u037b-\u037d\u037f\u0386\u0388-\u038a\u038c\u038e-\u03a1\u03a3-\u03f5\u03f7-\u0481"
        "\u048a-\u052f\u0531-\u0556\u10a0-\u10c5\u13a0-\u13f5\u13f8-\u13fd\u1c90-\u1cba\u1cbd-\u1cbf\u1d00-\u1d2b"
        "\u1d6b-\u1d77\u1d79-\u1d9a\u1e00-\u1f15\u1f18-\u1f1d\u1f20-\u1f45\u1f48-\u1f4d\u1f50-\u1f57\u1f59\u1f5b"
        "\u1f5d\u1f5f-\u1f7d\u1f80-\u1fb4\u1fb6-\u1fbc\u1fbe\u1fc2-\u1fc4\u1fc6-\u1fcc\u1fd0-\u1fd3\u1fd6-\u1fdb"
        "\u1fe0-\u1fec\u1ff2-\u1ff4\u1ff6-\u1ffc\u2102\u2107\u210a-\u2113\u2115\u2119-\u211d\u2124\u2126\u2128"
        "\u212a-\u212d\u212f-\u2134\u2139\u213c-\u213f\u2145-\u2149\u214e\u2183\u2184\u2c00-\u2c7b\u2c7e-\u2ce4"
        "\u2ceb-\u2cee\u2cf2\u2cf3\ua640-\ua66d\ua680-\ua69b\ua722-\ua76f\ua771-\ua787\ua78b-\ua78e\uab70-\uabbf"
        "\ufb00-\ufb06\ufb13-\ufb17\uff21-\uff3a\uff41-\uff5a\U00010400-\U0001044f\U000104b0-\U000104d3"
        "\U000104d8-\U000104fb\U00010c80-\U00010cb2\U00010cc0-\U00010cf2\U000118a0-\U000118df\U0001e900-"
        "\U0001e943]+",
        "\\s?[!-/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002]+", "\\s+$",
        "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+", "\\p{N}+"}},
      {{"deepseek-coder"},
       {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+", "\\p{N}"}},
      {{"deepseek-v3"},
       {R"(\p{N}{1,3})", "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
        R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^)" "\r\n" R"(\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[)"
        "\r\n" R"(]*|\s*[)" "\r\n" R"(]+|\s+(?!\S)|\s+)"}},
      {{"falcon"}, {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, R"([0-9][0-9][0-9])"}},
      {{"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"}, {R"(\p{N})", kGpt2}},
      {{"gpt-2", "phi-2", "jina-es", "jina-de", "jina-v1-en", "jina-v2-es", "jina-v2-de", "jina-v2-code", "mpt",
        "olmo", "jais", "roberta-bpe", "gigachat"},
       {kGpt2}},
  };
  return defs;
}

const PreTokenizerDef& find_pre_tokenizer(const std::string& name) {
  for (const auto& d : pre_tokenizers())
    for (const char* n : d.names)
      if (name == n) return d;
  std::string known;
  for (const auto& d : pre_tokenizers())
    for (const char* n : d.names) known += (known.empty() ? "" : ", ") + std::string(n);
  throw Error(fmt::format("tokenizer.ggml.pre '{}' is not supported (supported: {})", name, known));
}

// Checked accessors: a key of the wrong type is an error, never a default.
const GgufValue* find_typed(const GgufHeader& h, const std::string& key, GgufType want, const char* what) {
  const GgufValue* v = h.find(key);
  if (!v) return nullptr;
  const bool ok = want == GgufType::Array ? v->type == GgufType::Array
                  : want == GgufType::U32 ? v->is_integer()
                                          : v->type == want;
  if (!ok) throw Error(fmt::format("metadata '{}' is not {}", key, what));
  return v;
}

const std::vector<std::string>& string_array(const GgufHeader& h, const std::string& key, bool required) {
  static const std::vector<std::string> empty;
  const GgufValue* v = find_typed(h, key, GgufType::Array, "an array of strings");
  if (!v) {
    if (required) throw Error(fmt::format("metadata '{}' is missing", key));
    return empty;
  }
  if (v->elem_type != GgufType::String) throw Error(fmt::format("metadata '{}' is not an array of strings", key));
  return v->strs;
}

std::optional<bool> bool_key(const GgufHeader& h, const std::string& key) {
  const GgufValue* v = find_typed(h, key, GgufType::Bool, "a bool");
  if (!v) return std::nullopt;
  return v->u != 0;
}

// A token id key; llama.cpp writes "none" as 0xFFFFFFFF (-1).
std::optional<int32_t> id_key(const GgufHeader& h, const std::string& key, size_t n_vocab) {
  const GgufValue* v = find_typed(h, key, GgufType::U32, "an integer");
  if (!v) return std::nullopt;
  if (v->u == 0xFFFFFFFFu || v->i == -1) return std::nullopt;
  const bool is_unsigned = v->type == GgufType::U8 || v->type == GgufType::U16 || v->type == GgufType::U32 ||
                           v->type == GgufType::U64;
  if ((is_unsigned && v->u >= n_vocab) || (!is_unsigned && (v->i < 0 || uint64_t(v->i) >= n_vocab)))
    throw Error(fmt::format("metadata '{}' = {} is not a token id (vocabulary of {})", key,
                            is_unsigned ? std::to_string(v->u) : std::to_string(v->i), n_vocab));
  return int32_t(v->i);
}

// "a b" -> {"a", "b"} at the first space (byte-level tokens hold no space).
void add_merges(const std::vector<std::string>& merges, BpeTables& t) {
  t.merges.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const std::string& m = merges[i];
    size_t sp = m.find(' ', 1);
    if (sp == std::string::npos || sp + 1 >= m.size())
      throw Error(fmt::format("tokenizer.ggml.merges entry {} '{}' is not two tokens", i, m));
    t.merges.emplace_back(m.substr(0, sp), m.substr(sp + 1));
  }
}

// SentencePiece scores as BPE merges: for each token that text can form
// (normal and user-defined tokens), every split into two vocabulary tokens,
// ranked by the token's score, highest first, equal scores sharing a rank.
void spm_merges(const std::vector<std::string>& tokens, const std::vector<double>& scores,
                const std::vector<int64_t>& types, BpeTables& t) {
  std::unordered_map<std::string_view, int32_t> index;
  index.reserve(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) index.emplace(tokens[i], int32_t(i));  // first id of a string wins
  std::vector<int32_t> order;
  for (size_t i = 0; i < tokens.size(); ++i)
    if ((types.empty() || types[i] == kNormal || types[i] == kUserDefined) && unicode::is_valid_utf8(tokens[i]))
      order.push_back(int32_t(i));
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return scores[a] > scores[b]; });
  int32_t rank = -1;
  double last = 0;
  for (size_t k = 0; k < order.size(); ++k) {
    const int32_t id = order[k];
    if (k == 0 || scores[id] != last) ++rank;
    last = scores[id];
    const std::string& s = tokens[id];
    if (index.at(s) != id) continue;  // a duplicate string: its first id is the token
    for (size_t cut = unicode::char_len(static_cast<unsigned char>(s[0])); cut < s.size();
         cut += unicode::char_len(static_cast<unsigned char>(s[cut]))) {
      std::string_view a(s.data(), cut), b(s.data() + cut, s.size() - cut);
      if (index.count(a) && index.count(b)) {
        t.merges.emplace_back(std::string(a), std::string(b));
        t.ranks.push_back(rank);
      }
    }
  }
}

json template_processing(const std::optional<std::string>& bos, const std::optional<std::string>& eos,
                         const std::vector<std::pair<std::string, int32_t>>& ids) {
  json single = json::array();
  json special = json::object();
  auto add = [&](const std::string& tok, int32_t id) {
    single.push_back({{"SpecialToken", {{"id", tok}, {"type_id", 0}}}});
    special[tok] = {{"id", tok}, {"ids", {id}}, {"tokens", {tok}}};
  };
  if (bos) add(*bos, ids[0].second);
  single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
  if (eos) add(*eos, ids[1].second);
  return {{"type", "TemplateProcessing"}, {"single", single}, {"pair", json::array()}, {"special_tokens", special}};
}

}  // namespace

bool gguf_has_vocab(const GgufHeader& h) {
  const GgufValue* m = h.find("tokenizer.ggml.model");
  return m && m->type == GgufType::String && m->s != "no_vocab" && m->s != "none";
}

TokenizerJson gguf_tokenizer_json(const GgufHeader& h, TokenizerConfig* config) {
  const GgufValue* model_v = find_typed(h, "tokenizer.ggml.model", GgufType::String, "a string");
  if (!model_v) throw Error("no tokenizer (metadata 'tokenizer.ggml.model' is missing)");
  const std::string model = model_v->s;
  if (model == "no_vocab" || model == "none") throw Error("the file has no vocabulary (tokenizer.ggml.model = \"no_vocab\")");
  const bool spm = model == "llama";
  if (!spm && model != "gpt2")
    throw Error(fmt::format("tokenizer.ggml.model '{}' is not supported (llama, gpt2)", model));

  const std::vector<std::string>& tokens = string_array(h, "tokenizer.ggml.tokens", true);
  const size_t n = tokens.size();
  if (n == 0 || n > size_t(INT32_MAX)) throw Error(fmt::format("tokenizer.ggml.tokens has {} tokens", n));
  std::vector<int64_t> types;
  if (const GgufValue* v = find_typed(h, "tokenizer.ggml.token_type", GgufType::Array, "an array of integers")) {
    if (v->elem_type == GgufType::String || v->elem_type == GgufType::F32 || v->elem_type == GgufType::F64 ||
        v->elem_type == GgufType::Bool)
      throw Error("metadata 'tokenizer.ggml.token_type' is not an array of integers");
    if (v->ints.size() != n)
      throw Error(fmt::format("tokenizer.ggml.token_type has {} entries for {} tokens", v->ints.size(), n));
    types = v->ints;
  }
  std::vector<double> scores;
  if (const GgufValue* v = find_typed(h, "tokenizer.ggml.scores", GgufType::Array, "an array of floats")) {
    if (v->elem_type != GgufType::F32 && v->elem_type != GgufType::F64)
      throw Error("metadata 'tokenizer.ggml.scores' is not an array of floats");
    if (v->floats.size() != n)
      throw Error(fmt::format("tokenizer.ggml.scores has {} entries for {} tokens", v->floats.size(), n));
    scores = v->floats;
  }
  if (spm && scores.empty()) throw Error("tokenizer.ggml.model 'llama' needs tokenizer.ggml.scores");

  TokenizerJson out;
  BpeTables& t = out.bpe;
  t.has_vocab = t.has_merges = true;
  t.vocab.reserve(n);
  {
    std::unordered_map<std::string_view, bool> seen;
    seen.reserve(n);
    for (size_t i = 0; i < n; ++i)
      if (seen.emplace(tokens[i], true).second) t.vocab.emplace_back(tokens[i], int64_t(i));
  }

  // Special ids and the pre-tokenizer's defaults.
  const auto bos = id_key(h, "tokenizer.ggml.bos_token_id", n);
  const auto eos = id_key(h, "tokenizer.ggml.eos_token_id", n);
  const auto unk = id_key(h, "tokenizer.ggml.unknown_token_id", n);
  const auto pad = id_key(h, "tokenizer.ggml.padding_token_id", n);
  bool add_bos = spm, add_eos = false;
  const PreTokenizerDef* pre = nullptr;
  if (!spm) {
    const GgufValue* p = find_typed(h, "tokenizer.ggml.pre", GgufType::String, "a string");
    // Without the key llama.cpp uses its default regexes (and warns).
    pre = &find_pre_tokenizer(p ? p->s : "default");
    add_bos = pre->add_bos;
  }
  // A default that the file cannot honour is dropped; an explicit key is not.
  add_bos = bool_key(h, "tokenizer.ggml.add_bos_token").value_or(add_bos && bos);
  add_eos = bool_key(h, "tokenizer.ggml.add_eos_token").value_or(add_eos && eos);
  if (add_bos && !bos) throw Error("tokenizer.ggml.add_bos_token is true but there is no bos_token_id");
  if (add_eos && !eos) throw Error("tokenizer.ggml.add_eos_token is true but there is no eos_token_id");

  json& j = out.doc;
  j = json::object();
  json bpe = {{"type", "BPE"}, {"vocab", json::object()}, {"merges", json::array()}, {"dropout", nullptr}};
  if (spm) {
    spm_merges(tokens, scores, types, t);
    bool has_bytes = false;
    for (size_t i = 0; i < types.size() && !has_bytes; ++i) has_bytes = types[i] == kByte;
    bpe["byte_fallback"] = has_bytes;
    bpe["fuse_unk"] = true;
    if (unk) bpe["unk_token"] = tokens[size_t(*unk)];
    const bool space_prefix = bool_key(h, "tokenizer.ggml.add_space_prefix").value_or(true);
    json norm = json::array();
    if (space_prefix) norm.push_back({{"type", "Prepend"}, {"prepend", kMetaspace}});
    norm.push_back({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kMetaspace}});
    j["normalizer"] = {{"type", "Sequence"}, {"normalizers", norm}};
    j["pre_tokenizer"] = nullptr;
    json dec = json::array({{{"type", "Replace"}, {"pattern", {{"String", kMetaspace}}}, {"content", " "}},
                            {{"type", "ByteFallback"}},
                            {{"type", "Fuse"}}});
    if (space_prefix) dec.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
    j["decoder"] = {{"type", "Sequence"}, {"decoders", dec}};
  } else {
    add_merges(string_array(h, "tokenizer.ggml.merges", true), t);
    bpe["ignore_merges"] = pre->ignore_merges;
    json steps = json::array();
    for (const std::string& r : pre->regexes)
      steps.push_back({{"type", "Split"}, {"pattern", {{"Regex", r}}}, {"behavior", "Isolated"}, {"invert", false}});
    steps.push_back({{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}});
    j["normalizer"] = nullptr;
    j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", steps}};
    j["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}};
  }
  j["model"] = std::move(bpe);

  // Control, unknown and user-defined tokens are found in the text first.
  json added = json::array();
  for (size_t i = 0; i < types.size(); ++i) {
    const int64_t ty = types[i];
    if (ty != kControl && ty != kUnknown && ty != kUserDefined) continue;
    if (tokens[i].empty()) continue;
    added.push_back({{"id", int64_t(i)},
                     {"content", tokens[i]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", ty != kUserDefined}});
  }
  j["added_tokens"] = std::move(added);
  std::optional<std::string> bos_s, eos_s;
  if (add_bos) bos_s = tokens[size_t(*bos)];
  if (add_eos) eos_s = tokens[size_t(*eos)];
  j["post_processor"] = add_bos || add_eos ? template_processing(bos_s, eos_s, {{"bos", bos.value_or(0)}, {"eos", eos.value_or(0)}})
                                           : json(nullptr);

  TokenizerConfig c;
  if (bos) c.bos_token = tokens[size_t(*bos)];
  if (eos) c.eos_token = tokens[size_t(*eos)];
  if (pad) c.pad_token = tokens[size_t(*pad)];
  if (unk) c.unk_token = tokens[size_t(*unk)];
  c.add_bos_token = add_bos;
  c.add_eos_token = add_eos;
  if (const GgufValue* ct = find_typed(h, "tokenizer.chat_template", GgufType::String, "a string"))
    c.chat_template = ct->s;
  if (config) *config = std::move(c);
  return out;
}

}  // namespace strata::tok

namespace strata {

Tokenizer Tokenizer::from_gguf(const GgufHeader& h, std::string_view name) {
  TokenizerConfig config;
  tok::TokenizerJson doc;
  try {
    doc = tok::gguf_tokenizer_json(h, &config);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", name, e.what()));
  }
  return from_document(std::move(doc), name, std::move(config));
}

Tokenizer Tokenizer::from_gguf(const std::filesystem::path& gguf_file) {
  return from_gguf(read_gguf(gguf_file).header, gguf_file.string());
}

std::optional<Tokenizer> Tokenizer::from_gguf_if_any(const std::filesystem::path& gguf_file) {
  GgufFile g = read_gguf(gguf_file);
  if (!tok::gguf_has_vocab(g.header)) return std::nullopt;
  return from_gguf(g.header, gguf_file.string());
}

}  // namespace strata
