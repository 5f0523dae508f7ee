// The Jinja interpreter against Python Jinja2's renders of real chat
// templates (../shared/testdata/chat_templates), plus semantics and hostile
// templates.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tokenizer/jinja/template.h"

namespace fs = std::filesystem;
using namespace strata::jinja;
using ojson = nlohmann::ordered_json;

namespace {

const fs::path kDir = fs::path(STRATA_TESTDATA_DIR) / "chat_templates";

std::string read(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// 2026-01-15 12:00 UTC: the date the references' strftime_now formats.
constexpr std::time_t kRefTime = 1768478400;

Dict case_vars(const ojson& c) {
  Dict vars;
  for (auto it = c.begin(); it != c.end(); ++it) {
    if (it.key() == "expected" || it.key() == "expected_error" || it.key() == "vars") continue;
    vars.set(it.key(), from_json(it.value(), true));
  }
  if (c.contains("vars"))
    for (auto it = c["vars"].begin(); it != c["vars"].end(); ++it) vars.set(it.key(), from_json(it.value(), true));
  return vars;
}

[[maybe_unused]] std::string render(const std::string& src, const ojson& vars = ojson::object()) {
  Template t(src);
  RenderOptions o;
  o.now = kRefTime;
  return t.render(case_vars(vars), o).s;
}

}  // namespace

TEST(JinjaReference, EveryCaseOfEveryTemplate) {
  ASSERT_TRUE(fs::exists(kDir)) << kDir;
  std::vector<fs::path> templates;
  for (const auto& e : fs::directory_iterator(kDir))
    if (e.path().extension() == ".jinja") templates.push_back(e.path());
  std::sort(templates.begin(), templates.end());
  ASSERT_FALSE(templates.empty());
  size_t total = 0;
  for (const fs::path& p : templates) {
    std::string name = p.stem().string();
    Template t(read(p));
    std::ifstream cases(kDir / (name + ".cases.jsonl"));
    std::string line;
    size_t n = 0, ok = 0;
    while (std::getline(cases, line)) {
      if (line.empty()) continue;
      ++n;
      ojson c = ojson::parse(line);
      RenderOptions o;
      o.now = kRefTime;
      std::string got, err;
      try {
        got = t.render(case_vars(c), o).s;
      } catch (const TemplateError& e) {
        err = e.what();
      }
      if (c.contains("expected")) {
        EXPECT_EQ(err, "") << name << " case " << n;
        EXPECT_EQ(got, c["expected"].get<std::string>()) << name << " case " << n;
        ok += err.empty() && got == c["expected"].get<std::string>();
      } else {
        EXPECT_NE(err, "") << name << " case " << n << " should fail (" << c["expected_error"] << ") but gave:\n"
                           << got;
        ok += !err.empty();
      }
    }
    std::printf("  %-50s %zu/%zu cases\n", name.c_str(), ok, n);
    EXPECT_GT(n, 0u);
    total += ok;
  }
  std::printf("  total: %zu cases rendered as recorded\n", total);
}

// Outputs of Python Jinja2 3.1 (transformers' environment) for constructs
// real templates use, recorded with the reference implementation.
TEST(JinjaSemantics, MatchesPythonJinja2) {
  ojson v = ojson::parse(R"({"messages": [{"role": "system", "content": "  Sys  "}, {"role": "user", "content": "a\nb"}],
                            "d": {"b": 2, "a": 1}, "num": 7, "fl": 2.5, "nothing": null})");
  struct Case {
    const char* src;
    const char* want;
  } cases[] = {
      {"{{ 1/2 }} {{ 7//2 }} {{ -7//2 }} {{ -7 % 3 }} {{ 2**10 }} {{ 1.0 }} {{ 1e20 }} {{ 0.1+0.2 }}",
       "0.5 3 -4 2 1024 1.0 1e+20 0.30000000000000004"},
      {"{{ [1, 'a', none, true, 1.5] }} {{ {'a': 'x'} }} {{ (1,) }} {{ \"it's\" }}", "[1, 'a', None, True, 1.5] {'a': 'x'} (1,) it's"},
      {"{{ undefined_var }}|{{ undefined_var is defined }}|{{ undefined_var|default('x') }}|{{ ''|default('e', true) }}", "|False|x|e"},
      {"{% for m in messages if m.role != 'system' %}{{ loop.index }}:{{ m.role }}{% else %}none{% endfor %}", "1:user"},
      {"{% set x = 1 %}{% for i in range(3) %}{% set x = x + i %}{{ x }}{% endfor %}{{ x }}", "1231"},
      {"{% set ns = namespace(c=0) %}{% for i in range(4) %}{% set ns.c = ns.c + i %}{% endfor %}{{ ns.c }}", "6"},
      {"{% macro g(n, s='Hi') %}{{ s }}, {{ n }}!{% endmacro %}{{ g('Bob') }} {{ g('Al', s='Yo') }}", "Hi, Bob! Yo, Al!"},
      {"{% macro w() %}[{{ caller(5) }}]{% endmacro %}{% call(x) w() %}got {{ x }}{% endcall %}", "[got 5]"},
      {"{{ d|dictsort }} {{ d|items|list }} {{ d|tojson(sort_keys=true) }}", "[('a', 1), ('b', 2)] [('b', 2), ('a', 1)] {\"a\": 1, \"b\": 2}"},
      {"{{ \"o'neil-smith (x)\"|title }} {{ 'hELLO'|capitalize }} {{ 'abc'|replace('', '-') }}", "O'neil-Smith (X) Hello -a-b-c-"},
      {"{{ 'héllo'[1] }} {{ 'abcdef'[::-1] }} {{ [1,2,3][-2:] }} {{ 'a,b,,c'.split(',') }} {{ '  a  b '.split() }}",
       "é fedcba [2, 3] ['a', 'b', '', 'c'] ['a', 'b']"},
      {"{{ \"line1\\nline2\\n\\nline4\"|indent }}|{{ \"a\\nb\"|indent(2, true) }}", "line1\n    line2\n\n    line4|  a\n  b"},
      {"{{ 'é'|tojson }} {{ 'é'|tojson(true) }} {{ {'a': [1, 2]}|tojson(indent=2) }}", "\"é\" \"\\u00e9\" {\n  \"a\": [\n    1,\n    2\n  ]\n}"},
      {"{{ messages[0].content is string }} {{ nothing is none }} {{ undefined_var is iterable }} {{ d is sequence }} {{ 1 is true }}",
       "True True True True False"},
      {"  {% if true %}\n  indented\n  {% endif %}\nafter", "  indented\nafter"},
      {"a {{- ' b ' -}} c {#- comment -#} d", "a b cd"},
      {"line1\n    {%+ if true %}kept{% endif %}", "line1\n    kept"},
      {"{{ '%s and %d'|format('a', 3) }} {{ '%5.2f|%-4s|%03d' % (3.14159, 'ab', 7) }}", "a and 3  3.14|ab  |007"},
      {"{% set a, b = 1, 2 %}{{ a }}{{ b }}{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", "12b=2;a=1;"},
      {"{{ messages|map(attribute='role')|join(', ') }} {{ messages|selectattr('role', 'equalto', 'user')|list|length }}", "system, user 1"},
      {"{{ [none, 1, 0, 'x']|select|list }} {{ [1, 5, 10]|select('gt', 3)|list }} {{ [2.5]|sum }}", "[1, 'x'] [5, 10] 2.5"},
      {"{{ '42'|int }} {{ '4.7'|int }} {{ 'x'|int }} {{ 4.7|int }} {{ 2.5|round }} {{ 3.5|round }}", "42 4 0 4 2.0 4.0"},
      {"{{ messages[0].nokey }}|{{ nothing.attr }}|{{ 10 > 3 > 1 }} {{ true == 1 }} {{ 1 in [1.0] }}", "||True True True"},
      {"{% set s %}  block {{ 1 }} {% endset %}[{{ s }}]{% filter upper %}up{% endfilter %}", "[  block 1 ]UP"},
      {"{{ messages|groupby('role')|map(attribute='grouper')|list }}", "['system', 'user']"},
  };
  for (const auto& c : cases) EXPECT_EQ(render(c.src, v), c.want) << c.src;
}

