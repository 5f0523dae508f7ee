#include "tokenizer/jinja/interpreter.h"

#include <cmath>

#include <fmt/format.h>

#include "tokenizer/jinja/builtins.h"

namespace strata::jinja {

namespace {

using K = Node::Kind;

// Deeper nesting of evaluation (macros recursing inside nested expressions)
// than this is refused before the C++ stack is at risk.
constexpr int kMaxEvalDepth = 3000;

struct DepthGuard {
  DepthGuard(int& d, int limit, const char* what) : d(d) {
    if (++d > limit) {
      --d;
      throw TemplateError(fmt::format("{} deeper than the limit of {}", what, limit));
    }
  }
  ~DepthGuard() { --d; }
  int& d;
};

bool checked_add(int64_t a, int64_t b, int64_t& r) { return !__builtin_add_overflow(a, b, &r); }
bool checked_sub(int64_t a, int64_t b, int64_t& r) { return !__builtin_sub_overflow(a, b, &r); }
bool checked_mul(int64_t a, int64_t b, int64_t& r) { return !__builtin_mul_overflow(a, b, &r); }

[[noreturn]] void overflow() { throw TemplateError("integer overflow (strata keeps integers in 64 bits)"); }

}  // namespace

// The conversions templates use (%s %d %i %r %f %%).
Str percent_format(const Str& fmt_str, const Value& arg) {
  List args;
  if (arg.is_list() && arg.is_tuple) {
    args = *arg.list;
  } else {
    args.push_back(arg);
  }
  size_t next = 0;
  Str out;
  const std::string& f = fmt_str.s;
  size_t lit = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] != '%') continue;
    out.append(fmt_str.substr(lit, i));
    if (i + 1 >= f.size()) type_error("incomplete format");
    char c = f[++i];
    lit = i + 1;
    if (c == '%') {
      out.append_plain("%");
      continue;
    }
    if (next >= args.size()) type_error("not enough arguments for format string");
    const Value& a = args[next++];
    if (c == 's') {
      out.append(to_str(a));
    } else if (c == 'r') {
      out.append(Str(repr(a), a.is_str() && a.str.any_tainted()));
    } else if (c == 'd' || c == 'i') {
      if (!a.is_number()) type_error(fmt::format("%{} format: a real number is required, not {}", c, type_name(a)));
      out.append_plain(std::to_string(a.kind == Value::Kind::Float ? static_cast<int64_t>(a.f) : a.as_int()));
    } else if (c == 'f') {
      if (!a.is_number()) type_error("%f format: a real number is required");
      out.append_plain(fmt::format("{:.6f}", a.as_double()));
    } else {
      type_error(fmt::format("unsupported format character '{}'", c));
    }
  }
  out.append(fmt_str.substr(lit, f.size()));
  if (next < args.size()) type_error("not all arguments converted during string formatting");
  return out;
}

void type_error(const std::string& msg) { throw TemplateError(msg); }

const Value* CallArgs::get(size_t index, std::string_view name) const {
  if (index < pos.size()) return &pos[index];
  for (const auto& [k, v] : kw)
    if (k == name) return &v;
  return nullptr;
}

Interpreter::Interpreter(const Limits& limits, std::optional<std::time_t> now)
    : limits_(limits), now_(now ? *now : std::time(nullptr)), globals_(std::make_shared<Scope>()) {
  Dict g;
  add_globals(g);
  for (const auto& [k, v] : g.items()) globals_->vars[k] = v;
}

Str Interpreter::render(const NodeList& body, const Dict& vars) {
  auto scope = std::make_shared<Scope>();
  scope->parent = globals_;
  for (const auto& [k, v] : vars.items()) scope->vars[k] = v;
  Str out;
  try {
    exec(body, out, scope);
  } catch (const TemplateError& e) {
    throw TemplateError(fmt::format("chat template, line {}: {}", line_, e.what()));
  }
  return out;
}

void Interpreter::step() {
  if (++steps_ > limits_.max_steps)
    throw TemplateError(fmt::format("template ran more than the limit of {} evaluation steps", limits_.max_steps));
}

void Interpreter::check_size(size_t size) const {
  if (size > limits_.max_output_bytes)
    throw TemplateError(fmt::format("template output would exceed the limit of {} bytes", limits_.max_output_bytes));
}

