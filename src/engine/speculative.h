// Verifying drafted tokens against the target model. A pass computes, for
// one sequence, its last token plus K drafted tokens d_1..d_K as K+1 rows;
// row i holds the target's logits after (last, d_1..d_i). The longest
// accepted prefix of the drafts is kept, followed by one token of the
// target's own, so every pass yields between 1 and K+1 tokens.
//
// Greedy: d_{i+1} is accepted while it is the target's argmax at row i, so
// the output is token for token that of plain greedy decoding, for any
// draft. Sampling: standard speculative sampling (accept d with probability
// min(1, p(d)/q(d)), else draw from the normalized residual max(0, p - q)),
// so each emitted token is distributed exactly as the target's p.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/sampler.h"

namespace strata {

struct DraftProposal {
  std::vector<int32_t> tokens;  // d_1..d_K
  // q_i for each drafted token: the draft's own distribution (candidates
  // with p > 0, any order), or empty for a deterministic draft (a point
  // mass on the token, as prompt lookup is).
  std::vector<std::vector<Candidate>> q;
};

struct Verdict {
  size_t accepted = 0;          // drafted tokens kept
  std::vector<int32_t> tokens;  // the accepted drafts, then the target's next token
};

// `logits`: tokens.size() + 1 rows of `vocab` floats.
Verdict verify_drafts(Sampler& sampler, const float* logits, size_t vocab, const DraftProposal& draft);

}  // namespace strata
