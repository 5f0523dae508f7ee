// Server-sent events: the hand-off of tokens from the scheduler's thread
// (which must never block on a client) to the HTTP thread that writes them,
// and the `data: ...` framing of each event.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "strata/scheduler.h"

namespace strata::server {

class TokenQueue {
 public:
  // From the scheduler's on_token callback: copies and returns at once.
  void push(const TokenEvent& e);
  // Waits up to `seconds` for at least one event and takes all that are
  // queued (possibly none).
  std::vector<TokenEvent> take(double seconds);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<TokenEvent> events_;
};

// "data: <payload>\n\n"
std::string sse_event(const std::string& payload);
inline constexpr const char* kSseDone = "data: [DONE]\n\n";

}  // namespace strata::server
