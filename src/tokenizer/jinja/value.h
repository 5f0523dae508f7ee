// The values a Jinja template computes with, modelled on the Python objects
// Jinja2 uses: None, bool, int, float, str, list/tuple, dict, callables and
// Undefined. Each string also records which of its bytes came from the
// caller's variables (message contents, tools...) rather than from the
// template's own text, so that a rendered conversation can be tokenized with
// only the template's literal special tokens becoming special ids.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace strata::jinja {

// Thrown for template syntax errors, errors the template raises and limits
// hit while rendering. The message says what and where (line).
class TemplateError : public Error {
 public:
  using Error::Error;
};

// A byte range [begin, end) of a string.
struct Span {
  uint32_t begin, end;
};

// A string plus the byte ranges of it that came from variables ("tainted").
struct Str {
  std::string s;
  std::vector<Span> tainted;  // sorted, disjoint, non-empty, merged

  Str() = default;
  Str(std::string text, bool from_variable = false);  // NOLINT: implicit on purpose
  void append(const Str& o);
  void append_plain(std::string_view text) { s += text; }
  Str substr(size_t begin, size_t end) const;  // byte offsets, taint kept
  bool any_tainted() const { return !tainted.empty(); }
  // The result of a transformation whose output bytes cannot be traced back
  // to input bytes (upper, replace...): tainted entirely if any input was.
  static Str derived(std::string text, bool tainted);
};

struct Value;
using List = std::vector<Value>;

// Insertion-ordered string-keyed mapping, as Python dicts are.
class Dict {
 public:
  Value* find(std::string_view key);
  const Value* find(std::string_view key) const;
  void set(const std::string& key, Value v);
  bool erase(const std::string& key);
  size_t size() const { return items_.size(); }
  const std::vector<std::pair<std::string, Value>>& items() const { return items_; }
  bool keys_tainted = false;  // the keys came from the caller's variables

 private:
  std::vector<std::pair<std::string, Value>> items_;
  std::unordered_map<std::string, size_t> index_;
};

class Interpreter;
struct CallArgs;
using NativeFn = std::function<Value(Interpreter&, CallArgs&)>;

struct Callable {
  std::string name;
  NativeFn fn;
};

struct Value {
  enum class Kind { Undefined, None, Bool, Int, Float, Str, List, Dict, Callable };
  Kind kind = Kind::Undefined;
  bool b = false;
  bool is_tuple = false;      // a List that Python would print as a tuple
  bool is_namespace = false;  // a Dict made by namespace(): attributes assignable
  int64_t i = 0;
  double f = 0;
  Str str;
  std::shared_ptr<List> list;
  std::shared_ptr<Dict> dict;
  std::shared_ptr<Callable> fn;
  // For Undefined: why it is undefined, for the error when it is used.
  std::string hint;

  Value() = default;
  static Value undefined(std::string hint) {
    Value v;
    v.hint = std::move(hint);
    return v;
  }
  static Value none() { return of(Kind::None); }
  static Value boolean(bool x) {
    Value v = of(Kind::Bool);
    v.b = x;
    return v;
  }
  static Value integer(int64_t x) {
    Value v = of(Kind::Int);
    v.i = x;
    return v;
  }
  static Value floating(double x) {
    Value v = of(Kind::Float);
    v.f = x;
    return v;
  }
  static Value string(Str s) {
    Value v = of(Kind::Str);
    v.str = std::move(s);
    return v;
  }
  static Value string(std::string s) { return string(Str(std::move(s))); }
  static Value string(const char* s) { return string(Str(std::string(s))); }
  static Value make_list(List items = {}, bool tuple = false) {
    Value v = of(Kind::List);
    v.list = std::make_shared<List>(std::move(items));
    v.is_tuple = tuple;
    return v;
  }
  static Value make_dict(Dict d = {}) {
    Value v = of(Kind::Dict);
    v.dict = std::make_shared<Dict>(std::move(d));
    return v;
  }
  static Value function(std::string name, NativeFn fn) {
    Value v = of(Kind::Callable);
    v.fn = std::make_shared<Callable>(Callable{std::move(name), std::move(fn)});
    return v;
  }

  bool is_undefined() const { return kind == Kind::Undefined; }
  bool is_none() const { return kind == Kind::None; }
  bool is_str() const { return kind == Kind::Str; }
  bool is_list() const { return kind == Kind::List; }
  bool is_dict() const { return kind == Kind::Dict; }
  bool is_number() const { return kind == Kind::Int || kind == Kind::Float || kind == Kind::Bool; }
  bool is_int_like() const { return kind == Kind::Int || kind == Kind::Bool; }
  double as_double() const { return kind == Kind::Float ? f : static_cast<double>(kind == Kind::Bool ? b : i); }
  int64_t as_int() const { return kind == Kind::Bool ? b : i; }

 private:
  static Value of(Kind k) {
    Value v;
    v.kind = k;
    return v;
  }
};

// Python's type names, for error messages ("'int' object ...").
const char* type_name(const Value& v);
// Python's bool(v). Undefined is false.
bool truthy(const Value& v);
// Python's ==.
bool equals(const Value& a, const Value& b);
// Python's str(v) (Undefined prints as ""), with taint carried for strings
// and for strings inside containers.
Str to_str(const Value& v);
// Python's repr(v).
std::string repr(const Value& v);
// Python's repr of a float: shortest round-trip digits, "1.0", "1e+16".
std::string format_float(double x);
// Throws TemplateError("'<hint>' is undefined") for Undefined.
[[noreturn]] void fail_undefined(const Value& v);
// Number of Unicode code points of a UTF-8 string, and the byte offsets of
// each code point (plus the end), for Python's str indexing and len.
size_t utf8_length(std::string_view s);
std::vector<size_t> utf8_offsets(std::string_view s);

// JSON conversion. Strings from JSON are marked tainted when `tainted`.
Value from_json(const nlohmann::ordered_json& j, bool tainted);

// Python's json.dumps(v, ensure_ascii=False, indent, separators, sort_keys)
// as transformers' tojson filter calls it.
struct JsonStyle {
  int indent = -1;           // spaces; -1: no newlines (unless indent_text is set)
  std::string indent_text;   // indent given as a string
  bool ensure_ascii = false;
  bool custom_separators = false;  // else json.dumps' defaults for the indent
  std::string item_sep, key_sep;
  bool sort_keys = false;
};
Str to_json(const Value& v, const JsonStyle& style);

}  // namespace strata::jinja
