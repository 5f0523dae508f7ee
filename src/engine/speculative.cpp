#include "engine/speculative.h"

#include <algorithm>

#include "core/error.h"

namespace strata {
namespace {

double prob_of(const std::vector<Candidate>& c, int32_t id) {
  for (const auto& x : c)
    if (x.id == id) return x.p;
  return 0;
}

// max(0, p - q), normalized. With a point mass q on `drafted`, this is p
// without that token.
std::vector<Candidate> residual(const std::vector<Candidate>& p, const std::vector<Candidate>* q, int32_t drafted) {
  std::vector<Candidate> r;
  double sum = 0;
  for (const auto& x : p) {
    const double qx = q ? prob_of(*q, x.id) : (x.id == drafted ? 1.0 : 0.0);
    const double v = std::max(0.0, double(x.p) - qx);
    if (v > 0) {
      r.push_back({x.id, x.logit, float(v)});
      sum += v;
    }
  }
  if (r.empty()) return p;  // p == q: never reached after a rejection, kept total
  for (auto& x : r) x.p = float(double(x.p) / sum);
  return r;
}

}  // namespace

Verdict verify_drafts(Sampler& s, const float* logits, size_t vocab, const DraftProposal& d) {
  if (!d.q.empty() && d.q.size() != d.tokens.size())
    throw Error("speculative: one draft distribution per drafted token is needed");
  Verdict v;
  const size_t k = d.tokens.size();
  for (size_t i = 0; i <= k; ++i) {
    const float* row = logits + i * vocab;
    if (s.greedy()) {
      const int32_t t = argmax(row, vocab);
      v.tokens.push_back(t);
      if (i == k || t != d.tokens[i]) return v;
      ++v.accepted;
      continue;
    }
    // A copy: the sampler's buffer is reused by the next row.
    const std::vector<Candidate> p = s.distribution(row, vocab);
    if (i == k) {
      v.tokens.push_back(s.draw(p));
      return v;
    }
    const int32_t t = d.tokens[i];
    const std::vector<Candidate>* q = d.q.empty() ? nullptr : &d.q[i];
    const double pt = prob_of(p, t), qt = q ? prob_of(*q, t) : 1.0;
    const double u = s.uniform();
    if (qt > 0 ? u < std::min(1.0, pt / qt) : pt > 0) {
      v.tokens.push_back(t);
      ++v.accepted;
      continue;
    }
    v.tokens.push_back(s.draw(residual(p, q, t)));
    return v;
  }
  return v;
}

}  // namespace strata