void Interpreter::count_iterations(uint64_t n) {
  iterations_ += n;
  if (iterations_ > limits_.max_loop_iterations)
    throw TemplateError(fmt::format("template ran more than the limit of {} loop iterations", limits_.max_loop_iterations));
}

void Interpreter::emit(Str& out, const Str& s) {
  check_size(out.s.size() + s.s.size());
  out.append(s);
}

Interpreter::Flow Interpreter::exec(const NodeList& body, Str& out, const std::shared_ptr<Scope>& scope) {
  for (const NodePtr& n : body) {
    Flow f = exec_node(*n, out, scope);
    if (f != Flow::Normal) return f;
  }
  return Flow::Normal;
}

Interpreter::Flow Interpreter::exec_node(const Node& n, Str& out, const std::shared_ptr<Scope>& scope) {
  step();
  line_ = n.line;
  switch (n.kind) {
    case K::Data: emit(out, n.literal.str); return Flow::Normal;
    case K::Print: emit(out, to_str(eval(*n.kids[0], scope))); return Flow::Normal;
    case K::If:
      return truthy(eval(*n.kids[0], scope)) ? exec(n.body, out, scope) : exec(n.else_body, out, scope);
    case K::For: exec_for(n, out, scope); return Flow::Normal;
    case K::Break: return Flow::Break;
    case K::Continue: return Flow::Continue;
    case K::Set: {
      Value v = eval(*n.kids[0], scope);
      if (!n.attr.empty()) {
        Value ns = lookup(n.targets[0], scope);
        if (!ns.is_dict() || !ns.is_namespace)
          throw TemplateError("can only assign attributes of a namespace() object");
        ns.dict->set(n.attr, std::move(v));
      } else if (n.targets.size() == 1) {
        scope->vars[n.targets[0]] = std::move(v);
      } else {
        List items = iterate(v);
        if (items.size() != n.targets.size())
          throw TemplateError(fmt::format("cannot unpack {} values into {} names", items.size(), n.targets.size()));
        for (size_t i = 0; i < items.size(); ++i) scope->vars[n.targets[i]] = items[i];
      }
      return Flow::Normal;
    }
    case K::SetBlock: {
      Str buf;
      exec(n.body, buf, scope);
      Value v = Value::string(std::move(buf));
      if (n.kids[0]) {
        // Apply the filter chain with the block's text as innermost operand.
        std::vector<const Node*> chain;
        for (const Node* f = n.kids[0].get(); f; f = f->kids[0].get()) chain.push_back(f);
        for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
          CallArgs args;
          eval_args(**it, scope, args);
          v = filter((*it)->name, v, args);
        }
      }
      scope->vars[n.targets[0]] = std::move(v);
      return Flow::Normal;
    }
    case K::Macro: scope->vars[n.name] = make_macro(n, scope); return Flow::Normal;
    case K::CallBlock: {
      Value caller = make_macro(n, scope);
      emit(out, to_str(eval_call(*n.kids[0], scope, &caller)));
      return Flow::Normal;
    }
    case K::FilterBlock: {
      Str buf;
      exec(n.body, buf, scope);
      Value v = Value::string(std::move(buf));
      std::vector<const Node*> chain;
      for (const Node* f = n.kids[0].get(); f; f = f->kids[0].get()) chain.push_back(f);
      for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
        CallArgs args;
        eval_args(**it, scope, args);
        v = filter((*it)->name, v, args);
      }
      emit(out, to_str(v));
      return Flow::Normal;
    }
    case K::With: {
      auto inner = std::make_shared<Scope>();
      inner->parent = scope;
      for (size_t i = 0; i < n.targets.size(); ++i) inner->vars[n.targets[i]] = eval(*n.kids[i], scope);
      return exec(n.body, out, inner);
    }
    default: emit(out, to_str(eval(n, scope))); return Flow::Normal;
  }
}

