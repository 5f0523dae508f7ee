#include "convert/gguf_tokenizer.h"

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "formats/gguf_writer.h"

namespace strata {
namespace {

// llama.cpp's llama_token_type values.
enum TokenType : int32_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

bool mentions(const nlohmann::json& j, const std::string& type) {
  if (j.is_object()) {
    if (j.contains("type") && j["type"] == type) return true;
    for (const auto& [k, v] : j.items())
      if (mentions(v, type)) return true;
  } else if (j.is_array()) {
    for (const auto& v : j)
      if (mentions(v, type)) return true;
  }
  return false;
}

bool is_byte_token(const std::string& t) {
  return t.size() == 6 && t[0] == '<' && t[1] == '0' && t[2] == 'x' && t[5] == '>';
}

// llama.cpp splits the text of a "gpt2" vocabulary with the regexes that
// tokenizer.ggml.pre names; without the key it falls back to GPT-2's own
// rules ("missing pre-tokenizer type ... GENERATION QUALITY WILL BE
// DEGRADED"), so Llama 3 or Qwen text gets other ids than from tokenizer.json.
// llama.cpp's converter finds the name by hashing a sample tokenization; here
// the Split regexes of tokenizer.json are compared with those of the names
// below. Anything else gets no key, which is llama.cpp's default.
struct KnownPreTokenizer {
  const char* name;
  std::vector<std::string> regexes;  // the Split patterns, in order
};

const std::vector<KnownPreTokenizer>& known_pre_tokenizers() {
  static const std::vector<KnownPreTokenizer> known = {
      {"llama-bpe",  // Llama 3
       {R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}},
      {"qwen2",  // Qwen 1.5 to 3: single digits
       {R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}},
      {"deepseek-v3",  // this file's regexes hold real CR and LF characters
       {R"(\p{N}{1,3})", "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
        R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^)" "\r\n" R"(\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[)"
        "\r\n" R"(]*|\s*[)" "\r\n" R"(]+|\s+(?!\S)|\s+)"}},
  };
  return known;
}

// The llama.cpp name of a byte-level pre-tokenizer: a Sequence of isolating
// Splits plus a ByteLevel that adds no regex of its own; nullopt otherwise.
std::optional<std::string> pre_tokenizer_name(const nlohmann::json& pre) {
  try {
    std::vector<const nlohmann::json*> steps;
    if (pre.is_object() && pre.value("type", "") == "Sequence" && pre.contains("pretokenizers") &&
        pre["pretokenizers"].is_array())
      for (const auto& p : pre["pretokenizers"]) steps.push_back(&p);
    else
      steps.push_back(&pre);
    std::vector<std::string> regexes;
    for (const nlohmann::json* p : steps) {
      if (!p->is_object()) return std::nullopt;
      const std::string type = p->value("type", "");
      if (type == "ByteLevel" && !p->value("use_regex", true)) continue;
      if (type != "Split" || p->value("behavior", "") != "Isolated" || p->value("invert", false) ||
          !p->contains("pattern") || !(*p)["pattern"].is_object() || !(*p)["pattern"].contains("Regex"))
        return std::nullopt;
      regexes.push_back((*p)["pattern"]["Regex"].get<std::string>());
    }
    for (const KnownPreTokenizer& k : known_pre_tokenizers())
      if (k.regexes == regexes) return k.name;
  } catch (const nlohmann::json::exception&) {
    // A field of an unexpected type: not one of the known pre-tokenizers.
  }
  return std::nullopt;
}

}  // namespace

bool add_gguf_tokenizer(GgufWriter& w, const std::filesystem::path& path, int64_t vocab_size,
                        const std::vector<int32_t>* eos_ids) {
  std::ifstream f(path);
  if (!f) throw Error(path.string() + ": cannot read");
  std::stringstream ss;
  ss << f.rdbuf();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(ss.str());
  } catch (const std::exception& e) {
    throw Error(path.string() + ": " + e.what());
  }
  if (!j.contains("model") || !j["model"].is_object() || j["model"].value("type", "") != "BPE") return false;
  const auto& model = j["model"];
  if (!model.contains("vocab") || !model["vocab"].is_object()) return false;

