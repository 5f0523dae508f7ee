// Builds the syntax tree of a template from its tokens, following Jinja2's
// grammar and operator precedence (filters bind tighter than any operator,
// "~" tighter than "+"). Throws TemplateError for syntax errors and for
// statements a sandboxed chat template cannot use (extends, include, import).
#pragma once

#include <string_view>

#include "tokenizer/jinja/ast.h"

namespace strata::jinja {

// Nesting deeper than this (brackets, unary operators, blocks) is refused
// so a hostile template cannot exhaust the stack while parsing.
inline constexpr int kMaxParseDepth = 200;

NodeList parse_template(std::string_view source);

}  // namespace strata::jinja