void Interpreter::exec_for(const Node& n, Str& out, const std::shared_ptr<Scope>& scope) {
  List all = iterate(eval(*n.kids[0], scope));
  List items;
  if (n.kids[1]) {
    // The filter sees the loop targets but not `loop` (Jinja2 filters first).
    for (Value& v : all) {
      count_iterations(1);
      auto s = std::make_shared<Scope>();
      s->parent = scope;
      if (n.targets.size() == 1) {
        s->vars[n.targets[0]] = v;
      } else {
        List parts = iterate(v);
        if (parts.size() != n.targets.size()) throw TemplateError("cannot unpack loop item");
        for (size_t i = 0; i < parts.size(); ++i) s->vars[n.targets[i]] = parts[i];
      }
      if (truthy(eval(*n.kids[1], s))) items.push_back(std::move(v));
    }
  } else {
    items = std::move(all);
  }
  if (items.empty()) {
    exec(n.else_body, out, scope);
    return;
  }
  const int64_t len = static_cast<int64_t>(items.size());
  for (int64_t i = 0; i < len; ++i) {
    count_iterations(1);
    auto s = std::make_shared<Scope>();
    s->parent = scope;
    const Value& v = items[static_cast<size_t>(i)];
    if (n.targets.size() == 1) {
      s->vars[n.targets[0]] = v;
    } else {
      List parts = iterate(v);
      if (parts.size() != n.targets.size())
        throw TemplateError(fmt::format("cannot unpack {} values into {} loop names", parts.size(), n.targets.size()));
      for (size_t k = 0; k < parts.size(); ++k) s->vars[n.targets[k]] = parts[k];
    }
    Dict loop;
    loop.set("index0", Value::integer(i));
    loop.set("index", Value::integer(i + 1));
    loop.set("revindex0", Value::integer(len - i - 1));
    loop.set("revindex", Value::integer(len - i));
    loop.set("first", Value::boolean(i == 0));
    loop.set("last", Value::boolean(i == len - 1));
    loop.set("length", Value::integer(len));
    loop.set("depth", Value::integer(1));
    loop.set("depth0", Value::integer(0));
    loop.set("previtem", i > 0 ? items[static_cast<size_t>(i - 1)] : Value::undefined("there is no previous item"));
    loop.set("nextitem", i + 1 < len ? items[static_cast<size_t>(i + 1)] : Value::undefined("there is no next item"));
    loop.set("cycle", Value::function("loop.cycle", [i](Interpreter&, CallArgs& a) -> Value {
      if (a.pos.empty()) throw TemplateError("no items for cycling given");
      return a.pos[static_cast<size_t>(i) % a.pos.size()];
    }));
    Value lv = Value::make_dict(std::move(loop));
    lv.is_namespace = true;  // attribute access only, no dict methods
    s->vars["loop"] = std::move(lv);
    Flow f = exec(n.body, out, s);
    if (f == Flow::Break) break;
  }
}

Value Interpreter::lookup(const std::string& name, const std::shared_ptr<Scope>& scope) const {
  for (const Scope* s = scope.get(); s; s = s->parent.get()) {
    auto it = s->vars.find(name);
    if (it != s->vars.end()) return it->second;
  }
  return Value::undefined(fmt::format("'{}' is undefined", name));
}

List Interpreter::iterate(const Value& v) {
  switch (v.kind) {
    case Value::Kind::Undefined: return {};
    case Value::Kind::List: return *v.list;
    case Value::Kind::Dict: {
      List keys;
      for (const auto& kv : v.dict->items()) keys.push_back(Value::string(Str(kv.first, v.dict->keys_tainted)));
      return keys;
    }
    case Value::Kind::Str: {
      List chars;
      std::vector<size_t> off = utf8_offsets(v.str.s);
      for (size_t i = 0; i + 1 < off.size(); ++i) chars.push_back(Value::string(v.str.substr(off[i], off[i + 1])));
      return chars;
    }
    default: throw TemplateError(fmt::format("'{}' object is not iterable", type_name(v)));
  }
}

