#include "engine/sampler.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace strata {
namespace {

void normalize(std::vector<Candidate>& c) {
  float mx = c.front().logit, sum = 0;
  for (auto& x : c) sum += (x.p = std::exp(x.logit - mx));
  for (auto& x : c) x.p /= sum;
}

class Temperature final : public SamplerStage {
 public:
  explicit Temperature(float t) : t_(t) {}
  void apply(std::vector<Candidate>& c) override {
    for (auto& x : c) x.logit /= t_;
    normalize(c);
  }

 private:
  float t_;
};

class TopK final : public SamplerStage {
 public:
  explicit TopK(int k) : k_(size_t(k)) {}
  void apply(std::vector<Candidate>& c) override {
    if (c.size() > k_) c.resize(k_);
    normalize(c);
  }

 private:
  size_t k_;
};

// Smallest prefix whose probability mass reaches p.
class TopP final : public SamplerStage {
 public:
  explicit TopP(float p) : p_(p) {}
  void apply(std::vector<Candidate>& c) override {
    double cum = 0;
    size_t keep = c.size();
    for (size_t i = 0; i < c.size(); ++i) {
      cum += c[i].p;
      if (cum >= p_) {
        keep = i + 1;
        break;
      }
    }
    c.resize(keep);
    normalize(c);
  }

 private:
  float p_;
};

// Drops candidates less likely than min_p times the most likely one.
class MinP final : public SamplerStage {
 public:
  explicit MinP(float p) : p_(p) {}
  void apply(std::vector<Candidate>& c) override {
    float cut = c.front().p * p_;
    size_t keep = 1;
    while (keep < c.size() && c[keep].p >= cut) ++keep;
    c.resize(keep);
    normalize(c);
  }

 private:
  float p_;
};

}  // namespace

void validate_sampling(const SamplingParams& p) {
  if (!(p.temperature >= 0) || !std::isfinite(p.temperature)) throw UsageError("temperature must be >= 0");
  if (p.top_k < 0) throw UsageError("top_k must be >= 0");
  if (!(p.top_p > 0 && p.top_p <= 1)) throw UsageError("top_p must be in (0, 1]");
  if (!(p.min_p >= 0 && p.min_p <= 1)) throw UsageError("min_p must be in [0, 1]");
}

int32_t argmax(const float* logits, size_t n) {
  size_t best = 0;
  for (size_t i = 1; i < n; ++i)
    if (logits[i] > logits[best]) best = i;
  return int32_t(best);
}

Sampler::Sampler(const SamplingParams& p) : params_(p), rng_(p.seed) {
  validate_sampling(p);
  if (p.temperature <= 0) return;
  // Temperature first so the truncation stages see the distribution that is
  // actually sampled (the order llama.cpp and transformers use by default).
  stages_.push_back(std::make_unique<Temperature>(p.temperature));
  if (p.top_k > 0) stages_.push_back(std::make_unique<TopK>(p.top_k));
  if (p.top_p < 1) stages_.push_back(std::make_unique<TopP>(p.top_p));
  if (p.min_p > 0) stages_.push_back(std::make_unique<MinP>(p.min_p));
}

const std::vector<Candidate>& Sampler::distribution(const float* logits, size_t vocab) {
  cand_.resize(vocab);
  for (size_t i = 0; i < vocab; ++i) cand_[i] = {int32_t(i), logits[i], 0};
  std::stable_sort(cand_.begin(), cand_.end(), [](const Candidate& a, const Candidate& b) { return a.logit > b.logit; });
  for (auto& s : stages_) s->apply(cand_);
  return cand_;
}

// 53 random bits -> [0, 1): the same stream on every platform.
double Sampler::uniform() { return double(rng_() >> 11) * 0x1.0p-53; }

int32_t Sampler::draw(const std::vector<Candidate>& c) {
  const double u = uniform();
  double cum = 0;
  for (const auto& x : c) {
    cum += x.p;
    if (u < cum) return x.id;
  }
  return c.back().id;
}

int32_t Sampler::sample(const float* logits, size_t vocab) {
  if (params_.temperature <= 0) return argmax(logits, vocab);
  return draw(distribution(logits, vocab));
}

}  // namespace strata
