#include "tokenizer/tokenizer.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/decoder.h"
#include "tokenizer/json_util.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer_json.h"
#include "tokenizer/unicode.h"

namespace strata {

using nlohmann::json;

struct Tokenizer::Impl {
  std::unique_ptr<tok::Normalizer> normalizer;
  std::unique_ptr<tok::PreTokenizer> pre_tokenizer;
  std::unique_ptr<tok::BpeModel> model;
  std::unique_ptr<tok::PostProcessor> post_processor;
  std::unique_ptr<tok::Decoder> decoder;
  std::unique_ptr<tok::AddedVocabulary> added;
  std::vector<bool> special;  // by id
  TokenizerConfig config;

  // Pre-tokenizes and tokenizes one span of normalized text.
  void tokenize_text(std::string&& text, size_t orig_start, std::vector<int32_t>& ids) const {
    if (text.empty()) return;
    if (!pre_tokenizer) {
      model->tokenize(text, ids);
      return;
    }
    pre_tokenizer->split({std::move(text), orig_start}, [&](tok::Piece&& p) { model->tokenize(p.text, ids); });
  }

  // Tokenizes `text` (valid UTF-8) whose added tokens have already been split
  // out: the segments between them, with special tokens matched as the caller
  // decided, are normalized and tokenized.
  void encode_segments(std::string_view text, const std::vector<tok::AddedVocabulary::Segment>& segs,
                       bool special_as_text, std::vector<int32_t>& ids) const {
    const Impl& m = *this;
    for (const auto& seg : segs) {
      if (seg.id >= 0) {
        ids.push_back(seg.id);
        continue;
      }
      if (seg.start == seg.end) continue;
      // The normalizer runs on each span between added tokens separately (so
      // Llama 2's Prepend("▁") adds a "▁" after every special token).
      std::string normalized(text.substr(seg.start, seg.end - seg.start));
      if (m.normalizer) m.normalizer->normalize(normalized);
      if (!m.added->has_normalized_tokens()) {
        m.tokenize_text(std::move(normalized), seg.start, ids);
        continue;
      }
      for (const auto& sub : m.added->split(normalized, true, special_as_text)) {
        if (sub.id >= 0) {
          ids.push_back(sub.id);
        } else if (sub.start != sub.end) {
          m.tokenize_text(normalized.substr(sub.start, sub.end - sub.start), seg.start + sub.start, ids);
        }
      }
    }
  }
};

namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open file", path.string()));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error(fmt::format("{}: read error", path.string()));
  return std::move(ss).str();
}

// bos_token and friends are either a string or an AddedToken object.
std::optional<std::string> config_token(const json& cfg, const char* key) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return (*it)["content"].get<std::string>();
  throw Error(fmt::format("'{}' must be a string or an object with 'content'", key));
}

TokenizerConfig parse_config(const json& cfg) {
  if (!cfg.is_object()) throw Error("not a JSON object");
  TokenizerConfig c;
  c.bos_token = config_token(cfg, "bos_token");
  c.eos_token = config_token(cfg, "eos_token");
  c.pad_token = config_token(cfg, "pad_token");
  c.unk_token = config_token(cfg, "unk_token");
  c.add_bos_token = tok::optional_value<bool>(cfg, "add_bos_token", "config");
  c.add_eos_token = tok::optional_value<bool>(cfg, "add_eos_token", "config");
  auto ct = cfg.find("chat_template");
  if (ct != cfg.end()) {
    if (ct->is_string()) {
      c.chat_template = ct->get<std::string>();
    } else if (ct->is_array()) {
      // A list of named templates; "default" is the one to use.
      for (const auto& t : *ct) {
        if (t.is_object() && t.value("name", "") == "default" && t.contains("template") && t["template"].is_string())
          c.chat_template = t["template"].get<std::string>();
      }
    }
  }
  return c;
}

