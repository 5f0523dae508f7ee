// Jinja2's built-in filters (jinja2/filters.py) with transformers' tojson.
#include <algorithm>
#include <cmath>
#include <unordered_map>

#include <fmt/format.h>

#include "tokenizer/jinja/builtins.h"

namespace strata::jinja {

namespace {

using Filter = Value (*)(Interpreter&, const Value&, CallArgs&);

bool bool_arg(const CallArgs& a, size_t i, std::string_view name, bool def) {
  const Value* v = a.get(i, name);
  return v ? truthy(*v) : def;
}

// Jinja2's make_attrgetter: "a.b" or "0" walks attributes/items; a missing
// attribute gives `def` when given.
Value get_path(Interpreter& in, const Value& item, const Value& attr, const Value* def) {
  Value v = item;
  if (attr.is_int_like()) {
    v = in.getitem(v, attr);
  } else {
    std::string path = plain(attr);
    size_t b = 0;
    while (true) {
      size_t e = path.find('.', b);
      std::string part = path.substr(b, e == std::string::npos ? std::string::npos : e - b);
      bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
      v = digits ? in.getitem(v, Value::integer(std::stoll(part))) : in.getitem(v, Value::string(part));
      if (v.is_undefined() && def) return *def;
      if (e == std::string::npos) break;
      b = e + 1;
    }
  }
  return v;
}

Value lower_if(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_str()) return Value::string(py_lower(v.str.s));
  return v;
}

Value f_length(Interpreter&, const Value& v, CallArgs&) {
  switch (v.kind) {
    case Value::Kind::Undefined: return Value::integer(0);
    case Value::Kind::Str: return Value::integer(static_cast<int64_t>(utf8_length(v.str.s)));
    case Value::Kind::List: return Value::integer(static_cast<int64_t>(v.list->size()));
    case Value::Kind::Dict: return Value::integer(static_cast<int64_t>(v.dict->size()));
    default: type_error(fmt::format("object of type '{}' has no len()", type_name(v)));
  }
}

Value f_default(Interpreter&, const Value& v, CallArgs& a) {
  Value def = a.get_or(0, "default_value", Value::string(""));
  bool boolean = bool_arg(a, 1, "boolean", false);
  if (v.is_undefined() || (boolean && !truthy(v))) return def;
  return v;
}

Value f_trim(Interpreter&, const Value& v, CallArgs& a) { return Value::string(py_strip(to_str(v), a.get(0, "chars"), true, true)); }

Value f_string(Interpreter&, const Value& v, CallArgs&) { return Value::string(to_str(v)); }

Value f_safe(Interpreter&, const Value& v, CallArgs&) { return v.is_str() ? v : Value::string(to_str(v)); }

Value f_upper(Interpreter&, const Value& v, CallArgs&) {
  Str s = to_str(v);
  return Value::string(Str::derived(py_upper(s.s), s.any_tainted()));
}

Value f_lower(Interpreter&, const Value& v, CallArgs&) {
  Str s = to_str(v);
  return Value::string(Str::derived(py_lower(s.s), s.any_tainted()));
}

Value f_capitalize(Interpreter& in, const Value& v, CallArgs& a) {
  Value m = bound_method(Value::string(to_str(v)), "capitalize");
  return in.call(m, a);
}

// Jinja2's title: each run after one of "-", whitespace, "(", "{", "[", "<"
// starts upper case, the rest lower case.
Value f_title(Interpreter&, const Value& v, CallArgs&) {
  Str s = to_str(v);
  std::vector<uint32_t> cps = code_points(s.s);
  bool start = true;
  for (uint32_t& c : cps) {
    bool sep = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || is_py_space(c);
    if (sep) {
      start = true;
      continue;
    }
    c = static_cast<uint32_t>(start ? code_points(py_upper(encode_utf8({c})))[0] : code_points(py_lower(encode_utf8({c})))[0]);
    start = false;
  }
  return Value::string(Str::derived(encode_utf8(cps), s.any_tainted()));
}

Value f_replace(Interpreter& in, const Value& v, CallArgs& a) {
  Str s = to_str(v);
  const Value* oldv = a.get(0, "old");
  const Value* newv = a.get(1, "new");
  if (!oldv || !newv) type_error("replace() needs 'old' and 'new'");
  if (oldv->is_undefined()) fail_undefined(*oldv);
  if (newv->is_undefined()) fail_undefined(*newv);
  Str olds = to_str(*oldv), news = to_str(*newv);
  int64_t count = -1;
  if (const Value* c = a.get(2, "count"); c && !c->is_none()) count = to_int64(*c, "count");
  Str out;
  size_t pos = 0;
  int64_t done = 0;
  if (olds.s.empty()) {
    std::vector<size_t> off = utf8_offsets(s.s);
    for (size_t i = 0; i + 1 < off.size() || i == 0; ++i) {
      if (count >= 0 && done >= count) break;
      out.append(news);
      ++done;
      in.check_size(out.s.size());
      if (i + 1 >= off.size()) {
        pos = s.s.size();
        break;
      }
      out.append(s.substr(off[i], off[i + 1]));
      pos = off[i + 1];
      if (i + 2 == off.size() && (count < 0 || done < count)) {
        out.append(news);
        ++done;
      }
    }
    out.append(s.substr(pos, s.s.size()));
    return Value::string(std::move(out));
  }
  while (count < 0 || done < count) {
    size_t f = s.s.find(olds.s, pos);
    if (f == std::string::npos) break;
    out.append(s.substr(pos, f));
    out.append(news);
    in.check_size(out.s.size());
    pos = f + olds.s.size();
    ++done;
  }
  out.append(s.substr(pos, s.s.size()));
  return Value::string(std::move(out));
}

Value f_tojson(Interpreter& in, const Value& v, CallArgs& a) {
  // transformers: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
  JsonStyle st;
  st.ensure_ascii = bool_arg(a, 0, "ensure_ascii", false);
  if (const Value* ind = a.get(1, "indent"); ind && !ind->is_none()) {
    if (ind->is_str()) {
      st.indent_text = ind->str.s;
      if (st.indent_text.empty()) st.indent = 0;
    } else {
      st.indent = static_cast<int>(std::clamp<int64_t>(to_int64(*ind, "indent"), 0, 64));
    }
  }
  if (const Value* sep = a.get(2, "separators"); sep && !sep->is_none()) {
    if (!sep->is_list() || sep->list->size() != 2) type_error("tojson: separators must be a pair of strings");
    st.custom_separators = true;
    st.item_sep = plain((*sep->list)[0]);
    st.key_sep = plain((*sep->list)[1]);
  }
  st.sort_keys = bool_arg(a, 3, "sort_keys", false);
  Str out = to_json(v, st);
  in.check_size(out.s.size());
  return Value::string(std::move(out));
}

Value f_join(Interpreter& in, const Value& v, CallArgs& a) {
  Str sep = to_str(a.get_or(0, "d", Value::string("")));
  const Value* attr = a.get(1, "attribute");
  Str out;
  bool first = true;
  for (const Value& x : in.iterate(v)) {
    if (!first) out.append(sep);
    first = false;
    out.append(to_str(attr ? get_path(in, x, *attr, nullptr) : x));
    in.check_size(out.s.size());
  }
  return Value::string(std::move(out));
}

Value f_first(Interpreter& in, const Value& v, CallArgs&) {
  List l = in.iterate(v);
  return l.empty() ? Value::undefined("No first item, sequence was empty.") : l.front();
}

Value f_last(Interpreter& in, const Value& v, CallArgs&) {
  List l = in.iterate(v);
  return l.empty() ? Value::undefined("No last item, sequence was empty.") : l.back();
}

Value f_list(Interpreter& in, const Value& v, CallArgs&) { return Value::make_list(in.iterate(v)); }

Value f_items(Interpreter& in, const Value& v, CallArgs&) {
  if (v.is_undefined()) return Value::make_list();
  if (!v.is_dict()) type_error(fmt::format("can only get item pairs from a mapping, not {}", type_name(v)));
  CallArgs none;
  return in.call(bound_method(v, "items"), none);
}

Value f_reverse(Interpreter& in, const Value& v, CallArgs&) {
  if (v.is_str()) {
    std::vector<uint32_t> cps = code_points(v.str.s);
    std::reverse(cps.begin(), cps.end());
    return Value::string(Str::derived(encode_utf8(cps), v.str.any_tainted()));
  }
  List l = in.iterate(v);
  std::reverse(l.begin(), l.end());
  return Value::make_list(std::move(l));
}

// select / reject / selectattr / rejectattr
Value select_impl(Interpreter& in, const Value& v, CallArgs& a, bool by_attr, bool keep) {
  size_t next = 0;
  Value attr;
  if (by_attr) {
    if (a.pos.empty()) type_error("selectattr needs an attribute");
    attr = a.pos[next++];
  }
  std::string test;
  if (next < a.pos.size()) test = plain(a.pos[next++]);
  CallArgs targs;
  targs.pos.assign(a.pos.begin() + static_cast<ptrdiff_t>(next), a.pos.end());
  targs.kw = a.kw;
  List out;
  for (const Value& x : in.iterate(v)) {
    Value subject = by_attr ? get_path(in, x, attr, nullptr) : x;
    bool ok = test.empty() ? truthy(subject) : in.test(test, subject, targs);
    if (ok == keep) out.push_back(x);
  }
  return Value::make_list(std::move(out));
}

Value f_select(Interpreter& in, const Value& v, CallArgs& a) { return select_impl(in, v, a, false, true); }
Value f_reject(Interpreter& in, const Value& v, CallArgs& a) { return select_impl(in, v, a, false, false); }
Value f_selectattr(Interpreter& in, const Value& v, CallArgs& a) { return select_impl(in, v, a, true, true); }
Value f_rejectattr(Interpreter& in, const Value& v, CallArgs& a) { return select_impl(in, v, a, true, false); }

Value f_map(Interpreter& in, const Value& v, CallArgs& a) {
  List out;
  const Value* attr = nullptr;
  for (const auto& [k, x] : a.kw)
    if (k == "attribute") attr = &x;
  if (attr) {
    const Value* def = nullptr;
    for (const auto& [k, x] : a.kw)
      if (k == "default") def = &x;
    for (const Value& x : in.iterate(v)) out.push_back(get_path(in, x, *attr, def));
    return Value::make_list(std::move(out));
  }
  if (a.pos.empty()) type_error("map requires a filter argument");
  std::string name = plain(a.pos[0]);
  CallArgs fargs;
  fargs.pos.assign(a.pos.begin() + 1, a.pos.end());
  fargs.kw = a.kw;
  for (const Value& x : in.iterate(v)) out.push_back(in.filter(name, x, fargs));
  return Value::make_list(std::move(out));
}

Value f_attr(Interpreter& in, const Value& v, CallArgs& a) {
  return in.getattr(v, plain(a.get_or(0, "name", Value::string(""))));
}

Value f_int(Interpreter&, const Value& v, CallArgs& a) {
  Value def = a.get_or(0, "default", Value::integer(0));
  int64_t base = 10;
  if (const Value* b = a.get(1, "base")) base = b->as_int();
  if (v.is_int_like()) return Value::integer(v.as_int());
  if (v.kind == Value::Kind::Float) {
    if (!std::isfinite(v.f) || std::fabs(v.f) > 9.2e18) return def;
    return Value::integer(static_cast<int64_t>(v.f));
  }
  if (v.is_str()) {
    std::string s = py_strip(v.str, nullptr, true, true).s;
    std::string digits;
    for (char c : s)
      if (c != '_') digits += c;
    try {
      size_t used = 0;
      long long x = std::stoll(digits, &used, static_cast<int>(base));
      if (used == digits.size() && !digits.empty()) return Value::integer(x);
    } catch (const std::exception&) {
    }
    try {
      size_t used = 0;
      double d = std::stod(s, &used);
      if (used == s.size() && std::isfinite(d) && std::fabs(d) < 9.2e18) return Value::integer(static_cast<int64_t>(d));
    } catch (const std::exception&) {
    }
  }
  return def;
}

Value f_float(Interpreter&, const Value& v, CallArgs& a) {
  Value def = a.get_or(0, "default", Value::floating(0.0));
  if (v.is_number()) return Value::floating(v.as_double());
  if (v.is_str()) {
    std::string s = py_strip(v.str, nullptr, true, true).s;
    try {
      size_t used = 0;
      double d = std::stod(s, &used);
      if (used == s.size()) return Value::floating(d);
    } catch (const std::exception&) {
    }
  }
  return def;
}

Value f_abs(Interpreter&, const Value& v, CallArgs&) {
  if (v.kind == Value::Kind::Float) return Value::floating(std::fabs(v.f));
  if (v.is_int_like()) {
    if (v.as_int() == INT64_MIN) type_error("integer overflow");
    return Value::integer(std::llabs(v.as_int()));
  }
  type_error(fmt::format("bad operand type for abs(): '{}'", type_name(v)));
}

Value f_round(Interpreter&, const Value& v, CallArgs& a) {
  if (!v.is_number()) type_error("round: a number is required");
  int64_t precision = a.get_or(0, "precision", Value::integer(0)).as_int();
  std::string method = plain(a.get_or(1, "method", Value::string("common")));
  double scale = std::pow(10.0, static_cast<double>(precision));
  double x = v.as_double() * scale;
  if (method == "common") {
    x = std::nearbyint(x);  // Python's round: half to even
  } else if (method == "ceil") {
    x = std::ceil(x);
  } else if (method == "floor") {
    x = std::floor(x);
  } else {
    type_error("method must be 'common', 'ceil' or 'floor'");
  }
  return Value::floating(x / scale);
}

// indent(width=4, first=False, blank=False)
Value f_indent(Interpreter& in, const Value& v, CallArgs& a) {
  Str s = to_str(v);
  Value w = a.get_or(0, "width", Value::integer(4));
  Str ind = w.is_str() ? w.str : Str(std::string(static_cast<size_t>(std::clamp<int64_t>(w.as_int(), 0, 1 << 16)), ' '));
  bool first = bool_arg(a, 1, "first", false);
  bool blank = bool_arg(a, 2, "blank", false);
  std::vector<Str> lines;
  size_t b = 0;
  for (size_t i = 0; i <= s.s.size(); ++i) {
    if (i == s.s.size() || s.s[i] == '\n' || s.s[i] == '\r') {
      if (i == s.s.size() && b == i) break;
      lines.push_back(s.substr(b, i));
      if (i < s.s.size() && s.s[i] == '\r' && i + 1 < s.s.size() && s.s[i + 1] == '\n') ++i;
      b = i + 1;
    }
  }
  Str out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i) out.append_plain("\n");
    if (i > 0 && (blank || !lines[i].s.empty())) out.append(ind);
    out.append(lines[i]);
    in.check_size(out.s.size());
  }
  if (first) {
    Str r = ind;
    r.append(out);
    out = std::move(r);
  }
  return Value::string(std::move(out));
}

