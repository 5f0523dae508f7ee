// The global functions of a chat template: Jinja2's range, dict, namespace,
// joiner, cycler and transformers' raise_exception and strftime_now.
#include <ctime>

#include <fmt/format.h>

#include "tokenizer/jinja/builtins.h"

namespace strata::jinja {

namespace {

// Jinja2's sandbox refuses ranges longer than this (MAX_RANGE).
constexpr int64_t kMaxRange = 100000;

Value g_range(Interpreter&, CallArgs& a) {
  if (!a.kw.empty()) type_error("range() takes no keyword arguments");
  if (a.pos.empty() || a.pos.size() > 3) type_error("range expected 1 to 3 arguments");
  int64_t start = 0, stop, step = 1;
  if (a.pos.size() == 1) {
    stop = to_int64(a.pos[0], "range");
  } else {
    start = to_int64(a.pos[0], "range");
    stop = to_int64(a.pos[1], "range");
    if (a.pos.size() == 3) step = to_int64(a.pos[2], "range");
  }
  if (step == 0) type_error("range() arg 3 must not be zero");
  __int128 n = step > 0 ? (static_cast<__int128>(stop) - start + step - 1) / step
                        : (static_cast<__int128>(start) - stop - step - 1) / -step;
  if (n < 0) n = 0;
  if (n > kMaxRange)
    throw TemplateError(fmt::format("Range too big. The sandbox blocks ranges larger than MAX_RANGE ({}).", kMaxRange));
  List out;
  for (int64_t i = 0; i < static_cast<int64_t>(n); ++i) out.push_back(Value::integer(start + i * step));
  return Value::make_list(std::move(out));
}

Value g_dict(Interpreter&, CallArgs& a) {
  Dict d;
  for (const Value& p : a.pos) {
    if (!p.is_dict()) type_error("dict() positional argument must be a mapping");
    for (const auto& [k, v] : p.dict->items()) d.set(k, v);
  }
  for (const auto& [k, v] : a.kw) d.set(k, v);
  return Value::make_dict(std::move(d));
}

Value g_namespace(Interpreter& in, CallArgs& a) {
  Value v = g_dict(in, a);
  v.is_namespace = true;
  return v;
}

Value g_joiner(Interpreter&, CallArgs& a) {
  Str sep = to_str(a.get_or(0, "sep", Value::string(", ")));
  auto used = std::make_shared<bool>(false);
  return Value::function("joiner", [sep, used](Interpreter&, CallArgs&) {
    if (!*used) {
      *used = true;
      return Value::string("");
    }
    return Value::string(sep);
  });
}

Value g_cycler(Interpreter&, CallArgs& a) {
  if (a.pos.empty()) type_error("cycler needs at least one item");
  auto items = std::make_shared<List>(a.pos);
  auto pos = std::make_shared<size_t>(0);
  Dict d;
  d.set("next", Value::function("cycler.next", [items, pos](Interpreter&, CallArgs&) {
    Value v = (*items)[*pos];
    *pos = (*pos + 1) % items->size();
    return v;
  }));
  d.set("reset", Value::function("cycler.reset", [pos](Interpreter&, CallArgs&) {
    *pos = 0;
    return Value::none();
  }));
  d.set("items", Value::make_list(a.pos));
  Value v = Value::make_dict(std::move(d));
  v.is_namespace = true;
  return v;
}

Value g_raise_exception(Interpreter&, CallArgs& a) {
  throw TemplateError(fmt::format("the template raised an error: {}", plain(a.get_or(0, "message", Value::string("")))));
}

Value g_strftime_now(Interpreter& in, CallArgs& a) {
  std::string f = plain(a.get_or(0, "format", Value::string("")));
  if (f.size() > 256) type_error("strftime_now: format too long");
  std::time_t t = in.now();
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[1024];
  size_t n = f.empty() ? 0 : std::strftime(buf, sizeof buf, f.c_str(), &tm);
  return Value::string(std::string(buf, n));
}

}  // namespace

void add_globals(Dict& g) {
  g.set("range", Value::function("range", g_range));
  g.set("dict", Value::function("dict", g_dict));
  g.set("namespace", Value::function("namespace", g_namespace));
  g.set("joiner", Value::function("joiner", g_joiner));
  g.set("cycler", Value::function("cycler", g_cycler));
  g.set("raise_exception", Value::function("raise_exception", g_raise_exception));
  g.set("strftime_now", Value::function("strftime_now", g_strftime_now));
}

}  // namespace strata::jinja