Value Interpreter::make_macro(const Node& n, const std::shared_ptr<Scope>& scope) {
  const Node* def = &n;
  std::shared_ptr<Scope> closure = scope;
  std::string name = n.kind == K::Macro ? n.name : "caller";
  return Value::function(name, [def, closure, name](Interpreter& in, CallArgs& args) -> Value {
    DepthGuard g(in.call_depth_, in.limits_.max_call_depth, "macro calls nested");
    auto s = std::make_shared<Scope>();
    s->parent = closure;
    List varargs;
    for (size_t i = 0; i < args.pos.size(); ++i) {
      if (i < def->targets.size()) {
        s->vars[def->targets[i]] = args.pos[i];
      } else {
        varargs.push_back(args.pos[i]);
      }
    }
    Dict kwargs;
    for (auto& [k, v] : args.kw) {
      bool is_param = false;
      for (size_t i = 0; i < def->targets.size(); ++i) {
        if (def->targets[i] != k) continue;
        if (i < args.pos.size()) throw TemplateError(fmt::format("macro '{}' got multiple values for argument '{}'", name, k));
        is_param = true;
      }
      if (is_param) {
        s->vars[k] = v;
      } else if (k != "caller") {
        kwargs.set(k, v);
      }
    }
    for (size_t i = 0; i < def->targets.size(); ++i) {
      if (s->vars.count(def->targets[i])) continue;
      s->vars[def->targets[i]] =
          def->defaults[i] ? in.eval(*def->defaults[i], s)
                           : Value::undefined(fmt::format("parameter '{}' was not provided", def->targets[i]));
    }
    s->vars["varargs"] = Value::make_list(std::move(varargs), true);
    s->vars["kwargs"] = Value::make_dict(std::move(kwargs));
    for (auto& [k, v] : args.kw)
      if (k == "caller") s->vars["caller"] = v;
    Str buf;
    in.exec(def->body, buf, s);
    return Value::string(std::move(buf));
  });
}

void Interpreter::eval_args(const Node& n, const std::shared_ptr<Scope>& scope, CallArgs& args) {
  for (const NodePtr& a : n.args) args.pos.push_back(eval(*a, scope));
  for (size_t i = 0; i < n.kw.size(); ++i) args.kw.emplace_back(n.kw_names[i], eval(*n.kw[i], scope));
}

Value Interpreter::eval_call(const Node& n, const std::shared_ptr<Scope>& scope, const Value* caller) {
  Value fn = eval(*n.kids[0], scope);
  CallArgs args;
  eval_args(n, scope, args);
  if (caller) args.kw.emplace_back("caller", *caller);
  line_ = n.line;
  return call(fn, args);
}

Value Interpreter::call(const Value& fn, CallArgs& args) {
  if (fn.is_undefined()) fail_undefined(fn);
  if (fn.kind != Value::Kind::Callable) throw TemplateError(fmt::format("'{}' object is not callable", type_name(fn)));
  return fn.fn->fn(*this, args);
}

Value Interpreter::filter(const std::string& name, const Value& v, CallArgs& args) {
  return apply_filter(*this, name, v, args);
}

bool Interpreter::test(const std::string& name, const Value& v, CallArgs& args) {
  return apply_test(*this, name, v, args);
}

Value Interpreter::getattr(const Value& obj, const std::string& name) {
  switch (obj.kind) {
    case Value::Kind::Undefined: fail_undefined(obj);
    case Value::Kind::Dict:
      if (!obj.is_namespace) {
        Value m = bound_method(obj, name);
        if (!m.is_undefined()) return m;
      }
      if (const Value* v = obj.dict->find(name)) return *v;
      return Value::undefined(fmt::format("'{} object' has no attribute '{}'", type_name(obj), name));
    default: {
      Value m = bound_method(obj, name);
      if (!m.is_undefined()) return m;
      return Value::undefined(fmt::format("'{}' has no attribute '{}'", obj.is_none() ? "None" : std::string(type_name(obj)) + " object", name));
    }
  }
}