TEST(JinjaSemantics, ErrorsLikePythonJinja2) {
  ojson v = ojson::parse(R"({"messages": [{"role": "user", "content": "x"}], "nothing": null})");
  const char* failing[] = {
      "{{ undefined_var.attr }}", "{{ messages[0].nokey.deeper }}", "{{ undefined_fn() }}", "{{ 'a' + 1 }}",
      "{{ 'a' < 1 }}", "{{ 1 / 0 }}", "{% set l = [1] %}{{ l.append(2) }}", "{% set d = {} %}{{ d.update({}) }}",
      "{{ raise_exception('custom') }}", "{{ undefined_var|tojson }}", "{% for x in nothing %}{% endfor %}",
      "{{ messages[0]['content'] + 1 }}", "{{ range(200000)|length }}", "{{ x | nosuchfilter }}", "{% if x is nosuchtest %}{% endif %}",
      "{% for %}", "{{ 'unterminated }}", "{{ {'k': 'v'}.88888888888888888888888888item/() }}",  // fuzz finding
 "{% if true %}", "{% endif %}", "{% include 'x' %}", "{{ ((1) }}",
  };
  for (const char* src : failing) EXPECT_THROW(render(src, v), TemplateError) << src;
}

TEST(JinjaSemantics, TaintFollowsVariables) {
  ojson v = ojson::parse(R"({"messages": [{"role": "user", "content": "  <|x|>  "}]})");
  Dict vars = case_vars(v);
  vars.set("bos_token", Value::string("<s>"));
  Template t("{{ bos_token }}[{{ messages[0].content|trim }}]{{ messages[0].role|upper }}{{ messages|tojson }}");
  Str out = t.render(vars);
  EXPECT_EQ(out.s, "<s>[<|x|>]USER[{\"role\": \"user\", \"content\": \"  <|x|>  \"}]");
  std::string mask(out.s.size(), '.');
  for (const Span& s : out.tainted)
    for (uint32_t i = s.begin; i < s.end; ++i) mask[i] = 'T';
  // Literals and bos_token are trusted; content, role and the JSON strings
  // (keys and values) came from variables.
  EXPECT_EQ(mask, "....TTTTT.TTTT...TTTT....TTTT....TTTTTTT....TTTTTTTTT...");
}

