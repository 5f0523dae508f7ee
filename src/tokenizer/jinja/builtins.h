// The filters, tests, methods of str/dict/list and global functions a
// template can call, matching Jinja2's (and Python's) behaviour in
// transformers' ImmutableSandboxedEnvironment: methods that would modify a
// list or dict (append, update, pop...) are refused as the sandbox does.
#pragma once

#include <string>

#include "tokenizer/jinja/interpreter.h"

namespace strata::jinja {

// filters.cpp. Throws TemplateError for an unknown filter.
Value apply_filter(Interpreter& in, const std::string& name, const Value& v, CallArgs& args);
// tests.cpp. Throws TemplateError for an unknown test.
bool apply_test(Interpreter& in, const std::string& name, const Value& v, CallArgs& args);
// Jinja2 refuses a template that names an unknown filter or test when it
// compiles it; these let the parser's caller do the same.
bool is_known_filter(const std::string& name);
bool is_known_test(const std::string& name);
// methods.cpp: `obj.name` as a bound method, or Undefined when obj has no
// such method.
Value bound_method(const Value& obj, const std::string& name);
// globals.cpp: range, dict, namespace, joiner, cycler, raise_exception, strftime_now.
void add_globals(Dict& globals);

// Helpers shared by the files above.
// Python's str(v) as a std::string (taint dropped).
inline std::string plain(const Value& v) { return to_str(v).s; }
// Raises "'x' object has no ... " style errors.
[[noreturn]] void type_error(const std::string& msg);
// Python's <, for sort/min/max and comparisons. Throws TypeError.
bool less_than(const Value& a, const Value& b);
// Python's int(v) / float(v) conversions used by filters and arithmetic.
int64_t to_int64(const Value& v, const char* what);

}  // namespace strata::jinja

namespace strata::jinja {

// String helpers with Python's semantics, working on code points.
std::vector<uint32_t> code_points(std::string_view s);
std::string encode_utf8(const std::vector<uint32_t>& cps);
bool is_py_space(uint32_t cp);
std::string py_upper(std::string_view s);
std::string py_lower(std::string_view s);
// str.strip / lstrip / rstrip with optional chars (null: whitespace).
Str py_strip(const Str& s, const Value* chars, bool left, bool right);
// str.split(sep=None, maxsplit=-1); sep null splits on whitespace runs.
List py_split(const Str& s, const Value* sep, int64_t maxsplit);
// Python's str % args.
Str percent_format(const Str& fmt_str, const Value& arg);

}  // namespace strata::jinja
