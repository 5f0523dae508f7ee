#include "sse.h"

#include <chrono>

namespace strata::server {

void TokenQueue::push(const TokenEvent& e) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    events_.push_back(e);
  }
  cv_.notify_one();
}

std::vector<TokenEvent> TokenQueue::take(double seconds) {
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait_for(lk, std::chrono::duration<double>(seconds), [&] { return !events_.empty(); });
  std::vector<TokenEvent> out(std::make_move_iterator(events_.begin()), std::make_move_iterator(events_.end()));
  events_.clear();
  return out;
}

std::string sse_event(const std::string& payload) { return "data: " + payload + "\n\n"; }

}  // namespace strata::server
