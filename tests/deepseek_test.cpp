// DeepSeek-V3 (DeepseekV3ForCausalLM) against a naive double-precision
// forward written here from the family's definition (transformers'
// DeepseekV3Attention, DeepseekV3TopkRouter, DeepseekV3MoE and its yarn
// RoPE), on the tiny-deepseek-v3 preset: multi-head latent attention with a
// q bottleneck (and without), yarn with mscale != mscale_all_dim, grouped
// sigmoid routing with a correction bias, shared experts, a dense first
// layer. All-resident and at the minimum budget, with KV-cached
// generation; wrong routings are shown to move the logits; bytes per pass
// match the routed experts and the expert cache's size does not change
// the output.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "arch/arch.h"
#include "arch/model_layout.h"
#include "convert/synthetic_model.h"
#include "core/error.h"
#include "formats/model_config.h"
#include "runtime/stream_unit.h"
#include "strata/strata.h"
#include "naive_model.h"
#include "test_models.h"
#include "test_util.h"

namespace strata::test {
namespace {

using naive::matvec;
using naive::rms;
using naive::Tensors;
using naive::Vec;
using naive::as_rows;
using naive::worst_diff;

// The ways a router can go wrong that the test must be able to tell.
enum class Routing { AsDefined, BiasInWeights, NoGroups };

struct Naive {
  std::vector<Vec> logits;
  std::vector<std::set<int>> routed;  // per layer
};

// yarn's parameters as transformers computes them, in double.
struct Yarn {
  std::vector<double> inv_freq;
  double attention_factor = 1;
};

double get_mscale(double scale, double m) { return scale <= 1 ? 1.0 : 0.1 * m * std::log(scale) + 1.0; }

Yarn yarn(const ModelConfig& c) {
  const auto& s = c.rope_scaling;
  const double dim = double(c.qk_rope_head_dim), base = c.rope_theta;
  Yarn y;
  const size_t half = size_t(c.qk_rope_head_dim / 2);
  auto corr = [&](double rot) {
    return dim * std::log(double(s.original_max_position_embeddings) / (rot * 2 * M_PI)) / (2 * std::log(base));
  };
  double lo = std::max(std::floor(corr(s.beta_fast)), 0.0), hi = std::min(std::ceil(corr(s.beta_slow)), dim - 1);
  if (lo == hi) hi += 0.001;
  for (size_t i = 0; i < half; ++i) {
    const double pos_freq = std::pow(base, double(2 * i) / dim);
    const double extra = 1.0 / pos_freq, inter = 1.0 / (s.factor * pos_freq);
    const double ramp = std::clamp((double(i) - lo) / (hi - lo), 0.0, 1.0);
    const double extra_factor = 1 - ramp;
    y.inv_freq.push_back(inter * (1 - extra_factor) + extra * extra_factor);
  }
  y.attention_factor = get_mscale(s.factor, s.mscale) / get_mscale(s.factor, s.mscale_all_dim);
  return y;
}

// apply_rotary_pos_emb_interleave on one vector: (x0, x1, x2, ...) is
// regrouped as (x0, x2, ..., x1, x3, ...), then rotate-half RoPE with cos
// and sin scaled by yarn's attention factor.
Vec rope_interleave(const Vec& x, const Yarn& y, int64_t pos) {
  const size_t d = x.size(), half = d / 2;
  Vec p(d), out(d);
  for (size_t i = 0; i < half; ++i) {
    p[i] = x[2 * i];
    p[i + half] = x[2 * i + 1];
  }
  for (size_t j = 0; j < d; ++j) {
    // strata (like torch in f32) forms the angle in single precision.
    const double a = double(float(pos) * float(y.inv_freq[j % half]));
    const double cs = std::cos(a) * y.attention_factor, sn = std::sin(a) * y.attention_factor;
    const double rot = j < half ? -p[j + half] : p[j - half];
    out[j] = p[j] * cs + rot * sn;
  }
  return out;
}

Vec mlp(const Tensors& T, const std::string& p, const Vec& x, size_t ff) {
  Vec g = matvec(T.at(p + "gate_proj.weight"), x, ff), u = matvec(T.at(p + "up_proj.weight"), x, ff);
  for (size_t i = 0; i < ff; ++i) g[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
  return matvec(T.at(p + "down_proj.weight"), g, x.size());
}

void mla_attention(const ModelConfig& c, const Tensors& T, const std::string& p, std::vector<Vec>& x) {
  const size_t n = x.size(), h = size_t(c.hidden_size), nh = size_t(c.num_heads), nope = size_t(c.qk_nope_head_dim),
               rd = size_t(c.qk_rope_head_dim), vd = size_t(c.v_head_dim), qk = nope + rd,
               kvlr = size_t(c.kv_lora_rank);
  auto W = [&](const std::string& name) -> const std::vector<float>& { return T.at(p + "self_attn." + name); };
  const Yarn y = yarn(c);
  double scaling = 1.0 / std::sqrt(double(qk));
  const double m = get_mscale(c.rope_scaling.factor, c.rope_scaling.mscale_all_dim);
  scaling *= m * m;
  // keys[t][head], values[t][head], queries[t][head]
  std::vector<std::vector<Vec>> Q(n), K(n), V(n);
  for (size_t t = 0; t < n; ++t) {
    Vec xn = rms(x[t], T.at(p + "input_layernorm.weight"), c.rms_norm_eps);
    Vec q = c.q_lora_rank > 0
                ? matvec(W("q_b_proj.weight"),
                         rms(matvec(W("q_a_proj.weight"), xn, size_t(c.q_lora_rank)), W("q_a_layernorm.weight"), 1e-6),
                         nh * qk)
                : matvec(W("q_proj.weight"), xn, nh * qk);
    Vec ckv = matvec(W("kv_a_proj_with_mqa.weight"), xn, kvlr + rd);
    Vec lat(ckv.begin(), ckv.begin() + long(kvlr)), krot(ckv.begin() + long(kvlr), ckv.end());
    Vec kvb = matvec(W("kv_b_proj.weight"), rms(lat, W("kv_a_layernorm.weight"), 1e-6), nh * (nope + vd));
    krot = rope_interleave(krot, y, int64_t(t));
    for (size_t hh = 0; hh < nh; ++hh) {
      Vec qh(q.begin() + long(hh * qk), q.begin() + long(hh * qk + nope));
      Vec qr = rope_interleave(Vec(q.begin() + long(hh * qk + nope), q.begin() + long((hh + 1) * qk)), y, int64_t(t));
      qh.insert(qh.end(), qr.begin(), qr.end());
      Vec kh(kvb.begin() + long(hh * (nope + vd)), kvb.begin() + long(hh * (nope + vd) + nope));
      kh.insert(kh.end(), krot.begin(), krot.end());
      Q[t].push_back(qh);
      K[t].push_back(kh);
      V[t].emplace_back(kvb.begin() + long(hh * (nope + vd) + nope), kvb.begin() + long((hh + 1) * (nope + vd)));
    }
  }
  for (size_t t = 0; t < n; ++t) {
    Vec att(nh * vd, 0.0);
    for (size_t hh = 0; hh < nh; ++hh) {
      Vec s(t + 1);
      double mx = -1e300;
      for (size_t u = 0; u <= t; ++u) {
        double d = 0;
        for (size_t i = 0; i < qk; ++i) d += Q[t][hh][i] * K[u][hh][i];
        s[u] = d * scaling;
        mx = std::max(mx, s[u]);
      }
      double z = 0;
      for (double& e : s) z += (e = std::exp(e - mx));
      for (size_t u = 0; u <= t; ++u)
        for (size_t i = 0; i < vd; ++i) att[hh * vd + i] += s[u] / z * V[u][hh][i];
    }
    Vec o = matvec(W("o_proj.weight"), att, h);
    for (size_t i = 0; i < h; ++i) x[t][i] += o[i];
  }
}

// DeepseekV3TopkRouter: the experts and their weights for one row.
std::vector<std::pair<int, double>> route(const ModelConfig& c, const Tensors& T, const std::string& p, const Vec& xn,
                                          Routing routing) {
  const size_t E = size_t(c.num_experts), G = size_t(c.n_group), per = E / G;
  Vec logit = matvec(T.at(p + "mlp.gate.weight"), xn, E);
  const std::vector<float>& bias = T.at(p + "mlp.gate.e_score_correction_bias");
  Vec score(E), biased(E);
  for (size_t e = 0; e < E; ++e) {
    score[e] = 1.0 / (1.0 + std::exp(-logit[e]));
    biased[e] = score[e] + bias[e];
  }
  std::vector<double> gscore(G);
  for (size_t g = 0; g < G; ++g) {
    Vec part(biased.begin() + long(g * per), biased.begin() + long((g + 1) * per));
    std::sort(part.rbegin(), part.rend());
    gscore[g] = part[0] + part[1];
  }
  std::vector<int> groups(G);
  for (size_t g = 0; g < G; ++g) groups[g] = int(g);
  std::stable_sort(groups.begin(), groups.end(), [&](int a, int b) { return gscore[size_t(a)] > gscore[size_t(b)]; });
  std::vector<bool> kept(G, routing == Routing::NoGroups);
  for (size_t i = 0; i < size_t(c.topk_group); ++i) kept[size_t(groups[i])] = true;
  Vec masked = biased;
  for (size_t e = 0; e < E; ++e)
    if (!kept[e / per]) masked[e] = -INFINITY;
  std::vector<int> idx(E);
  for (size_t e = 0; e < E; ++e) idx[e] = int(e);
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return masked[size_t(a)] > masked[size_t(b)]; });
  std::vector<std::pair<int, double>> out;
  double sum = 0;
  for (size_t j = 0; j < size_t(c.experts_per_token); ++j) {
    const int e = idx[j];
    const double w = routing == Routing::BiasInWeights ? biased[size_t(e)] : score[size_t(e)];
    out.emplace_back(e, w);
    sum += w;
  }
  for (auto& [e, w] : out) w = (c.norm_topk_prob ? w / (sum + 1e-20) : w) * c.routed_scaling_factor;
  return out;
}

Naive naive_forward(const ModelConfig& c, const Tensors& T, const std::vector<int32_t>& ids,
                    Routing routing = Routing::AsDefined) {
  const size_t h = size_t(c.hidden_size);
  Naive out;
  out.routed.resize(size_t(c.num_layers));
  std::vector<Vec> x = naive::embed(c, T, ids);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    mla_attention(c, T, p, x);
    // DeepseekV3DecoderLayer: the first first_k_dense_replace layers dense.
    const bool sparse = l >= c.first_k_dense_replace;
    for (auto& xt : x) {
      Vec xn = rms(xt, T.at(p + "post_attention_layernorm.weight"), c.rms_norm_eps);
      Vec y(h, 0.0);
      if (!sparse) {
        y = mlp(T, p + "mlp.", xn, size_t(c.intermediate_size));
      } else {
        for (auto [e, w] : route(c, T, p, xn, routing)) {
          out.routed[size_t(l)].insert(e);
          Vec d = mlp(T, p + "mlp.experts." + std::to_string(e) + ".", xn, size_t(c.moe_intermediate_size));
          for (size_t i = 0; i < h; ++i) y[i] += w * d[i];
        }
        Vec s = mlp(T, p + "mlp.shared_experts.", xn, size_t(c.shared_expert_intermediate_size));
        for (size_t i = 0; i < h; ++i) y[i] += s[i];
      }
      for (size_t i = 0; i < h; ++i) xt[i] += y[i];
    }
  }
  out.logits = naive::logits(c, T, x);
  return out;
}

