#include "engine/prompt_lookup.h"

#include <algorithm>

namespace strata {

std::vector<int32_t> lookup_draft(std::span<const int32_t> h, size_t max_ngram, size_t k) {
  const size_t n_total = h.size();
  if (k == 0 || n_total < 2) return {};
  for (size_t n = std::min(max_ngram, n_total - 1); n >= 1; --n) {
    const auto suffix = h.subspan(n_total - n);
    // Most recent first: the latest context is the best predictor of what
    // comes next. `start` is where a candidate occurrence begins; it must
    // end before the suffix itself so at least one token follows it.
    for (size_t start = n_total - n; start-- > 0;) {
      if (!std::equal(suffix.begin(), suffix.end(), h.begin() + long(start))) continue;
      const size_t from = start + n, to = std::min(n_total, from + k);
      return {h.begin() + long(from), h.begin() + long(to)};
    }
  }
  return {};
}

}  // namespace strata
