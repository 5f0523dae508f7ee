#include "request_parser.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <set>

#include "api_error.h"

namespace strata::server {
namespace {

using nlohmann::json;

// Nesting deeper than the limit is refused before parsing, so a body of a
// million '[' cannot exhaust the stack anywhere later.
void check_depth(std::string_view body, int max_depth) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char ch : body) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (ch == '\\') escaped = true;
      else if (ch == '"') in_string = false;
      continue;
    }
    if (ch == '"') in_string = true;
    else if (ch == '[' || ch == '{') {
      if (++depth > max_depth) throw bad_request(fmt::format("the JSON body is nested deeper than {} levels", max_depth));
    } else if (ch == ']' || ch == '}') {
      --depth;
    }
  }
}

json parse_body(std::string_view body, int max_depth) {
  check_depth(body, max_depth);
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw bad_request("the body is not valid JSON (or not valid UTF-8)");
  if (!j.is_object()) throw bad_request("the body must be a JSON object");
  return j;
}

std::string type_name(const json& v) {
  if (v.is_number_integer()) return "integer";
  if (v.is_number()) return "number";
  return v.type_name();
}

ApiError wrong_type(const std::string& name, const char* expected, const json& v) {
  return bad_request(fmt::format("'{}' must be {}, not {}", name, expected, type_name(v)), name, "invalid_type");
}

// A present, non-null field; OpenAI treats null like absent for optional fields.
const json* field(const json& obj, const char* name) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<double> number(const json& obj, const char* name, double lo, double hi) {
  const json* v = field(obj, name);
  if (!v) return std::nullopt;
  if (!v->is_number()) throw wrong_type(name, "a number", *v);
  double x = v->get<double>();
  if (!std::isfinite(x) || x < lo || x > hi)
    throw bad_request(fmt::format("'{}' must be between {} and {}, got {}", name, lo, hi, v->dump()), name,
                      "invalid_value");
  return x;
}

std::optional<int64_t> integer(const json& obj, const char* name, int64_t lo, int64_t hi) {
  const json* v = field(obj, name);
  if (!v) return std::nullopt;
  if (!v->is_number_integer()) throw wrong_type(name, "an integer", *v);
  if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
    throw bad_request(fmt::format("'{}' must be between {} and {}", name, lo, hi), name, "invalid_value");
  int64_t x = v->get<int64_t>();
  if (x < lo || x > hi)
    throw bad_request(fmt::format("'{}' must be between {} and {}, got {}", name, lo, hi, x), name, "invalid_value");
  return x;
}

std::optional<bool> boolean(const json& obj, const char* name) {
  const json* v = field(obj, name);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) throw wrong_type(name, "a boolean", *v);
  return v->get<bool>();
}

std::optional<std::string> string(const json& obj, const char* name) {
  const json* v = field(obj, name);
  if (!v) return std::nullopt;
  if (!v->is_string()) throw wrong_type(name, "a string", *v);
  return v->get<std::string>();
}

void reject_unknown(const json& obj, const std::set<std::string>& known) {
  for (auto it = obj.begin(); it != obj.end(); ++it)
    if (!known.count(it.key()))
      throw bad_request("Unrecognized request argument supplied: " + it.key(), it.key(), "unknown_parameter");
}

// Fields with an effect strata does not implement: accepted at their
// neutral value, refused otherwise (silently ignoring them would change
// what the client asked for).
void neutral_only(const json& obj) {
  for (const char* name : {"frequency_penalty", "presence_penalty"})
    if (auto x = number(obj, name, -2, 2); x && *x != 0)
      throw bad_request(fmt::format("'{}' is not supported (only 0)", name), name, "unsupported_parameter");
  if (const json* v = field(obj, "logit_bias")) {
    if (!v->is_object()) throw wrong_type("logit_bias", "an object", *v);
    if (!v->empty()) throw bad_request("'logit_bias' is not supported", "logit_bias", "unsupported_parameter");
  }
  if (auto n = integer(obj, "n", 1, 128); n && *n != 1)
    throw bad_request("'n' must be 1: strata returns one choice per request", "n", "unsupported_parameter");
  if (const json* u = field(obj, "user"); u && !u->is_string()) throw wrong_type("user", "a string", *u);
}

