// The syntax tree of a Jinja template: one node type for expressions and
// statements, tagged by kind, with the fields each kind uses listed below.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tokenizer/jinja/value.h"

namespace strata::jinja {

struct Node;
using NodePtr = std::unique_ptr<Node>;
using NodeList = std::vector<NodePtr>;

struct Node {
  enum class Kind {
    // Expressions
    Literal,    // literal
    Name,       // name
    ListLit,    // kids: items
    TupleLit,   // kids: items
    DictLit,    // kids: key0, value0, key1, value1...
    Attr,       // kids[0].name
    Item,       // kids[0][kids[1]]
    Slice,      // kids[0][kids[1]:kids[2]:kids[3]] (any of 1..3 may be null)
    Call,       // kids[0](args, kw)
    Filter,     // kids[0] | name(args, kw); kids[0] null inside {% filter %}
    Test,       // kids[0] is [not] name(args, kw); negated
    Not,        // not kids[0]
    Neg,        // -kids[0]
    Pos,        // +kids[0]
    Binary,     // kids[0] name kids[1]; name: + - * / // % ** ~
    Compare,    // kids[0] ops[0] kids[1] ops[1] kids[2]...; ops: == != < <= > >= in notin
    And,        // kids[0] and kids[1]
    Or,         // kids[0] or kids[1]
    Cond,       // kids[0] if kids[1] else kids[2] (kids[2] may be null)
    // Statements
    Data,         // literal (a string)
    Print,        // {{ kids[0] }}
    If,           // if kids[0]: body else: else_body (elif is a nested If)
    For,          // for targets in kids[0] if kids[1]: body else: else_body
    Set,          // targets = kids[0], or targets[0].attr = kids[0]
    SetBlock,     // {% set targets[0] %}body{% endset %}, filtered by kids[0] if any
    Macro,        // macro name(targets = defaults): body
    CallBlock,    // {% call(targets = defaults) kids[0] %}body{% endcall %}
    FilterBlock,  // {% filter kids[0] %}body{% endfilter %} (a Filter chain with a null innermost operand)
    With,         // {% with targets = kids %}body{% endwith %}
    Break,
    Continue,
  };
  Kind kind;
  int line = 0;
  int depth = 1;  // of the expression tree below (bounded by the parser)
  std::string name;
  std::string attr;
  Value literal;
  bool negated = false;
  NodeList kids;
  NodeList args;
  std::vector<std::string> kw_names;
  NodeList kw;
  std::vector<std::string> ops;
  std::vector<std::string> targets;
  NodeList defaults;  // aligned with targets; null means no default
  NodeList body, else_body;

  Node(Kind k, int l) : kind(k), line(l) {}
};

}  // namespace strata::jinja
