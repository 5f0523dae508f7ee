// Choosing the next token from logits: a chain of small stages (top-k,
// top-p, min-p, temperature) that narrow a candidate list, then a seeded
// draw. Temperature 0 is greedy: the highest logit, lowest id on ties.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "strata/sampling.h"

namespace strata {


struct Candidate {
  int32_t id;
  float logit;
  float p;  // probability once a stage has computed it
};

class SamplerStage {
 public:
  virtual ~SamplerStage() = default;
  // Narrows or rescales `c` (sorted by logit, descending, on entry and exit).
  virtual void apply(std::vector<Candidate>& c) = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& p);
  int32_t sample(const float* logits, size_t vocab);

  bool greedy() const { return params_.temperature <= 0; }
  // The distribution sample() draws from (after every stage), as candidates
  // with p > 0 in descending order; valid until the next call. Not for
  // greedy samplers.
  const std::vector<Candidate>& distribution(const float* logits, size_t vocab);
  // The next number of the seeded stream, in [0, 1).
  double uniform();
  // A draw from `c` (probabilities summing to 1) with one uniform().
  int32_t draw(const std::vector<Candidate>& c);

 private:
  SamplingParams params_;
  std::vector<std::unique_ptr<SamplerStage>> stages_;
  std::mt19937_64 rng_;
  std::vector<Candidate> cand_;
};

// Validates ranges; throws UsageError naming the flag.
void validate_sampling(const SamplingParams& p);

int32_t argmax(const float* logits, size_t n);

}  // namespace strata
