// Independent double-precision reference pieces of a decoder layer, written
// from the families' definitions (not from strata's code), shared by the
// dense (arch_test) and mixture-of-experts (moe_test) reference forwards.
#pragma once

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "formats/model_config.h"
#include "strata/strata.h"

namespace strata::test::naive {

using Vec = std::vector<double>;
using Tensors = std::map<std::string, std::vector<float>>;

// y = W x, W row-major (out, in)
inline Vec matvec(const std::vector<float>& w, const Vec& x, size_t out) {
  Vec y(out, 0.0);
  const size_t in = x.size();
  for (size_t o = 0; o < out; ++o)
    for (size_t i = 0; i < in; ++i) y[o] += double(w[o * in + i]) * x[i];
  return y;
}

inline Vec rms(const Vec& x, const std::vector<float>& w, double eps) {
  double ss = 0;
  for (double v : x) ss += v * v;
  double inv = 1.0 / std::sqrt(ss / double(x.size()) + eps);
  Vec y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * inv * w[i];
  return y;
}

inline double inv_freq(const ModelConfig& c, size_t i) {
  double f = 1.0 / std::pow(c.rope_theta, double(2 * i) / double(c.head_dim));
  const auto& s = c.rope_scaling;
  if (s.type == RopeScaling::Type::Linear) return f / s.factor;
  if (s.type == RopeScaling::Type::Llama3) {
    double wl = 2 * M_PI / f, lo = double(s.original_max_position_embeddings) / s.low_freq_factor,
           hi = double(s.original_max_position_embeddings) / s.high_freq_factor;
    if (wl > lo) return f / s.factor;
    if (wl < hi) return f;
    double sm = (double(s.original_max_position_embeddings) / wl - s.low_freq_factor) /
                (s.high_freq_factor - s.low_freq_factor);
    return (1 - sm) * f / s.factor + sm * f;
  }
  return f;
}

inline void rotate(double* h, const ModelConfig& c, int64_t pos) {
  size_t half = size_t(c.head_dim / 2);
  for (size_t i = 0; i < half; ++i) {
    double a = double(float(pos) * float(inv_freq(c, i)));
    double x = h[i], y = h[i + half];
    h[i] = x * std::cos(a) - y * std::sin(a);
    h[i + half] = y * std::cos(a) + x * std::sin(a);
  }
}

// One layer's attention with its residual, for every position of `x`
// (full causal attention over the rows; layer prefix `p`, e.g. "model.layers.3.").
inline void attention(const ModelConfig& c, const Tensors& T, const std::string& p, std::vector<Vec>& x) {
  const size_t n = x.size(), h = size_t(c.hidden_size), hd = size_t(c.head_dim), nh = size_t(c.num_heads),
               nkv = size_t(c.num_kv_heads);
  auto W = [&](const std::string& name) -> const std::vector<float>& { return T.at(name); };
  std::vector<Vec> q(n), k(n), v(n);
  for (size_t t = 0; t < n; ++t) {
    Vec xn = rms(x[t], W(p + "input_layernorm.weight"), c.rms_norm_eps);
    q[t] = matvec(W(p + "self_attn.q_proj.weight"), xn, nh * hd);
    k[t] = matvec(W(p + "self_attn.k_proj.weight"), xn, nkv * hd);
    v[t] = matvec(W(p + "self_attn.v_proj.weight"), xn, nkv * hd);
    if (T.count(p + "self_attn.q_proj.bias")) {
      for (size_t i = 0; i < q[t].size(); ++i) q[t][i] += W(p + "self_attn.q_proj.bias")[i];
      for (size_t i = 0; i < k[t].size(); ++i) k[t][i] += W(p + "self_attn.k_proj.bias")[i];
      for (size_t i = 0; i < v[t].size(); ++i) v[t][i] += W(p + "self_attn.v_proj.bias")[i];
    }
    auto head_norm = [&](Vec& vec, size_t heads, const std::string& name) {
      if (!T.count(name)) return;
      for (size_t hh = 0; hh < heads; ++hh) {
        Vec part(vec.begin() + long(hh * hd), vec.begin() + long((hh + 1) * hd));
        part = rms(part, W(name), c.rms_norm_eps);
        std::copy(part.begin(), part.end(), vec.begin() + long(hh * hd));
      }
    };
    head_norm(q[t], nh, p + "self_attn.q_norm.weight");
    head_norm(k[t], nkv, p + "self_attn.k_norm.weight");
    for (size_t hh = 0; hh < nh; ++hh) rotate(&q[t][hh * hd], c, int64_t(t));
    for (size_t hh = 0; hh < nkv; ++hh) rotate(&k[t][hh * hd], c, int64_t(t));
  }
  for (size_t t = 0; t < n; ++t) {
    Vec att(nh * hd, 0.0);
    for (size_t hh = 0; hh < nh; ++hh) {
      size_t kh = hh / (nh / nkv);
      Vec s(t + 1);
      double mx = -1e300;
      for (size_t u = 0; u <= t; ++u) {
        double d = 0;
        for (size_t i = 0; i < hd; ++i) d += q[t][hh * hd + i] * k[u][kh * hd + i];
        s[u] = d / std::sqrt(double(hd));
        mx = std::max(mx, s[u]);
      }
      double z = 0;
      for (double& e : s) z += (e = std::exp(e - mx));
      for (size_t u = 0; u <= t; ++u)
        for (size_t i = 0; i < hd; ++i) att[hh * hd + i] += s[u] / z * v[u][kh * hd + i];
    }
    Vec o = matvec(W(p + "self_attn.o_proj.weight"), att, h);
    for (size_t i = 0; i < h; ++i) x[t][i] += o[i];
  }
}

// The input embeddings of `ids`.
inline std::vector<Vec> embed(const ModelConfig& c, const Tensors& T, const std::vector<int32_t>& ids) {
  const size_t h = size_t(c.hidden_size);
  const std::vector<float>& e = T.at("model.embed_tokens.weight");
  std::vector<Vec> x(ids.size(), Vec(h));
  for (size_t t = 0; t < ids.size(); ++t)
    for (size_t i = 0; i < h; ++i) x[t][i] = e[size_t(ids[t]) * h + i];
  return x;
}

// Final norm and output head (lm_head, or the tied embeddings): logits per row.
inline std::vector<Vec> logits(const ModelConfig& c, const Tensors& T, const std::vector<Vec>& x) {
  const std::vector<float>& head = T.count("lm_head.weight") ? T.at("lm_head.weight") : T.at("model.embed_tokens.weight");
  std::vector<Vec> out;
  for (const Vec& r : x) out.push_back(matvec(head, rms(r, T.at("model.norm.weight"), c.rms_norm_eps), size_t(c.vocab_size)));
  return out;
}

// The largest |a - b| over rows of logits.
inline double worst_diff(const std::vector<Vec>& a, const std::vector<Vec>& b) {
  double w = 0;
  for (size_t t = 0; t < a.size(); ++t)
    for (size_t j = 0; j < a[t].size(); ++j) w = std::max(w, std::fabs(a[t][j] - b[t][j]));
  return w;
}

// strata's flat logits (rows of `vocab` floats) as rows of doubles.
inline std::vector<Vec> as_rows(const std::vector<float>& flat, size_t vocab) {
  std::vector<Vec> r(flat.size() / vocab, Vec(vocab));
  for (size_t i = 0; i < flat.size(); ++i) r[i / vocab][i % vocab] = flat[i];
  return r;
}

// An engine on an MoE model with f32 KV, everything resident or at the
// planner's minimum budget for `ids` (which must give expert slots).
inline std::unique_ptr<Engine> open_resident_or_minimum(const std::filesystem::path& dir,
                                                        const std::vector<int32_t>& ids, bool minimum) {
  EngineOptions o;
  o.kv_type = "f32";
  auto probe = Engine::open(dir, o);
  const MemoryPlan min = probe->plan_for(int64_t(ids.size()), ids.size());
  EXPECT_GT(min.expert_slot_bytes, 0u);
  o.max_memory = minimum ? min.min_budget : 0;
  return Engine::open(dir, o);
}

// Greedy generation with the engine's KV cache: `new_tokens` after `prompt`,
// each checked against the argmax of `last_logits(sequence so far)`, the
// reference forward's last row over the whole sequence. Call under
// ASSERT_NO_FATAL_FAILURE; `out` receives the generation.
template <class LastLogits>
void expect_greedy_like_reference(Engine& e, const std::vector<int32_t>& prompt, size_t new_tokens,
                                  LastLogits last_logits, GenerateResult& out) {
  GenerateRequest req;
  req.prompt_ids = prompt;
  req.max_new_tokens = int(new_tokens);
  req.stop_at_eos = false;
  out = e.generate(req);
  ASSERT_EQ(out.output_ids.size(), new_tokens);
  std::vector<int32_t> seq = req.prompt_ids;
  for (int32_t id : out.output_ids) {
    const Vec last = last_logits(seq);
    EXPECT_EQ(id, int32_t(std::max_element(last.begin(), last.end()) - last.begin()));
    seq.push_back(id);
  }
}

}  // namespace strata::test::naive
