// Methods of str, dict and list that templates call (message.content.strip(),
// tool.items(), ...), with Python's semantics, and the string helpers the
// filters share.
#include <algorithm>

#include <fmt/format.h>
#include <utf8proc.h>

#include "tokenizer/jinja/builtins.h"

namespace strata::jinja {

std::vector<uint32_t> code_points(std::string_view s) {
  std::vector<uint32_t> cps;
  cps.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    uint32_t cp = len == 1 ? c : (c & (0x7F >> len));
    for (int k = 1; k < len && i + static_cast<size_t>(k) < s.size(); ++k)
      cp = (cp << 6) | (static_cast<unsigned char>(s[i + static_cast<size_t>(k)]) & 0x3F);
    cps.push_back(cp);
    i += static_cast<size_t>(len);
  }
  return cps;
}

std::string encode_utf8(const std::vector<uint32_t>& cps) {
  std::string out;
  for (uint32_t cp : cps) {
    utf8proc_uint8_t buf[4];
    utf8proc_ssize_t n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(cp), buf);
    out.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
  }
  return out;
}

bool is_py_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

std::string py_upper(std::string_view s) {
  std::vector<uint32_t> cps = code_points(s);
  for (uint32_t& c : cps) c = static_cast<uint32_t>(utf8proc_toupper(static_cast<utf8proc_int32_t>(c)));
  return encode_utf8(cps);
}

std::string py_lower(std::string_view s) {
  std::vector<uint32_t> cps = code_points(s);
  for (uint32_t& c : cps) c = static_cast<uint32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c)));
  return encode_utf8(cps);
}

Str py_strip(const Str& s, const Value* chars, bool left, bool right) {
  std::vector<uint32_t> set;
  bool ws = !chars || chars->is_none() || chars->is_undefined();
  if (!ws) {
    if (!chars->is_str()) type_error("strip arg must be None or str");
    set = code_points(chars->str.s);
  }
  auto strip_cp = [&](uint32_t cp) { return ws ? is_py_space(cp) : std::find(set.begin(), set.end(), cp) != set.end(); };
  std::vector<size_t> off = utf8_offsets(s.s);
  std::vector<uint32_t> cps = code_points(s.s);
  size_t b = 0, e = cps.size();
  if (left)
    while (b < e && strip_cp(cps[b])) ++b;
  if (right)
    while (e > b && strip_cp(cps[e - 1])) --e;
  return s.substr(off[b], off[e]);
}

List py_split(const Str& s, const Value* sep, int64_t maxsplit) {
  List out;
  if (!sep || sep->is_none()) {
    std::vector<size_t> off = utf8_offsets(s.s);
    std::vector<uint32_t> cps = code_points(s.s);
    size_t i = 0, n = cps.size();
    while (true) {
      while (i < n && is_py_space(cps[i])) ++i;
      if (i >= n) break;
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) >= maxsplit) {
        size_t e = n;
        while (e > i && is_py_space(cps[e - 1])) --e;
        out.push_back(Value::string(s.substr(off[i], off[e])));
        break;
      }
      size_t j = i;
      while (j < n && !is_py_space(cps[j])) ++j;
      out.push_back(Value::string(s.substr(off[i], off[j])));
      i = j;
    }
    return out;
  }
  if (!sep->is_str()) type_error(fmt::format("must be str or None, not {}", type_name(*sep)));
  const std::string& d = sep->str.s;
  if (d.empty()) type_error("empty separator");
  size_t pos = 0;
  while (true) {
    size_t f = (maxsplit >= 0 && static_cast<int64_t>(out.size()) >= maxsplit) ? std::string::npos : s.s.find(d, pos);
    if (f == std::string::npos) {
      out.push_back(Value::string(s.substr(pos, s.s.size())));
      break;
    }
    out.push_back(Value::string(s.substr(pos, f)));
    pos = f + d.size();
  }
  return out;
}