std::vector<tok::AddedToken> parse_added_tokens(const json& j, const tok::BpeModel& model) {
  std::vector<tok::AddedToken> out;
  if (j.is_null()) return out;
  if (!j.is_array()) throw Error("'added_tokens' must be an array");
  for (const auto& item : j) {
    const std::string where = "added_tokens entry";
    tok::AddedToken t;
    t.content = tok::require_string(item, "content", where);
    auto idv = tok::require(item, "id", where);
    if (!idv.is_number_integer() || idv.get<int64_t>() < 0 || idv.get<int64_t>() > INT32_MAX)
      throw Error(fmt::format("added token '{}' has no valid id", t.content));
    // As in the reference, a token already in the model keeps the model's id.
    auto model_id = model.token_to_id(t.content);
    t.id = model_id ? *model_id : static_cast<int32_t>(idv.get<int64_t>());
    t.single_word = tok::optional_field(item, "single_word", false, where);
    t.lstrip = tok::optional_field(item, "lstrip", false, where);
    t.rstrip = tok::optional_field(item, "rstrip", false, where);
    t.special = tok::optional_field(item, "special", false, where);
    t.normalized = tok::optional_field(item, "normalized", !t.special, where);
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_file(const std::filesystem::path& path) {
  std::filesystem::path file = path;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) file = path / "tokenizer.json";
  std::string text = read_file(file);
  std::string config;
  auto config_path = file.parent_path() / "tokenizer_config.json";
  if (std::filesystem::exists(config_path, ec)) {
    config = read_file(config_path);
    if (config.empty()) throw Error(fmt::format("{}: empty file", config_path.string()));
  }
  return from_json(text, file.string(), config);
}

Tokenizer Tokenizer::from_json(std::string_view tokenizer_json, std::string_view name, std::string_view config_json) {
  auto impl = std::make_unique<Impl>();
  try {
    tok::TokenizerJson file = tok::read_tokenizer_json(tokenizer_json);
    const json& j = file.doc;
    if (!j.is_object()) throw Error("not a JSON object");
    impl->normalizer = tok::Normalizer::from_json(j.value("normalizer", json()));
    impl->pre_tokenizer = tok::PreTokenizer::from_json(j.value("pre_tokenizer", json()));
    impl->model = tok::BpeModel::from_json(tok::require(j, "model", "tokenizer"), std::move(file.bpe));
    impl->post_processor = tok::PostProcessor::from_json(j.value("post_processor", json()));
    impl->decoder = tok::Decoder::from_json(j.value("decoder", json()));
    auto added = parse_added_tokens(j.value("added_tokens", json()), *impl->model);
    impl->added = std::make_unique<tok::AddedVocabulary>(std::move(added), impl->normalizer.get());
  } catch (const json::exception& e) {
    throw Error(fmt::format("{}: invalid JSON: {}", name, e.what()));
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", name, e.what()));
  }
  if (!config_json.empty()) {
    std::string config_name = std::filesystem::path(name).parent_path().append("tokenizer_config.json").string();
    try {
      impl->config = parse_config(json::parse(config_json.begin(), config_json.end()));
    } catch (const json::exception& e) {
      throw Error(fmt::format("{}: invalid JSON: {}", config_name, e.what()));
    } catch (const Error& e) {
      throw Error(fmt::format("{}: {}", config_name, e.what()));
    }
  }
  size_t n = static_cast<size_t>(impl->model->id_end());
  for (const auto& t : impl->added->tokens()) n = std::max(n, static_cast<size_t>(t.id) + 1);
  impl->special.assign(n, false);
  for (const auto& t : impl->added->tokens())
    if (t.special) impl->special[t.id] = true;
  return Tokenizer(std::move(impl));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens, bool special_as_text) const {
  const Impl& m = *impl_;
  std::string clean;
  if (!unicode::is_valid_utf8(text)) {
    clean = unicode::sanitize_utf8(text);
    text = clean;
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  m.encode_segments(text, m.added->split(text, false, special_as_text), special_as_text, ids);
  if (m.post_processor) m.post_processor->process(ids, add_special_tokens);
  return ids;
}

std::vector<int32_t> Tokenizer::encode_with_plain_spans(std::string_view text,
                                                        std::span<const std::pair<size_t, size_t>> plain_spans,
                                                        bool add_special_tokens) const {
  const Impl& m = *impl_;
  if (!unicode::is_valid_utf8(text)) {
    // Sanitizing changes byte offsets; keeping every special token as text
    // is the safe answer for such input.
    return encode(text, add_special_tokens, /*special_as_text=*/true);
  }
  // Special tokens are matched in the whole text, then those overlapping a
  // plain span are demoted back to text and merged with their neighbours,
  // so tokenization equals encode() wherever no demotion happens.
  std::vector<tok::AddedVocabulary::Segment> kept;
  size_t run_start = 0;
  bool in_run = false;
  size_t span_i = 0;
  for (const auto& seg : m.added->split(text, false, /*skip_special=*/false)) {
    bool demote = false;
    if (seg.id >= 0 && is_special(seg.id)) {
      while (span_i < plain_spans.size() && plain_spans[span_i].second <= seg.start) ++span_i;
      for (size_t k = span_i; k < plain_spans.size() && plain_spans[k].first < seg.end; ++k)
        if (plain_spans[k].second > seg.start && plain_spans[k].first < plain_spans[k].second) demote = true;
    }
    if (seg.id >= 0 && !demote) {
      if (in_run) {
        for (const auto& sub : m.added->split(text.substr(run_start, seg.start - run_start), false, true))
          kept.push_back({sub.start + run_start, sub.end + run_start, sub.id});
        in_run = false;
      }
      kept.push_back(seg);
    } else if (!in_run) {
      run_start = seg.start;
      in_run = true;
    }
  }
  if (in_run)
    for (const auto& sub : m.added->split(text.substr(run_start), false, true))
      kept.push_back({sub.start + run_start, sub.end + run_start, sub.id});
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  m.encode_segments(text, kept, /*special_as_text=*/true, ids);
  if (m.post_processor) m.post_processor->process(ids, add_special_tokens);
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  const Impl& m = *impl_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    if (skip_special && is_special(id)) continue;
    if (const auto* t = m.added->find_by_id(id)) {
      tokens.push_back(t->content);
    } else if (const auto* s = m.model->id_to_token(id)) {
      tokens.push_back(*s);
    }
  }
  if (m.decoder) return m.decoder->decode(std::move(tokens));
  std::string out;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (i) out += ' ';
    out += tokens[i];
  }
  return out;
}

size_t Tokenizer::vocab_size() const { return impl_->special.size(); }

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (const auto* t = impl_->added->find_by_content(token)) return t->id;
  return impl_->model->token_to_id(token);
}

std::string Tokenizer::id_to_token(int32_t id) const {
  if (const auto* t = impl_->added->find_by_id(id)) return t->content;
  if (const auto* s = impl_->model->id_to_token(id)) return *s;
  return {};
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < impl_->special.size() && impl_->special[id];
}

const TokenizerConfig& Tokenizer::config() const { return impl_->config; }

std::optional<int32_t> Tokenizer::bos_id() const {
  return impl_->config.bos_token ? token_to_id(*impl_->config.bos_token) : std::nullopt;
}

std::optional<int32_t> Tokenizer::eos_id() const {
  return impl_->config.eos_token ? token_to_id(*impl_->config.eos_token) : std::nullopt;
}

}  // namespace strata