void parse_common(const json& j, CompletionRequest& r, const ParseLimits& lim) {
  if (auto m = string(j, "model")) r.model = *m;
  if (auto t = number(j, "temperature", 0, 2)) r.sampling.temperature = float(*t);
  else r.sampling.temperature = 1.0f;  // OpenAI's default
  if (auto p = number(j, "top_p", 0, 1)) r.sampling.top_p = float(*p);
  if (auto k = integer(j, "top_k", 0, std::numeric_limits<int32_t>::max())) r.sampling.top_k = int(*k);
  if (auto p = number(j, "min_p", 0, 1)) r.sampling.min_p = float(*p);
  if (auto n = integer(j, "prompt_lookup", 0, 16)) r.prompt_lookup = size_t(*n);
  if (auto k = integer(j, "draft_tokens", 0, 32)) r.draft_tokens = size_t(*k);
  if (auto s = integer(j, "seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max())) {
    r.sampling.seed = uint64_t(*s);
    r.seed_given = true;
  }
  if (const json* s = field(j, "stop")) {
    if (s->is_string()) {
      r.stop.push_back(s->get<std::string>());
    } else if (s->is_array()) {
      if (s->size() > lim.max_stop)
        throw bad_request(fmt::format("'stop' may hold at most {} strings", lim.max_stop), "stop", "invalid_value");
      for (const json& e : *s) {
        if (!e.is_string()) throw wrong_type("stop", "a string or an array of strings", e);
        r.stop.push_back(e.get<std::string>());
      }
    } else {
      throw wrong_type("stop", "a string or an array of strings", *s);
    }
    for (const auto& s2 : r.stop) {
      if (s2.empty()) throw bad_request("'stop' strings must not be empty", "stop", "invalid_value");
      if (s2.size() > lim.max_stop_bytes)
        throw bad_request(fmt::format("'stop' strings may be at most {} bytes", lim.max_stop_bytes), "stop",
                          "invalid_value");
    }
  }
  r.stream = boolean(j, "stream").value_or(false);
  if (const json* so = field(j, "stream_options")) {
    if (!r.stream)
      throw bad_request("'stream_options' is only allowed when 'stream' is true", "stream_options", "invalid_value");
    if (!so->is_object()) throw wrong_type("stream_options", "an object", *so);
    reject_unknown(*so, {"include_usage", "include_obfuscation"});
    r.include_usage = boolean(*so, "include_usage").value_or(false);
  }
  neutral_only(j);
}

std::string flatten_content(const json& content, const std::string& param) {
  if (content.is_null()) return {};
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) throw wrong_type(param, "a string or an array of content parts", content);
  std::string text;
  for (const json& part : content) {
    if (!part.is_object()) throw wrong_type(param, "an array of content parts", part);
    auto type = string(part, "type");
    if (type != "text")
      throw bad_request(fmt::format("'{}': only text content parts are supported", param), param,
                        "unsupported_content");
    auto t = string(part, "text");
    if (!t) throw bad_request(fmt::format("'{}': a text part needs 'text'", param), param, "missing_required_parameter");
    text += *t;
  }
  return text;
}

void parse_messages(const json& j, CompletionRequest& r, const ParseLimits& lim) {
  const json* ms = field(j, "messages");
  if (!ms) throw bad_request("'messages' is required", "messages", "missing_required_parameter");
  if (!ms->is_array()) throw wrong_type("messages", "an array", *ms);
  if (ms->empty()) throw bad_request("'messages' must not be empty", "messages", "invalid_value");
  if (ms->size() > lim.max_messages)
    throw bad_request(fmt::format("'messages' may hold at most {} messages", lim.max_messages), "messages",
                      "invalid_value");
  static const std::set<std::string> roles = {"system", "developer", "user", "assistant", "tool"};
  for (size_t i = 0; i < ms->size(); ++i) {
    const json& m = (*ms)[i];
    const std::string p = fmt::format("messages[{}]", i);
    if (!m.is_object()) throw wrong_type(p, "an object", m);
    const json* role = field(m, "role");
    if (!role) throw bad_request(p + ": 'role' is required", p + ".role", "missing_required_parameter");
    if (!role->is_string() || !roles.count(role->get<std::string>()))
      throw bad_request(p + ": 'role' must be one of system, developer, user, assistant, tool", p + ".role",
                        "invalid_value");
    ChatMessage cm;
    cm.role = role->get<std::string>();
    auto c = m.find("content");
    if (c == m.end() && cm.role != "assistant")
      throw bad_request(p + ": 'content' is required", p + ".content", "missing_required_parameter");
    if (c != m.end()) cm.content = flatten_content(*c, p + ".content");
    if (const json* name = field(m, "name"); name && !name->is_string()) throw wrong_type(p + ".name", "a string", *name);
    if (const json* tc = field(m, "tool_calls"); tc && !tc->is_array())
      throw wrong_type(p + ".tool_calls", "an array", *tc);
    cm.raw = m;
    cm.raw["content"] = cm.content;
    r.messages.push_back(std::move(cm));
  }
}