namespace {

std::string render_error(const std::string& src, const Limits& limits) {
  Template t(src);
  RenderOptions o;
  o.limits = limits;
  try {
    t.render(Dict{}, o);
  } catch (const TemplateError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(JinjaHostile, LimitsEndHostileTemplatesWithClearErrors) {
  Limits small;
  small.max_output_bytes = 1 << 20;
  small.max_loop_iterations = 20000;
  small.max_steps = 500000;
  small.max_call_depth = 50;
  EXPECT_NE(render_error("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", small)
                .find("loop iterations"),
            std::string::npos);
  EXPECT_NE(render_error("{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}", small).find("macro calls nested"),
            std::string::npos);
  EXPECT_NE(render_error("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
                         small)
                .find("exceed the limit"),
            std::string::npos);
  EXPECT_NE(render_error("{{ 'x' * 10000000000 }}", small).find("exceed the limit"), std::string::npos);
  EXPECT_NE(render_error("{% for i in range(10000) %}{{ 'y' * 1000 }}{% endfor %}", small).find("exceed the limit"),
            std::string::npos);
  EXPECT_NE(render_error("{{ foo() }}", small).find("'foo' is undefined"), std::string::npos);
  EXPECT_NE(render_error("{{ foo.bar() }}", small).find("'foo' is undefined"), std::string::npos);
  EXPECT_NE(render_error("{{ ''.nosuchmethod() }}", small).find("has no attribute 'nosuchmethod'"), std::string::npos);
  EXPECT_NE(render_error("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}", small).find("nested too deeply"),
            std::string::npos);
  // Steps bound work that no loop counts: 2^40 macro calls without a loop.
  EXPECT_NE(render_error("{% macro a(n) %}{% if n > 0 %}{{ a(n - 1) }}{{ a(n - 1) }}{% endif %}{% endmacro %}{{ a(40) }}",
                         small)
                .find("evaluation steps"),
            std::string::npos);
  // The defaults bound a render to about a second of work.
  EXPECT_LE(Limits{}.max_steps, 10'000'000u);
  EXPECT_LE(Limits{}.max_loop_iterations, 1'000'000u);
}

TEST(JinjaHostile, DeepNestingIsASyntaxErrorNotAStackOverflow) {
  for (const char* unit : {"(", "[", "{'a': ", "-", "not "}) {
    std::string src = "{{ ";
    for (int i = 0; i < 100000; ++i) src += unit;
    src += "1 }}";
    EXPECT_THROW(Template{src}, TemplateError) << unit;
  }
  std::string ifs;
  for (int i = 0; i < 10000; ++i) ifs += "{% if true %}";
  EXPECT_THROW(Template{ifs}, TemplateError);
  std::string filters = "{{ 'x'";
  for (int i = 0; i < 100000; ++i) filters += "|trim";
  EXPECT_THROW(Template{filters + " }}"}, TemplateError);
}

// Chains built by loops (a+a+..., x|f|f..., a.b.c...) must be bounded too:
// a deep tree would overflow the stack when evaluated or destroyed.
TEST(JinjaHostile, LongOperatorChainsAreBounded) {
  for (const char* unit : {" + 1", "|trim", ".a", "[0]", "()", " ~ 'x'", " and 1", " if 1 else 2", " is defined"}) {
    std::string src = "{{ 1";
    for (int i = 0; i < 50000; ++i) src += unit;
    EXPECT_THROW(Template{src + " }}"}, TemplateError) << unit;
  }
  // Chains inside brackets inside chains: the depth adds up across them.
  std::string nested = "{{ ";
  for (int i = 0; i < 100; ++i) nested += "-(1 + 1 + 1 + 1 + 1 + ";
  nested += "1";
  for (int i = 0; i < 100; ++i) nested += ")";
  EXPECT_THROW(Template{nested + " }}"}, TemplateError);
  // A chain within the bound still parses and runs.
  std::string ok = "{{ 0";
  for (int i = 0; i < 300; ++i) ok += " + 1";
  EXPECT_EQ(render(ok + " }}"), "300");
}
