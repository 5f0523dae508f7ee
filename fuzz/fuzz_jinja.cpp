// libFuzzer target for the Jinja interpreter that renders chat templates
// from downloaded models: the input is a template, optionally followed by
// "\n\x01\n" and a JSON value used as `messages`. Every input must either
// render within the (small) limits or throw jinja::TemplateError; any other
// exception, a crash, a sanitizer report or a hang is a finding.
//
//   STRATA_FUZZ_TARGET=jinja scripts/fuzz.sh 600
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "tokenizer/jinja/template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace strata::jinja;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string_view src = in, msgs;
  if (size_t sep = in.find("\n\x01\n"); sep != std::string_view::npos) {
    src = in.substr(0, sep);
    msgs = in.substr(sep + 3);
  }
  Dict vars;
  nlohmann::ordered_json m = nlohmann::ordered_json::parse(msgs, nullptr, false);
  if (m.is_discarded())
    m = nlohmann::ordered_json::parse(R"([{"role": "system", "content": "Be brief."},
      {"role": "user", "content": "Hi <|im_end|>", "n": 3, "x": [1, 2.5, null, true]},
      {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]}])");
  vars.set("messages", from_json(m, true));
  vars.set("bos_token", Value::string("<s>"));
  vars.set("eos_token", Value::string("</s>"));
  vars.set("add_generation_prompt", Value::boolean(true));
  RenderOptions opt;
  opt.now = 1768478400;
  opt.limits.max_output_bytes = 1 << 20;
  opt.limits.max_loop_iterations = 20000;
  opt.limits.max_steps = 200000;
  opt.limits.max_call_depth = 50;
  try {
    Template t(src);
    Str out = t.render(vars, opt);
    if (out.s.size() > opt.limits.max_output_bytes) std::abort();
    for (const Span& s : out.tainted)
      if (s.begin >= s.end || s.end > out.s.size()) std::abort();
  } catch (const TemplateError&) {
  }
  return 0;
}
