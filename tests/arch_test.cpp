// Every supported family and option (q/k/v biases, q/k norms, explicit
// head_dim, llama3 and linear RoPE scaling, untied heads, GQA) checked
// against a naive double-precision forward pass written independently of
// the engine, on small synthetic models.
#include <gtest/gtest.h>

#include <cmath>

#include "convert/synthetic_model.h"
#include "formats/model_config.h"
#include "strata/strata.h"
#include "test_models.h"
#include "test_util.h"

namespace strata::test {
namespace {

using Vec = std::vector<double>;
using Tensors = std::map<std::string, std::vector<float>>;

// y = W x, W row-major (out, in)
Vec matvec(const std::vector<float>& w, const Vec& x, size_t out) {
  Vec y(out, 0.0);
  const size_t in = x.size();
  for (size_t o = 0; o < out; ++o)
    for (size_t i = 0; i < in; ++i) y[o] += double(w[o * in + i]) * x[i];
  return y;
}

Vec rms(const Vec& x, const std::vector<float>& w, double eps) {
  double ss = 0;
  for (double v : x) ss += v * v;
  double inv = 1.0 / std::sqrt(ss / double(x.size()) + eps);
  Vec y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * inv * w[i];
  return y;
}

double inv_freq(const ModelConfig& c, size_t i) {
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

void rotate(double* h, const ModelConfig& c, int64_t pos) {
  size_t half = size_t(c.head_dim / 2);
  for (size_t i = 0; i < half; ++i) {
    double a = double(float(pos) * float(inv_freq(c, i)));
    double x = h[i], y = h[i + half];
    h[i] = x * std::cos(a) - y * std::sin(a);
    h[i + half] = y * std::cos(a) + x * std::sin(a);
  }
}

// Logits for every position of `ids` (no cache: full causal attention).
std::vector<Vec> naive_forward(const ModelConfig& c, const Tensors& T, const std::vector<int32_t>& ids) {
  const size_t n = ids.size(), h = size_t(c.hidden_size), hd = size_t(c.head_dim), nh = size_t(c.num_heads),
               nkv = size_t(c.num_kv_heads), ff = size_t(c.intermediate_size), V = size_t(c.vocab_size);
  auto W = [&](const std::string& name) -> const std::vector<float>& { return T.at(name); };
  std::vector<Vec> x(n, Vec(h));
  for (size_t t = 0; t < n; ++t)
    for (size_t i = 0; i < h; ++i) x[t][i] = W("model.embed_tokens.weight")[size_t(ids[t]) * h + i];
  for (int64_t l = 0; l < c.num_layers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
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
      Vec xn = rms(x[t], W(p + "post_attention_layernorm.weight"), c.rms_norm_eps);
      Vec g = matvec(W(p + "mlp.gate_proj.weight"), xn, ff), u = matvec(W(p + "mlp.up_proj.weight"), xn, ff);
      for (size_t i = 0; i < ff; ++i) g[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
      Vec d = matvec(W(p + "mlp.down_proj.weight"), g, h);
      for (size_t i = 0; i < h; ++i) x[t][i] += d[i];
    }
  }
  const auto& head = T.count("lm_head.weight") ? W("lm_head.weight") : W("model.embed_tokens.weight");
  std::vector<Vec> logits;
  for (size_t t = 0; t < n; ++t) logits.push_back(matvec(head, rms(x[t], W("model.norm.weight"), c.rms_norm_eps), V));
  return logits;
}

struct FamilyCase {
  const char* preset;
  bool linear_rope;
};

class Family : public ::testing::TestWithParam<FamilyCase> {};

TEST_P(Family, MatchesNaiveForwardAtEveryBudget) {
  TempDir tmp;
  ModelConfig cfg = find_synth_preset(GetParam().preset).config;
  if (GetParam().linear_rope) {
    cfg.rope_scaling = RopeScaling{};
    cfg.rope_scaling.type = RopeScaling::Type::Linear;
    cfg.rope_scaling.factor = 4.0;
  }
  SynthOptions so;
  so.dtype = DType::F32;
  so.seed = 7;
  so.weight_std = 0.25f;
  // Larger weights than the default so attention is far from uniform and a
  // wrong RoPE or norm shows in the logits.
  write_synthetic_model(tmp / "m", cfg, so);
  ModelConfig c = load_model_config(tmp / "m");
  Tensors T = load_tensors_f32(tmp / "m");
  std::vector<int32_t> ids = {1, 17, 400, 3, 999 % int32_t(c.vocab_size), 250, 5, 64, 64, 2};
  std::vector<Vec> expect = naive_forward(c, T, ids);

  for (bool streamed : {false, true}) {
    EngineOptions o;
    o.kv_type = "f32";  // against an f32 reference
    auto probe = Engine::open(tmp / "m", o);
    o.max_memory = streamed ? probe->plan_for(int64_t(ids.size()), ids.size()).min_budget : 0;
    auto e = Engine::open(tmp / "m", o);
    ScoreResult r = e->score(ids, true);
    double worst = 0;
    for (size_t t = 0; t < ids.size(); ++t)
      for (size_t j = 0; j < size_t(c.vocab_size); ++j)
        worst = std::max(worst, std::fabs(double(r.logits[t * size_t(c.vocab_size) + j]) - expect[t][j]));
    EXPECT_LT(worst, 2e-4) << (streamed ? "streamed" : "resident");

    // Generation with the KV cache continues exactly like scoring.
    GenerateRequest req;
    req.prompt_ids = {ids.begin(), ids.begin() + 4};
    req.max_new_tokens = 6;
    req.stop_at_eos = false;
    GenerateResult g = e->generate(req);
    std::vector<int32_t> seq = req.prompt_ids;
    for (int32_t id : g.output_ids) {
      std::vector<Vec> lg = naive_forward(c, T, seq);
      const Vec& last = lg.back();
      int32_t best = int32_t(std::max_element(last.begin(), last.end()) - last.begin());
      EXPECT_EQ(id, best);
      seq.push_back(id);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Synthetic, Family,
                         ::testing::Values(FamilyCase{"tiny-llama3", false}, FamilyCase{"tiny-llama3", true},
                                           FamilyCase{"tiny-qwen2", false}, FamilyCase{"tiny-qwen3", false}),
                         [](const auto& info) {
                           std::string n = std::string(info.param.preset) + (info.param.linear_rope ? "_linear" : "");
                           for (auto& ch : n)
                             if (!isalnum((unsigned char)ch)) ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace strata::test
