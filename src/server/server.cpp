#include "server.h"

#include <fmt/format.h>
#include <httplib.h>

#include <chrono>
#include <cstdio>

#include "strata/error.h"
#include "api_error.h"
#include "responses.h"
#include "routes.h"
#include "server_state.h"
#include "strata/tokenizer.h"

namespace strata::server {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Paths are client input: printable ASCII only, bounded, in the log.
std::string loggable(const std::string& s) {
  std::string out;
  for (char c : s.substr(0, 120)) out += c >= 0x20 && c < 0x7f ? c : '?';
  if (s.size() > 120) out += "...";
  return out;
}

}  // namespace

Server::State::State(Engine& e, const ServerOptions& o, ChatFormatter c)
    : engine(e), opt(o), chat(std::move(c)), http(std::make_unique<httplib::Server>()) {
  tokenizer = engine.tokenizer();
  vocab_size = engine.info().vocab_size;
  created = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  admission_limit = (opt.max_batch ? opt.max_batch : 64) + opt.max_queue;
}

Server::State::~State() = default;

std::string Server::State::token_text(int32_t id) const {
  if (!tokenizer) return std::to_string(id);
  return tokenizer->decode(std::span<const int32_t>(&id, 1), /*skip_special=*/false);
}

Server::Server(Engine& engine, const ServerOptions& options, ChatFormatter chat)
    : state_(std::make_unique<State>(engine, options, std::move(chat))) {
  State& s = *state_;
  httplib::Server& http = *s.http;
  // Every request holds one thread while it is answered (a stream for its
  // whole length): enough threads for every admitted request plus a margin
  // to answer the rest with 429, health checks and metrics.
  const size_t threads = s.admission_limit + 16;
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http.set_payload_max_length(s.opt.max_body_bytes);
  http.set_read_timeout(s.opt.read_timeout_s, 0);
  http.set_write_timeout(s.opt.write_timeout_s, 0);
  http.set_keep_alive_timeout(s.opt.keep_alive_timeout_s);
  http.set_keep_alive_max_count(100);
  http.set_tcp_nodelay(true);  // each streamed token goes out at once
  if (!s.opt.cors_origin.empty())
    http.set_default_headers({{"Access-Control-Allow-Origin", s.opt.cors_origin}, {"Vary", "Origin"}});

  http.set_pre_routing_handler([](const httplib::Request&, httplib::Response&) {
    RequestLog& log = request_log();
    log = RequestLog{};
    log.started = true;
    log.start_s = now_s();
    return httplib::Server::HandlerResponse::Unhandled;
  });
  // Errors httplib produces itself (no route, body too large, malformed
  // request) get an OpenAI error body; responses that have one keep it.
  http.set_error_handler(httplib::Server::HandlerWithResponse([&s](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    ApiError e = res.status == 404   ? not_found("Unknown route: " + loggable(req.method) + " " + loggable(req.path))
                 : res.status == 413 ? too_large(s.opt.max_body_bytes)
                 : res.status == 400 ? bad_request("malformed HTTP request")
                 : res.status == 405 ? method_not_allowed(loggable(req.method), loggable(req.path))
                                     : ApiError(res.status, "HTTP error " + std::to_string(res.status),
                                                res.status >= 500 ? "server_error" : "invalid_request_error");
    res.set_content(dump(e.to_json()), "application/json");
    return httplib::Server::HandlerResponse::Handled;
  }));
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    ApiError e = internal_error("unexpected error");
    res.status = 500;
    res.set_content(dump(e.to_json()), "application/json");
  });
  http.set_logger([&s](const httplib::Request& req, const httplib::Response& res) {
    std::string route = route_label(req.path);
    s.counters.count_response(route, res.status);
    RequestLog& log = request_log();
    if (s.opt.log_requests) {
      double ms = log.started ? (now_s() - log.start_s) * 1e3 : 0.0;
      std::fprintf(stderr, "%s\n",
                   fmt::format("strata serve: {} {} {} prompt_tokens={} completion_tokens={} {:.1f} ms",
                               loggable(req.method), loggable(req.path), res.status, log.prompt_tokens,
                               log.completion_tokens, ms)
                       .c_str());
    }
    log = RequestLog{};
  });
  add_routes(s);
}

Server::~Server() { stop(); }

int Server::bind() {
  State& s = *state_;
  int port = s.opt.port;
  bool ok;
  if (port == 0) {
    port = s.http->bind_to_any_port(s.opt.host);
    ok = port > 0;
  } else {
    ok = s.http->bind_to_port(s.opt.host, port);
  }
  if (!ok) throw Error(fmt::format("cannot listen on {}:{} (in use, or not an address of this machine)", s.opt.host,
                                   s.opt.port));
  return port;
}

void Server::run() { state_->http->listen_after_bind(); }

void Server::set_ready(bool ready) { state_->ready = ready; }

void Server::stop() {
  State& s = *state_;
  if (s.stopping.exchange(true)) return;
  s.http->stop();
}

}  // namespace strata::server
