// Sampling settings shared by the public API and the engine's sampler.
#pragma once

#include <cstdint>

namespace strata {

struct SamplingParams {
  float temperature = 0.0f;  // 0 = greedy
  int top_k = 0;             // 0 = off
  float top_p = 1.0f;        // 1 = off
  float min_p = 0.0f;        // 0 = off
  uint64_t seed = 0;
};

}  // namespace strata
