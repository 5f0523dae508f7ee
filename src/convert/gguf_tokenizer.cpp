#include "convert/gguf_tokenizer.h"

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
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

}  // namespace

bool add_gguf_tokenizer(GgufWriter& w, const std::filesystem::path& path, int64_t vocab_size) {
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
      if (!a.is_object() || !a.contains("id") || !a.contains("content")) continue;
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

  w.add_string("tokenizer.ggml.model", byte_level ? "gpt2" : "llama");
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  w.add_i32_array("tokenizer.ggml.token_type", types);
  if (!merges.empty()) w.add_string_array("tokenizer.ggml.merges", merges);
  if (!byte_level) {
    // sentencepiece-style vocabularies are ordered by merge priority; a
    // decreasing score per id is what llama.cpp's SPM tokenizer needs.
    std::vector<float> scores(tokens.size());
    for (size_t i = 0; i < scores.size(); ++i) scores[i] = -float(i);
    w.add_f32_array("tokenizer.ggml.scores", scores);
  }
  return true;
}

}  // namespace strata
