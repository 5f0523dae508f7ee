#include "tokenizer/jinja/parser.h"

#include <algorithm>
#include <initializer_list>

#include <fmt/format.h>

#include "tokenizer/jinja/lexer.h"

namespace strata::jinja {

namespace {

using K = Node::Kind;
using T = Token::Type;

class Parser {
 public:
  explicit Parser(std::vector<Token> toks) : t_(std::move(toks)) {}

  NodeList parse() {
    NodeList body = subparse({});
    if (cur().type != T::Eof) fail("unexpected tag");
    return body;
  }

 private:
  struct DepthGuard {
    explicit DepthGuard(Parser& p) : p(p) {
      if (++p.depth_ > kMaxParseDepth) p.fail("template nested too deeply");
    }
    ~DepthGuard() { --p.depth_; }
    Parser& p;
  };

  [[noreturn]] void fail(const std::string& msg) const {
    throw TemplateError(fmt::format("template syntax error, line {}: {}", cur().line, msg));
  }
  const Token& cur() const { return t_[pos_]; }
  const Token& peek(size_t n = 1) const { return t_[std::min(pos_ + n, t_.size() - 1)]; }
  void next() {
    if (pos_ + 1 < t_.size()) ++pos_;
  }
  bool is_op(const char* op) const { return cur().type == T::Op && cur().text == op; }
  bool is_name(const char* n) const { return cur().type == T::Name && cur().text == n; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(const char* n) {
    if (!is_name(n)) return false;
    next();
    return true;
  }
  void expect_op(const char* op) {
    if (!skip_op(op)) fail(fmt::format("expected '{}'", op));
  }
  std::string expect_name() {
    if (cur().type != T::Name) fail("expected a name");
    std::string n = cur().text;
    next();
    return n;
  }
  void expect_block_end() {
    if (cur().type != T::BlockEnd) fail("expected end of statement block");
    next();
  }
  NodePtr node(K k) { return std::make_unique<Node>(k, cur().line); }

  // Operator chains (a + b + c..., x|f|g..., a.b.c...) are built by loops,
  // not recursion, so their depth is checked here: a deep tree would
  // overflow the stack when evaluated or destroyed.
  NodePtr finish(NodePtr n) {
    int d = 0;
    for (const NodeList* l : {&n->kids, &n->args, &n->kw})
      for (const NodePtr& k : *l)
        if (k) d = std::max(d, k->depth);
    n->depth = d + 1;
    if (n->depth > 2 * kMaxParseDepth) fail("expression nested too deeply");
    return n;
  }

  // Statements up to a {% name %} with name in `ends` (left unconsumed:
  // the current token is then that name).
  NodeList subparse(std::initializer_list<const char*> ends) {
    DepthGuard g(*this);
    NodeList body;
    while (true) {
      const Token& tk = cur();
      if (tk.type == T::Eof) {
        if (ends.size()) fail(fmt::format("unexpected end of template, expected '{}'", *ends.begin()));
        return body;
      }
      if (tk.type == T::Data) {
        NodePtr n = node(K::Data);
        n->literal = Value::string(tk.text);
        body.push_back(std::move(n));
        next();
      } else if (tk.type == T::VarBegin) {
        next();
        NodePtr n = node(K::Print);
        n->kids.push_back(parse_tuple(true, false));
        if (cur().type != T::VarEnd) fail("expected '}}'");
        next();
        body.push_back(std::move(n));
      } else if (tk.type == T::BlockBegin) {
        next();
        if (cur().type != T::Name) fail("expected a statement name");
        for (const char* e : ends)
          if (cur().text == e) return body;
        body.push_back(statement());
      } else {
        fail("unexpected token");
      }
    }
  }

  NodePtr statement() {
    std::string kw = cur().text;
    if (kw == "if") return parse_if();
    if (kw == "for") return parse_for();
    if (kw == "set") return parse_set();
    if (kw == "macro") return parse_macro();
    if (kw == "call") return parse_call_block();
    if (kw == "filter") return parse_filter_block();
    if (kw == "with") return parse_with();
    if (kw == "block") return parse_block();
    if (kw == "break" || kw == "continue") {
      if (loop_depth_ == 0) fail(fmt::format("'{}' outside of a loop", kw));
      NodePtr n = node(kw == "break" ? K::Break : K::Continue);
      next();
      expect_block_end();
      return n;
    }
    if (kw == "extends" || kw == "include" || kw == "import" || kw == "from")
      fail(fmt::format("'{}' is not available: a chat template cannot load other templates", kw));
    fail(fmt::format("unknown statement '{}'", kw));
  }

  NodePtr parse_if() {
    NodePtr n = node(K::If);
    next();  // if / elif
    n->kids.push_back(parse_tuple(false, false));
    expect_block_end();
    n->body = subparse({"elif", "else", "endif"});
    if (is_name("elif")) {
      n->else_body.push_back(parse_if());
      return n;
    }
    if (skip_name("else")) {
      expect_block_end();
      n->else_body = subparse({"endif"});
    }
    next();  // endif
    expect_block_end();
    return n;
  }

  std::vector<std::string> assign_targets(bool allow_tuple) {
    std::vector<std::string> names;
    bool paren = skip_op("(");
    names.push_back(expect_name());
    while (allow_tuple && skip_op(",")) {
      if (cur().type != T::Name || is_name("in")) break;
      names.push_back(expect_name());
    }
    if (paren) expect_op(")");
    return names;
  }

  NodePtr parse_for() {
    NodePtr n = node(K::For);
    next();
    n->targets = assign_targets(true);
    if (!skip_name("in")) fail("expected 'in'");
    n->kids.push_back(parse_tuple(false, false));
    if (skip_name("if")) {
      n->kids.push_back(parse_expression());
    } else {
      n->kids.push_back(nullptr);
    }
    if (skip_name("recursive")) fail("recursive loops are not supported");
    expect_block_end();
    ++loop_depth_;
    n->body = subparse({"endfor", "else"});
    --loop_depth_;
    if (skip_name("else")) {
      expect_block_end();
      n->else_body = subparse({"endfor"});
    }
    next();
    expect_block_end();
    return n;
  }

  NodePtr parse_set() {
    NodePtr n = node(K::Set);
    next();
    std::string first = expect_name();
    if (skip_op(".")) {
      n->targets.push_back(first);
      n->attr = expect_name();
    } else {
      n->targets.push_back(first);
      while (skip_op(",")) n->targets.push_back(expect_name());
    }
    if (skip_op("=")) {
      n->kids.push_back(parse_tuple(true, false));
      expect_block_end();
      return n;
    }
    if (!n->attr.empty() || n->targets.size() != 1) fail("expected '='");
    n->kind = K::SetBlock;
    NodePtr filter;
    while (skip_op("|")) filter = finish(parse_filter(std::move(filter)));
    n->kids.push_back(std::move(filter));
    expect_block_end();
    int saved = loop_depth_;
    loop_depth_ = 0;
    n->body = subparse({"endset"});
    loop_depth_ = saved;
    next();
    expect_block_end();
    return n;
  }

  void parse_params(Node& n) {
    expect_op("(");
    while (!is_op(")")) {
      if (!n.targets.empty()) expect_op(",");
      if (is_op(")")) break;
      n.targets.push_back(expect_name());
      n.defaults.push_back(skip_op("=") ? parse_expression() : nullptr);
    }
    expect_op(")");
  }

  NodePtr parse_macro() {
    NodePtr n = node(K::Macro);
    next();
    n->name = expect_name();
    parse_params(*n);
    expect_block_end();
    int saved = loop_depth_;
    loop_depth_ = 0;
    n->body = subparse({"endmacro"});
    loop_depth_ = saved;
    next();
    if (cur().type == T::Name) next();  // {% endmacro name %}
    expect_block_end();
    return n;
  }

  NodePtr parse_call_block() {
    NodePtr n = node(K::CallBlock);
    next();
    if (is_op("(")) parse_params(*n);
    NodePtr call = parse_expression();
    if (call->kind != K::Call) fail("expected a call after 'call'");
    n->kids.push_back(std::move(call));
    expect_block_end();
    int saved = loop_depth_;
    loop_depth_ = 0;
    n->body = subparse({"endcall"});
    loop_depth_ = saved;
    next();
    expect_block_end();
    return n;
  }

  NodePtr parse_filter_block() {
    NodePtr n = node(K::FilterBlock);
    next();
    NodePtr f = parse_filter(nullptr);
    while (skip_op("|")) f = finish(parse_filter(std::move(f)));
    n->kids.push_back(std::move(f));
    expect_block_end();
    n->body = subparse({"endfilter"});
    next();
    expect_block_end();
    return n;
  }

  NodePtr parse_with() {
    NodePtr n = node(K::With);
    next();
    while (cur().type != T::BlockEnd) {
      if (!n->targets.empty()) expect_op(",");
      n->targets.push_back(expect_name());
      expect_op("=");
      n->kids.push_back(parse_expression());
    }
    expect_block_end();
    n->body = subparse({"endwith"});
    next();
    expect_block_end();
    return n;
  }

  // Without inheritance a block renders where it stands.
  NodePtr parse_block() {
    NodePtr n = node(K::If);
    next();
    expect_name();
    if (skip_name("scoped")) {
    }
    expect_block_end();
    NodePtr yes = node(K::Literal);
    yes->literal = Value::boolean(true);
    n->kids.push_back(std::move(yes));
    n->body = subparse({"endblock"});
    next();
    if (cur().type == T::Name) next();
    expect_block_end();
    return n;
  }

  // ---- expressions ----

  NodePtr parse_tuple(bool with_condexpr, bool explicit_parens) {
    int line = cur().line;
    NodeList items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) {
        if (!skip_op(",")) break;
        is_tuple = true;
      }
      if (cur().type == T::VarEnd || cur().type == T::BlockEnd || is_op(")") || is_name("if") ||
          is_name("recursive"))
        break;
      items.push_back(with_condexpr ? parse_expression() : parse_or());
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parens) fail("expected an expression");
    }
    auto n = std::make_unique<Node>(K::TupleLit, line);
    n->kids = std::move(items);
    return finish(std::move(n));
  }