Value Interpreter::getitem(const Value& obj, const Value& key) {
  if (obj.is_undefined()) fail_undefined(obj);
  if (obj.is_dict()) {
    if (key.is_str()) {
      if (const Value* v = obj.dict->find(key.str.s)) return *v;
      if (!obj.is_namespace) {
        Value m = bound_method(obj, key.str.s);
        if (!m.is_undefined()) return m;
      }
    } else if (key.is_undefined()) {
      fail_undefined(key);
    }
    return Value::undefined(fmt::format("'{} object' has no attribute '{}'", type_name(obj), plain(key)));
  }
  if (obj.is_list() || obj.is_str()) {
    if (key.is_int_like()) {
      int64_t i = key.as_int();
      if (obj.is_list()) {
        int64_t n = static_cast<int64_t>(obj.list->size());
        if (i < 0) i += n;
        if (i >= 0 && i < n) return (*obj.list)[static_cast<size_t>(i)];
      } else {
        std::vector<size_t> off = utf8_offsets(obj.str.s);
        int64_t n = static_cast<int64_t>(off.size()) - 1;
        if (i < 0) i += n;
        if (i >= 0 && i < n)
          return Value::string(obj.str.substr(off[static_cast<size_t>(i)], off[static_cast<size_t>(i) + 1]));
      }
      return Value::undefined(fmt::format("'{} object' has no element {}", type_name(obj), key.as_int()));
    }
    if (key.is_str()) {
      Value m = bound_method(obj, key.str.s);
      if (!m.is_undefined()) return m;
    }
    if (key.is_undefined()) fail_undefined(key);
    return Value::undefined(fmt::format("'{} object' has no element {}", type_name(obj), repr(key)));
  }
  return Value::undefined(fmt::format("'{}' object has no element {}", type_name(obj), repr(key)));
}

namespace {

// Python slice indices for a sequence of length n.
void slice_indices(int64_t n, const Value& start, const Value& stop, const Value& stepv, int64_t& b, int64_t& e,
                   int64_t& st) {
  auto idx = [](const Value& v, const char* what) -> std::optional<int64_t> {
    if (v.is_undefined() || v.is_none()) return std::nullopt;
    if (!v.is_int_like()) throw TemplateError(fmt::format("slice {} must be an integer or None", what));
    return v.as_int();
  };
  st = idx(stepv, "step").value_or(1);
  if (st == 0) throw TemplateError("slice step cannot be zero");
  auto clamp = [&](std::optional<int64_t> x, int64_t def) {
    if (!x) return def;
    int64_t v = *x;
    if (v < 0) {
      v += n;
      if (v < 0) v = st < 0 ? -1 : 0;
    } else if (v >= n) {
      v = st < 0 ? n - 1 : n;
    }
    return v;
  };
  b = clamp(idx(start, "start"), st < 0 ? n - 1 : 0);
  e = clamp(idx(stop, "stop"), st < 0 ? -1 : n);
}

}  // namespace

