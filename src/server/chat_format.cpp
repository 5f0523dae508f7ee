#include "chat_format.h"

#include <filesystem>

#include "strata/error.h"
#include "api_error.h"
#include "strata/chat.h"
#include "strata/tokenizer.h"

namespace strata::server {

ChatFormatter::ChatFormatter(const Engine& engine, const std::string& template_file) : engine_(engine) {
  const std::filesystem::path model = engine.info().path;
  ChatTemplateOptions opt;
  if (!template_file.empty()) {
    if (!std::filesystem::is_regular_file(template_file))
      throw UsageError("--chat-template: no such file: " + template_file);
    // From the model with the file as its template, so the model's special
    // tokens (bos_token, eos_token...) are the template's variables.
    opt.override_file = template_file;
    template_ = std::make_unique<ChatTemplate>(ChatTemplate::from_model(model, opt));
  } else if (ChatTemplate::model_has_template(model)) {
    template_ = std::make_unique<ChatTemplate>(ChatTemplate::from_model(model, opt));
  }
  if (template_ && engine.tokenizer()) stop_ids_ = template_->stop_token_ids(*engine.tokenizer());
}

ChatFormatter::ChatFormatter(ChatFormatter&&) noexcept = default;
ChatFormatter::~ChatFormatter() = default;

ChatPrompt ChatFormatter::render(const std::vector<ChatMessage>& messages, const nlohmann::json& tools) const {
  const Tokenizer* tok = engine_.tokenizer();
  if (!tok) throw bad_request("the model has no tokenizer: use /v1/completions with token ids", "messages");
  ChatPrompt p;
  if (template_) {
    ChatInput in;
    for (const ChatMessage& m : messages) in.messages.push_back(nlohmann::ordered_json::parse(m.raw.dump()));
    in.add_generation_prompt = true;
    if (!tools.is_null()) in.tools = nlohmann::ordered_json::parse(tools.dump());
    try {
      p.ids = template_->encode(in, *tok);
    } catch (const Error& e) {  // ChatTemplateError: raise_exception, a limit, a missing variable...
      throw bad_request(std::string("the chat template refused the conversation: ") + e.what(), "messages");
    }
    p.stop_ids = stop_ids_;
    return p;
  }
  std::string text;
  for (const ChatMessage& m : messages) text += m.role + ": " + m.content + "\n";
  text += "assistant: ";
  p.ids = tok->encode(text, /*add_special_tokens=*/true, /*special_as_text=*/true);
  std::optional<int32_t> bos = tok->bos_id();
  if (tok->config().add_bos_token.value_or(false) && bos && (p.ids.empty() || p.ids.front() != *bos))
    p.ids.insert(p.ids.begin(), *bos);
  return p;
}

std::string ChatFormatter::description() const {
  return template_ ? "chat template " + template_->origin() : "no chat template: plain 'role: content' lines";
}

}  // namespace strata::server
