#include "chat_common.h"

#include <filesystem>

#include "strata/error.h"

namespace strata::cli {

void add_chat_options(CLI::App& cmd, ChatOptions& o) {
  cmd.add_option("--chat-template", o.chat_template,
                 "Chat template to use instead of the model's: a .jinja file, or a .json file with \"chat_template\"");
  cmd.add_option("--template-name", o.template_name,
                 "Which of the model's named templates to use (e.g. tool_use; default: \"default\")");
  cmd.add_option("--template-var", o.template_vars,
                 "Extra template variable k=v (v is JSON if it parses, else a string), e.g. enable_thinking=false");
  cmd.add_flag("--parse-special-in-content", o.special_everywhere,
               "Tokenize like transformers: special-token text inside message contents becomes special ids "
               "(default: only the template's own special tokens do)");
}

ChatTemplate load_chat_template(const std::string& model, const ChatOptions& o) {
  ChatTemplateOptions opt;
  opt.name = o.template_name;
  if (!o.chat_template.empty()) opt.override_file = o.chat_template;
  if (model.empty()) {
    if (o.chat_template.empty()) throw UsageError("no chat template: give a model or --chat-template FILE");
    return ChatTemplate::from_file(o.chat_template, opt);
  }
  if (!std::filesystem::exists(model)) throw UsageError(model + ": no such file or directory");
  return ChatTemplate::from_model(model, opt);
}

nlohmann::ordered_json template_variables(const ChatOptions& o) {
  nlohmann::ordered_json vars = nlohmann::ordered_json::object();
  for (const std::string& kv : o.template_vars) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) throw UsageError("--template-var wants k=v, got '" + kv + "'");
    std::string v = kv.substr(eq + 1);
    nlohmann::ordered_json parsed = nlohmann::ordered_json::parse(v, nullptr, /*allow_exceptions=*/false);
    vars[kv.substr(0, eq)] = parsed.is_discarded() ? nlohmann::ordered_json(v) : parsed;
  }
  return vars;
}

SpecialTokenParsing special_parsing(const ChatOptions& o) {
  return o.special_everywhere ? SpecialTokenParsing::Everywhere : SpecialTokenParsing::TemplateOnly;
}

}  // namespace strata::cli
