#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <memory>

#include "commands.h"
#include "common.h"
#include "strata/error.h"

namespace strata::cli {
namespace {

Tokenizer require_tokenizer(const std::string& model) {
  std::optional<Tokenizer> tok = load_model_tokenizer(model);
  if (!tok) throw Error(model + ": no tokenizer.json (give a model directory that has one, or the file itself)");
  return std::move(*tok);
}

std::string ids_text(const std::vector<int32_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? " " : "") + std::to_string(ids[i]);
  return s;
}

// One {"text": ...} object per line in, one {"ids": [...], "count": n} out.
int tokenize_jsonl(const Tokenizer& tok, const std::string& path, bool add_special) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open");
  std::string line;
  uint64_t total = 0;
  for (size_t n = 1; std::getline(in, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw Error(fmt::format("{}:{}: malformed JSON: {}", path, n, e.what()));
    }
    if (!j.is_object() || !j.contains("text") || !j["text"].is_string())
      throw Error(fmt::format("{}:{}: expected an object with a string 'text'", path, n));
    std::vector<int32_t> ids = tok.encode(j["text"].get<std::string>(), add_special);
    total += ids.size();
    nlohmann::json out = {{"ids", ids}, {"count", ids.size()}};
    if (j.contains("id")) out["id"] = j["id"];
    std::printf("%s\n", out.dump().c_str());
  }
  std::fprintf(stderr, "%llu tokens\n", (unsigned long long)total);
  return 0;
}

}  // namespace

Runner register_tokenize(CLI::App& app) {
  struct Opts {
    std::string model, text, jsonl, format = "text";
    bool no_special = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Text to token ids with the model's tokenizer.json");
  cmd->add_option("MODEL", o->model, "Model directory or tokenizer.json")->required();
  CLI::Option* text = cmd->add_option("TEXT", o->text, "Text to tokenize");
  CLI::Option* jsonl = cmd->add_option("--jsonl", o->jsonl, "JSONL file of {\"text\": ...}; prints {\"ids\", \"count\"} per line");
  text->excludes(jsonl);
  cmd->add_flag("--no-special", o->no_special, "Do not add special tokens (BOS/EOS from the post-processor)");
  cmd->add_option("--format", o->format, "Output format")->check(CLI::IsMember({"text", "json"}));
  return [o]() {
    Tokenizer tok = require_tokenizer(o->model);
    if (!o->jsonl.empty()) return tokenize_jsonl(tok, o->jsonl, !o->no_special);
    std::vector<int32_t> ids = tok.encode(o->text, !o->no_special);
    if (o->format == "json") std::printf("%s\n", nlohmann::json(ids).dump().c_str());
    else std::printf("%s\n", ids_text(ids).c_str());
    return 0;
  };
}

Runner register_detokenize(CLI::App& app) {
  struct Opts {
    std::string model, ids;
    bool skip_special = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("detokenize", "Token ids to text with the model's tokenizer.json");
  cmd->add_option("MODEL", o->model, "Model directory or tokenizer.json")->required();
  cmd->add_option("IDS", o->ids, "Token ids, e.g. 1,15043,3186")->required();
  cmd->add_flag("--skip-special", o->skip_special, "Leave special tokens out of the text");
  return [o]() {
    Tokenizer tok = require_tokenizer(o->model);
    std::vector<int32_t> ids = parse_ids(o->ids, "IDS");
    for (int32_t id : ids)
      if (size_t(id) >= tok.vocab_size())
        throw UsageError(fmt::format("token id {} is outside the vocabulary (0..{})", id, tok.vocab_size() - 1));
    std::printf("%s\n", tok.decode(ids, o->skip_special).c_str());
    return 0;
  };
}

}  // namespace strata::cli
