#include "tokenizer/jinja/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include <fmt/format.h>

namespace strata::jinja {

Str::Str(std::string text, bool from_variable) : s(std::move(text)) {
  if (from_variable && !s.empty()) tainted.push_back({0, static_cast<uint32_t>(s.size())});
}

void Str::append(const Str& o) {
  uint32_t base = static_cast<uint32_t>(s.size());
  s += o.s;
  for (Span sp : o.tainted) {
    Span t{sp.begin + base, sp.end + base};
    if (!tainted.empty() && tainted.back().end == t.begin) {
      tainted.back().end = t.end;
    } else {
      tainted.push_back(t);
    }
  }
}

Str Str::substr(size_t begin, size_t end) const {
  Str r;
  end = std::min(end, s.size());
  if (begin >= end) return r;
  r.s = s.substr(begin, end - begin);
  for (Span sp : tainted) {
    size_t b = std::max<size_t>(sp.begin, begin), e = std::min<size_t>(sp.end, end);
    if (b < e) r.tainted.push_back({static_cast<uint32_t>(b - begin), static_cast<uint32_t>(e - begin)});
  }
  return r;
}

Str Str::derived(std::string text, bool is_tainted) { return Str(std::move(text), is_tainted); }

Value* Dict::find(std::string_view key) {
  auto it = index_.find(std::string(key));
  return it == index_.end() ? nullptr : &items_[it->second].second;
}

const Value* Dict::find(std::string_view key) const {
  auto it = index_.find(std::string(key));
  return it == index_.end() ? nullptr : &items_[it->second].second;
}

void Dict::set(const std::string& key, Value v) {
  if (Value* p = find(key)) {
    *p = std::move(v);
    return;
  }
  index_.emplace(key, items_.size());
  items_.emplace_back(key, std::move(v));
}

bool Dict::erase(const std::string& key) {
  auto it = index_.find(key);
  if (it == index_.end()) return false;
  items_.erase(items_.begin() + static_cast<ptrdiff_t>(it->second));
  index_.clear();
  for (size_t i = 0; i < items_.size(); ++i) index_.emplace(items_[i].first, i);
  return true;
}

const char* type_name(const Value& v) {
  switch (v.kind) {
    case Value::Kind::Undefined: return "Undefined";
    case Value::Kind::None: return "NoneType";
    case Value::Kind::Bool: return "bool";
    case Value::Kind::Int: return "int";
    case Value::Kind::Float: return "float";
    case Value::Kind::Str: return "str";
    case Value::Kind::List: return v.is_tuple ? "tuple" : "list";
    case Value::Kind::Dict: return v.is_namespace ? "Namespace" : "dict";
    case Value::Kind::Callable: return "function";
  }
  return "object";
}

bool truthy(const Value& v) {
  switch (v.kind) {
    case Value::Kind::Undefined:
    case Value::Kind::None: return false;
    case Value::Kind::Bool: return v.b;
    case Value::Kind::Int: return v.i != 0;
    case Value::Kind::Float: return v.f != 0;
    case Value::Kind::Str: return !v.str.s.empty();
    case Value::Kind::List: return !v.list->empty();
    case Value::Kind::Dict: return v.is_namespace || v.dict->size() != 0;
    case Value::Kind::Callable: return true;
  }
  return false;
}

bool equals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.kind == Value::Kind::Float || b.kind == Value::Kind::Float) return a.as_double() == b.as_double();
    return a.as_int() == b.as_int();
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Value::Kind::Undefined:
    case Value::Kind::None: return true;
    case Value::Kind::Str: return a.str.s == b.str.s;
    case Value::Kind::List:
      if (a.is_tuple != b.is_tuple || a.list->size() != b.list->size()) return false;
      for (size_t i = 0; i < a.list->size(); ++i)
        if (!equals((*a.list)[i], (*b.list)[i])) return false;
      return true;
    case Value::Kind::Dict:
      if (a.is_namespace || b.is_namespace) return a.dict == b.dict;
      if (a.dict->size() != b.dict->size()) return false;
      for (const auto& [k, v] : a.dict->items()) {
        const Value* o = b.dict->find(k);
        if (!o || !equals(v, *o)) return false;
      }
      return true;
    case Value::Kind::Callable: return a.fn == b.fn;
    default: return false;
  }
}

