#include "engine/stop_matcher.h"

#include <algorithm>

namespace strata {

StopMatcher::StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
  stops_.erase(std::remove(stops_.begin(), stops_.end(), std::string()), stops_.end());
  for (const auto& s : stops_) longest_ = std::max(longest_, s.size());
}

bool StopMatcher::add(const std::string& piece) {
  if (match_ != std::string::npos) return true;
  const size_t old = text_.size();
  text_ += piece;
  if (stops_.empty() || piece.empty()) return false;
  // A match new in this piece ends inside it, so it starts at most
  // longest-1 bytes before it.
  const size_t from = old >= longest_ - 1 ? old - (longest_ - 1) : 0;
  for (const auto& s : stops_) {
    size_t at = text_.find(s, from);
    if (at != std::string::npos) match_ = std::min(match_, at);
  }
  return match_ != std::string::npos;
}

size_t StopMatcher::safe_end() const {
  if (match_ != std::string::npos) return match_;
  size_t hold = 0;
  for (const auto& s : stops_) {
    // The longest proper prefix of s that ends the text.
    for (size_t k = std::min(s.size() - 1, text_.size()); k > hold; --k)
      if (text_.compare(text_.size() - k, k, s, 0, k) == 0) {
        hold = k;
        break;
      }
  }
  return text_.size() - hold;
}

}  // namespace strata
