// The bodies of POST /v1/chat/completions and /v1/completions, parsed and
// validated field by field against the OpenAI API reference. Anything a
// client could send either becomes a CompletionRequest or an ApiError (400)
// naming the field; nothing else escapes.
//
//   CompletionRequest r = parse_chat_request(body);     // throws ApiError
//   strata::Request q = to_engine_request(r, prompt_ids, template_stop_ids, context);
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "strata/scheduler.h"

namespace strata::server {

enum class Endpoint { chat, completions };

struct ChatMessage {
  std::string role;     // system, developer, user, assistant, tool
  std::string content;  // text parts joined; "" for null
  nlohmann::json raw;   // the message as the template sees it (content flattened; tool_calls, name...)
};

struct CompletionRequest {
  Endpoint endpoint = Endpoint::chat;
  std::string model;  // "" when absent
  // Chat: the conversation and the tools for the template (null when absent).
  std::vector<ChatMessage> messages;
  nlohmann::json tools;
  // Completions: the prompt as text or as token ids (one of the two).
  std::optional<std::string> prompt_text;
  std::vector<int32_t> prompt_ids;
  bool echo = false;
  std::optional<int64_t> max_tokens;  // absent: the endpoint's default
  SamplingParams sampling;
  bool seed_given = false;
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;
  bool logprobs = false;     // chat: logprobs=true; completions: logprobs=N given
  size_t top_logprobs = 0;
  // strata's speculative decoding (absent: the server's --lookup /
  // --draft-tokens): prompt lookup with this n-gram (0 = off), and drafted
  // tokens per pass at most (0 = no drafting for this request).
  std::optional<size_t> prompt_lookup;
  std::optional<size_t> draft_tokens;
};

// Limits on what one request may ask for.
struct ParseLimits {
  size_t max_messages = 4096;
  size_t max_stop = 4;             // as OpenAI
  size_t max_stop_bytes = 256;
  size_t max_prompt_ids = 1 << 20;
  int max_depth = 64;              // nesting of the JSON document
};

CompletionRequest parse_chat_request(std::string_view body, const ParseLimits& limits = {});
CompletionRequest parse_completion_request(std::string_view body, const ParseLimits& limits = {});

// The scheduler request for a parsed one: `max_tokens` defaults to 16 for
// completions (as OpenAI) and to the rest of the context for chat. Throws
// ApiError 400 (code context_length_exceeded) when prompt plus max_tokens do
// not fit in `context` positions. Without a seed, sampling gets a random one.
Request to_engine_request(const CompletionRequest& r, std::vector<int32_t> prompt_ids, std::vector<int32_t> stop_ids,
                          int64_t context);

// The request's speculative decoding: its own prompt_lookup / draft_tokens,
// else the server's `default_lookup` and all `planned_rows` (the drafted
// rows per sequence the Engine plans; 0 = speculative decoding off).
// ApiError 400 when the request asks for more than was planned.
void set_speculative(const CompletionRequest& r, size_t planned_rows, size_t default_lookup, Request& q);

}  // namespace strata::server