  NodePtr parse_expression() {
    DepthGuard g(*this);
    NodePtr expr = parse_or();
    while (is_name("if")) {
      next();
      NodePtr c = node(K::Cond);
      NodePtr cond = parse_or();
      NodePtr other = skip_name("else") ? parse_expression() : nullptr;
      c->kids.push_back(std::move(expr));
      c->kids.push_back(std::move(cond));
      c->kids.push_back(std::move(other));
      expr = finish(std::move(c));
    }
    return expr;
  }

  NodePtr binary(K k, NodePtr a, NodePtr b, std::string op = {}) {
    auto n = std::make_unique<Node>(k, a->line);
    n->name = std::move(op);
    n->kids.push_back(std::move(a));
    n->kids.push_back(std::move(b));
    return finish(std::move(n));
  }

  NodePtr parse_or() {
    NodePtr l = parse_and();
    while (skip_name("or")) l = binary(K::Or, std::move(l), parse_and());
    return l;
  }
  NodePtr parse_and() {
    NodePtr l = parse_not();
    while (skip_name("and")) l = binary(K::And, std::move(l), parse_not());
    return l;
  }
  NodePtr parse_not() {
    if (is_name("not")) {
      DepthGuard g(*this);
      NodePtr n = node(K::Not);
      next();
      n->kids.push_back(parse_not());
      return finish(std::move(n));
    }
    return parse_compare();
  }
  NodePtr parse_compare() {
    NodePtr first = parse_math1();
    NodePtr cmp;
    while (true) {
      std::string op;
      if (cur().type == T::Op && (cur().text == "==" || cur().text == "!=" || cur().text == "<" ||
                                  cur().text == "<=" || cur().text == ">" || cur().text == ">=")) {
        op = cur().text;
        next();
      } else if (is_name("in")) {
        op = "in";
        next();
      } else if (is_name("not") && peek().type == T::Name && peek().text == "in") {
        op = "notin";
        next();
        next();
      } else {
        break;
      }
      if (!cmp) {
        cmp = std::make_unique<Node>(K::Compare, first->line);
        cmp->kids.push_back(std::move(first));
      }
      cmp->ops.push_back(op);
      cmp->kids.push_back(parse_math1());
      if (cmp->kids.size() > 2 * kMaxParseDepth) fail("expression nested too deeply");
    }
    return cmp ? finish(std::move(cmp)) : std::move(first);
  }
  NodePtr parse_math1() {
    NodePtr l = parse_concat();
    while (is_op("+") || is_op("-")) {
      std::string op = cur().text;
      next();
      l = binary(K::Binary, std::move(l), parse_concat(), op);
    }
    return l;
  }
  NodePtr parse_concat() {
    NodePtr l = parse_math2();
    while (skip_op("~")) l = binary(K::Binary, std::move(l), parse_math2(), "~");
    return l;
  }
  NodePtr parse_math2() {
    NodePtr l = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string op = cur().text;
      next();
      l = binary(K::Binary, std::move(l), parse_pow(), op);
    }
    return l;
  }
  NodePtr parse_pow() {
    NodePtr l = parse_unary(true);
    while (skip_op("**")) l = binary(K::Binary, std::move(l), parse_unary(true), "**");
    return l;
  }
  NodePtr parse_unary(bool with_filter) {
    DepthGuard g(*this);
    NodePtr n;
    if (is_op("-") || is_op("+")) {
      n = node(is_op("-") ? K::Neg : K::Pos);
      next();
      n->kids.push_back(parse_unary(false));
      n = finish(std::move(n));
    } else {
      n = finish(parse_primary());
    }
    n = parse_postfix(std::move(n));
    if (with_filter) n = parse_filter_expr(std::move(n));
    return n;
  }

  NodePtr parse_primary() {
    const Token& tk = cur();
    NodePtr n;
    if (tk.type == T::Name) {
      n = node(K::Literal);
      if (tk.text == "true" || tk.text == "True") {
        n->literal = Value::boolean(true);
      } else if (tk.text == "false" || tk.text == "False") {
        n->literal = Value::boolean(false);
      } else if (tk.text == "none" || tk.text == "None") {
        n->literal = Value::none();
      } else {
        n->kind = K::Name;
        n->name = tk.text;
      }
      next();
    } else if (tk.type == T::String) {
      n = node(K::Literal);
      std::string s;
      while (cur().type == T::String) {
        s += cur().text;
        next();
      }
      n->literal = Value::string(std::move(s));
    } else if (tk.type == T::Int || tk.type == T::Float) {
      n = node(K::Literal);
      try {
        n->literal = tk.type == T::Int ? Value::integer(std::stoll(tk.text)) : Value::floating(std::stod(tk.text));
      } catch (const std::exception&) {
        fail("number out of range");
      }
      next();
    } else if (is_op("(")) {
      next();
      n = parse_tuple(true, true);
      expect_op(")");
    } else if (is_op("[")) {
      n = node(K::ListLit);
      next();
      while (!is_op("]")) {
        if (!n->kids.empty()) {
          expect_op(",");
          if (is_op("]")) break;
        }
        n->kids.push_back(parse_expression());
      }
      expect_op("]");
    } else if (is_op("{")) {
      n = node(K::DictLit);
      next();
      while (!is_op("}")) {
        if (!n->kids.empty()) {
          expect_op(",");
          if (is_op("}")) break;
        }
        n->kids.push_back(parse_expression());
        expect_op(":");
        n->kids.push_back(parse_expression());
      }
      expect_op("}");
    } else {
      fail("unexpected token in expression");
    }
    return n;
  }

  NodePtr parse_postfix(NodePtr n) {
    while (true) {
      if (is_op(".") || is_op("[")) {
        n = finish(parse_subscript(std::move(n)));
      } else if (is_op("(")) {
        n = finish(parse_call(std::move(n)));
      } else {
        return n;
      }
    }
  }

  NodePtr parse_filter_expr(NodePtr n) {
    while (true) {
      if (skip_op("|")) {
        n = finish(parse_filter(std::move(n)));
      } else if (is_name("is")) {
        next();
        n = finish(parse_test(std::move(n)));
      } else if (is_op("(")) {
        n = finish(parse_call(std::move(n)));
      } else {
        return n;
      }
    }
  }

  NodePtr parse_subscript(NodePtr obj) {
    DepthGuard g(*this);
    if (skip_op(".")) {
      NodePtr n = node(K::Attr);
      if (cur().type == T::Name) {
        n->name = cur().text;
      } else if (cur().type == T::Int) {
        if (cur().text.size() > 18) fail("index out of range");
        n->kind = K::Item;
        auto key = node(K::Literal);
        key->literal = Value::integer(std::stoll(cur().text));
        n->kids.push_back(std::move(obj));
        n->kids.push_back(std::move(key));
        next();
        return n;
      } else {
        fail("expected an attribute name");
      }
      next();
      n->kids.push_back(std::move(obj));
      return n;
    }
    expect_op("[");
    NodePtr n = node(K::Item);
    n->kids.push_back(std::move(obj));
    NodePtr parts[3];
    int colons = 0;
    while (!is_op("]")) {
      if (skip_op(":")) {
        if (++colons > 2) fail("invalid slice");
        continue;
      }
      if (parts[colons]) fail("expected ']'");
      parts[colons] = parse_expression();
      if (colons == 0 && is_op(",")) fail("tuple indices are not supported");
    }
    next();
    if (colons == 0) {
      if (!parts[0]) fail("expected an index");
      n->kids.push_back(std::move(parts[0]));
    } else {
      n->kind = K::Slice;
      for (auto& p : parts) n->kids.push_back(std::move(p));
    }
    return n;
  }

  void parse_args(Node& n) {
    expect_op("(");
    while (!is_op(")")) {
      if (!n.args.empty() || !n.kw.empty()) {
        expect_op(",");
        if (is_op(")")) break;
      }
      if (is_op("*") || is_op("**")) fail("*args and **kwargs are not supported");
      if (cur().type == T::Name && peek().type == T::Op && peek().text == "=") {
        n.kw_names.push_back(cur().text);
        next();
        next();
        n.kw.push_back(parse_expression());
      } else {
        if (!n.kw.empty()) fail("positional argument after keyword argument");
        n.args.push_back(parse_expression());
      }
    }
    expect_op(")");
  }

  NodePtr parse_call(NodePtr callee) {
    DepthGuard g(*this);
    NodePtr n = node(K::Call);
    n->kids.push_back(std::move(callee));
    parse_args(*n);
    return n;
  }

  NodePtr parse_filter(NodePtr operand) {
    DepthGuard g(*this);
    NodePtr n = node(K::Filter);
    n->name = expect_name();
    while (skip_op(".")) {
      n->name += '.';
      n->name += expect_name();
    }
    n->kids.push_back(std::move(operand));
    if (is_op("(")) parse_args(*n);
    return n;
  }

  NodePtr parse_test(NodePtr operand) {
    DepthGuard g(*this);
    NodePtr n = node(K::Test);
    if (skip_name("not")) n->negated = true;
    n->name = expect_name();
    while (skip_op(".")) {
      n->name += '.';
      n->name += expect_name();
    }
    n->kids.push_back(std::move(operand));
    if (is_op("(")) {
      parse_args(*n);
    } else if ((cur().type == T::Name || cur().type == T::String || cur().type == T::Int ||
                cur().type == T::Float || is_op("[") || is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and") && !is_name("if") && !is_name("is") &&
               !is_name("in") && !is_name("not") && !is_name("recursive")) {
      NodePtr arg = parse_primary();
      n->args.push_back(parse_postfix(std::move(arg)));
    }
    return n;
  }

  std::vector<Token> t_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

NodeList parse_template(std::string_view source) { return Parser(tokenize(source)).parse(); }

}  // namespace strata::jinja