namespace {

int64_t int_arg(const CallArgs& a, size_t i, std::string_view name, int64_t def) {
  const Value* v = a.get(i, name);
  if (!v || v->is_none()) return def;
  if (!v->is_int_like()) type_error(fmt::format("'{}' object cannot be interpreted as an integer", type_name(*v)));
  return v->as_int();
}

const std::string& str_arg(const CallArgs& a, size_t i, std::string_view name, const char* method) {
  const Value* v = a.get(i, name);
  if (!v) type_error(fmt::format("{}() missing required argument '{}'", method, name));
  if (!v->is_str()) type_error(fmt::format("{}() argument must be str, not {}", method, type_name(*v)));
  return v->str.s;
}

bool prefix_match(const Value& self, const CallArgs& a, bool suffix) {
  const Value* p = a.get(0, "prefix");
  if (!p) type_error("startswith() takes at least 1 argument");
  auto one = [&](const Value& x) {
    if (!x.is_str()) type_error("startswith first arg must be str or a tuple of str");
    const std::string& s = self.str.s;
    const std::string& t = x.str.s;
    if (t.size() > s.size()) return false;
    return suffix ? s.compare(s.size() - t.size(), t.size(), t) == 0 : s.compare(0, t.size(), t) == 0;
  };
  if (p->is_list()) {
    for (const Value& x : *p->list)
      if (one(x)) return true;
    return false;
  }
  return one(*p);
}

std::string title_case(std::string_view s) {
  std::vector<uint32_t> cps = code_points(s);
  bool prev_cased = false;
  for (uint32_t& c : cps) {
    auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
    bool cased = cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT;
    if (cased) {
      c = static_cast<uint32_t>(prev_cased ? utf8proc_tolower(static_cast<utf8proc_int32_t>(c))
                                           : utf8proc_toupper(static_cast<utf8proc_int32_t>(c)));
    }
    prev_cased = cased;
  }
  return encode_utf8(cps);
}

// Python's str.format for "{}", "{0}", "{name}" fields (format specs and
// conversions other than !s/!r are refused).
Str str_format(Interpreter& in, const Str& f, CallArgs& a) {
  Str out;
  size_t auto_index = 0, lit = 0;
  const std::string& s = f.s;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '}' && i + 1 < s.size() && s[i + 1] == '}') {
      out.append(f.substr(lit, i + 1));
      lit = ++i + 1;
      continue;
    }
    if (s[i] != '{') continue;
    out.append(f.substr(lit, i));
    if (i + 1 < s.size() && s[i + 1] == '{') {
      out.append_plain("{");
      lit = ++i + 1;
      continue;
    }
    size_t e = s.find('}', i);
    if (e == std::string::npos) type_error("Single '{' encountered in format string");
    std::string field = s.substr(i + 1, e - i - 1);
    bool use_repr = false;
    if (field.size() >= 2 && field[field.size() - 2] == '!') {
      use_repr = field.back() == 'r';
      field.resize(field.size() - 2);
    }
    if (field.find(':') != std::string::npos) type_error("format specs in str.format are not supported");
    Value v;
    if (field.empty()) {
      v = a.get_or(auto_index++, "\x01", Value::undefined("format index out of range"));
    } else if (std::all_of(field.begin(), field.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      v = a.get_or(static_cast<size_t>(std::stoul(field)), "\x01", Value::undefined("format index out of range"));
    } else {
      v = a.get_or(SIZE_MAX, field, Value::undefined(fmt::format("format key '{}' missing", field)));
    }
    if (v.is_undefined()) fail_undefined(v);
    out.append(use_repr ? Str(repr(v), v.is_str() && v.str.any_tainted()) : to_str(v));
    in.check_size(out.s.size());
    lit = e + 1;
    i = e;
  }
  out.append(f.substr(lit, s.size()));
  return out;
}

