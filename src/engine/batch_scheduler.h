// Continuous batching over one Session: every pass carries one decode row
// per running sequence plus prompt rows of sequences still reading their
// prompt, up to the pass's row limit. A finished sequence frees its KV cache
// for the next request at once.
#pragma once

#include <functional>
#include <optional>

#include "engine/session.h"
#include "strata/strata.h"

namespace strata {

BatchStats run_batch(Session& session, const ModelConfig& config,
                     const std::function<std::optional<SequenceRequest>()>& next,
                     const std::function<void(SequenceResult&&)>& done);

}  // namespace strata
