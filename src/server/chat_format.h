// Chat messages -> prompt ids for the model, plus the ids that end the
// assistant's turn.
//
// TEMPORARY FALLBACK until the chat-template engine (branch jinja,
// include/strata/chat.h) is merged: messages are rendered as plain lines
// "role: content\n" followed by "assistant: ", encoded with the model's
// tokenizer (BOS as tokenizer_config.json asks, special-token text kept as
// text), and the turn ends at the model's EOS. --chat-template FILE is
// accepted but not interpreted yet.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "server/request_parser.h"
#include "strata/strata.h"

namespace strata::server {

struct ChatPrompt {
  std::vector<int32_t> ids;
  std::vector<int32_t> stop_ids;  // end-of-turn ids besides the model's EOS
};

class ChatFormatter {
 public:
  // `template_file` empty: the model's own template. Throws strata::Error
  // when a template cannot be read.
  ChatFormatter(const Engine& engine, const std::string& template_file);
  // Throws ApiError 400 when the model has no tokenizer.
  ChatPrompt render(const std::vector<ChatMessage>& messages, const nlohmann::json& tools) const;
  // For the startup log line.
  std::string description() const;

 private:
  const Engine& engine_;
  std::string template_file_;
};

}  // namespace strata::server
