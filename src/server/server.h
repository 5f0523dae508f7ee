// `strata serve`: an OpenAI-compatible HTTP server over one Engine. Every
// completion request becomes a sequence in the Engine's scheduler, so
// concurrent requests share each forward pass (and each layer read).
//
//   strata::server::ServerOptions opt;            // 127.0.0.1:8080, no key
//   strata::server::Server srv(*engine, opt, strata::server::ChatFormatter(*engine, ""));
//   int port = srv.bind();                         // throws strata::Error when it cannot
//   srv.set_ready(true);                           // /health: "loading" until then
//   srv.run();                                     // until srv.stop() from another thread
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "chat_format.h"
#include "strata/strata.h"

namespace strata::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                 // 0 = any free port (bind() says which)
  std::string api_key;             // empty = no authentication
  size_t max_batch = 0;            // sequences running at once (the Engine's max_sequences); 0 = 64 for admission
  size_t max_queue = 64;           // requests waiting beyond max_batch before 429
  std::string model_name;          // the "model" clients name
  std::string cors_origin;         // empty = no CORS headers
  int64_t context = 2048;          // positions per request (prompt + completion)
  size_t max_body_bytes = 4u << 20;
  int read_timeout_s = 10;         // per read from a client; a stuck sender is dropped
  int write_timeout_s = 10;        // per write; a client that stops reading is dropped
  int keep_alive_timeout_s = 2;    // idle keep-alive connections are closed after this
  bool log_requests = true;        // one line per request on stderr
  // Speculative decoding: rows the Engine plans per sequence for drafted
  // tokens (its EngineOptions::draft_tokens; 0 = off, and requests asking
  // for it get a 400), and the prompt-lookup n-gram of requests that do not
  // give `prompt_lookup` (0 = the draft model, if any, drafts).
  size_t draft_tokens = 0;
  size_t lookup_ngram = 0;
};

class Server {
 public:
  Server(Engine& engine, const ServerOptions& options, ChatFormatter chat);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listening socket; returns the port.
  int bind();
  // Serves until stop(); returns after in-flight requests ended.
  void run();
  void set_ready(bool ready);
  // From any thread (a signal watcher): stops accepting, cancels what is
  // running or queued, and makes run() return.
  void stop();

  struct State;

 private:
  std::unique_ptr<State> state_;
};

}  // namespace strata::server
