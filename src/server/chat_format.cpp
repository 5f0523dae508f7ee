#include "server/chat_format.h"

#include <filesystem>

#include "core/error.h"
#include "server/api_error.h"
#include "tokenizer/tokenizer.h"

namespace strata::server {

ChatFormatter::ChatFormatter(const Engine& engine, const std::string& template_file)
    : engine_(engine), template_file_(template_file) {
  if (!template_file_.empty() && !std::filesystem::is_regular_file(template_file_))
    throw UsageError("--chat-template: no such file: " + template_file_);
}

ChatPrompt ChatFormatter::render(const std::vector<ChatMessage>& messages, const nlohmann::json&) const {
  const Tokenizer* tok = engine_.tokenizer();
  if (!tok) throw bad_request("the model has no tokenizer: use /v1/completions with token ids", "messages");
  std::string text;
  for (const ChatMessage& m : messages) text += m.role + ": " + m.content + "\n";
  text += "assistant: ";
  ChatPrompt p;
  p.ids = tok->encode(text, /*add_special_tokens=*/true, /*special_as_text=*/true);
  std::optional<int32_t> bos = tok->bos_id();
  if (tok->config().add_bos_token.value_or(false) && bos && (p.ids.empty() || p.ids.front() != *bos))
    p.ids.insert(p.ids.begin(), *bos);
  return p;
}

std::string ChatFormatter::description() const { return "built-in plain-text chat format (role: content lines)"; }

}  // namespace strata::server