void write_tiny(const std::filesystem::path& dir, bool q_lora = true) {
  ModelConfig c = find_synth_preset("tiny-deepseek-v3").config;
  if (!q_lora) c.q_lora_rank = 0;
  SynthOptions so;
  so.dtype = DType::F32;
  so.seed = 13;
  so.weight_std = 0.25f;  // router scores spread, attention far from uniform
  write_synthetic_model(dir, c, so);
}

const std::vector<int32_t> kIds = {1, 17, 200, 3, 299, 250, 5, 64, 64, 2, 120, 33};

class DeepseekV3 : public ::testing::TestWithParam<bool> {};

TEST_P(DeepseekV3, MatchesNaiveForwardResidentAndAtMinimumBudget) {
  TempDir tmp;
  write_tiny(tmp / "m", GetParam());
  const ModelConfig c = load_model_config(tmp / "m");
  ASSERT_TRUE(c.mla && c.sigmoid_router);
  ASSERT_EQ(c.q_lora_rank > 0, GetParam());
  const Tensors T = load_tensors_f32(tmp / "m");
  const Naive expect = naive_forward(c, T, kIds);
  // Wrong routings move the logits far beyond the tolerance below: the
  // correction bias in the weights, or top-k over all groups.
  const Naive no_groups = naive_forward(c, T, kIds, Routing::NoGroups);
  EXPECT_NE(no_groups.routed, expect.routed);
  EXPECT_GT(worst_diff(no_groups.logits, expect.logits), 1e-2);
  EXPECT_GT(worst_diff(naive_forward(c, T, kIds, Routing::BiasInWeights).logits, expect.logits), 1e-2);

  for (bool streamed : {false, true}) {
    auto e = naive::open_resident_or_minimum(tmp / "m", kIds, streamed);
    ScoreResult r = e->score(kIds, true);
    if (streamed) {
      EXPECT_EQ(r.plan.expert_slots, size_t(c.experts_per_token));
      EXPECT_LT(r.plan.resident_units, r.plan.units);
    } else {
      EXPECT_EQ(r.plan.expert_slots, size_t(c.num_experts) * size_t(c.num_layers - c.first_k_dense_replace));
    }
    EXPECT_LT(worst_diff(as_rows(r.logits, size_t(c.vocab_size)), expect.logits), 2e-4)
        << (streamed ? "minimum budget" : "resident");

    GenerateResult g;
    ASSERT_NO_FATAL_FAILURE(naive::expect_greedy_like_reference(
        *e, {kIds.begin(), kIds.begin() + 4}, 5, [&](const std::vector<int32_t>& seq) {
          return naive_forward(c, T, seq).logits.back();
        }, g));
    const PassStats& last = g.passes.back();
    EXPECT_EQ(last.rows, 1u);
    EXPECT_EQ(last.experts_routed, size_t(c.num_layers - c.first_k_dense_replace) * size_t(c.experts_per_token));
  }
}