std::string format_float(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, x, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  bool neg = sci[0] == '-';
  if (neg) sci.erase(0, 1);
  size_t epos = sci.find('e');
  std::string mant = sci.substr(0, epos);
  int exp = std::stoi(sci.substr(epos + 1));
  std::string digits;
  for (char c : mant)
    if (c != '.') digits += c;
  std::string out = neg ? "-" : "";
  if (exp >= -4 && exp < 16) {
    if (exp >= 0) {
      std::string ip = digits.substr(0, std::min<size_t>(digits.size(), static_cast<size_t>(exp) + 1));
      while (ip.size() < static_cast<size_t>(exp) + 1) ip += '0';
      std::string fp = digits.size() > ip.size() ? digits.substr(ip.size()) : "0";
      out += ip;
      out += '.';
      out += fp;
    } else {
      out += "0.";
      out.append(static_cast<size_t>(-exp - 1), '0');
      out += digits;
    }
  } else {
    out += digits.substr(0, 1);
    if (digits.size() > 1) {
      out += '.';
      out += digits.substr(1);
    }
    out += fmt::format("e{}{:02d}", exp < 0 ? '-' : '+', std::abs(exp));
  }
  return out;
}

namespace {

void repr_string(std::string_view s, std::string& out) {
  bool has_single = s.find('\'') != std::string_view::npos;
  bool has_double = s.find('"') != std::string_view::npos;
  char q = has_single && !has_double ? '"' : '\'';
  out += q;
  for (unsigned char c : s) {
    if (c == static_cast<unsigned char>(q) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  out += q;
}

void repr_into(const Value& v, std::string& out, int depth) {
  if (depth > 200) throw TemplateError("value nested too deeply to print");
  switch (v.kind) {
    case Value::Kind::Undefined: out += "Undefined"; return;
    case Value::Kind::None: out += "None"; return;
    case Value::Kind::Bool: out += v.b ? "True" : "False"; return;
    case Value::Kind::Int: out += std::to_string(v.i); return;
    case Value::Kind::Float: out += format_float(v.f); return;
    case Value::Kind::Str: repr_string(v.str.s, out); return;
    case Value::Kind::List: {
      out += v.is_tuple ? '(' : '[';
      for (size_t i = 0; i < v.list->size(); ++i) {
        if (i) out += ", ";
        repr_into((*v.list)[i], out, depth + 1);
      }
      if (v.is_tuple && v.list->size() == 1) out += ',';
      out += v.is_tuple ? ')' : ']';
      return;
    }
    case Value::Kind::Dict: {
      if (v.is_namespace) {
        out += "<Namespace ";
      } else {
        out += '{';
      }
      bool first = true;
      for (const auto& [k, x] : v.dict->items()) {
        if (!first) out += ", ";
        first = false;
        if (v.is_namespace) {
          out += k + "=";
        } else {
          repr_string(k, out);
          out += ": ";
        }
        repr_into(x, out, depth + 1);
      }
      out += v.is_namespace ? '>' : '}';
      return;
    }
    case Value::Kind::Callable: out += "<function " + v.fn->name + ">"; return;
  }
}

bool contains_taint(const Value& v, int depth) {
  if (depth > 200) return true;
  switch (v.kind) {
    case Value::Kind::Str: return v.str.any_tainted();
    case Value::Kind::List:
      for (const Value& x : *v.list)
        if (contains_taint(x, depth + 1)) return true;
      return false;
    case Value::Kind::Dict:
      for (const auto& [k, x] : v.dict->items())
        if (contains_taint(x, depth + 1)) return true;
      return false;
    default: return false;
  }
}

void json_string(const Str& s, Str& out, bool key_tainted, bool ensure_ascii) {
  // Escape per byte (per code point for ensure_ascii); the escaped text of
  // tainted bytes stays tainted.
  auto esc = [](unsigned char c, std::string& o) {
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\r': o += "\\r"; break;
      case '\t': o += "\\t"; break;
      case '\b': o += "\\b"; break;
      case '\f': o += "\\f"; break;
      default:
        if (c < 0x20) {
          o += fmt::format("\\u{:04x}", c);
        } else {
          o += static_cast<char>(c);
        }
    }
  };
  out.append_plain("\"");
  size_t pos = 0;
  auto emit = [&](size_t b, size_t e, bool t) {
    std::string o;
    for (size_t i = b; i < e; ++i) {
      unsigned char c = static_cast<unsigned char>(s.s[i]);
      if (!ensure_ascii || c < 0x80) {
        esc(c, o);
        continue;
      }
      // Decode one UTF-8 sequence (the input is valid UTF-8 or came from
      // one) and write it as \uXXXX, with a surrogate pair above U+FFFF.
      int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
      uint32_t cp = len == 1 ? c : (c & (0x7F >> len));
      for (int k = 1; k < len && i + 1 < e; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s.s[++i]) & 0x3F);
      if (cp >= 0x10000) {
        cp -= 0x10000;
        o += fmt::format("\\u{:04x}\\u{:04x}", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
      } else {
        o += fmt::format("\\u{:04x}", cp);
      }
    }
    out.append(Str(std::move(o), t));
  };
  for (Span sp : s.tainted) {
    if (pos < sp.begin) emit(pos, sp.begin, key_tainted);
    emit(sp.begin, sp.end, true);
    pos = sp.end;
  }
  if (pos < s.s.size()) emit(pos, s.s.size(), key_tainted);
  out.append_plain("\"");
}

void json_into(const Value& v, const JsonStyle& st, int level, Str& out) {
  if (level > 200) throw TemplateError("tojson: value nested too deeply");
  const bool pretty = st.indent >= 0 || !st.indent_text.empty();
  auto newline = [&](int lv) {
    out.append_plain("\n");
    for (int k = 0; k < lv; ++k)
      out.append_plain(st.indent_text.empty() ? std::string(static_cast<size_t>(std::max(st.indent, 0)), ' ') : st.indent_text);
  };
  std::string item_sep = st.custom_separators ? st.item_sep : (pretty ? "," : ", ");
  std::string key_sep = st.custom_separators ? st.key_sep : ": ";
  switch (v.kind) {
    case Value::Kind::None: out.append_plain("null"); return;
    case Value::Kind::Bool: out.append_plain(v.b ? "true" : "false"); return;
    case Value::Kind::Int: out.append_plain(std::to_string(v.i)); return;
    case Value::Kind::Float:
      if (std::isnan(v.f)) {
        out.append_plain("NaN");
      } else if (std::isinf(v.f)) {
        out.append_plain(v.f > 0 ? "Infinity" : "-Infinity");
      } else {
        out.append_plain(format_float(v.f));
      }
      return;
    case Value::Kind::Str: json_string(v.str, out, false, st.ensure_ascii); return;
    case Value::Kind::List: {
      if (v.list->empty()) {
        out.append_plain("[]");
        return;
      }
      out.append_plain("[");
      for (size_t i = 0; i < v.list->size(); ++i) {
        if (i) out.append_plain(item_sep);
        if (pretty) newline(level + 1);
        json_into((*v.list)[i], st, level + 1, out);
      }
      if (pretty) newline(level);
      out.append_plain("]");
      return;
    }
    case Value::Kind::Dict: {
      if (v.is_namespace) break;
      if (v.dict->size() == 0) {
        out.append_plain("{}");
        return;
      }
      std::vector<const std::pair<std::string, Value>*> items;
      for (const auto& kv : v.dict->items()) items.push_back(&kv);
      if (st.sort_keys)
        std::stable_sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->first < b->first; });
      out.append_plain("{");
      bool first = true;
      for (const auto* kv : items) {
        if (!first) out.append_plain(item_sep);
        first = false;
        if (pretty) newline(level + 1);
        // Keys of variables' mappings are the caller's text too.
        json_string(Str(kv->first), out, v.dict->keys_tainted, st.ensure_ascii);
        out.append_plain(key_sep);
        json_into(kv->second, st, level + 1, out);
      }
      if (pretty) newline(level);
      out.append_plain("}");
      return;
    }
    default: break;
  }
  throw TemplateError(fmt::format("Object of type {} is not JSON serializable", type_name(v)));
}

}  // namespace

