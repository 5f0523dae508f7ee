// GET /metrics: the Engine's counters (passes, tokens, bytes read, I/O
// wait, KV pool) and the server's own (HTTP requests by route and status,
// requests in flight, rejections) in the Prometheus text format.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "strata/scheduler.h"

namespace strata::server {

class ServerCounters {
 public:
  // `route` must come from a fixed set (unknown paths are "other"), so
  // labels stay bounded whatever clients send.
  void count_response(const std::string& route, int status);
  std::atomic<uint64_t> in_flight{0};   // requests handed to the Engine, not yet answered
  std::atomic<uint64_t> rejected{0};    // 429s
  std::atomic<uint64_t> disconnects{0}; // streams cancelled because the client went away
  std::map<std::pair<std::string, int>, uint64_t> responses() const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> responses_;
};

std::string prometheus_text(const EngineStats& engine, const ServerCounters& server, bool ready);

}  // namespace strata::server
