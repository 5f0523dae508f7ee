// strata._strata.ChatTemplate: the library's chat templates (include/strata/chat.h).
// Conversations cross the boundary as JSON text: Python's json module
// keeps key order, as the templates expect, and no value conversion code
// is needed here.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <memory>
#include <string>

#include "strata/chat.h"
#include "strata/tokenizer.h"

namespace pyb = pybind11;
using namespace pybind11::literals;

namespace strata::py {
namespace {

ChatInput chat_input(const std::string& messages_json, bool add_generation_prompt, const std::string& tools_json,
                     const std::string& variables_json) {
  ChatInput in;
  in.messages = nlohmann::ordered_json::parse(messages_json);
  in.add_generation_prompt = add_generation_prompt;
  if (!tools_json.empty()) in.tools = nlohmann::ordered_json::parse(tools_json);
  if (!variables_json.empty()) in.variables = nlohmann::ordered_json::parse(variables_json);
  return in;
}

}  // namespace

void bind_chat(pyb::module_& m) {
  pyb::class_<ChatTemplate, std::shared_ptr<ChatTemplate>>(m, "ChatTemplate")
      .def_static(
          "from_model",
          [](const std::filesystem::path& p) {
            pyb::gil_scoped_release nogil;
            return std::make_shared<ChatTemplate>(ChatTemplate::from_model(p));
          },
          "model"_a)
      .def_static(
          "from_string",
          [](const std::string& source) { return std::make_shared<ChatTemplate>(ChatTemplate::from_string(source)); },
          "source"_a)
      .def_static("model_has_template", &ChatTemplate::model_has_template, "model"_a)
      .def_property_readonly("source", &ChatTemplate::source)
      .def_property_readonly("origin", &ChatTemplate::origin)
      .def(
          "render",
          [](const ChatTemplate& t, const std::string& messages, bool add_generation_prompt, const std::string& tools,
             const std::string& variables) {
            ChatInput in = chat_input(messages, add_generation_prompt, tools, variables);
            std::string text;
            {
              pyb::gil_scoped_release nogil;
              text = t.render(in).text;
            }
            return pyb::reinterpret_steal<pyb::str>(PyUnicode_DecodeUTF8(text.data(), Py_ssize_t(text.size()), "replace"));
          },
          "messages_json"_a, "add_generation_prompt"_a = true, "tools_json"_a = "", "variables_json"_a = "")
      .def(
          "encode",
          [](const ChatTemplate& t, const Tokenizer& tok, const std::string& messages, bool add_generation_prompt,
             const std::string& tools, const std::string& variables) {
            ChatInput in = chat_input(messages, add_generation_prompt, tools, variables);
            pyb::gil_scoped_release nogil;
            return t.encode(in, tok);
          },
          "tokenizer"_a, "messages_json"_a, "add_generation_prompt"_a = true, "tools_json"_a = "",
          "variables_json"_a = "")
      .def("stop_token_ids", &ChatTemplate::stop_token_ids, "tokenizer"_a);
}

}  // namespace strata::py
