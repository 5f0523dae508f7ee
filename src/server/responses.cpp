#include "responses.h"

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <random>

namespace strata::server {

std::string new_response_id(const char* prefix) {
  // Unique per process and hard to guess across restarts.
  static const uint64_t salt = std::random_device{}() ^ uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
  static std::atomic<uint64_t> counter{0};
  uint64_t n = counter.fetch_add(1) + 1;
  return fmt::format("{}-{:016x}{:08x}", prefix, salt * 0x9E3779B97F4A7C15ull, uint32_t(n));
}

json usage_json(size_t prompt_tokens, size_t completion_tokens) {
  return {{"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

json usage_json(const RequestResult& r) {
  json u = usage_json(r.prompt_tokens, r.output_ids.size());
  // Speculative decoding, in the fields OpenAI uses for predicted outputs.
  if (r.drafted_tokens)
    u["completion_tokens_details"] = {{"accepted_prediction_tokens", r.accepted_tokens},
                                      {"rejected_prediction_tokens", r.drafted_tokens - r.accepted_tokens}};
  return u;
}

namespace {

json bytes_of(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back(int(c));
  return b;
}

}  // namespace

json chat_logprobs_json(const std::vector<TokenEvent>& tokens, const TokenText& text) {
  json content = json::array();
  for (const TokenEvent& e : tokens) {
    std::string t = text(e.id);
    json top = json::array();
    for (const TopLogprob& a : e.top) {
      std::string at = text(a.id);
      top.push_back({{"token", at}, {"logprob", a.logprob}, {"bytes", bytes_of(at)}});
    }
    content.push_back({{"token", t}, {"logprob", e.logprob}, {"bytes", bytes_of(t)}, {"top_logprobs", top}});
  }
  return {{"content", content}, {"refusal", nullptr}};
}

json completion_logprobs_json(const std::vector<TokenEvent>& tokens, const TokenText& text, size_t offset0) {
  json toks = json::array(), lps = json::array(), tops = json::array(), offs = json::array();
  size_t off = offset0;
  for (const TokenEvent& e : tokens) {
    std::string t = text(e.id);
    toks.push_back(t);
    lps.push_back(e.logprob);
    json top = json::object();
    for (const TopLogprob& a : e.top) top[text(a.id)] = a.logprob;
    tops.push_back(top);
    offs.push_back(off);
    off += e.text.size();
  }
  return {{"tokens", toks}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offs}};
}

std::string finish_reason(const RequestResult& r) { return r.finish_reason == "length" ? "length" : "stop"; }

json chat_completion_json(const ResponseMeta& m, const RequestResult& r, bool logprobs, const TokenText& text) {
  json choice = {{"index", 0},
                 {"message", {{"role", "assistant"}, {"content", r.text}, {"refusal", nullptr}}},
                 {"logprobs", logprobs ? chat_logprobs_json(r.tokens, text) : json(nullptr)},
                 {"finish_reason", finish_reason(r)}};
  return {{"id", m.id},
          {"object", "chat.completion"},
          {"created", m.created},
          {"model", m.model},
          {"system_fingerprint", nullptr},
          {"choices", json::array({choice})},
          {"usage", usage_json(r)}};
}

json chat_chunk_json(const ResponseMeta& m, json delta, json logprobs, json finish, bool usage_null) {
  json choice = {{"index", 0}, {"delta", std::move(delta)}, {"logprobs", std::move(logprobs)},
                 {"finish_reason", std::move(finish)}};
  json j = {{"id", m.id},
            {"object", "chat.completion.chunk"},
            {"created", m.created},
            {"model", m.model},
            {"system_fingerprint", nullptr},
            {"choices", json::array({choice})}};
  if (usage_null) j["usage"] = nullptr;
  return j;
}

json text_completion_json(const ResponseMeta& m, const RequestResult& r, const std::string& echo_prefix, bool logprobs,
                          const TokenText& text) {
  json choice = {{"text", echo_prefix + r.text},
                 {"index", 0},
                 {"logprobs", logprobs ? completion_logprobs_json(r.tokens, text, echo_prefix.size()) : json(nullptr)},
                 {"finish_reason", finish_reason(r)}};
  return {{"id", m.id},
          {"object", "text_completion"},
          {"created", m.created},
          {"model", m.model},
          {"system_fingerprint", nullptr},
          {"choices", json::array({choice})},
          {"usage", usage_json(r)}};
}

json text_chunk_json(const ResponseMeta& m, const std::string& text, json logprobs, json finish, bool usage_null) {
  json choice = {{"text", text}, {"index", 0}, {"logprobs", std::move(logprobs)}, {"finish_reason", std::move(finish)}};
  json j = {{"id", m.id},
            {"object", "text_completion"},
            {"created", m.created},
            {"model", m.model},
            {"system_fingerprint", nullptr},
            {"choices", json::array({choice})}};
  if (usage_null) j["usage"] = nullptr;
  return j;
}

json usage_chunk_json(const ResponseMeta& m, const char* object, json usage) {
  return {{"id", m.id},
          {"object", object},
          {"created", m.created},
          {"model", m.model},
          {"system_fingerprint", nullptr},
          {"choices", json::array()},
          {"usage", std::move(usage)}};
}

json models_json(const std::string& model, int64_t created) {
  json entry = {{"id", model}, {"object", "model"}, {"created", created}, {"owned_by", "strata"}};
  return {{"object", "list"}, {"data", json::array({entry})}};
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace strata::server
