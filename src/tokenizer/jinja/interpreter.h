// Evaluates a template's syntax tree. Everything a template can reach is a
// Value built here or passed in by the caller: there is no attribute access
// to host objects, no file, environment or clock access beyond the
// strftime_now global, so the sandbox holds by construction. Hard limits on
// output size, loop iterations, call depth and evaluation steps turn hostile
// templates into a TemplateError.
#pragma once

#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/value.h"

namespace strata::jinja {

struct Limits {
  size_t max_output_bytes = size_t{64} << 20;  // also the largest string or list a template may build
  uint64_t max_loop_iterations = 1'000'000;    // over the whole render
  int max_call_depth = 100;                    // nested macro / caller calls
  uint64_t max_steps = 50'000'000;             // expression evaluations
};

struct CallArgs {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
  // The argument bound to parameter `index` / `name`, Python-style, or null.
  const Value* get(size_t index, std::string_view name) const;
  Value get_or(size_t index, std::string_view name, Value def) const {
    const Value* v = get(index, name);
    return v ? *v : std::move(def);
  }
};

struct Scope {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Scope> parent;
};

class Interpreter {
 public:
  Interpreter(const Limits& limits, std::optional<std::time_t> now);

  // Renders `body` with `vars` as the template's variables.
  Str render(const NodeList& body, const Dict& vars);

  // Used by filters, tests and methods.
  Value getattr(const Value& obj, const std::string& name);
  Value getitem(const Value& obj, const Value& key);
  Value call(const Value& fn, CallArgs& args);
  Value filter(const std::string& name, const Value& v, CallArgs& args);
  bool test(const std::string& name, const Value& v, CallArgs& args);
  // Throws when a string or list of `size` bytes/items would pass the limit.
  void check_size(size_t size) const;
  void count_iterations(uint64_t n);
  // Python's list(v) for a for-loop or a filter (Undefined: empty).
  List iterate(const Value& v);
  std::time_t now() const { return now_; }
  const Limits& limits() const { return limits_; }

 private:
  enum class Flow { Normal, Break, Continue };

  Flow exec(const NodeList& body, Str& out, const std::shared_ptr<Scope>& scope);
  Flow exec_node(const Node& n, Str& out, const std::shared_ptr<Scope>& scope);
  void exec_for(const Node& n, Str& out, const std::shared_ptr<Scope>& scope);
  void emit(Str& out, const Str& s);
  Value eval(const Node& n, const std::shared_ptr<Scope>& scope);
  Value eval_binary(const std::string& op, const Value& a, const Value& b);
  bool compare(const std::string& op, const Value& a, const Value& b);
  Value eval_call(const Node& n, const std::shared_ptr<Scope>& scope, const Value* caller);
  void eval_args(const Node& n, const std::shared_ptr<Scope>& scope, CallArgs& args);
  Value make_macro(const Node& n, const std::shared_ptr<Scope>& scope);
  Value lookup(const std::string& name, const std::shared_ptr<Scope>& scope) const;
  void step();

  Limits limits_;
  std::time_t now_;
  std::shared_ptr<Scope> globals_;
  uint64_t steps_ = 0;
  uint64_t iterations_ = 0;
  int call_depth_ = 0;
  int eval_depth_ = 0;
  int line_ = 0;
};

}  // namespace strata::jinja
