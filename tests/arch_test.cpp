// Every supported family and option (q/k/v biases, q/k norms, explicit
// head_dim, llama3 and linear RoPE scaling, untied heads, GQA) checked
// against a naive double-precision forward pass written independently of
// the engine, on small synthetic models.
#include <gtest/gtest.h>

#include <cmath>

#include "convert/synthetic_model.h"
#include "formats/model_config.h"
#include "strata/strata.h"
#include "naive_model.h"
#include "test_models.h"
#include "test_util.h"

namespace strata::test {
namespace {

using naive::Tensors;
using naive::Vec;
using naive::matvec;
using naive::rms;

// Logits for every position of `ids` (no cache: full causal attention).
std::vector<Vec> naive_forward(const ModelConfig& c, const Tensors& T, const std::vector<int32_t>& ids) {
  const size_t n = ids.size(), h = size_t(c.hidden_size), ff = size_t(c.intermediate_size);
  auto W = [&](const std::string& name) -> const std::vector<float>& { return T.at(name); };
  std::vector<Vec> x = naive::embed(c, T, ids);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    naive::attention(c, T, p, x);
    for (size_t t = 0; t < n; ++t) {
      Vec xn = rms(x[t], W(p + "post_attention_layernorm.weight"), c.rms_norm_eps);
      Vec g = matvec(W(p + "mlp.gate_proj.weight"), xn, ff), u = matvec(W(p + "mlp.up_proj.weight"), xn, ff);
      for (size_t i = 0; i < ff; ++i) g[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
      Vec d = matvec(W(p + "mlp.down_proj.weight"), g, h);
      for (size_t i = 0; i < h; ++i) x[t][i] += d[i];
    }
  }
  return naive::logits(c, T, x);
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