INSTANTIATE_TEST_SUITE_P(Synthetic, DeepseekV3, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& i) { return i.param ? "q_lora" : "plain_q"; });

// Bytes read per pass: the dense units plus exactly the routed experts.
TEST(DeepseekV3Streaming, BytesReadMatchRoutedExperts) {
  TempDir tmp;
  write_tiny(tmp / "m");
  const ModelConfig c = load_model_config(tmp / "m");
  const Naive expect = naive_forward(c, load_tensors_f32(tmp / "m"), kIds);
  const ModelLayout layout = open_model_layout(tmp / "m");
  const std::vector<StreamUnit> units = build_stream_units(layout);
  uint64_t routed = 0, expert_bytes = 0;
  for (size_t l = 0; l < expect.routed.size(); ++l)
    for (int e : expect.routed[l]) {
      ++routed;
      expert_bytes += units[l].experts[size_t(e)].file_bytes;
    }
  EXPECT_GT(routed, 0u);
  EXPECT_LT(routed, size_t(c.num_experts) * 2);  // grouped routing leaves experts unread
  EngineOptions o;
  o.kv_type = "f32";
  auto probe = Engine::open(tmp / "m", o);
  o.max_memory = probe->plan_for(int64_t(kIds.size()), kIds.size()).min_budget;
  auto e = Engine::open(tmp / "m", o);
  ScoreResult r = e->score(kIds, false);
  ASSERT_EQ(r.passes.size(), 1u);
  const PassStats& p = r.passes[0];
  EXPECT_EQ(p.experts_routed, routed);
  EXPECT_EQ(p.expert_bytes_read, expert_bytes);
  EXPECT_EQ(p.bytes_read, r.plan.streamed_bytes_per_pass + expert_bytes);
  // The layer units hold attention, norms, router and shared experts only.
  EXPECT_EQ(units[1].experts.size(), size_t(c.num_experts));
  EXPECT_TRUE(units[0].experts.empty());
}

