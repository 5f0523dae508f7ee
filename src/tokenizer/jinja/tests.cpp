// Jinja2's built-in tests (jinja2/tests.py): `x is defined`, `x is string`...
// and Python's ordering used by comparisons and sorting.
#include <unordered_map>

#include <fmt/format.h>

#include "tokenizer/jinja/builtins.h"

namespace strata::jinja {

namespace {

using Test = bool (*)(Interpreter&, const Value&, CallArgs&);

const Value& arg0(const CallArgs& a, const char* test) {
  const Value* v = a.get(0, "other");
  if (!v) type_error(fmt::format("test '{}' needs an argument", test));
  return *v;
}

bool t_defined(Interpreter&, const Value& v, CallArgs&) { return !v.is_undefined(); }
bool t_undefined(Interpreter&, const Value& v, CallArgs&) { return v.is_undefined(); }
bool t_none(Interpreter&, const Value& v, CallArgs&) { return v.is_none(); }
bool t_boolean(Interpreter&, const Value& v, CallArgs&) { return v.kind == Value::Kind::Bool; }
bool t_true(Interpreter&, const Value& v, CallArgs&) { return v.kind == Value::Kind::Bool && v.b; }
bool t_false(Interpreter&, const Value& v, CallArgs&) { return v.kind == Value::Kind::Bool && !v.b; }
bool t_integer(Interpreter&, const Value& v, CallArgs&) { return v.kind == Value::Kind::Int; }
bool t_float(Interpreter&, const Value& v, CallArgs&) { return v.kind == Value::Kind::Float; }
bool t_number(Interpreter&, const Value& v, CallArgs&) { return v.is_number(); }
bool t_string(Interpreter&, const Value& v, CallArgs&) { return v.is_str(); }
bool t_mapping(Interpreter&, const Value& v, CallArgs&) { return v.is_dict() && !v.is_namespace; }
// Python's iter() succeeds on str, list, dict and Jinja2's Undefined.
bool t_iterable(Interpreter&, const Value& v, CallArgs&) {
  return v.is_str() || v.is_list() || v.is_dict() || v.is_undefined();
}
bool t_sequence(Interpreter& in, const Value& v, CallArgs& a) { return t_iterable(in, v, a) && !v.is_namespace; }
bool t_callable(Interpreter&, const Value& v, CallArgs&) { return v.kind == Value::Kind::Callable; }
bool t_sameas(Interpreter&, const Value& v, CallArgs& a) {
  const Value& o = arg0(a, "sameas");
  if (v.kind != o.kind) return false;
  switch (v.kind) {
    case Value::Kind::List: return v.list == o.list;
    case Value::Kind::Dict: return v.dict == o.dict;
    case Value::Kind::Callable: return v.fn == o.fn;
    case Value::Kind::Str: return v.str.s == o.str.s;
    default: return equals(v, o);
  }
}
bool t_eq(Interpreter&, const Value& v, CallArgs& a) { return equals(v, arg0(a, "eq")); }
bool t_ne(Interpreter&, const Value& v, CallArgs& a) { return !equals(v, arg0(a, "ne")); }
bool t_lt(Interpreter&, const Value& v, CallArgs& a) { return less_than(v, arg0(a, "lt")); }
bool t_le(Interpreter&, const Value& v, CallArgs& a) { return !less_than(arg0(a, "le"), v); }
bool t_gt(Interpreter&, const Value& v, CallArgs& a) { return less_than(arg0(a, "gt"), v); }
bool t_ge(Interpreter&, const Value& v, CallArgs& a) { return !less_than(v, arg0(a, "ge")); }
bool t_in(Interpreter&, const Value& v, CallArgs& a) {
  const Value& seq = a.get_or(0, "seq", Value::undefined("test 'in' needs an argument"));
  if (seq.is_str()) return v.is_str() && seq.str.s.find(v.str.s) != std::string::npos;
  if (seq.is_dict()) return v.is_str() && seq.dict->find(v.str.s);
  if (seq.is_list()) {
    for (const Value& x : *seq.list)
      if (equals(v, x)) return true;
    return false;
  }
  if (seq.is_undefined()) return false;
  type_error(fmt::format("argument of type '{}' is not iterable", type_name(seq)));
}
int64_t int_of(const Value& v, const char* test) {
  if (!v.is_number()) type_error(fmt::format("test '{}' needs a number, not {}", test, type_name(v)));
  return to_int64(v, test);
}
bool t_odd(Interpreter&, const Value& v, CallArgs&) { return int_of(v, "odd") % 2 != 0; }
bool t_even(Interpreter&, const Value& v, CallArgs&) { return int_of(v, "even") % 2 == 0; }
bool t_divisibleby(Interpreter&, const Value& v, CallArgs& a) {
  int64_t d = int_of(a.get_or(0, "num", Value::undefined("divisibleby needs an argument")), "divisibleby");
  if (d == 0) type_error("integer division or modulo by zero");
  return int_of(v, "divisibleby") % d == 0;
}
bool t_lower(Interpreter&, const Value& v, CallArgs&) {
  std::string s = plain(v);
  return py_lower(s) == s && py_upper(s) != s;
}
bool t_upper(Interpreter&, const Value& v, CallArgs&) {
  std::string s = plain(v);
  return py_upper(s) == s && py_lower(s) != s;
}
bool t_escaped(Interpreter&, const Value&, CallArgs&) { return false; }
bool t_filter(Interpreter&, const Value& v, CallArgs&) { return v.is_str() && is_known_filter(v.str.s); }
bool t_test(Interpreter&, const Value& v, CallArgs&) { return v.is_str() && is_known_test(v.str.s); }

const std::unordered_map<std::string, Test>& table() {
  static const std::unordered_map<std::string, Test> t = {
      {"defined", t_defined}, {"undefined", t_undefined}, {"none", t_none},       {"boolean", t_boolean},
      {"true", t_true},       {"false", t_false},         {"integer", t_integer}, {"float", t_float},
      {"number", t_number},   {"string", t_string},       {"mapping", t_mapping}, {"iterable", t_iterable},
      {"sequence", t_sequence}, {"callable", t_callable}, {"sameas", t_sameas},   {"eq", t_eq},
      {"equalto", t_eq},      {"==", t_eq},               {"ne", t_ne},           {"!=", t_ne},
      {"lt", t_lt},           {"lessthan", t_lt},         {"<", t_lt},            {"le", t_le},
      {"<=", t_le},           {"gt", t_gt},               {"greaterthan", t_gt},  {">", t_gt},
      {"ge", t_ge},           {">=", t_ge},               {"in", t_in},           {"odd", t_odd},
      {"even", t_even},       {"divisibleby", t_divisibleby}, {"lower", t_lower}, {"upper", t_upper},
      {"escaped", t_escaped}, {"filter", t_filter},       {"test", t_test},
  };
  return t;
}

}  // namespace

bool is_known_test(const std::string& name) { return table().count(name) != 0; }

bool apply_test(Interpreter& in, const std::string& name, const Value& v, CallArgs& args) {
  auto it = table().find(name);
  if (it == table().end()) throw TemplateError(fmt::format("no test named '{}'", name));
  return it->second(in, v, args);
}

bool less_than(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.kind == Value::Kind::Float || b.kind == Value::Kind::Float) return a.as_double() < b.as_double();
    return a.as_int() < b.as_int();
  }
  if (a.is_str() && b.is_str()) return a.str.s < b.str.s;  // UTF-8 byte order is code point order
  if (a.is_list() && b.is_list()) {
    size_t n = std::min(a.list->size(), b.list->size());
    for (size_t i = 0; i < n; ++i) {
      if (equals((*a.list)[i], (*b.list)[i])) continue;
      return less_than((*a.list)[i], (*b.list)[i]);
    }
    return a.list->size() < b.list->size();
  }
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  type_error(fmt::format("'<' not supported between instances of '{}' and '{}'", type_name(a), type_name(b)));
}

}  // namespace strata::jinja
