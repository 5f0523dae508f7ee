#include "tokenizer/jinja/template.h"

#include <fmt/format.h>

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/parser.h"

namespace strata::jinja {

namespace {

void check_names(const NodeList& nodes, int depth);

void check_node(const Node* n, int depth) {
  if (!n) return;
  if (depth > 4 * kMaxParseDepth) throw TemplateError("template nested too deeply");
  if (n->kind == Node::Kind::Filter && !is_known_filter(n->name))
    throw TemplateError(fmt::format("template error, line {}: no filter named '{}'", n->line, n->name));
  if (n->kind == Node::Kind::Test && !is_known_test(n->name))
    throw TemplateError(fmt::format("template error, line {}: no test named '{}'", n->line, n->name));
  for (const NodeList* l : {&n->kids, &n->args, &n->kw, &n->defaults, &n->body, &n->else_body}) check_names(*l, depth + 1);
}

void check_names(const NodeList& nodes, int depth) {
  for (const NodePtr& n : nodes) check_node(n.get(), depth);
}

}  // namespace

Template::Template(std::string_view source) : body_(parse_template(source)) { check_names(body_, 0); }

Str Template::render(const Dict& vars, const RenderOptions& options) const {
  Interpreter in(options.limits, options.now);
  return in.render(body_, vars);
}

}  // namespace strata::jinja