std::vector<int32_t> ids_from(const json& a, size_t max_ids) {
  std::vector<int32_t> ids;
  if (a.size() > max_ids) throw bad_request(fmt::format("'prompt' may hold at most {} tokens", max_ids), "prompt");
  for (const json& e : a) {
    if (!e.is_number_integer()) throw wrong_type("prompt", "an array of token ids (integers)", e);
    if (e.is_number_unsigned() ? e.get<uint64_t>() > uint64_t(std::numeric_limits<int32_t>::max())
                               : (e.get<int64_t>() < 0 || e.get<int64_t>() > std::numeric_limits<int32_t>::max()))
      throw bad_request("'prompt' token ids must be non-negative 32-bit integers", "prompt", "invalid_value");
    ids.push_back(int32_t(e.get<int64_t>()));
  }
  return ids;
}

void parse_prompt(const json& j, CompletionRequest& r, const ParseLimits& lim) {
  const json* p = field(j, "prompt");
  if (!p) throw bad_request("'prompt' is required", "prompt", "missing_required_parameter");
  const char* expected = "a string, an array of token ids, or an array holding one of those";
  if (p->is_string()) {
    r.prompt_text = p->get<std::string>();
    return;
  }
  if (!p->is_array()) throw wrong_type("prompt", expected, *p);
  if (p->empty()) throw bad_request("'prompt' must not be empty", "prompt", "invalid_value");
  const json& first = (*p)[0];
  if (first.is_number()) {
    r.prompt_ids = ids_from(*p, lim.max_prompt_ids);
    return;
  }
  // A batch of prompts: strata answers one prompt per request.
  if (p->size() != 1)
    throw bad_request("'prompt' may hold one prompt: send several prompts as separate requests", "prompt",
                      "unsupported_parameter");
  if (first.is_string()) r.prompt_text = first.get<std::string>();
  else if (first.is_array()) r.prompt_ids = ids_from(first, lim.max_prompt_ids);
  else throw wrong_type("prompt", expected, first);
  if (r.prompt_text ? r.prompt_text->empty() : r.prompt_ids.empty())
    throw bad_request("'prompt' must not be empty", "prompt", "invalid_value");
}

}  // namespace

CompletionRequest parse_chat_request(std::string_view body, const ParseLimits& lim) {
  json j = parse_body(body, lim.max_depth);
  reject_unknown(j, {"model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "seed",
                     "stop", "stream", "stream_options", "logprobs", "top_logprobs", "n", "tools", "tool_choice",
                     "parallel_tool_calls", "top_k", "min_p", "prompt_lookup", "draft_tokens", "frequency_penalty", "presence_penalty", "logit_bias",
                     "user", "response_format", "metadata", "store", "service_tier"});
  CompletionRequest r;
  r.endpoint = Endpoint::chat;
  parse_common(j, r, lim);
  parse_messages(j, r, lim);
  auto mt = integer(j, "max_tokens", 0, std::numeric_limits<int32_t>::max());
  auto mct = integer(j, "max_completion_tokens", 0, std::numeric_limits<int32_t>::max());
  if (mt && mct && *mt != *mct)
    throw bad_request("give 'max_completion_tokens' or 'max_tokens', not two different values", "max_tokens",
                      "invalid_value");
  r.max_tokens = mct ? mct : mt;
  r.logprobs = boolean(j, "logprobs").value_or(false);
  if (auto t = integer(j, "top_logprobs", 0, 20)) {
    if (!r.logprobs)
      throw bad_request("'logprobs' must be true when 'top_logprobs' is given", "top_logprobs", "invalid_value");
    r.top_logprobs = size_t(*t);
  }
  if (const json* t = field(j, "tools")) {
    if (!t->is_array()) throw wrong_type("tools", "an array", *t);
    for (size_t i = 0; i < t->size(); ++i)
      if (!(*t)[i].is_object()) throw wrong_type(fmt::format("tools[{}]", i), "an object", (*t)[i]);
    r.tools = *t;
  }
  if (const json* tc = field(j, "tool_choice")) {
    if (!(tc->is_string() && (*tc == "none" || *tc == "auto")))
      throw bad_request("'tool_choice' may be \"none\" or \"auto\" (tools are offered to the template; calls are "
                        "not forced)",
                        "tool_choice", "unsupported_parameter");
  }
  if (const json* rf = field(j, "response_format")) {
    if (!rf->is_object()) throw wrong_type("response_format", "an object", *rf);
    if (string(*rf, "type").value_or("text") != "text")
      throw bad_request("'response_format' may only be {\"type\": \"text\"}", "response_format",
                        "unsupported_parameter");
  }
  if (const json* m = field(j, "metadata"); m && !m->is_object()) throw wrong_type("metadata", "an object", *m);
  boolean(j, "store");
  boolean(j, "parallel_tool_calls");
  string(j, "service_tier");
  return r;
}

CompletionRequest parse_completion_request(std::string_view body, const ParseLimits& lim) {
  json j = parse_body(body, lim.max_depth);
  reject_unknown(j, {"model", "prompt", "max_tokens", "temperature", "top_p", "seed", "stop", "stream",
                     "stream_options", "logprobs", "n", "echo", "suffix", "best_of", "top_k", "min_p", "prompt_lookup", "draft_tokens",
                     "frequency_penalty", "presence_penalty", "logit_bias", "user"});
  CompletionRequest r;
  r.endpoint = Endpoint::completions;
  parse_common(j, r, lim);
  parse_prompt(j, r, lim);
  r.max_tokens = integer(j, "max_tokens", 0, std::numeric_limits<int32_t>::max());
  if (auto lp = integer(j, "logprobs", 0, 5)) {
    r.logprobs = true;
    r.top_logprobs = size_t(*lp);
  }
  r.echo = boolean(j, "echo").value_or(false);
  if (auto s = string(j, "suffix"); s && !s->empty())
    throw bad_request("'suffix' is not supported", "suffix", "unsupported_parameter");
  if (auto b = integer(j, "best_of", 1, 20); b && *b != 1)
    throw bad_request("'best_of' must be 1", "best_of", "unsupported_parameter");
  return r;
}

Request to_engine_request(const CompletionRequest& r, std::vector<int32_t> prompt_ids, std::vector<int32_t> stop_ids,
                          int64_t context) {
  const int64_t n = int64_t(prompt_ids.size());
  if (n == 0) throw bad_request("the prompt encodes to no tokens", r.endpoint == Endpoint::chat ? "messages" : "prompt");
  const char* param = r.endpoint == Endpoint::chat ? "messages" : "prompt";
  const std::string mt_name = r.endpoint == Endpoint::chat ? "max_completion_tokens" : "max_tokens";
  if (n >= context)
    throw bad_request(fmt::format("This model's maximum context length is {} tokens; the prompt has {} tokens and "
                                  "leaves no room to generate.",
                                  context, n),
                      param, "context_length_exceeded");
  int64_t max_new = r.max_tokens ? *r.max_tokens : (r.endpoint == Endpoint::chat ? context - n : 16);
  if (n + max_new > context)
    throw bad_request(fmt::format("This model's maximum context length is {} tokens. However, you requested {} "
                                  "tokens ({} in the prompt, {} for the completion). Please reduce the prompt or "
                                  "the completion length.",
                                  context, n + max_new, n, max_new),
                      r.max_tokens ? mt_name : std::string(param), "context_length_exceeded");
  Request q;
  q.prompt_ids = std::move(prompt_ids);
  q.max_new_tokens = int(max_new);
  q.sampling = r.sampling;
  if (!r.seed_given && q.sampling.temperature > 0) q.sampling.seed = std::random_device{}() * 0x9E3779B97F4A7C15ull;
  q.stop_ids = std::move(stop_ids);
  q.stop_strings = r.stop;
  q.logprobs = r.logprobs;
  q.top_logprobs = r.top_logprobs;
  return q;
}

void set_speculative(const CompletionRequest& r, size_t planned_rows, size_t default_lookup, Request& q) {
  const bool asked = r.prompt_lookup.value_or(0) || r.draft_tokens.value_or(0);
  if (asked && !planned_rows)
    throw bad_request("speculative decoding is off on this server; start it with --lookup N or --draft MODEL",
                      r.prompt_lookup.value_or(0) ? "prompt_lookup" : "draft_tokens", "unsupported_parameter");
  if (r.draft_tokens && *r.draft_tokens > planned_rows)
    throw bad_request(fmt::format("'draft_tokens' may be at most {} on this server (its --draft-tokens)",
                                  planned_rows),
                      "draft_tokens", "invalid_value");
  q.lookup_ngram = r.prompt_lookup.value_or(default_lookup);
  q.draft_tokens = r.draft_tokens.value_or(planned_rows);
}

}  // namespace strata::server