TEST(DeepseekV3Streaming, OutputIndependentOfExpertCacheSize) {
  TempDir tmp;
  write_tiny(tmp / "m");
  EngineOptions o;
  o.kv_type = "f32";
  o.context = int64_t(kIds.size());
  auto probe = Engine::open(tmp / "m", o);
  const MemoryPlan min = probe->plan_for(int64_t(kIds.size()), kIds.size());
  std::vector<float> reference;
  std::set<size_t> cache_sizes;
  for (uint64_t extra : {uint64_t(0), uint64_t(5), uint64_t(11), uint64_t(20), uint64_t(1000)}) {
    o.max_memory = extra == 1000 ? 0 : min.min_budget + extra * min.expert_slot_bytes;
    auto e = Engine::open(tmp / "m", o);
    ScoreResult r = e->score(kIds, true);
    cache_sizes.insert(r.plan.expert_slots);
    if (reference.empty()) reference = r.logits;
    else EXPECT_EQ(r.logits, reference) << "expert cache " << r.plan.expert_slots;
    ScoreResult again = e->score(kIds, true);
    EXPECT_EQ(again.logits, reference);
    if (extra == 1000) {
      EXPECT_EQ(again.passes[0].expert_hits, again.passes[0].experts_routed);
      EXPECT_EQ(again.passes[0].expert_bytes_read, 0u);
    }
  }
  EXPECT_GE(cache_sizes.size(), 3u);
}

