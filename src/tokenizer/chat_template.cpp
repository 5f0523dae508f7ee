// strata::ChatTemplate (include/strata/chat.h): finds a model's chat
// template and special tokens, renders conversations with the Jinja
// interpreter, and tokenizes them with message text kept as text.
#include "strata/chat.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>

#include "formats/gguf.h"
#include "tokenizer/jinja/template.h"
#include "tokenizer/tokenizer.h"

namespace strata {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

// The special-token variables transformers passes (special_tokens_map).
// They are the model's own control tokens, so they stay special when the
// template prints them, even when a caller passes them explicitly.
const char* const kSpecialTokenVars[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                         "pad_token", "cls_token", "mask_token", "additional_special_tokens"};

bool is_special_token_var(const std::string& k) {
  for (const char* v : kSpecialTokenVars)
    if (k == v) return true;
  return false;
}

std::string read_text(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) throw ChatTemplateError(fmt::format("{}: cannot open file", p.string()));
  std::ostringstream ss;
  ss << f.rdbuf();
  return std::move(ss).str();
}

ojson read_json(const fs::path& p) {
  try {
    return ojson::parse(read_text(p));
  } catch (const ojson::exception& e) {
    throw ChatTemplateError(fmt::format("{}: invalid JSON: {}", p.string(), e.what()));
  }
}

// "chat_template" of a tokenizer_config.json / chat_template.json: a string
// or a list of {"name", "template"}.
std::vector<std::pair<std::string, std::string>> named_templates(const ojson& j, const std::string& where) {
  std::vector<std::pair<std::string, std::string>> out;
  auto it = j.find("chat_template");
  if (it == j.end() || it->is_null()) return out;
  if (it->is_string()) {
    out.emplace_back("default", it->get<std::string>());
  } else if (it->is_array()) {
    for (const auto& t : *it) {
      if (!t.is_object() || !t.contains("name") || !t["name"].is_string() || !t.contains("template") ||
          !t["template"].is_string())
        throw ChatTemplateError(fmt::format("{}: chat_template list entries need a \"name\" and a \"template\"", where));
      out.emplace_back(t["name"].get<std::string>(), t["template"].get<std::string>());
    }
  } else {
    throw ChatTemplateError(fmt::format("{}: chat_template must be a string or a list", where));
  }
  return out;
}

std::optional<std::string> token_string(const ojson& cfg, const char* key) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return (*it)["content"].get<std::string>();
  return std::nullopt;
}

struct GgufMeta {
  std::vector<std::pair<std::string, std::string>> templates;
  ojson specials = ojson::object();
  std::vector<int32_t> eos_ids;
};

GgufMeta read_gguf_meta(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw ChatTemplateError(fmt::format("{}: cannot open file", path.string()));
  f.seekg(0, std::ios::end);
  uint64_t file_size = static_cast<uint64_t>(f.tellg());
  size_t want = static_cast<size_t>(std::min<uint64_t>(file_size, 8u << 20));
  GgufHeader h;
  while (true) {
    std::vector<uint8_t> buf(want);
    f.seekg(0);
    f.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(want));
    try {
      h = parse_gguf_header(buf.data(), want, file_size, path.string());
      break;
    } catch (const GgufNeedMore& more) {
      if (more.bytes <= want || more.bytes > file_size) throw ChatTemplateError(fmt::format("{}: truncated header", path.string()));
      want = static_cast<size_t>(more.bytes);
    }
  }
  GgufMeta m;
  if (const GgufValue* v = h.find("tokenizer.chat_template")) m.templates.emplace_back("default", v->s);
  for (const auto& [k, v] : h.kv) {
    const std::string prefix = "tokenizer.chat_template.";
    if (k.rfind(prefix, 0) == 0 && v.type == GgufType::String) m.templates.emplace_back(k.substr(prefix.size()), v.s);
  }
  const GgufValue* tokens = h.find("tokenizer.ggml.tokens");
  auto token_of = [&](const char* key) -> std::optional<std::string> {
    const GgufValue* id = h.find(key);
    if (!id || !tokens || !id->is_integer()) return std::nullopt;
    int64_t i = id->i;
    if (i < 0 || static_cast<size_t>(i) >= tokens->strs.size()) return std::nullopt;
    return tokens->strs[static_cast<size_t>(i)];
  };
  for (auto [var, key] : {std::pair{"bos_token", "tokenizer.ggml.bos_token_id"},
                          std::pair{"eos_token", "tokenizer.ggml.eos_token_id"},
                          std::pair{"unk_token", "tokenizer.ggml.unknown_token_id"},
                          std::pair{"pad_token", "tokenizer.ggml.padding_token_id"}}) {
    if (auto t = token_of(key)) m.specials[var] = *t;
  }
  if (const GgufValue* id = h.find("tokenizer.ggml.eos_token_id"); id && id->is_integer())
    m.eos_ids.push_back(static_cast<int32_t>(id->i));
  return m;
}

}  // namespace

