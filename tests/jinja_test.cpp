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
