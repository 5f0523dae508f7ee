// Chat messages -> prompt ids for the model, plus the ids that end the
// assistant's turn.
//
// With a chat template (--chat-template FILE, or the model's own) the
// conversation is rendered by strata's Jinja engine (include/strata/chat.h)
// with `tools` and add_generation_prompt, and tokenized with message
// contents kept as plain text (a "<|im_end|>" typed by a user stays text).
// A model without any template (a base model) gets a documented plain
// format: one "role: content\n" line per message, then "assistant: ", after
// BOS as tokenizer_config.json asks; the turn then ends at EOS.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "request_parser.h"
#include "strata/strata.h"

namespace strata {
class ChatTemplate;
}

namespace strata::server {

struct ChatPrompt {
  std::vector<int32_t> ids;
  std::vector<int32_t> stop_ids;  // end-of-turn ids besides the model's EOS
};

class ChatFormatter {
 public:
  // `template_file` empty: the model's own template, if it has one. Throws
  // strata::Error when a template cannot be read or parsed.
  ChatFormatter(const Engine& engine, const std::string& template_file);
  ChatFormatter(ChatFormatter&&) noexcept;
  ~ChatFormatter();
  // Throws ApiError 400 when the model has no tokenizer or the template
  // refuses the conversation (e.g. roles that do not alternate).
  ChatPrompt render(const std::vector<ChatMessage>& messages, const nlohmann::json& tools) const;
  // For the startup log line.
  std::string description() const;

 private:
  const Engine& engine_;
  std::unique_ptr<ChatTemplate> template_;
  std::vector<int32_t> stop_ids_;
};

}  // namespace strata::server
