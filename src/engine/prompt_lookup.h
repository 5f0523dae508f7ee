// Prompt lookup drafting: propose the tokens that followed the most recent
// earlier occurrence of the sequence's own last n tokens (its prompt and
// output so far). No model is needed, and where the output copies the input
// (extraction, summaries, edits) most drafts are accepted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace strata {

// Up to `k` drafted tokens for `history` (prompt + output, last token last):
// the longest suffix of length max_ngram..1 that occurred before is matched
// at its most recent earlier occurrence, and the tokens after that
// occurrence are proposed. Empty when nothing matches.
std::vector<int32_t> lookup_draft(std::span<const int32_t> history, size_t max_ngram, size_t k);

}  // namespace strata