Str to_str(const Value& v) {
  switch (v.kind) {
    case Value::Kind::Undefined: return Str();
    case Value::Kind::Str: return v.str;
    case Value::Kind::List:
    case Value::Kind::Dict: return Str::derived(repr(v), contains_taint(v, 0));
    default: return Str(repr(v));
  }
}

std::string repr(const Value& v) {
  std::string out;
  repr_into(v, out, 0);
  return out;
}

void fail_undefined(const Value& v) {
  throw TemplateError(v.hint.empty() ? std::string("a value is undefined") : v.hint);
}

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

std::vector<size_t> utf8_offsets(std::string_view s) {
  std::vector<size_t> off;
  off.reserve(s.size() + 1);
  for (size_t i = 0; i < s.size(); ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) off.push_back(i);
  off.push_back(s.size());
  return off;
}

Value from_json(const nlohmann::ordered_json& j, bool tainted) {
  using T = nlohmann::ordered_json::value_t;
  switch (j.type()) {
    case T::null: return Value::none();
    case T::boolean: return Value::boolean(j.get<bool>());
    case T::number_integer: return Value::integer(j.get<int64_t>());
    case T::number_unsigned: {
      uint64_t u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value::floating(static_cast<double>(u));
      return Value::integer(static_cast<int64_t>(u));
    }
    case T::number_float: return Value::floating(j.get<double>());
    case T::string: return Value::string(Str(j.get<std::string>(), tainted));
    case T::array: {
      List items;
      items.reserve(j.size());
      for (const auto& x : j) items.push_back(from_json(x, tainted));
      return Value::make_list(std::move(items));
    }
    case T::object: {
      Dict d;
      d.keys_tainted = tainted;
      for (auto it = j.begin(); it != j.end(); ++it) d.set(it.key(), from_json(it.value(), tainted));
      return Value::make_dict(std::move(d));
    }
    default: return Value::none();
  }
}

Str to_json(const Value& v, const JsonStyle& style) {
  Str out;
  json_into(v, style, 0, out);
  return out;
}

}  // namespace strata::jinja
