// Speculative decoding's two model-free parts: prompt-lookup drafting, and
// verification (greedy keeps exactly the target's argmax chain; sampling
// emits tokens distributed exactly as the target's, tested by chi-squared).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "engine/prompt_lookup.h"
#include "engine/sampler.h"
#include "engine/speculative.h"

namespace strata {
namespace {

TEST(PromptLookup, ProposesWhatFollowedTheLatestEarlierOccurrence) {
  // ... 7 8 9 | 5 ... 7 8 9 | 6 ... 7 8  -> the latest "7 8" was followed by 9 6
  const std::vector<int32_t> h = {1, 7, 8, 9, 5, 2, 7, 8, 9, 6, 3, 7, 8};
  EXPECT_EQ(lookup_draft(h, 3, 3), (std::vector<int32_t>{9, 6, 3}));
  EXPECT_EQ(lookup_draft(h, 3, 1), (std::vector<int32_t>{9}));
  // Longest n-gram first: "3 7 8" never occurred before, "7 8" did.
  EXPECT_EQ(lookup_draft(h, 2, 2), (std::vector<int32_t>{9, 6}));
  // The draft stops at the end of the history.
  const std::vector<int32_t> tail = {4, 5, 4};
  EXPECT_EQ(lookup_draft(tail, 2, 8), (std::vector<int32_t>{5, 4}));
  EXPECT_TRUE(lookup_draft(std::vector<int32_t>{1, 2, 3}, 3, 4).empty());
  EXPECT_TRUE(lookup_draft(std::vector<int32_t>{1}, 3, 4).empty());
  EXPECT_TRUE(lookup_draft(h, 3, 0).empty());
}

// Rows of logits where row i's argmax is `best[i]`.
std::vector<float> rows_with_argmax(const std::vector<int32_t>& best, size_t vocab) {
  std::vector<float> l(best.size() * vocab, 0.0f);
  for (size_t i = 0; i < best.size(); ++i) l[i * vocab + size_t(best[i])] = 5.0f;
  return l;
}

TEST(Speculative, GreedyKeepsTheLongestMatchingPrefixThenTheTargetsToken) {
  Sampler greedy(SamplingParams{});
  const size_t vocab = 10;
  // Target's argmax chain after (last, d1, d2, d3): 4, 2, 7, 1.
  const std::vector<float> l = rows_with_argmax({4, 2, 7, 1}, vocab);
  auto v = verify_drafts(greedy, l.data(), vocab, {{4, 2, 7}, {}});
  EXPECT_EQ(v.accepted, 3u);
  EXPECT_EQ(v.tokens, (std::vector<int32_t>{4, 2, 7, 1}));
  v = verify_drafts(greedy, l.data(), vocab, {{4, 3, 7}, {}});
  EXPECT_EQ(v.accepted, 1u);
  EXPECT_EQ(v.tokens, (std::vector<int32_t>{4, 2}));
  v = verify_drafts(greedy, l.data(), vocab, {{9, 2, 7}, {}});
  EXPECT_EQ(v.accepted, 0u);
  EXPECT_EQ(v.tokens, (std::vector<int32_t>{4}));
  v = verify_drafts(greedy, l.data(), vocab, {{}, {}});  // no draft: a plain step
  EXPECT_EQ(v.tokens, (std::vector<int32_t>{4}));
}

double chi_squared(const std::vector<double>& counts, const std::vector<double>& p, double n) {
  double x = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double e = p[i] * n;
    x += (counts[i] - e) * (counts[i] - e) / e;
  }
  return x;
}

std::vector<double> softmax(const float* l, size_t n) {
  std::vector<double> p(n);
  double mx = l[0], z = 0;
  for (size_t i = 1; i < n; ++i) mx = std::max(mx, double(l[i]));
  for (size_t i = 0; i < n; ++i) z += (p[i] = std::exp(double(l[i]) - mx));
  for (auto& x : p) x /= z;
  return p;
}

// The first emitted token of a speculative step, over many seeds, is
// distributed as the target's p at row 0 — whether the draft is a sampled
// one (q far from p) or a point mass — and not as the draft's q (the test's
// power check: a verifier that accepted every draft would fail it).
TEST(Speculative, SampledTokensFollowTheTargetsDistribution) {
  const size_t vocab = 6, k = 3, n = 40000;
  // Critical chi-squared value, 5 degrees of freedom, significance 0.001.
  const double critical = 20.515;
  std::mt19937 gen(11);
  std::normal_distribution<float> noise(0.0f, 1.2f);
  std::vector<float> target((k + 1) * vocab), draft_logits(k * vocab);
  for (auto& x : target) x = noise(gen);
  for (auto& x : draft_logits) x = noise(gen);
  const std::vector<double> p0 = softmax(target.data(), vocab), q0 = softmax(draft_logits.data(), vocab);

  for (bool point_mass : {false, true}) {
    std::vector<double> counts(vocab, 0);
    std::mt19937_64 draft_rng(99);
    for (size_t seed = 0; seed < n; ++seed) {
      SamplingParams sp;
      sp.temperature = 1.0f;
      sp.seed = seed;
      Sampler target_sampler(sp);
      DraftProposal d;
      for (size_t i = 0; i < k; ++i) {
        const std::vector<double> qi = softmax(draft_logits.data() + i * vocab, vocab);
        if (point_mass) {
          d.tokens.push_back(int32_t(i + 1));  // a fixed guess, as prompt lookup makes
          continue;
        }
        std::discrete_distribution<int> pick(qi.begin(), qi.end());
        d.tokens.push_back(pick(draft_rng));
        std::vector<Candidate> q;
        for (size_t j = 0; j < vocab; ++j) q.push_back({int32_t(j), 0.0f, float(qi[j])});
        d.q.push_back(std::move(q));
      }
      Verdict v = verify_drafts(target_sampler, target.data(), vocab, d);
      ASSERT_GE(v.tokens.size(), 1u);
      ASSERT_EQ(v.tokens.size(), v.accepted + 1);
      counts[size_t(v.tokens[0])] += 1;
    }
    const double x = chi_squared(counts, p0, double(n));
    std::printf("[ speculative, %s draft ] chi-squared of the first token against the target's p: %.2f (critical %.3f)\n",
                point_mass ? "point-mass" : "sampled", x, critical);
    EXPECT_LT(x, critical) << (point_mass ? "point mass" : "sampled");
    if (!point_mass) {
      EXPECT_GT(chi_squared(counts, q0, double(n)), critical) << "the test cannot tell p from q";
    }
  }
}

}  // namespace
}  // namespace strata