Value str_method(const Value& self, const std::string& name) {
  using F = NativeFn;
  F f;
  const Str& s = self.str;
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    bool l = name != "rstrip", r = name != "lstrip";
    f = [s, l, r](Interpreter&, CallArgs& a) { return Value::string(py_strip(s, a.get(0, "chars"), l, r)); };
  } else if (name == "split") {
    f = [s](Interpreter&, CallArgs& a) {
      return Value::make_list(py_split(s, a.get(0, "sep"), int_arg(a, 1, "maxsplit", -1)));
    };
  } else if (name == "rsplit") {
    f = [s](Interpreter&, CallArgs& a) {
      int64_t maxsplit = int_arg(a, 1, "maxsplit", -1);
      List all = py_split(s, a.get(0, "sep"), -1);
      const Value* sep = a.get(0, "sep");
      if (maxsplit < 0 || static_cast<int64_t>(all.size()) <= maxsplit + 1) return Value::make_list(std::move(all));
      if (!sep || sep->is_none()) type_error("rsplit() with maxsplit and no separator is not supported");
      // Join the leading pieces back with the separator.
      size_t keep = all.size() - static_cast<size_t>(maxsplit);
      Str head;
      for (size_t i = 0; i < keep; ++i) {
        if (i) head.append_plain(sep->str.s);
        head.append(all[i].str);
      }
      List out{Value::string(std::move(head))};
      out.insert(out.end(), all.begin() + static_cast<ptrdiff_t>(keep), all.end());
      return Value::make_list(std::move(out));
    };
  } else if (name == "splitlines") {
    f = [s](Interpreter&, CallArgs& a) {
      bool keep = truthy(a.get_or(0, "keepends", Value::boolean(false)));
      List out;
      size_t b = 0;
      for (size_t i = 0; i < s.s.size(); ++i) {
        if (s.s[i] != '\n' && s.s[i] != '\r') continue;
        size_t e = i;
        if (s.s[i] == '\r' && i + 1 < s.s.size() && s.s[i + 1] == '\n') ++i;
        out.push_back(Value::string(s.substr(b, keep ? i + 1 : e)));
        b = i + 1;
      }
      if (b < s.s.size()) out.push_back(Value::string(s.substr(b, s.s.size())));
      return Value::make_list(std::move(out));
    };
  } else if (name == "startswith" || name == "endswith") {
    bool suffix = name == "endswith";
    f = [self, suffix](Interpreter&, CallArgs& a) { return Value::boolean(prefix_match(self, a, suffix)); };
  } else if (name == "upper" || name == "lower" || name == "title" || name == "capitalize" || name == "casefold") {
    f = [s, name](Interpreter&, CallArgs&) {
      std::string r;
      if (name == "upper") {
        r = py_upper(s.s);
      } else if (name == "lower" || name == "casefold") {
        r = py_lower(s.s);
      } else if (name == "title") {
        r = title_case(s.s);
      } else {
        std::vector<uint32_t> cps = code_points(py_lower(s.s));
        if (!cps.empty()) cps[0] = static_cast<uint32_t>(utf8proc_toupper(static_cast<utf8proc_int32_t>(cps[0])));
        r = encode_utf8(cps);
      }
      return Value::string(Str::derived(std::move(r), s.any_tainted()));
    };
  } else if (name == "replace") {
    f = [self](Interpreter& in, CallArgs& a) {
      CallArgs fa;
      fa.pos = {a.get_or(0, "old", Value::undefined("replace() missing 'old'")),
                a.get_or(1, "new", Value::undefined("replace() missing 'new'")),
                a.get_or(2, "count", Value::integer(-1))};
      return in.filter("replace", self, fa);
    };
  } else if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
    f = [s, name](Interpreter&, CallArgs& a) {
      const std::string& sub = str_arg(a, 0, "sub", name.c_str());
      if (name == "count") {
        if (sub.empty()) return Value::integer(static_cast<int64_t>(utf8_length(s.s)) + 1);
        int64_t n = 0;
        for (size_t p = s.s.find(sub); p != std::string::npos; p = s.s.find(sub, p + sub.size())) ++n;
        return Value::integer(n);
      }
      size_t p = name[0] == 'r' ? s.s.rfind(sub) : s.s.find(sub);
      if (p == std::string::npos) {
        if (name == "index" || name == "rindex") type_error("substring not found");
        return Value::integer(-1);
      }
      return Value::integer(static_cast<int64_t>(utf8_length(std::string_view(s.s).substr(0, p))));
    };
  } else if (name == "join") {
    f = [s](Interpreter& in, CallArgs& a) {
      CallArgs fa;
      fa.pos = {Value::string(s)};
      List items = in.iterate(a.get_or(0, "iterable", Value::undefined("join() missing its argument")));
      for (const Value& x : items)
        if (!x.is_str()) type_error(fmt::format("sequence item: expected str instance, {} found", type_name(x)));
      return in.filter("join", Value::make_list(std::move(items)), fa);
    };
  } else if (name == "format") {
    f = [s](Interpreter& in, CallArgs& a) { return Value::string(str_format(in, s, a)); };
  } else if (name == "isdigit" || name == "isnumeric" || name == "isdecimal" || name == "isalpha" ||
             name == "isalnum" || name == "isspace" || name == "isupper" || name == "islower") {
    f = [s, name](Interpreter&, CallArgs&) {
      std::vector<uint32_t> cps = code_points(s.s);
      if (cps.empty()) return Value::boolean(false);
      bool cased = false, ok = true;
      for (uint32_t c : cps) {
        auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
        bool digit = cat == UTF8PROC_CATEGORY_ND;
        bool alpha = cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
        bool upper = cat == UTF8PROC_CATEGORY_LU, lower = cat == UTF8PROC_CATEGORY_LL;
        if (name == "isdigit" || name == "isnumeric" || name == "isdecimal") ok &= digit;
        if (name == "isalpha") ok &= alpha;
        if (name == "isalnum") ok &= alpha || digit;
        if (name == "isspace") ok &= is_py_space(c);
        if (name == "isupper") {
          ok &= !lower;
          cased |= upper;
        }
        if (name == "islower") {
          ok &= !upper;
          cased |= lower;
        }
      }
      if (name == "isupper" || name == "islower") ok &= cased;
      return Value::boolean(ok);
    };
  } else if (name == "removeprefix" || name == "removesuffix") {
    f = [s, name](Interpreter&, CallArgs& a) {
      const std::string& x = str_arg(a, 0, "prefix", name.c_str());
      if (x.size() > s.s.size()) return Value::string(s);
      if (name == "removeprefix") return Value::string(s.s.compare(0, x.size(), x) == 0 ? s.substr(x.size(), s.s.size()) : s);
      return Value::string(s.s.compare(s.s.size() - x.size(), x.size(), x) == 0 ? s.substr(0, s.s.size() - x.size()) : s);
    };
  } else if (name == "partition" || name == "rpartition") {
    f = [s, name](Interpreter&, CallArgs& a) {
      const std::string& sep = str_arg(a, 0, "sep", name.c_str());
      if (sep.empty()) type_error("empty separator");
      size_t p = name == "partition" ? s.s.find(sep) : s.s.rfind(sep);
      if (p == std::string::npos) {
        List l = name == "partition" ? List{Value::string(s), Value::string(""), Value::string("")}
                                     : List{Value::string(""), Value::string(""), Value::string(s)};
        return Value::make_list(std::move(l), true);
      }
      return Value::make_list({Value::string(s.substr(0, p)), Value::string(s.substr(p, p + sep.size())),
                               Value::string(s.substr(p + sep.size(), s.s.size()))},
                              true);
    };
  } else if (name == "zfill" || name == "center" || name == "ljust" || name == "rjust") {
    f = [s, name](Interpreter& in, CallArgs& a) {
      int64_t width = int_arg(a, 0, "width", 0);
      in.check_size(static_cast<size_t>(std::max<int64_t>(width, 0)));
      int64_t n = static_cast<int64_t>(utf8_length(s.s));
      if (width <= n) return Value::string(s);
      size_t pad = static_cast<size_t>(width - n);
      std::string fill = name == "zfill" ? "0" : plain(a.get_or(1, "fillchar", Value::string(" ")));
      auto rep = [&](size_t k) {
        std::string r;
        for (size_t i = 0; i < k; ++i) r += fill;
        return Str(r);
      };
      Str out;
      if (name == "ljust") {
        out = s;
        out.append(rep(pad));
      } else if (name == "center") {
        size_t left = pad / 2 + (pad & static_cast<size_t>(width) & 1);
        out = rep(left);
        out.append(s);
        out.append(rep(pad - left));
      } else if (name == "zfill" && !s.s.empty() && (s.s[0] == '-' || s.s[0] == '+')) {
        out = s.substr(0, 1);
        out.append(rep(pad));
        out.append(s.substr(1, s.s.size()));
      } else {
        out = rep(pad);
        out.append(s);
      }
      return Value::string(std::move(out));
    };
  } else {
    return Value::undefined("");
  }
  return Value::function("str." + name, std::move(f));
}