Value Interpreter::eval(const Node& n, const std::shared_ptr<Scope>& scope) {
  step();
  DepthGuard g(eval_depth_, kMaxEvalDepth, "expression evaluation nested");
  switch (n.kind) {
    case K::Literal: return n.literal;
    case K::Name: return lookup(n.name, scope);
    case K::ListLit:
    case K::TupleLit: {
      List items;
      for (const NodePtr& k : n.kids) items.push_back(eval(*k, scope));
      return Value::make_list(std::move(items), n.kind == K::TupleLit);
    }
    case K::DictLit: {
      Dict d;
      for (size_t i = 0; i + 1 < n.kids.size(); i += 2) {
        Value k = eval(*n.kids[i], scope);
        if (!k.is_str()) throw TemplateError("strata's templates support only string keys in dict literals");
        d.set(k.str.s, eval(*n.kids[i + 1], scope));
      }
      return Value::make_dict(std::move(d));
    }
    case K::Attr: return getattr(eval(*n.kids[0], scope), n.name);
    case K::Item: {
      Value obj = eval(*n.kids[0], scope);
      return getitem(obj, eval(*n.kids[1], scope));
    }
    case K::Slice: {
      Value obj = eval(*n.kids[0], scope);
      Value parts[3];
      for (int i = 0; i < 3; ++i)
        if (n.kids[static_cast<size_t>(i) + 1]) parts[i] = eval(*n.kids[static_cast<size_t>(i) + 1], scope);
      if (obj.is_undefined()) fail_undefined(obj);
      int64_t b, e, st;
      if (obj.is_list()) {
        slice_indices(static_cast<int64_t>(obj.list->size()), parts[0], parts[1], parts[2], b, e, st);
        List out;
        for (int64_t i = b; st > 0 ? i < e : i > e; i += st) out.push_back((*obj.list)[static_cast<size_t>(i)]);
        return Value::make_list(std::move(out), obj.is_tuple);
      }
      if (obj.is_str()) {
        std::vector<size_t> off = utf8_offsets(obj.str.s);
        slice_indices(static_cast<int64_t>(off.size()) - 1, parts[0], parts[1], parts[2], b, e, st);
        if (st == 1) return Value::string(b < e ? obj.str.substr(off[static_cast<size_t>(b)], off[static_cast<size_t>(e)]) : Str());
        Str out;
        for (int64_t i = b; st > 0 ? i < e : i > e; i += st)
          out.append(obj.str.substr(off[static_cast<size_t>(i)], off[static_cast<size_t>(i) + 1]));
        return Value::string(std::move(out));
      }
      throw TemplateError(fmt::format("'{}' object is not subscriptable", type_name(obj)));
    }
    case K::Call: return eval_call(n, scope, nullptr);
    case K::Filter: {
      Value v = eval(*n.kids[0], scope);
      CallArgs args;
      eval_args(n, scope, args);
      line_ = n.line;
      return filter(n.name, v, args);
    }
    case K::Test: {
      Value v = eval(*n.kids[0], scope);
      CallArgs args;
      eval_args(n, scope, args);
      line_ = n.line;
      return Value::boolean(test(n.name, v, args) != n.negated);
    }
    case K::Not: return Value::boolean(!truthy(eval(*n.kids[0], scope)));
    case K::Neg:
    case K::Pos: {
      Value v = eval(*n.kids[0], scope);
      if (v.is_undefined()) fail_undefined(v);
      if (!v.is_number()) throw TemplateError(fmt::format("bad operand type for unary {}: '{}'", n.kind == K::Neg ? '-' : '+', type_name(v)));
      if (n.kind == K::Pos) return v.kind == Value::Kind::Bool ? Value::integer(v.b) : v;
      if (v.kind == Value::Kind::Float) return Value::floating(-v.f);
      if (v.as_int() == INT64_MIN) overflow();
      return Value::integer(-v.as_int());
    }
    case K::Binary: {
      Value a = eval(*n.kids[0], scope);
      Value b = eval(*n.kids[1], scope);
      line_ = n.line;
      return eval_binary(n.name, a, b);
    }
    case K::Compare: {
      Value a = eval(*n.kids[0], scope);
      for (size_t i = 0; i < n.ops.size(); ++i) {
        Value b = eval(*n.kids[i + 1], scope);
        if (!compare(n.ops[i], a, b)) return Value::boolean(false);
        a = std::move(b);
      }
      return Value::boolean(true);
    }
    case K::And: {
      Value a = eval(*n.kids[0], scope);
      return truthy(a) ? eval(*n.kids[1], scope) : a;
    }
    case K::Or: {
      Value a = eval(*n.kids[0], scope);
      return truthy(a) ? a : eval(*n.kids[1], scope);
    }
    case K::Cond:
      if (truthy(eval(*n.kids[1], scope))) return eval(*n.kids[0], scope);
      if (n.kids[2]) return eval(*n.kids[2], scope);
      return Value::undefined("the inline if expression evaluated to false and has no else section");
    default: throw TemplateError("statement used as an expression");
  }
}

bool Interpreter::compare(const std::string& op, const Value& a, const Value& b) {
  if (op == "==") return equals(a, b);
  if (op == "!=") return !equals(a, b);
  if (op == "in" || op == "notin") {
    bool found = false;
    if (b.is_str()) {
      if (!a.is_str()) throw TemplateError(fmt::format("'in <string>' requires string as left operand, not {}", type_name(a)));
      found = b.str.s.find(a.str.s) != std::string::npos;
    } else if (b.is_dict()) {
      found = a.is_str() && b.dict->find(a.str.s) != nullptr;
    } else if (b.is_list()) {
      for (const Value& x : *b.list)
        if (equals(a, x)) {
          found = true;
          break;
        }
    } else if (!b.is_undefined()) {
      throw TemplateError(fmt::format("argument of type '{}' is not iterable", type_name(b)));
    }
    return op == "in" ? found : !found;
  }
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  if (op == "<") return less_than(a, b);
  if (op == ">") return less_than(b, a);
  if (op == "<=") return !less_than(b, a);
  return !less_than(a, b);  // >=
}