List sorted_list(Interpreter& in, const Value& v, bool reverse, bool case_sensitive, const Value* attr) {
  List l = in.iterate(v);
  std::vector<std::pair<Value, size_t>> keys;
  for (size_t i = 0; i < l.size(); ++i)
    keys.emplace_back(lower_if(attr ? get_path(in, l[i], *attr, nullptr) : l[i], case_sensitive), i);
  std::stable_sort(keys.begin(), keys.end(), [&](const auto& x, const auto& y) {
    return reverse ? less_than(y.first, x.first) : less_than(x.first, y.first);
  });
  List out;
  for (const auto& k : keys) out.push_back(l[k.second]);
  return out;
}

Value f_sort(Interpreter& in, const Value& v, CallArgs& a) {
  const Value* attr = a.get(2, "attribute");
  return Value::make_list(sorted_list(in, v, bool_arg(a, 0, "reverse", false), bool_arg(a, 1, "case_sensitive", false),
                                      attr && !attr->is_none() ? attr : nullptr));
}

Value f_dictsort(Interpreter&, const Value& v, CallArgs& a) {
  if (!v.is_dict()) type_error("dictsort: a mapping is required");
  bool cs = bool_arg(a, 0, "case_sensitive", false);
  std::string by = plain(a.get_or(1, "by", Value::string("key")));
  bool reverse = bool_arg(a, 2, "reverse", false);
  List items;
  for (const auto& [k, x] : v.dict->items())
    items.push_back(Value::make_list({Value::string(Str(k, v.dict->keys_tainted)), x}, true));
  size_t idx = by == "value" ? 1 : 0;
  std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
    Value kx = lower_if((*x.list)[idx], cs), ky = lower_if((*y.list)[idx], cs);
    return reverse ? less_than(ky, kx) : less_than(kx, ky);
  });
  return Value::make_list(std::move(items));
}

Value f_unique(Interpreter& in, const Value& v, CallArgs& a) {
  bool cs = bool_arg(a, 0, "case_sensitive", false);
  const Value* attr = a.get(1, "attribute");
  List out, seen;
  for (const Value& x : in.iterate(v)) {
    Value key = lower_if(attr && !attr->is_none() ? get_path(in, x, *attr, nullptr) : x, cs);
    bool dup = false;
    for (const Value& s : seen)
      if (equals(s, key)) dup = true;
    if (dup) continue;
    seen.push_back(key);
    out.push_back(x);
  }
  return Value::make_list(std::move(out));
}

Value minmax(Interpreter& in, const Value& v, CallArgs& a, bool want_max) {
  bool cs = bool_arg(a, 0, "case_sensitive", false);
  const Value* attr = a.get(1, "attribute");
  List l = in.iterate(v);
  if (l.empty()) return Value::undefined(want_max ? "No aggregated item, sequence was empty." : "No aggregated item, sequence was empty.");
  size_t best = 0;
  auto key = [&](size_t i) { return lower_if(attr && !attr->is_none() ? get_path(in, l[i], *attr, nullptr) : l[i], cs); };
  for (size_t i = 1; i < l.size(); ++i)
    if (want_max ? less_than(key(best), key(i)) : less_than(key(i), key(best))) best = i;
  return l[best];
}

Value f_max(Interpreter& in, const Value& v, CallArgs& a) { return minmax(in, v, a, true); }
Value f_min(Interpreter& in, const Value& v, CallArgs& a) { return minmax(in, v, a, false); }

Value f_sum(Interpreter& in, const Value& v, CallArgs& a) {
  const Value* attr = a.get(0, "attribute");
  Value total = a.get_or(1, "start", Value::integer(0));
  CallArgs none;
  for (const Value& x : in.iterate(v)) {
    Value item = attr && !attr->is_none() ? get_path(in, x, *attr, nullptr) : x;
    if (!total.is_number() || !item.is_number()) type_error("sum: unsupported operand types");
    if (total.kind == Value::Kind::Float || item.kind == Value::Kind::Float) {
      total = Value::floating(total.as_double() + item.as_double());
    } else {
      int64_t r;
      if (__builtin_add_overflow(total.as_int(), item.as_int(), &r)) type_error("integer overflow");
      total = Value::integer(r);
    }
  }
  return total;
}

Value f_batch(Interpreter& in, const Value& v, CallArgs& a) {
  int64_t n = to_int64(a.get_or(0, "linecount", Value::integer(1)), "linecount");
  if (n <= 0) type_error("batch size must be positive");
  const Value* fill = a.get(1, "fill_with");
  List out, cur;
  for (const Value& x : in.iterate(v)) {
    cur.push_back(x);
    if (static_cast<int64_t>(cur.size()) == n) {
      out.push_back(Value::make_list(std::move(cur)));
      cur.clear();
    }
  }
  if (!cur.empty()) {
    if (fill && !fill->is_none())
      while (static_cast<int64_t>(cur.size()) < n) cur.push_back(*fill);
    out.push_back(Value::make_list(std::move(cur)));
  }
  return Value::make_list(std::move(out));
}

Value f_escape(Interpreter&, const Value& v, CallArgs&) {
  Str s = to_str(v);
  std::string out;
  for (char c : s.s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return Value::string(Str::derived(std::move(out), s.any_tainted()));
}

Value f_center(Interpreter& in, const Value& v, CallArgs& a) {
  CallArgs ca;
  ca.pos.push_back(a.get_or(0, "width", Value::integer(80)));
  return in.call(bound_method(Value::string(to_str(v)), "center"), ca);
}

Value f_format(Interpreter&, const Value& v, CallArgs& a) {
  if (!a.kw.empty()) type_error("format filter with keyword arguments is not supported");
  return Value::string(percent_format(to_str(v), Value::make_list(a.pos, true)));
}

Value f_truncate(Interpreter&, const Value& v, CallArgs& a) {
  Str s = to_str(v);
  int64_t length = a.get_or(0, "length", Value::integer(255)).as_int();
  bool killwords = bool_arg(a, 1, "killwords", false);
  Str end = to_str(a.get_or(2, "end", Value::string("...")));
  int64_t leeway = a.get_or(3, "leeway", Value::integer(5)).as_int();
  std::vector<size_t> off = utf8_offsets(s.s);
  int64_t n = static_cast<int64_t>(off.size()) - 1;
  if (n <= length + leeway) return Value::string(s);
  int64_t keep = std::clamp<int64_t>(length - static_cast<int64_t>(utf8_length(end.s)), 0, n);
  Str head = s.substr(0, off[static_cast<size_t>(keep)]);
  if (!killwords) {
    size_t sp = head.s.rfind(' ');
    if (sp != std::string::npos) head = head.substr(0, sp);
  }
  head.append(end);
  return Value::string(std::move(head));
}

Value f_wordcount(Interpreter&, const Value& v, CallArgs&) {
  return Value::integer(static_cast<int64_t>(py_split(to_str(v), nullptr, -1).size()));
}

Value f_pprint(Interpreter&, const Value& v, CallArgs&) { return Value::string(Str::derived(repr(v), false)); }

Value f_groupby(Interpreter& in, const Value& v, CallArgs& a) {
  const Value* attr = a.get(0, "attribute");
  if (!attr) type_error("groupby needs an attribute");
  const Value* def = a.get(1, "default");
  bool cs = bool_arg(a, 2, "case_sensitive", false);
  List sorted = sorted_list(in, v, false, cs, attr);
  List groups;
  for (const Value& x : sorted) {
    Value key = get_path(in, x, *attr, def);
    Value cmp = lower_if(key, cs);
    if (!groups.empty() && equals(lower_if((*groups.back().list)[0], cs), cmp)) {
      (*groups.back().list)[1].list->push_back(x);
    } else {
      groups.push_back(Value::make_list({key, Value::make_list({x})}, true));
    }
  }
  return Value::make_list(std::move(groups));
}

const std::unordered_map<std::string, Filter>& table() {
  static const std::unordered_map<std::string, Filter> t = {
      {"abs", f_abs},           {"attr", f_attr},         {"batch", f_batch},
      {"capitalize", f_capitalize}, {"center", f_center}, {"count", f_length},
      {"d", f_default},         {"default", f_default},   {"dictsort", f_dictsort},
      {"e", f_escape},          {"escape", f_escape},     {"forceescape", f_escape},
      {"first", f_first},       {"float", f_float},       {"format", f_format},
      {"groupby", f_groupby},   {"indent", f_indent},     {"int", f_int},
      {"items", f_items},       {"join", f_join},         {"last", f_last},
      {"length", f_length},     {"list", f_list},         {"lower", f_lower},
      {"map", f_map},           {"max", f_max},           {"min", f_min},
      {"pprint", f_pprint},     {"reject", f_reject},     {"rejectattr", f_rejectattr},
      {"replace", f_replace},   {"reverse", f_reverse},   {"round", f_round},
      {"safe", f_safe},         {"select", f_select},     {"selectattr", f_selectattr},
      {"sort", f_sort},         {"string", f_string},     {"sum", f_sum},
      {"title", f_title},       {"tojson", f_tojson},     {"trim", f_trim},
      {"truncate", f_truncate}, {"unique", f_unique},     {"upper", f_upper},
      {"wordcount", f_wordcount},
  };
  return t;
}

}  // namespace

int64_t to_int64(const Value& v, const char* what) {
  if (v.is_int_like()) return v.as_int();
  if (v.kind == Value::Kind::Float && std::isfinite(v.f) && std::fabs(v.f) < 9.2e18) return static_cast<int64_t>(v.f);
  type_error(fmt::format("'{}' must be an integer, not {}", what, type_name(v)));
}

bool is_known_filter(const std::string& name) { return table().count(name) != 0; }

Value apply_filter(Interpreter& in, const std::string& name, const Value& v, CallArgs& args) {
  auto it = table().find(name);
  if (it == table().end()) throw TemplateError(fmt::format("no filter named '{}'", name));
  return it->second(in, v, args);
}

}  // namespace strata::jinja
