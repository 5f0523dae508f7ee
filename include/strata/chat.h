// Chat templates: turning a conversation (OpenAI-style messages, tools) into
// the prompt an instruct model was trained on, exactly as Hugging Face
// transformers' apply_chat_template renders it, and into token ids in which
// text from the conversation can never become a control token.
//
//   auto tmpl = strata::ChatTemplate::from_model("models/qwen2.5-7b-instruct");
//   strata::ChatInput in;
//   in.messages = nlohmann::ordered_json::parse(R"([{"role": "user", "content": "Hi!"}])");
//   strata::RenderedChat r = tmpl.render(in);             // r.text: "<|im_start|>system\n..."
//   auto tok = strata::Tokenizer::from_file("models/qwen2.5-7b-instruct");
//   std::vector<int32_t> ids = tmpl.tokenize(r, tok);      // content stays plain text
//   std::vector<int32_t> stop = tmpl.stop_token_ids(tok);  // e.g. <|im_end|>, <|endoftext|>
//
// The template is a Jinja program run by strata's own sandboxed interpreter
// (src/tokenizer/jinja): no file, environment or network access, and hard
// limits on output size, loop iterations and recursion, so a template from a
// downloaded model cannot hang or crash the process. See docs/CHAT.md.
#pragma once

#include <cstdint>
#include <ctime>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "strata/error.h"

namespace strata {

class Tokenizer;  // tokenizer/tokenizer.h

// The template failed: syntax error, an error it raised itself
// (raise_exception: e.g. "Conversation roles must alternate"), a variable it
// needs is missing, or a limit was hit. The message says which.
class ChatTemplateError : public Error {
 public:
  using Error::Error;
};

struct ChatTemplateLimits {
  size_t max_output_bytes = size_t{64} << 20;  // also the largest string the template may build
  uint64_t max_loop_iterations = 1'000'000;    // per render
  int max_call_depth = 100;                    // nested macro calls
  uint64_t max_steps = 10'000'000;             // evaluation steps per render (about a second)
};

struct ChatTemplateOptions {
  // A named template when tokenizer_config.json holds a list of them
  // ("default", "tool_use", ...). Empty: "default", or "tool_use" when the
  // render has tools and the model has such a template (as transformers).
  std::string name;
  // Use this file (a .jinja file, or a chat_template.json / tokenizer_config.json)
  // instead of the model's own template.
  std::filesystem::path override_file;
  ChatTemplateLimits limits;
};

// What a template is rendered with. Every variable is JSON; keys keep their
// order (ordered_json), as Python dicts do.
struct ChatInput {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  bool add_generation_prompt = true;
  // OpenAI-style tools ([{"type": "function", "function": {...}}]); null
  // leaves `tools` undefined in the template.
  nlohmann::ordered_json tools = nullptr;
  // Extra variables (enable_thinking, date_string, ...). They override the
  // model's defaults (bos_token, eos_token, ...) of the same name.
  nlohmann::ordered_json variables = nlohmann::ordered_json::object();
  // The time strftime_now() formats; unset: now.
  std::optional<std::time_t> now;
};

struct RenderedChat {
  std::string text;
  // Byte ranges [begin, end) of `text` that came from the input's variables
  // (message contents, tool definitions, extra variables) rather than from
  // the template's own literals or the tokenizer's special-token variables.
  std::vector<std::pair<size_t, size_t>> variable_spans;
};

enum class SpecialTokenParsing {
  // Only special tokens written in the template itself (and bos_token /
  // eos_token... given by the model) become special ids; special-token
  // strings inside message contents stay text. strata's default.
  TemplateOnly,
  // transformers' behaviour: the whole rendered string is tokenized with
  // special tokens parsed, so a message can contain "<|im_end|>".
  Everywhere,
};

class ChatTemplate {
 public:
  // From Jinja source. `name` is used in error messages.
  static ChatTemplate from_string(std::string source, std::string name = "chat template");
  // From a .jinja file, or a .json file holding "chat_template" (a string or
  // a list of {"name", "template"}) such as chat_template.json or
  // tokenizer_config.json.
  static ChatTemplate from_file(const std::filesystem::path& path, const ChatTemplateOptions& options = {});
  // From a model: a directory (chat_template.jinja, chat_template.json or
  // tokenizer_config.json's chat_template; special tokens from
  // tokenizer_config.json; end-of-turn ids from generation_config.json) or a
  // GGUF file (tokenizer.chat_template). Throws ChatTemplateError when the
  // model has no chat template (and options.override_file is empty).
  static ChatTemplate from_model(const std::filesystem::path& model, const ChatTemplateOptions& options = {});
  // True when from_model would find a template.
  static bool model_has_template(const std::filesystem::path& model);

  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;
  ~ChatTemplate();

  // The Jinja source in use and where it came from.
  const std::string& source() const;
  const std::string& origin() const;
  // Names of all templates the model has ("default", "tool_use"...; just
  // "default" for a single template).
  std::vector<std::string> names() const;
  // Variables every render gets unless ChatInput::variables overrides them:
  // bos_token, eos_token, unk_token, pad_token, ... (strings) of the model's
  // tokenizer_config.json.
  const nlohmann::ordered_json& default_variables() const;

  // Renders the conversation. Thread-safe. Throws ChatTemplateError.
  RenderedChat render(const ChatInput& input) const;

  // Token ids of a rendered conversation (no BOS/EOS added: the template
  // writes them, as transformers' apply_chat_template(tokenize=True)).
  std::vector<int32_t> tokenize(const RenderedChat& rendered, const Tokenizer& tokenizer,
                                SpecialTokenParsing parsing = SpecialTokenParsing::TemplateOnly) const;
  // render + tokenize.
  std::vector<int32_t> encode(const ChatInput& input, const Tokenizer& tokenizer,
                              SpecialTokenParsing parsing = SpecialTokenParsing::TemplateOnly) const;

  // Where generation of an assistant turn should stop: the model's EOS ids
  // (generation_config.json's eos_token_id, else the tokenizer's eos_token)
  // plus the special token the template writes right after an assistant
  // message (<|eot_id|>, <|im_end|>, <end_of_turn>, <|end|>...), found by
  // rendering a probe conversation. Sorted, unique.
  std::vector<int32_t> stop_token_ids(const Tokenizer& tokenizer) const;
  // The end-of-turn string found by the probe ("" if none).
  std::string end_of_turn_token(const Tokenizer& tokenizer) const;

 private:
  struct Impl;
  explicit ChatTemplate(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata
