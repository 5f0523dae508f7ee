#include "routes.h"

#include <httplib.h>

#include <chrono>
#include <fmt/format.h>

#include "strata/error.h"
#include "api_error.h"
#include "auth.h"
#include "request_parser.h"
#include "responses.h"
#include "sse.h"
#include "strata/tokenizer.h"

namespace strata::server {
namespace {

constexpr const char* kChatPath = "/v1/chat/completions";
constexpr const char* kCompletionsPath = "/v1/completions";

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump(body), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) {
  if (e.status() == 429) res.set_header("Retry-After", "1");
  send_json(res, e.status(), e.to_json());
}

// Runs a handler; every exception becomes an OpenAI error response.
template <class F>
void guarded(httplib::Response& res, F&& f) {
  try {
    f();
  } catch (const ApiError& e) {
    send_error(res, e);
  } catch (const UsageError& e) {
    send_error(res, bad_request(e.what()));
  } catch (const std::bad_alloc&) {
    send_error(res, unavailable("out of memory"));
  } catch (const std::exception& e) {
    send_error(res, internal_error(e.what()));
  }
}

// Holds one admission slot for as long as a completion is being answered.
class InFlight {
 public:
  explicit InFlight(Server::State& s) : s_(s) {
    if (s_.counters.in_flight.fetch_add(1) >= s_.admission_limit) {
      s_.counters.in_flight.fetch_sub(1);
      s_.counters.rejected.fetch_add(1);
      throw too_many_requests("The server is at capacity (running and queued requests); retry shortly.");
    }
  }
  ~InFlight() { s_.counters.in_flight.fetch_sub(1); }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  Server::State& s_;
};

std::vector<int32_t> encode_text_prompt(const Tokenizer& tok, const std::string& text) {
  // As `strata run`: the post-processor, plus BOS when tokenizer_config.json
  // asks for it and the post-processor did not add it.
  std::vector<int32_t> ids = tok.encode(text, /*add_special_tokens=*/true, /*special_as_text=*/true);
  std::optional<int32_t> bos = tok.bos_id();
  if (tok.config().add_bos_token.value_or(false) && bos && (ids.empty() || ids.front() != *bos))
    ids.insert(ids.begin(), *bos);
  return ids;
}

struct Prepared {
  CompletionRequest parsed;
  Request request;
  std::string echo;  // completions with echo: the prompt text
};

Prepared prepare(Server::State& s, Endpoint ep, const httplib::Request& req) {
  check_authorization(req.get_header_value("Authorization"), s.opt.api_key);
  if (s.stopping) throw unavailable("the server is shutting down");
  if (!s.ready) throw unavailable("the model is still loading; retry shortly (GET /health says when it is ready)");
  Prepared p;
  p.parsed = ep == Endpoint::chat ? parse_chat_request(req.body) : parse_completion_request(req.body);
  const CompletionRequest& r = p.parsed;
  if (!r.model.empty() && r.model != s.opt.model_name)
    throw not_found("The model '" + r.model + "' does not exist; this server serves '" + s.opt.model_name + "'.",
                    "model", "model_not_found");
  if (!r.stop.empty() && !s.tokenizer)
    throw bad_request("'stop' strings need the model's tokenizer, which it does not have", "stop");
  std::vector<int32_t> ids, stop_ids;
  if (ep == Endpoint::chat) {
    ChatPrompt cp = s.chat.render(r.messages, r.tools);
    ids = std::move(cp.ids);
    stop_ids = std::move(cp.stop_ids);
  } else if (r.prompt_text) {
    if (!s.tokenizer) throw bad_request("the model has no tokenizer: give 'prompt' as token ids", "prompt");
    ids = encode_text_prompt(*s.tokenizer, *r.prompt_text);
    if (r.echo) p.echo = *r.prompt_text;
  } else {
    ids = r.prompt_ids;
    for (int32_t id : ids)
      if (id >= s.vocab_size)
        throw bad_request("'prompt' token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                              std::to_string(s.vocab_size - 1) + ")",
                          "prompt", "invalid_value");
    if (r.echo && s.tokenizer) p.echo = s.tokenizer->decode(ids, /*skip_special=*/true);
  }
  p.request = to_engine_request(r, std::move(ids), std::move(stop_ids), s.opt.context);
  set_speculative(r, s.opt.draft_tokens, s.opt.lookup_ngram, p.request);
  return p;
}

RequestHandle submit(Server::State& s, Request q) {
  try {
    return s.engine.submit(std::move(q));
  } catch (const UsageError& e) {
    throw bad_request(e.what());
  } catch (const Error& e) {
    if (s.stopping) throw unavailable("the server is shutting down");
    throw;
  }
}

void check_result(const Server::State& s, const RequestResult& r) {
  if (r.finish_reason == "cancelled")
    throw unavailable(s.stopping ? "the server is shutting down" : "the request was cancelled");
  if (r.finish_reason == "error") throw internal_error("generation failed: " + r.error);
}

void answer_whole(Server::State& s, const Prepared& p, RequestHandle h, httplib::Response& res) {
  const RequestResult* r = nullptr;
  while (!(r = h.wait_for(0.2)))
    if (s.stopping) h.cancel();
  check_result(s, *r);
  request_log().prompt_tokens = r->prompt_tokens;
  request_log().completion_tokens = r->output_ids.size();
  const bool chat = p.parsed.endpoint == Endpoint::chat;
  ResponseMeta m{new_response_id(chat ? "chatcmpl" : "cmpl"), unix_now(), s.opt.model_name};
  TokenText text = [&s](int32_t id) { return s.token_text(id); };
  send_json(res, 200,
            chat ? chat_completion_json(m, *r, p.parsed.logprobs, text)
                 : text_completion_json(m, *r, p.echo, p.parsed.logprobs, text));
}

// One streamed response: tokens flow from the scheduler's callback through
// the queue to the HTTP thread's content provider.
struct Stream {
  explicit Stream(Server::State& st) : s(st), slot(st) {}
  Server::State& s;
  InFlight slot;
  TokenQueue queue;
  RequestHandle handle;
  Prepared p;
  ResponseMeta meta;
  bool started = false;
  std::string sent;  // text streamed so far
  size_t tokens = 0;
  bool chat() const { return p.parsed.endpoint == Endpoint::chat; }
};

std::string chunk(Stream& st, const std::string& text, json logprobs, json finish) {
  bool usage_null = st.p.parsed.include_usage;
  if (!st.chat()) return sse_event(dump(text_chunk_json(st.meta, text, std::move(logprobs), std::move(finish), usage_null)));
  json delta = text.empty() && !finish.is_null() ? json::object() : json{{"content", text}};
  json j = chat_chunk_json(st.meta, std::move(delta), std::move(logprobs), std::move(finish), usage_null);
  return sse_event(dump(j));
}

// Writes what is ready; false when the client is gone (the sequence is
// then cancelled). Sets `finished` after [DONE].
bool pump(Stream& st, httplib::DataSink& sink, bool& finished) {
  auto write = [&](const std::string& data) {
    if (sink.write(data.data(), data.size())) return true;
    st.handle.cancel();
    st.s.counters.disconnects.fetch_add(1);
    return false;
  };
  TokenText text = [&st](int32_t id) { return st.s.token_text(id); };
  if (!st.started) {
    st.started = true;
    if (st.chat()) {
      json delta = {{"role", "assistant"}, {"content", ""}, {"refusal", nullptr}};
      if (!write(sse_event(dump(chat_chunk_json(st.meta, delta, nullptr, nullptr, st.p.parsed.include_usage)))))
        return false;
    } else if (!st.p.echo.empty()) {
      if (!write(chunk(st, st.p.echo, nullptr, nullptr))) return false;
    }
  }
  const bool done_before = st.handle.done();
  if (st.s.stopping && !done_before) st.handle.cancel();
  std::vector<TokenEvent> events = st.queue.take(done_before ? 0.0 : 0.1);
  for (const TokenEvent& e : events) {
    ++st.tokens;
    request_log().completion_tokens = st.tokens;
    if (e.text.empty() && !st.p.parsed.logprobs) continue;  // an incomplete UTF-8 sequence, held back
    json lp = nullptr;
    if (st.p.parsed.logprobs)
      lp = st.chat() ? chat_logprobs_json({e}, text) : completion_logprobs_json({e}, text, st.p.echo.size() + st.sent.size());
    st.sent += e.text;
    if (!write(chunk(st, e.text, std::move(lp), nullptr))) return false;
  }
  if (!done_before) return true;
  const RequestResult& r = st.handle.wait();
  request_log().prompt_tokens = r.prompt_tokens;
  request_log().completion_tokens = r.output_ids.size();
  if (r.finish_reason == "cancelled" || r.finish_reason == "error") {
    ApiError e = r.finish_reason == "error" ? internal_error("generation failed: " + r.error)
                                            : unavailable("the server is shutting down");
    write(sse_event(dump(e.to_json())));
    sink.done();
    finished = true;
    return true;
  }
  // Text the scheduler held back (a possible stop-string start) and then
  // released at the end goes out before the final chunk.
  std::string rest = r.text.size() > st.sent.size() && r.text.compare(0, st.sent.size(), st.sent) == 0
                         ? r.text.substr(st.sent.size())
                         : std::string();
  if (!rest.empty() && !write(chunk(st, rest, nullptr, nullptr))) return false;
  if (!write(chunk(st, "", nullptr, finish_reason(r)))) return false;
  if (st.p.parsed.include_usage &&
      !write(sse_event(dump(usage_chunk_json(st.meta, st.chat() ? "chat.completion.chunk" : "text_completion",
                                             usage_json(r))))))
    return false;
  if (!write(kSseDone)) return false;
  sink.done();
  finished = true;
  return true;
}

void answer_stream(Server::State& s, Prepared p, httplib::Response& res) {
  auto st = std::make_shared<Stream>(s);  // takes an admission slot (or throws 429)
  st->p = std::move(p);
  st->meta = {new_response_id(st->chat() ? "chatcmpl" : "cmpl"), unix_now(), s.opt.model_name};
  Request q = std::move(st->p.request);
  std::weak_ptr<Stream> weak = st;
  q.on_token = [weak](const TokenEvent& e) {
    if (auto live = weak.lock()) live->queue.push(e);
  };
  st->handle = submit(s, std::move(q));
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [st](size_t, httplib::DataSink& sink) {
        bool finished = false;
        try {
          return pump(*st, sink, finished);
        } catch (const std::exception&) {
          st->handle.cancel();
          return false;
        }
      },
      [st](bool) { st->handle.cancel(); });  // a no-op once it finished
}

void handle_completion(Server::State& s, Endpoint ep, const httplib::Request& req, httplib::Response& res) {
  guarded(res, [&] {
    Prepared p = prepare(s, ep, req);
    request_log().prompt_tokens = p.request.prompt_ids.size();
    if (p.parsed.stream) return answer_stream(s, std::move(p), res);
    InFlight slot(s);
    RequestHandle h = submit(s, std::move(p.request));
    answer_whole(s, p, h, res);
  });
}

}  // namespace

std::string route_label(const std::string& path) {
  for (const char* r : {kChatPath, kCompletionsPath, "/v1/models", "/health", "/metrics"})
    if (path == r) return r;
  if (path.rfind("/v1/models/", 0) == 0) return "/v1/models/{model}";
  return "other";
}

RequestLog& request_log() {
  thread_local RequestLog log;
  return log;
}

void add_routes(Server::State& s) {
  httplib::Server& http = *s.http;
  http.Post(kChatPath, [&s](const httplib::Request& req, httplib::Response& res) {
    handle_completion(s, Endpoint::chat, req, res);
  });
  http.Post(kCompletionsPath, [&s](const httplib::Request& req, httplib::Response& res) {
    handle_completion(s, Endpoint::completions, req, res);
  });
  http.Get("/v1/models", [&s](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] {
      check_authorization(req.get_header_value("Authorization"), s.opt.api_key);
      send_json(res, 200, models_json(s.opt.model_name, s.created));
    });
  });
  http.Get("/v1/models/(.+)", [&s](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] {
      check_authorization(req.get_header_value("Authorization"), s.opt.api_key);
      if (req.matches[1] != s.opt.model_name)
        throw not_found("The model '" + std::string(req.matches[1]) + "' does not exist", "model", "model_not_found");
      send_json(res, 200, models_json(s.opt.model_name, s.created)["data"][0]);
    });
  });
  http.Get("/health", [&s](const httplib::Request&, httplib::Response& res) {
    if (s.ready && !s.stopping) send_json(res, 200, {{"status", "ok"}});
    else send_json(res, 503, {{"status", s.stopping ? "stopping" : "loading"}});
  });
  http.Get("/metrics", [&s](const httplib::Request&, httplib::Response& res) {
    guarded(res, [&] {
      res.set_content(prometheus_text(s.engine.stats(), s.counters, s.ready), "text/plain; version=0.0.4");
    });
  });
  // Other methods on the routes: 405 (httplib alone would say 404).
  auto not_allowed = [](const httplib::Request& req, httplib::Response& res) {
    send_error(res, method_not_allowed(req.method, req.path));
    res.set_header("Allow", req.path == kChatPath || req.path == kCompletionsPath ? "POST" : "GET");
  };
  const std::string routes = "(/v1/chat/completions|/v1/completions|/v1/models|/v1/models/.+|/health|/metrics)";
  http.Get("(/v1/chat/completions|/v1/completions)", not_allowed);
  http.Post("(/v1/models|/v1/models/.+|/health|/metrics)", not_allowed);
  http.Put(routes, not_allowed);
  http.Patch(routes, not_allowed);
  http.Delete(routes, not_allowed);
  if (s.opt.cors_origin.empty()) http.Options(routes, not_allowed);
  else
    http.Options(".*", [](const httplib::Request&, httplib::Response& res) {
      res.status = 204;
      res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
      res.set_header("Access-Control-Max-Age", "600");
    });
}

}  // namespace strata::server
