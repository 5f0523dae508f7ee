// The JSON bodies strata sends, field by field as in the OpenAI API
// reference: chat.completion and chat.completion.chunk objects,
// text_completion objects (whole and streamed), usage, both logprobs shapes,
// and the model list.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "strata/scheduler.h"

namespace strata::server {

using nlohmann::json;

// What every object of one response shares.
struct ResponseMeta {
  std::string id;       // "chatcmpl-..." or "cmpl-..."
  int64_t created = 0;  // Unix seconds
  std::string model;
};

// The text of one token id, as a client should see it in logprobs.
using TokenText = std::function<std::string(int32_t)>;

std::string new_response_id(const char* prefix);
json usage_json(size_t prompt_tokens, size_t completion_tokens);
// A result's usage; with speculative decoding also
// completion_tokens_details.{accepted,rejected}_prediction_tokens.
json usage_json(const RequestResult& r);

// Chat logprobs: {"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}], "refusal": null}.
json chat_logprobs_json(const std::vector<TokenEvent>& tokens, const TokenText& text);
// Completions logprobs: {"tokens", "token_logprobs", "top_logprobs": [{token: logprob}], "text_offset"};
// offsets count bytes from `offset0` (the echoed prompt's length, or 0).
json completion_logprobs_json(const std::vector<TokenEvent>& tokens, const TokenText& text, size_t offset0);

// finish_reason for a result: "stop" or "length".
std::string finish_reason(const RequestResult& r);

json chat_completion_json(const ResponseMeta& m, const RequestResult& r, bool logprobs, const TokenText& text);
// One chat.completion.chunk with one choice; `usage_null` adds "usage": null
// (stream_options.include_usage asks for it on every chunk).
json chat_chunk_json(const ResponseMeta& m, json delta, json logprobs, json finish_reason, bool usage_null);
json text_completion_json(const ResponseMeta& m, const RequestResult& r, const std::string& echo_prefix, bool logprobs,
                          const TokenText& text);
json text_chunk_json(const ResponseMeta& m, const std::string& text, json logprobs, json finish_reason,
                     bool usage_null);
// The last chunk before [DONE] with stream_options.include_usage: no choices.
json usage_chunk_json(const ResponseMeta& m, const char* object, json usage);
json models_json(const std::string& model, int64_t created);

// Serializes for the wire; invalid UTF-8 from a model becomes U+FFFD.
std::string dump(const json& j);

}  // namespace strata::server
