// The endpoints: POST /v1/chat/completions, POST /v1/completions,
// GET /v1/models, GET /health, GET /metrics; 405 for other methods on them.
#pragma once

#include "server_state.h"

namespace strata::server {

void add_routes(Server::State& s);

// Route label for counters and logs: the path when it is a route, "other"
// otherwise (labels stay bounded whatever clients send).
std::string route_label(const std::string& path);

// Per-request facts for the log line, filled by the handler on the HTTP
// thread that also writes the response and calls the logger.
struct RequestLog {
  bool started = false;
  double start_s = 0;
  size_t prompt_tokens = 0, completion_tokens = 0;
};
RequestLog& request_log();

}  // namespace strata::server
