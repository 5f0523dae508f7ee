// A compiled Jinja template, rendered as Python Jinja2 renders it with
// transformers' chat-template settings (ImmutableSandboxedEnvironment,
// trim_blocks, lstrip_blocks, loopcontrols, transformers' tojson,
// raise_exception and strftime_now).
//
//   jinja::Template t(source);                        // throws TemplateError
//   jinja::Dict vars;
//   vars.set("messages", jinja::from_json(messages_json, /*tainted=*/true));
//   jinja::Str text = t.render(vars);                 // text.s, text.tainted
#pragma once

#include <ctime>
#include <optional>
#include <string_view>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/interpreter.h"

namespace strata::jinja {

struct RenderOptions {
  Limits limits;
  // The time strftime_now formats (local time); now when unset.
  std::optional<std::time_t> now;
};

class Template {
 public:
  // Parses `source`; throws TemplateError for syntax errors and unknown
  // filters or tests (as Jinja2 does when it compiles a template).
  explicit Template(std::string_view source);

  // Thread-safe: each render has its own interpreter state.
  Str render(const Dict& vars, const RenderOptions& options = {}) const;

 private:
  NodeList body_;
};

}  // namespace strata::jinja