// deepseek-ai/DeepSeek-V3's config.json (the fields strata reads).
const char* kDeepseekV3Config = R"({
  "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "bos_token_id": 0, "eos_token_id": 1,
  "first_k_dense_replace": 3, "hidden_act": "silu", "hidden_size": 7168, "intermediate_size": 18432,
  "kv_lora_rank": 512, "max_position_embeddings": 163840, "moe_intermediate_size": 2048, "moe_layer_freq": 1,
  "n_group": 8, "n_routed_experts": 256, "n_shared_experts": 1, "norm_topk_prob": true,
  "num_attention_heads": 128, "num_experts_per_tok": 8, "num_hidden_layers": 61, "num_key_value_heads": 128,
  "num_nextn_predict_layers": 1, "q_lora_rank": 1536, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64,
  "rms_norm_eps": 1e-06, "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 1.0,
  "mscale_all_dim": 1.0, "original_max_position_embeddings": 4096, "type": "yarn"}, "rope_theta": 10000,
  "routed_scaling_factor": 2.5, "scoring_func": "sigmoid", "tie_word_embeddings": false, "topk_group": 4,
  "topk_method": "noaux_tc", "v_head_dim": 128, "vocab_size": 129280})";

TEST(DeepseekV3Config, RealConfigAndPreset) {
  const ModelConfig c = parse_model_config(kDeepseekV3Config, "config.json");
  EXPECT_TRUE(c.mla && c.sigmoid_router && c.rope_interleaved);
  EXPECT_EQ(c.head_dim, 192);
  EXPECT_EQ(c.num_kv_heads, 128);
  EXPECT_EQ(c.shared_expert_intermediate_size, 2048);
  EXPECT_EQ(c.rope_scaling.type, RopeScaling::Type::Yarn);
  EXPECT_DOUBLE_EQ(c.rope_attention_factor(), 1.0);  // mscale == mscale_all_dim
  const double m = 0.1 * std::log(40.0) + 1;
  EXPECT_NEAR(c.attention_scale(), m * m / std::sqrt(192.0), 1e-12);
  EXPECT_FALSE(c.moe_layer(2));
  EXPECT_TRUE(c.moe_layer(3) && c.moe_layer(60));
  const ArchFamily& f = find_arch(c.architecture, "config.json");
  // A dense layer: 2 norms, q_a/q_a_norm/q_b, kv_a/kv_a_norm/kv_b, o, 3 MLP.
  EXPECT_EQ(layer_tensors(f, c, 0).size(), 12u);
  // An MoE layer: router + bias + 3 shared instead of the MLP, 256 experts.
  EXPECT_EQ(layer_tensors(f, c, 3).size(), 12u - 3 + 5 + 256 * 3);
  EXPECT_EQ(*hf_to_gguf_name(f, "model.layers.4.mlp.gate.e_score_correction_bias"), "blk.4.exp_probs_b.bias");
  // The preset carries the same shapes.
  const ModelConfig p = find_synth_preset("deepseek-v3").config;
  for (int64_t l : {int64_t(0), int64_t(3)}) {
    auto a = layer_tensors(f, c, l), b = layer_tensors(f, p, l);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].name, b[i].name);
      EXPECT_EQ(a[i].shape, b[i].shape) << a[i].name;
    }
  }
  // The config strata writes reads back as the preset.
  const ModelConfig back = parse_model_config(model_config_json(p, DType::BF16), "config.json");
  EXPECT_EQ(back.head_dim, p.head_dim);
  EXPECT_EQ(back.n_group, 8);
  EXPECT_EQ(back.topk_group, 4);
  EXPECT_DOUBLE_EQ(back.routed_scaling_factor, 2.5);
  EXPECT_EQ(back.rope_scaling.original_max_position_embeddings, 4096);

  std::string nolora = kDeepseekV3Config;
  nolora.replace(nolora.find("\"q_lora_rank\": 1536"), 19, "\"q_lora_rank\": null");
  const ModelConfig q = parse_model_config(nolora, "config.json");
  EXPECT_EQ(q.q_lora_rank, 0);
  EXPECT_EQ(layer_tensors(f, q, 0).size(), 10u);  // a plain q_proj
  std::string bad = kDeepseekV3Config;
  bad.replace(bad.find("\"topk_group\": 4"), 15, "\"topk_group\": 9");
  EXPECT_THROW(parse_model_config(bad, "config.json"), Error);
}

TEST(DeepseekV3Config, Qwen3_235bPreset) {
  const ModelConfig c = find_synth_preset("qwen3-235b-a22b").config;
  EXPECT_EQ(c.num_layers, 94);
  EXPECT_EQ(c.num_experts, 128);
  EXPECT_EQ(c.experts_per_token, 8);
  EXPECT_EQ(c.moe_intermediate_size, 1536);
  EXPECT_EQ(c.q_dim(), 64 * 128);
  EXPECT_EQ(c.kv_dim(), 4 * 128);
}

}  // namespace
}  // namespace strata::test