Value unsafe_method(const Value& self, const std::string& name) {
  std::string tn = type_name(self);
  return Value::function(tn + "." + name, [tn, name](Interpreter&, CallArgs&) -> Value {
    throw TemplateError(fmt::format("access to attribute '{}' of '{}' object is unsafe (the sandbox forbids "
                                    "modifying lists and dicts)",
                                    name, tn));
  });
}

Value dict_method(const Value& self, const std::string& name) {
  std::shared_ptr<Dict> d = self.dict;
  if (name == "items" || name == "keys" || name == "values") {
    return Value::function("dict." + name, [d, name](Interpreter&, CallArgs&) {
      List out;
      for (const auto& [k, v] : d->items()) {
        Value key = Value::string(Str(k, d->keys_tainted));
        if (name == "items") {
          out.push_back(Value::make_list({key, v}, true));
        } else {
          out.push_back(name == "keys" ? key : v);
        }
      }
      return Value::make_list(std::move(out));
    });
  }
  if (name == "get") {
    return Value::function("dict.get", [d](Interpreter&, CallArgs& a) {
      const Value* k = a.get(0, "key");
      if (!k) type_error("get expected at least 1 argument");
      if (k->is_str())
        if (const Value* v = d->find(k->str.s)) return *v;
      return a.get_or(1, "default", Value::none());
    });
  }
  if (name == "copy") {
    return Value::function("dict.copy", [d](Interpreter&, CallArgs&) { return Value::make_dict(*d); });
  }
  if (name == "pop" || name == "popitem" || name == "setdefault" || name == "update" || name == "clear")
    return unsafe_method(self, name);
  return Value::undefined("");
}

