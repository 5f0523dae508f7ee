// `strata chat-template`: renders conversations with a model's chat template
// (or a .jinja file), one JSONL line per conversation or one messages file.
#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "chat_common.h"
#include "commands.h"
#include "common.h"
#include "strata/error.h"

namespace strata::cli {
namespace {

using ojson = nlohmann::ordered_json;

// A line of the test-data format: the keys other than expected /
// expected_error are the template's variables, with "vars" merged in.
ChatInput input_of_line(const ojson& j, const ojson& cli_vars) {
  if (!j.is_object()) throw ChatTemplateError("expected a JSON object");
  ChatInput in;
  in.variables = cli_vars;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    if (k == "expected" || k == "expected_error") continue;
    if (k == "messages") {
      in.messages = it.value();
    } else if (k == "add_generation_prompt") {
      in.add_generation_prompt = it.value().is_boolean() && it.value().get<bool>();
    } else if (k == "tools") {
      in.tools = it.value();
    } else if (k == "vars") {
      if (!it.value().is_object()) throw ChatTemplateError("\"vars\" must be an object");
      for (auto v = it.value().begin(); v != it.value().end(); ++v) in.variables[v.key()] = v.value();
    } else {
      in.variables[k] = it.value();
    }
  }
  if (!j.contains("add_generation_prompt")) in.add_generation_prompt = false;
  return in;
}

std::string dump(const ojson& j) { return j.dump(-1, ' ', false, ojson::error_handler_t::replace); }

}  // namespace

Runner register_chat_template(CLI::App& app) {
  struct Opts {
    std::string model, input, messages, tools;
    ChatOptions chat;
    bool no_generation_prompt = false, ids = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("chat-template", "Render conversations with a model's chat template");
  cmd->add_option("TEMPLATE_OR_MODEL", o->model, "A .jinja file, a model directory or a GGUF file");
  CLI::Option* input = cmd->add_option(
      "--input", o->input,
      "JSONL of conversations ({\"messages\", \"add_generation_prompt\", \"tools\", \"vars\", ...}); prints "
      "{\"text\"} or {\"error\"} per line");
  CLI::Option* msgs = cmd->add_option("--messages", o->messages, "A JSON file with one messages array; prints the text");
  input->excludes(msgs);
  cmd->add_option("--tools", o->tools, "With --messages: a JSON file of tools");
  cmd->add_flag("--no-generation-prompt", o->no_generation_prompt, "With --messages: add_generation_prompt=false");
  cmd->add_flag("--ids", o->ids, "With --messages: print the token ids (needs the model's tokenizer)");
  add_chat_options(*cmd, o->chat);
  return [o]() {
    if (o->input.empty() && o->messages.empty()) throw UsageError("give --input FILE.jsonl or --messages FILE.json");
    if (o->model.empty() && o->chat.chat_template.empty())
      throw UsageError("give TEMPLATE_OR_MODEL or --chat-template FILE");
    ChatTemplate tmpl = load_chat_template(o->model, o->chat);
    ojson cli_vars = template_variables(o->chat);
    if (!o->messages.empty()) {
      ChatInput in;
      in.messages = ojson::parse(read_prompt_file(o->messages));
      if (in.messages.is_object() && in.messages.contains("messages")) in.messages = ojson(in.messages["messages"]);
      if (!in.messages.is_array()) throw UsageError(o->messages + ": expected a JSON array of messages");
      if (!o->tools.empty()) in.tools = ojson::parse(read_prompt_file(o->tools));
      in.add_generation_prompt = !o->no_generation_prompt;
      in.variables = cli_vars;
      RenderedChat r = tmpl.render(in);
      if (o->ids) {
        std::optional<Tokenizer> tok = load_model_tokenizer(o->model);
        if (!tok) throw UsageError(o->model + ": no tokenizer.json for --ids");
        std::printf("%s\n", nlohmann::json(tmpl.tokenize(r, *tok, special_parsing(o->chat))).dump().c_str());
      } else {
        std::fwrite(r.text.data(), 1, r.text.size(), stdout);
      }
      return 0;
    }
    std::ifstream f(o->input, std::ios::binary);
    if (!f) throw Error(o->input + ": cannot open");
    std::string line;
    size_t errors = 0;
    for (size_t n = 1; std::getline(f, line); ++n) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.find_first_not_of(" \t") == std::string::npos) continue;
      ojson out;
      try {
        ojson j = ojson::parse(line);
        out["text"] = tmpl.render(input_of_line(j, cli_vars)).text;
      } catch (const ojson::exception& e) {
        out["error"] = fmt::format("line {}: malformed JSON: {}", n, e.what());
        ++errors;
      } catch (const ChatTemplateError& e) {
        out["error"] = e.what();
      }
      std::printf("%s\n", dump(out).c_str());
    }
    return errors ? 1 : 0;
  };
}

}  // namespace strata::cli
