// Chat-template options shared by the commands that format conversations
// (chat-template, run --chat, batch with "messages", chat).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "strata/chat.h"

namespace strata::cli {

struct ChatOptions {
  std::string chat_template;               // --chat-template FILE
  std::string template_name;               // --template-name NAME
  std::vector<std::string> template_vars;  // --template-var k=v
  bool special_everywhere = false;         // --parse-special-in-content
};

void add_chat_options(CLI::App& cmd, ChatOptions& o);
// The template of MODEL (a model directory, a GGUF or a .jinja file), or
// --chat-template's file. Throws ChatTemplateError / UsageError.
ChatTemplate load_chat_template(const std::string& model, const ChatOptions& o);
// --template-var k=v pairs as a JSON object: v is parsed as JSON when it is
// valid JSON (true, 3, [1], "x"), else taken as a string.
nlohmann::ordered_json template_variables(const ChatOptions& o);
SpecialTokenParsing special_parsing(const ChatOptions& o);

}  // namespace strata::cli