Value list_method(const Value& self, const std::string& name) {
  std::shared_ptr<List> l = self.list;
  if (name == "index" || name == "count") {
    return Value::function("list." + name, [l, name](Interpreter&, CallArgs& a) {
      const Value* x = a.get(0, "value");
      if (!x) type_error(fmt::format("{}() takes exactly one argument", name));
      int64_t n = 0;
      for (size_t i = 0; i < l->size(); ++i) {
        if (!equals((*l)[i], *x)) continue;
        if (name == "index") return Value::integer(static_cast<int64_t>(i));
        ++n;
      }
      if (name == "index") type_error(fmt::format("{} is not in list", repr(*x)));
      return Value::integer(n);
    });
  }
  if (name == "copy" && !self.is_tuple) {
    return Value::function("list.copy", [l](Interpreter&, CallArgs&) { return Value::make_list(*l); });
  }
  if (!self.is_tuple && (name == "append" || name == "extend" || name == "insert" || name == "pop" ||
                         name == "remove" || name == "reverse" || name == "sort" || name == "clear"))
    return unsafe_method(self, name);
  return Value::undefined("");
}

}  // namespace

Value bound_method(const Value& obj, const std::string& name) {
  switch (obj.kind) {
    case Value::Kind::Str: return str_method(obj, name);
    case Value::Kind::Dict: return obj.is_namespace ? Value::undefined("") : dict_method(obj, name);
    case Value::Kind::List: return list_method(obj, name);
    default: return Value::undefined("");
  }
}

}  // namespace strata::jinja