  const size_t n_vocab = static_cast<size_t>(vocab_size);
  std::vector<std::string> tokens(n_vocab);
  std::vector<int32_t> types(n_vocab, kUnused);
  std::vector<bool> set(n_vocab, false);
  auto put = [&](const std::string& tok, int64_t id, int32_t type) {
    if (id < 0 || id >= vocab_size) return false;
    tokens[size_t(id)] = tok;
    types[size_t(id)] = type;
    set[size_t(id)] = true;
    return true;
  };
  const bool byte_level = mentions(j.value("pre_tokenizer", nlohmann::json()), "ByteLevel") ||
                          mentions(j.value("decoder", nlohmann::json()), "ByteLevel");
  for (const auto& [tok, id] : model["vocab"].items()) {
    if (!id.is_number_integer()) return false;
    int32_t type = !byte_level && is_byte_token(tok) ? kByte : kNormal;
    if (!put(tok, id.get<int64_t>(), type)) return false;
  }
  if (j.contains("added_tokens") && j["added_tokens"].is_array())
    for (const auto& a : j["added_tokens"]) {
      if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || !a.contains("content") ||
          !a["content"].is_string())
        continue;
      put(a["content"].get<std::string>(), a["id"].get<int64_t>(), a.value("special", false) ? kControl : kUserDefined);
    }
  // Ids the tokenizer does not use (the embedding is often padded).
  for (size_t i = 0; i < tokens.size(); ++i)
    if (!set[i]) tokens[i] = fmt::format("[PAD{}]", i);
  if (const std::string unk = model.value("unk_token", nlohmann::json()).is_string() ? model["unk_token"].get<std::string>()
                                                                                      : "";
      !unk.empty() && model["vocab"].contains(unk)) {
    int64_t id = model["vocab"][unk].get<int64_t>();
    if (id >= 0 && id < vocab_size) {
      types[size_t(id)] = kUnknown;
      w.add_u32("tokenizer.ggml.unknown_token_id", uint32_t(id));
    }
  }

  std::vector<std::string> merges;
  if (model.contains("merges") && model["merges"].is_array())
    for (const auto& m : model["merges"]) {
      if (m.is_string()) merges.push_back(m.get<std::string>());
      else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string())
        merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
    }

  // End of turn / end of message: the model's other end ids ("<|eom_id|>"
  // is eom; eot is the end-of-turn token by its text, else the first other).
  if (eos_ids && eos_ids->size() > 1) {
    int64_t eot = -1, eom = -1, other = -1;
    for (size_t i = 1; i < eos_ids->size(); ++i) {
      const int32_t id = (*eos_ids)[i];
      if (id < 0 || id >= vocab_size || id == (*eos_ids)[0]) continue;
      const std::string& t = tokens[size_t(id)];
      if (t == "<|eom_id|>") eom = eom < 0 ? id : eom;
      else if (t == "<|eot_id|>" || t == "<|im_end|>" || t == "<|end|>" || t == "<end_of_turn>" || t == "<|endoftext|>")
        eot = eot < 0 ? id : eot;
      else if (other < 0)
        other = id;
    }
    if (eot < 0) eot = other;
    if (eot >= 0) w.add_u32("tokenizer.ggml.eot_token_id", uint32_t(eot));
    if (eom >= 0) w.add_u32("tokenizer.ggml.eom_token_id", uint32_t(eom));
  }
  w.add_string("tokenizer.ggml.model", byte_level ? "gpt2" : "llama");
  if (byte_level)
    if (std::optional<std::string> pre = pre_tokenizer_name(j.value("pre_tokenizer", nlohmann::json())))
      w.add_string("tokenizer.ggml.pre", *pre);
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  w.add_i32_array("tokenizer.ggml.token_type", types);
  if (!merges.empty()) w.add_string_array("tokenizer.ggml.merges", merges);
  if (!byte_level) {
    // llama.cpp's SPM tokenizer merges the pair whose result has the highest
    // score, so a token's score is minus the rank of the first merge that
    // makes it. Ids are not that order: Llama 2's "▁▁" (259) is made by a
    // late merge. Tokens no merge makes (characters, bytes, specials) score
    // below every merge result.
    std::unordered_map<std::string, int32_t> id_of;
    id_of.reserve(tokens.size());
    for (size_t i = 0; i < tokens.size(); ++i) id_of.emplace(tokens[i], int32_t(i));
    std::vector<float> scores(tokens.size(), -float(merges.size() + 1));
    std::vector<bool> made(tokens.size(), false);
    for (size_t r = 0; r < merges.size(); ++r) {
      std::string merged = merges[r];
      const size_t sp = merged.find(' ');
      if (sp == std::string::npos) continue;
      merged.erase(sp, 1);
      auto it = id_of.find(merged);
      if (it == id_of.end() || made[size_t(it->second)]) continue;
      made[size_t(it->second)] = true;
      scores[size_t(it->second)] = -float(r);
    }
    w.add_f32_array("tokenizer.ggml.scores", scores);
  }
  return true;
}

}  // namespace strata
