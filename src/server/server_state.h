// What the routes of one Server share: the Engine, the options, counters
// and the lifecycle flags. Internal to src/server.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "chat_format.h"
#include "metrics.h"
#include "server.h"

namespace httplib {
class Server;
}

namespace strata {
class Tokenizer;
}

namespace strata::server {

struct Server::State {
  State(Engine& e, const ServerOptions& o, ChatFormatter c);
  ~State();

  Engine& engine;
  ServerOptions opt;
  ChatFormatter chat;
  const Tokenizer* tokenizer = nullptr;
  int64_t vocab_size = 0;
  int64_t created = 0;            // Unix seconds, for /v1/models
  size_t admission_limit = 0;     // requests in flight at most (running + queued)
  ServerCounters counters;
  std::atomic<bool> ready{false};
  std::atomic<bool> stopping{false};
  std::unique_ptr<httplib::Server> http;

  // How a token appears in logprobs.
  std::string token_text(int32_t id) const;
};

}  // namespace strata::server
