// Splits a Jinja template into tokens the way Jinja2's lexer does with
// transformers' settings: trim_blocks (the first newline after a block or
// comment tag is dropped), lstrip_blocks (spaces and tabs before a block or
// comment tag on its own line are dropped), "-" / "+" whitespace control,
// comments removed, newlines normalized and one trailing newline dropped
// (keep_trailing_newline=False).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace strata::jinja {

struct Token {
  enum class Type { Data, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, Eof };
  Type type;
  std::string text;  // Data: the text; String: the decoded value; Op: the operator
  int line = 1;
};

// Throws TemplateError for unterminated tags, strings or comments and
// characters that are not part of the expression language.
std::vector<Token> tokenize(std::string_view source);

}  // namespace strata::jinja