Value Interpreter::eval_binary(const std::string& op, const Value& a, const Value& b) {
  if (op == "~") {
    Str s = to_str(a);
    Str t = to_str(b);
    check_size(s.s.size() + t.s.size());
    s.append(t);
    return Value::string(std::move(s));
  }
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  auto unsupported = [&]() -> Value {
    throw TemplateError(fmt::format("unsupported operand type(s) for {}: '{}' and '{}'", op, type_name(a), type_name(b)));
  };
  if (op == "+") {
    if (a.is_str() && b.is_str()) {
      check_size(a.str.s.size() + b.str.s.size());
      Str s = a.str;
      s.append(b.str);
      return Value::string(std::move(s));
    }
    if (a.is_list() && b.is_list()) {
      check_size(a.list->size() + b.list->size());
      List l = *a.list;
      l.insert(l.end(), b.list->begin(), b.list->end());
      return Value::make_list(std::move(l), a.is_tuple);
    }
    if (a.is_str()) throw TemplateError(fmt::format("can only concatenate str (not \"{}\") to str", type_name(b)));
  }
  if (op == "%" && a.is_str()) return Value::string(percent_format(a.str, b));
  if (op == "*" && (((a.is_str() || a.is_list()) && b.is_int_like()) || ((b.is_str() || b.is_list()) && a.is_int_like()))) {
    const Value& seq = a.is_int_like() ? b : a;
    int64_t times = std::max<int64_t>(0, (a.is_int_like() ? a : b).as_int());
    size_t unit = seq.is_str() ? seq.str.s.size() : seq.list->size();
    if (unit && static_cast<uint64_t>(times) > limits_.max_output_bytes / unit) check_size(SIZE_MAX);
    if (seq.is_str()) {
      Str s;
      for (int64_t i = 0; i < times; ++i) s.append(seq.str);
      return Value::string(std::move(s));
    }
    List l;
    for (int64_t i = 0; i < times; ++i) l.insert(l.end(), seq.list->begin(), seq.list->end());
    return Value::make_list(std::move(l));
  }
  if (!a.is_number() || !b.is_number()) return unsupported();
  bool fl = a.kind == Value::Kind::Float || b.kind == Value::Kind::Float;
  if (op == "/") {
    if (b.as_double() == 0) throw TemplateError("division by zero");
    return Value::floating(a.as_double() / b.as_double());
  }
  if (fl) {
    double x = a.as_double(), y = b.as_double();
    if (op == "+") return Value::floating(x + y);
    if (op == "-") return Value::floating(x - y);
    if (op == "*") return Value::floating(x * y);
    if (op == "**") return Value::floating(std::pow(x, y));
    if (y == 0) throw TemplateError("float division by zero");
    if (op == "//") return Value::floating(std::floor(x / y));
    if (op == "%") {
      double r = std::fmod(x, y);
      if (r != 0 && ((r < 0) != (y < 0))) r += y;
      return Value::floating(r);
    }
    return unsupported();
  }
  int64_t x = a.as_int(), y = b.as_int(), r = 0;
  if (op == "+") {
    if (!checked_add(x, y, r)) overflow();
    return Value::integer(r);
  }
  if (op == "-") {
    if (!checked_sub(x, y, r)) overflow();
    return Value::integer(r);
  }
  if (op == "*") {
    if (!checked_mul(x, y, r)) overflow();
    return Value::integer(r);
  }
  if (op == "**") {
    if (y < 0) return Value::floating(std::pow(static_cast<double>(x), static_cast<double>(y)));
    r = 1;
    for (int64_t i = 0; i < y; ++i) {
      if (!checked_mul(r, x, r)) overflow();
      if (r == 0 || r == 1) break;
      if (r == -1) {
        r = ((y - i - 1) % 2 == 0) ? -1 : 1;
        break;
      }
    }
    return Value::integer(r);
  }
  if (y == 0) throw TemplateError("integer division or modulo by zero");
  if (x == INT64_MIN && y == -1) overflow();
  int64_t q = x / y, m = x % y;
  if (m != 0 && ((m < 0) != (y < 0))) {
    q -= 1;
    m += y;
  }
  if (op == "//") return Value::integer(q);
  if (op == "%") return Value::integer(m);
  return unsupported();
}

}  // namespace strata::jinja