struct ChatTemplate::Impl {
  std::string origin;
  std::vector<std::pair<std::string, std::string>> sources;  // name -> Jinja source
  std::map<std::string, std::shared_ptr<const jinja::Template>> compiled;
  std::string chosen;  // options.name ("" = default/tool_use rule)
  ojson defaults = ojson::object();
  std::vector<int32_t> eos_ids;  // generation_config.json / GGUF
  ChatTemplateLimits limits;

  const std::pair<std::string, std::string>* find(const std::string& name) const {
    for (const auto& s : sources)
      if (s.first == name) return &s;
    return nullptr;
  }

  // The source used for a render with (or without) tools.
  const std::pair<std::string, std::string>& pick(bool has_tools) const {
    if (!chosen.empty()) return *find(chosen);
    if (has_tools)
      if (const auto* t = find("tool_use")) return *t;
    if (const auto* d = find("default")) return *d;
    return sources.front();
  }
};

ChatTemplate::ChatTemplate(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {
  Impl& m = *impl_;
  if (m.sources.empty()) throw ChatTemplateError(fmt::format("{}: no chat template", m.origin));
  if (!m.chosen.empty() && !m.find(m.chosen)) {
    std::string names;
    for (const auto& s : m.sources) names += (names.empty() ? "" : ", ") + s.first;
    throw ChatTemplateError(fmt::format("{}: no chat template named '{}' (have: {})", m.origin, m.chosen, names));
  }
  // Compile every template now so a syntax error shows at load time.
  for (const auto& [name, src] : m.sources) {
    try {
      m.compiled[name] = std::make_shared<const jinja::Template>(src);
    } catch (const jinja::TemplateError& e) {
      throw ChatTemplateError(fmt::format("{}{}: {}", m.origin, m.sources.size() > 1 ? " (" + name + ")" : "", e.what()));
    }
  }
}

ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;
ChatTemplate::~ChatTemplate() = default;

ChatTemplate ChatTemplate::from_string(std::string source, std::string name) {
  auto m = std::make_unique<Impl>();
  m->origin = std::move(name);
  m->sources.emplace_back("default", std::move(source));
  return ChatTemplate(std::move(m));
}

namespace {

std::vector<std::pair<std::string, std::string>> templates_of_file(const fs::path& p) {
  if (p.extension() == ".json") return named_templates(read_json(p), p.string());
  return {{"default", read_text(p)}};
}

}  // namespace

ChatTemplate ChatTemplate::from_file(const fs::path& path, const ChatTemplateOptions& options) {
  auto m = std::make_unique<Impl>();
  m->origin = path.string();
  m->sources = templates_of_file(path);
  if (m->sources.empty()) throw ChatTemplateError(fmt::format("{}: no chat_template in the file", path.string()));
  m->chosen = options.name;
  m->limits = options.limits;
  return ChatTemplate(std::move(m));
}

bool ChatTemplate::model_has_template(const fs::path& model) {
  try {
    from_model(model);
    return true;
  } catch (const Error&) {
    return false;
  }
}

ChatTemplate ChatTemplate::from_model(const fs::path& model, const ChatTemplateOptions& options) {
  auto m = std::make_unique<Impl>();
  m->chosen = options.name;
  m->limits = options.limits;
  if (fs::is_regular_file(model) && model.extension() == ".jinja") return from_file(model, options);
  if (fs::is_regular_file(model) && is_gguf_file(model)) {
    GgufMeta g = read_gguf_meta(model);
    m->origin = model.string() + " (tokenizer.chat_template)";
    m->sources = std::move(g.templates);
    m->defaults = std::move(g.specials);
    m->eos_ids = std::move(g.eos_ids);
  } else if (fs::is_directory(model)) {
    fs::path cfg_path = model / "tokenizer_config.json";
    if (fs::exists(cfg_path)) {
      ojson cfg = read_json(cfg_path);
      if (!cfg.is_object()) throw ChatTemplateError(fmt::format("{}: not a JSON object", cfg_path.string()));
      m->origin = cfg_path.string();
      m->sources = named_templates(cfg, cfg_path.string());
      for (const char* k : kSpecialTokenVars) {
        if (std::string(k) == "additional_special_tokens") {
          auto it = cfg.find(k);
          if (it != cfg.end() && it->is_array()) {
            ojson list = ojson::array();
            for (const auto& t : *it) {
              if (t.is_string()) list.push_back(t);
              if (t.is_object() && t.contains("content")) list.push_back(t["content"]);
            }
            m->defaults[k] = list;
          }
        } else if (auto t = token_string(cfg, k)) {
          m->defaults[k] = *t;
        }
      }
    }
    // transformers prefers chat_template.jinja, then chat_template.json,
    // over tokenizer_config.json's entry.
    if (fs::exists(model / "chat_template.jinja")) {
      m->origin = (model / "chat_template.jinja").string();
      m->sources = {{"default", read_text(model / "chat_template.jinja")}};
    } else if (fs::exists(model / "chat_template.json")) {
      auto t = named_templates(read_json(model / "chat_template.json"), (model / "chat_template.json").string());
      if (!t.empty()) {
        m->origin = (model / "chat_template.json").string();
        m->sources = std::move(t);
      }
    }
    fs::path gen = model / "generation_config.json";
    if (fs::exists(gen)) {
      ojson g = read_json(gen);
      auto it = g.find("eos_token_id");
      if (it != g.end()) {
        if (it->is_number_integer()) m->eos_ids.push_back(it->get<int32_t>());
        if (it->is_array())
          for (const auto& x : *it)
            if (x.is_number_integer()) m->eos_ids.push_back(x.get<int32_t>());
      }
    }
    if (m->origin.empty()) m->origin = model.string();
  } else {
    throw ChatTemplateError(fmt::format("{}: not a model directory, GGUF file or .jinja file", model.string()));
  }
  if (!options.override_file.empty()) {
    m->sources = templates_of_file(options.override_file);
    m->origin = options.override_file.string();
    if (m->sources.empty())
      throw ChatTemplateError(fmt::format("{}: no chat_template in the file", options.override_file.string()));
  }
  if (m->sources.empty())
    throw ChatTemplateError(fmt::format("{}: the model has no chat template (give one with --chat-template FILE)",
                                        model.string()));
  return ChatTemplate(std::move(m));
}

const std::string& ChatTemplate::source() const { return impl_->pick(false).second; }
const std::string& ChatTemplate::origin() const { return impl_->origin; }

std::vector<std::string> ChatTemplate::names() const {
  std::vector<std::string> out;
  for (const auto& s : impl_->sources) out.push_back(s.first);
  return out;
}

const ojson& ChatTemplate::default_variables() const { return impl_->defaults; }

RenderedChat ChatTemplate::render(const ChatInput& input) const {
  const Impl& m = *impl_;
  bool has_tools = !input.tools.is_null();
  const auto& [name, src] = m.pick(has_tools);
  const jinja::Template& t = *m.compiled.at(name);
  jinja::Dict vars;
  for (auto it = m.defaults.begin(); it != m.defaults.end(); ++it) vars.set(it.key(), jinja::from_json(it.value(), false));
  vars.set("messages", jinja::from_json(input.messages, true));
  vars.set("add_generation_prompt", jinja::Value::boolean(input.add_generation_prompt));
  if (has_tools) vars.set("tools", jinja::from_json(input.tools, true));
  if (!input.variables.is_null() && !input.variables.is_object())
    throw ChatTemplateError("chat template variables must be a JSON object");
  if (input.variables.is_object())
    for (auto it = input.variables.begin(); it != input.variables.end(); ++it)
      vars.set(it.key(), jinja::from_json(it.value(), !is_special_token_var(it.key())));
  jinja::RenderOptions opt;
  opt.limits.max_output_bytes = m.limits.max_output_bytes;
  opt.limits.max_loop_iterations = m.limits.max_loop_iterations;
  opt.limits.max_call_depth = m.limits.max_call_depth;
  opt.limits.max_steps = m.limits.max_steps;
  opt.now = input.now;
  jinja::Str out;
  try {
    out = t.render(vars, opt);
  } catch (const jinja::TemplateError& e) {
    throw ChatTemplateError(fmt::format("{}: {}", m.origin, e.what()));
  }
  RenderedChat r;
  r.text = std::move(out.s);
  for (const jinja::Span& s : out.tainted) r.variable_spans.emplace_back(s.begin, s.end);
  return r;
}

std::vector<int32_t> ChatTemplate::tokenize(const RenderedChat& rendered, const Tokenizer& tokenizer,
                                            SpecialTokenParsing parsing) const {
  if (parsing == SpecialTokenParsing::Everywhere) return tokenizer.encode(rendered.text, false, false);
  return tokenizer.encode_with_plain_spans(rendered.text, rendered.variable_spans, false);
}

std::vector<int32_t> ChatTemplate::encode(const ChatInput& input, const Tokenizer& tokenizer,
                                          SpecialTokenParsing parsing) const {
  return tokenize(render(input), tokenizer, parsing);
}

std::string ChatTemplate::end_of_turn_token(const Tokenizer& tokenizer) const {
  // Render a two-turn conversation and look at what follows the assistant's
  // text: the first special token there closes an assistant turn.
  static const char* kProbe = "strata-probe-reply";
  const ojson tries[] = {
      ojson::parse(R"([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "strata-probe-reply"}])"),
      ojson::parse(R"([{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"},
                       {"role": "assistant", "content": "strata-probe-reply"}])"),
  };
  for (const ojson& msgs : tries) {
    ChatInput in;
    in.messages = msgs;
    in.add_generation_prompt = false;
    std::string text;
    try {
      text = render(in).text;
    } catch (const Error&) {
      continue;
    }
    size_t p = text.rfind(kProbe);
    if (p == std::string::npos) continue;
    std::string after = text.substr(p + std::char_traits<char>::length(kProbe), 256);
    std::vector<int32_t> ids = tokenizer.encode(after, false, false);
    for (size_t i = 0; i < ids.size() && i < 4; ++i)
      if (tokenizer.is_special(ids[i])) return tokenizer.id_to_token(ids[i]);
    return "";
  }
  return "";
}

std::vector<int32_t> ChatTemplate::stop_token_ids(const Tokenizer& tokenizer) const {
  std::vector<int32_t> ids = impl_->eos_ids;
  if (ids.empty())
    if (auto e = tokenizer.eos_id()) ids.push_back(*e);
  if (impl_->defaults.contains("eos_token") && impl_->defaults["eos_token"].is_string())
    if (auto e = tokenizer.token_to_id(impl_->defaults["eos_token"].get<std::string>())) ids.push_back(*e);
  std::string eot = end_of_turn_token(tokenizer);
  if (!eot.empty())
    if (auto e = tokenizer.token_to_id(eot)) ids.push_back(*e);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

}  // namespace strata
