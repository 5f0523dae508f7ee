// Mixture-of-experts families (Mixtral, Qwen2MoE, Qwen3MoE) against a naive
// double-precision forward written here from transformers' definitions
// (MixtralSparseMoeBlock, Qwen2MoeSparseMoeBlock, Qwen3MoeSparseMoeBlock),
// on tiny synthetic models, all-resident and at the minimum budget; plus the
// routed-expert reads: bytes per pass match the experts the rows chose, and
// the output does not depend on the expert cache's size.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <set>

#include "arch/arch.h"
#include "arch/model_layout.h"
#include "convert/gguf_convert.h"
#include "convert/synthetic_model.h"
#include "formats/gguf_writer.h"
#include "core/error.h"
#include "formats/model_config.h"
#include "runtime/planner.h"
#include "runtime/stream_unit.h"
#include "strata/strata.h"
#include "naive_model.h"
#include "test_models.h"
#include "test_util.h"

namespace strata::test {
namespace {

using naive::Tensors;
using naive::Vec;
using naive::as_rows;
using naive::worst_diff;
using naive::matvec;
using naive::rms;

Vec swiglu(const Tensors& T, const std::string& gate, const std::string& up, const std::string& down, const Vec& x,
           size_t ff) {
  Vec g = matvec(T.at(gate), x, ff), u = matvec(T.at(up), x, ff);
  for (size_t i = 0; i < ff; ++i) g[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
  return matvec(T.at(down), g, x.size());
}

enum class Routing { AsDefined, FlipRenormalize };

struct Naive {
  std::vector<Vec> logits;                    // per position
  std::vector<std::set<int>> routed;          // per layer: experts any position chose
};

// The model's definition: softmax over router logits, top-k, renormalized
// when norm_topk_prob (always for Mixtral); FlipRenormalize inverts that
// choice, the "deliberately wrong routing" a correct engine must not match.
Naive naive_forward(const ModelConfig& c, const Tensors& T, const std::vector<int32_t>& ids,
                    Routing routing = Routing::AsDefined) {
  const size_t n = ids.size(), h = size_t(c.hidden_size), E = size_t(c.num_experts),
               K = size_t(c.experts_per_token);
  const bool mixtral = c.architecture == "MixtralForCausalLM";
  auto W = [&](const std::string& name) -> const std::vector<float>& { return T.at(name); };
  Naive out;
  out.routed.resize(size_t(c.num_layers));
  std::vector<Vec> x = naive::embed(c, T, ids);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    naive::attention(c, T, p, x);
    for (size_t t = 0; t < n; ++t) {
      Vec xn = rms(x[t], W(p + "post_attention_layernorm.weight"), c.rms_norm_eps);
      const std::string moe = mixtral ? p + "block_sparse_moe." : p + "mlp.";
      Vec y(h, 0.0);
      if (!T.count(moe + "gate.weight")) {
        y = swiglu(T, p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight", p + "mlp.down_proj.weight", xn,
                   size_t(c.intermediate_size));
      } else {
        Vec prob = matvec(W(moe + "gate.weight"), xn, E);
        double mx = *std::max_element(prob.begin(), prob.end()), z = 0;
        for (double& e : prob) z += (e = std::exp(e - mx));
        for (double& e : prob) e /= z;
        std::vector<int> idx(E);
        for (size_t e = 0; e < E; ++e) idx[e] = int(e);
        std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return prob[size_t(a)] > prob[size_t(b)]; });
        double top = 0;
        for (size_t j = 0; j < K; ++j) top += prob[size_t(idx[j])];
        bool renorm = c.norm_topk_prob;
        if (routing == Routing::FlipRenormalize) renorm = !renorm;
        for (size_t j = 0; j < K; ++j) {
          const int e = idx[j];
          out.routed[size_t(l)].insert(e);
          const std::string ep = moe + "experts." + std::to_string(e) + ".";
          Vec d = mixtral ? swiglu(T, ep + "w1.weight", ep + "w3.weight", ep + "w2.weight", xn,
                                   size_t(c.moe_intermediate_size))
                          : swiglu(T, ep + "gate_proj.weight", ep + "up_proj.weight", ep + "down_proj.weight", xn,
                                   size_t(c.moe_intermediate_size));
          const double wgt = renorm ? prob[size_t(e)] / top : prob[size_t(e)];
          for (size_t i = 0; i < h; ++i) y[i] += wgt * d[i];
        }
        if (T.count(p + "mlp.shared_expert_gate.weight")) {
          Vec s = swiglu(T, p + "mlp.shared_expert.gate_proj.weight", p + "mlp.shared_expert.up_proj.weight",
                         p + "mlp.shared_expert.down_proj.weight", xn, size_t(c.shared_expert_intermediate_size));
          double g = matvec(W(p + "mlp.shared_expert_gate.weight"), xn, 1)[0];
          g = 1.0 / (1.0 + std::exp(-g));
          for (size_t i = 0; i < h; ++i) y[i] += g * s[i];
        }
      }
      for (size_t i = 0; i < h; ++i) x[t][i] += y[i];
    }
  }
  out.logits = naive::logits(c, T, x);
  return out;
}

// A gtest name for a preset parameter ("tiny-qwen3moe" -> "tiny_qwen3moe").
std::string preset_test_name(const ::testing::TestParamInfo<const char*>& info) {
  std::string n = info.param;
  for (auto& ch : n)
    if (!isalnum((unsigned char)ch)) ch = '_';
  return n;
}

void write_tiny(const std::filesystem::path& dir, const char* preset) {
  SynthOptions so;
  so.dtype = DType::F32;
  so.seed = 11;
  // Large weights: attention far from uniform, router logits spread so a
  // wrong routing weight shows in the logits.
  so.weight_std = 0.25f;
  write_synthetic_model(dir, find_synth_preset(preset).config, so);
}

const std::vector<int32_t> kIds = {1, 17, 200, 3, 299, 250, 5, 64, 64, 2, 120, 33};

class MoeFamily : public ::testing::TestWithParam<const char*> {};

TEST_P(MoeFamily, MatchesNaiveForwardResidentAndAtMinimumBudget) {
  TempDir tmp;
  write_tiny(tmp / "m", GetParam());
  ModelConfig c = load_model_config(tmp / "m");
  ASSERT_TRUE(c.is_moe());
  Tensors T = load_tensors_f32(tmp / "m");
  const Naive expect = naive_forward(c, T, kIds);
  // The test can tell a wrong routing: without (or with a spurious)
  // renormalization of the top-k weights the logits move far beyond the
  // tolerance below.
  EXPECT_GT(worst_diff(naive_forward(c, T, kIds, Routing::FlipRenormalize).logits, expect.logits), 1e-2);

  for (bool streamed : {false, true}) {
    auto e = naive::open_resident_or_minimum(tmp / "m", kIds, streamed);
    ScoreResult r = e->score(kIds, true);
    if (streamed) {
      EXPECT_EQ(r.plan.expert_slots, size_t(c.experts_per_token));
      EXPECT_LT(r.plan.resident_units, r.plan.units);
    } else {
      EXPECT_EQ(r.plan.expert_slots, size_t(c.num_experts) * expect.routed.size() -
                                         (c.mlp_only_layers.size() * size_t(c.num_experts)));
    }
    EXPECT_LT(worst_diff(as_rows(r.logits, size_t(c.vocab_size)), expect.logits), 2e-4)
        << (streamed ? "minimum budget" : "resident");

    // Generation with the KV cache continues exactly like the naive forward.
    GenerateResult g;
    ASSERT_NO_FATAL_FAILURE(naive::expect_greedy_like_reference(
        *e, {kIds.begin(), kIds.begin() + 4}, 5, [&](const std::vector<int32_t>& seq) {
          return naive_forward(c, T, seq).logits.back();
        }, g));
    // A decode pass of one row reads top-k experts in each MoE layer.
    const PassStats& last = g.passes.back();
    EXPECT_EQ(last.rows, 1u);
    size_t moe_layers = 0;
    for (int64_t l = 0; l < c.num_layers; ++l) moe_layers += c.moe_layer(l);
    EXPECT_EQ(last.experts_routed, moe_layers * size_t(c.experts_per_token));
  }
}

INSTANTIATE_TEST_SUITE_P(Synthetic, MoeFamily, ::testing::Values("tiny-mixtral", "tiny-qwen3moe", "tiny-qwen2moe"),
                         preset_test_name);

// Bytes read per pass are the dense units plus exactly the experts the
// pass's rows were routed to (each once, however many rows chose it).
TEST(MoeStreaming, BytesReadMatchRoutedExperts) {
  TempDir tmp;
  write_tiny(tmp / "m", "tiny-qwen3moe");
  ModelConfig c = load_model_config(tmp / "m");
  const Naive expect = naive_forward(c, load_tensors_f32(tmp / "m"), kIds);
  const ModelLayout layout = open_model_layout(tmp / "m");
  const std::vector<StreamUnit> units = build_stream_units(layout);
  uint64_t routed = 0, expert_bytes = 0;
  for (size_t l = 0; l < expect.routed.size(); ++l)
    for (int e : expect.routed[l]) {
      ++routed;
      expert_bytes += units[l].experts[size_t(e)].file_bytes;
    }
  // Twelve rows choosing three of six experts each touch most experts, but
  // not (here) every one of every layer: the reads are really selective.
  EXPECT_GT(routed, 0u);

  EngineOptions o;
  o.kv_type = "f32";
  auto probe = Engine::open(tmp / "m", o);
  o.max_memory = probe->plan_for(int64_t(kIds.size()), kIds.size()).min_budget;
  auto e = Engine::open(tmp / "m", o);
  ScoreResult r = e->score(kIds, false);
  ASSERT_EQ(r.passes.size(), 1u);
  const PassStats& p = r.passes[0];
  EXPECT_EQ(p.experts_routed, routed);
  EXPECT_EQ(p.expert_hits, 0u);  // top-k slots: each layer's experts evict the previous layer's
  EXPECT_EQ(p.expert_bytes_read, expert_bytes);
  EXPECT_EQ(p.bytes_read, r.plan.streamed_bytes_per_pass + expert_bytes);
  const EngineStats st = e->stats();
  EXPECT_EQ(st.experts_routed, routed);
  EXPECT_EQ(st.expert_hits, 0u);
}

// The expert cache changes what is read, never the result: logits are
// bitwise equal from the minimum (top-k slots) to every expert cached, and
// a cache that holds everything reads each expert once.
TEST(MoeStreaming, OutputIndependentOfExpertCacheSize) {
  TempDir tmp;
  write_tiny(tmp / "m", "tiny-mixtral");
  EngineOptions o;
  o.kv_type = "f32";
  o.context = int64_t(kIds.size());  // spare budget to the cache, not to a longer KV cache
  auto probe = Engine::open(tmp / "m", o);
  const MemoryPlan min = probe->plan_for(int64_t(kIds.size()), kIds.size());
  std::vector<float> reference;
  std::set<size_t> cache_sizes;
  // Extra room goes to resident layer units first, then to the cache.
  for (uint64_t extra : {uint64_t(0), uint64_t(3), uint64_t(6), uint64_t(9), uint64_t(12), uint64_t(1000)}) {
    o.max_memory = extra == 1000 ? 0 : min.min_budget + extra * min.expert_slot_bytes;
    auto e = Engine::open(tmp / "m", o);
    ScoreResult r = e->score(kIds, true);
    cache_sizes.insert(r.plan.expert_slots);
    if (extra == 0) {
      EXPECT_EQ(r.plan.expert_slots, 2u);
    }
    if (extra == 1000) {
      EXPECT_EQ(r.plan.expert_slots, 24u);
    }
    if (reference.empty()) {
      reference = r.logits;
    } else {
      EXPECT_EQ(r.logits, reference) << "expert cache " << r.plan.expert_slots;
    }
    ScoreResult again = e->score(kIds, true);
    EXPECT_EQ(again.logits, reference);
    if (extra == 1000) {
      // Everything cached: the second pass routes the same experts and reads none.
      EXPECT_EQ(again.passes[0].expert_hits, again.passes[0].experts_routed);
      EXPECT_EQ(again.passes[0].expert_bytes_read, 0u);
    }
  }
  EXPECT_GE(cache_sizes.size(), 4u);
}

// Neither the eviction policy nor overlapping reads with compute changes a
// bit of the output, at any cache size; a cache that holds every expert
// reads none on the second pass under either policy.
TEST(MoeStreaming, OutputIndependentOfPolicyAndOverlap) {
  TempDir tmp;
  write_tiny(tmp / "m", "tiny-qwen3moe");
  EngineOptions o;
  o.kv_type = "f32";
  o.context = int64_t(kIds.size());
  auto probe = Engine::open(tmp / "m", o);
  const MemoryPlan min = probe->plan_for(int64_t(kIds.size()), kIds.size());
  std::vector<float> reference;
  for (const char* policy : {"lru", "lfu"})
    for (const char* overlap : {"1", "0"})
      for (uint64_t extra : {uint64_t(0), uint64_t(5), uint64_t(1000)}) {
        ::setenv("STRATA_EXPERT_POLICY", policy, 1);
        ::setenv("STRATA_EXPERT_OVERLAP", overlap, 1);
        o.max_memory = extra == 1000 ? 0 : min.min_budget + extra * min.expert_slot_bytes;
        auto e = Engine::open(tmp / "m", o);
        const std::string what = std::string(policy) + " overlap " + overlap + " extra " + std::to_string(extra);
        for (int pass = 0; pass < 2; ++pass) {
          ScoreResult r = e->score(kIds, true);
          if (reference.empty()) reference = r.logits;
          EXPECT_EQ(r.logits, reference) << what;
          if (extra == 1000 && pass == 1) {
            EXPECT_EQ(r.passes[0].expert_hits, r.passes[0].experts_routed) << what;
            EXPECT_EQ(r.passes[0].expert_bytes_read, 0u) << what;
          }
        }
      }
  ::unsetenv("STRATA_EXPERT_POLICY");
  ::unsetenv("STRATA_EXPERT_OVERLAP");
  ::setenv("STRATA_EXPERT_POLICY", "mru", 1);
  EXPECT_THROW(Engine::open(tmp / "m", o)->score(kIds, false), Error);  // runtime built on first use
  ::unsetenv("STRATA_EXPERT_POLICY");
}

TEST(MoePlanner, MinimumBudgetIsDenseSlotPlusTopKExperts) {
  TempDir tmp;
  write_tiny(tmp / "m", "tiny-mixtral");
  EngineOptions o;
  o.context = 16;
  auto probe = Engine::open(tmp / "m", o);
  const MemoryPlan min = probe->plan_for(16, 1);
  const ModelLayout layout = open_model_layout(tmp / "m");
  const std::vector<StreamUnit> units = build_stream_units(layout);
  EXPECT_EQ(min.expert_slot_bytes, largest_expert_bytes(units));
  EXPECT_EQ(expert_count(units), 3u * 8u);
  // The layer units hold no expert: experts are their own sub-units.
  EXPECT_LT(units[0].slot_bytes, units[0].experts[0].slot_bytes * 8);
  o.max_memory = min.min_budget - 1;
  auto small = Engine::open(tmp / "m", o);
  try {
    GenerateRequest req;
    req.prompt_ids = {1, 2};
    req.max_new_tokens = 2;
    small->generate(req);
    FAIL() << "expected a budget error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expert slots"), std::string::npos) << e.what();
  }
}

// The plan's expert cache: top-k slots at the minimum; after the resident
// units, spare room; a slot per expert when everything fits.
TEST(MoePlanner, ExpertCacheGrowsWithTheBudget) {
  const uint64_t mb = 1 << 20;
  std::vector<StreamUnit> units(4);
  for (size_t i = 0; i < units.size(); ++i) {
    units[i].layer = int64_t(i);
    units[i].slot_bytes = units[i].file_bytes = 10 * mb;
    units[i].experts.resize(8);
    for (auto& e : units[i].experts) e.slot_bytes = e.file_bytes = 4 * mb;
  }
  PlanRequest req;
  req.experts = expert_count(units);
  req.expert_slot_bytes = largest_expert_bytes(units);
  req.min_expert_slots = 2;
  req.budget = 1;
  try {
    make_plan(units, req);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("2 expert slots of 4.00 MiB"), std::string::npos) << e.what();
  }
  req.budget = kPlanReserveBytes + 10 * mb + 8 * mb;
  Plan p = make_plan(units, req);
  EXPECT_EQ(p.min_budget, req.budget);
  EXPECT_EQ(p.expert_slots, 2u);
  EXPECT_EQ(p.n_slots, 1u);
  // Three slots, then one resident unit (4 units, 3 kept streaming), then
  // the cache takes what is left.
  req.budget = kPlanReserveBytes + 4 * 10 * mb + 8 * mb + 5 * 4 * mb;
  p = make_plan(units, req);
  EXPECT_EQ(p.n_slots, 3u);
  EXPECT_EQ(p.resident_units(), 1u);
  EXPECT_EQ(p.expert_slots, 7u);
  EXPECT_LE(p.total_bytes, req.budget);
  req.budget = kPlanReserveBytes + 4 * 10 * mb + 32 * 4 * mb;
  p = make_plan(units, req);
  EXPECT_EQ(p.resident_units(), 4u);
  EXPECT_EQ(p.expert_slots, 32u);
  EXPECT_EQ(p.total_bytes, req.budget);
}

TEST(MoeConfig, SparseStepAndDenseLayers) {
  std::string j = R"({"architectures": ["Qwen3MoeForCausalLM"], "hidden_size": 64, "intermediate_size": 128,
    "num_hidden_layers": 6, "num_attention_heads": 4, "vocab_size": 100, "num_experts": 8,
    "num_experts_per_tok": 2, "moe_intermediate_size": 32, "decoder_sparse_step": 2, "mlp_only_layers": [3],
    "norm_topk_prob": true})";
  ModelConfig c = parse_model_config(j, "config.json");
  EXPECT_TRUE(c.norm_topk_prob);
  std::vector<bool> sparse;
  for (int64_t l = 0; l < 6; ++l) sparse.push_back(c.moe_layer(l));
  EXPECT_EQ(sparse, (std::vector<bool>{false, true, false, false, false, true}));
  const ArchFamily& f = find_arch(c.architecture, "config.json");
  auto t1 = layer_tensors(f, c, 1), t0 = layer_tensors(f, c, 0);
  EXPECT_EQ(t1.size(), t0.size() - 3 + 1 + 8 * 3);  // dense MLP -> router + 8 experts
  int64_t layer = -1;
  const TensorDef* d = find_tensor_def(f, "model.layers.5.mlp.experts.7.down_proj.weight", &layer);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->role, Role::ExpertDown);
  EXPECT_EQ(layer, 5);
  EXPECT_FALSE(hf_to_gguf_name(f, "model.layers.5.mlp.experts.7.down_proj.weight"));
  EXPECT_EQ(*hf_to_gguf_name(f, "model.layers.5.mlp.gate.weight"), "blk.5.ffn_gate_inp.weight");

  std::string bad = j;
  bad.replace(bad.find("\"num_experts_per_tok\": 2"), 24, "\"num_experts_per_tok\": 9");
  EXPECT_THROW(parse_model_config(bad, "config.json"), Error);
  std::string mixtral = R"({"architectures": ["MixtralForCausalLM"], "hidden_size": 64, "intermediate_size": 128,
    "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100, "num_local_experts": 4,
    "num_experts_per_tok": 2})";
  ModelConfig m = parse_model_config(mixtral, "config.json");
  EXPECT_EQ(m.num_experts, 4);
  EXPECT_EQ(m.moe_intermediate_size, 128);
  EXPECT_TRUE(m.norm_topk_prob);
  EXPECT_TRUE(m.moe_layer(0) && m.moe_layer(1));
}

// Several sequences in shared passes: each expert read once serves the rows
// of every sequence routed to it, and greedy outputs equal one-at-a-time
// generation.
TEST(MoeStreaming, BatchedSequencesMatchSingleGeneration) {
  TempDir tmp;
  write_tiny(tmp / "m", "tiny-qwen2moe");
  EngineOptions o;
  o.kv_type = "f32";
  o.context = 16;
  auto probe = Engine::open(tmp / "m", o);
  o.max_memory = probe->plan_for(16, 1, 3).min_budget;
  const std::vector<std::vector<int32_t>> prompts = {{1, 2, 3}, {40, 41}, {299, 7, 8, 9}};
  std::vector<std::vector<int32_t>> single;
  for (const auto& p : prompts) {
    auto e = Engine::open(tmp / "m", o);
    GenerateRequest req;
    req.prompt_ids = p;
    req.max_new_tokens = 6;
    req.stop_at_eos = false;
    single.push_back(e->generate(req).output_ids);
  }
  auto e = Engine::open(tmp / "m", o);
  size_t next = 0;
  std::vector<std::vector<int32_t>> batched(prompts.size());
  BatchOptions bo;
  bo.context = 16;
  bo.max_sequences = 3;
  BatchStats st = e->generate_batch(
      [&]() -> std::optional<SequenceRequest> {
        if (next == prompts.size()) return std::nullopt;
        SequenceRequest s;
        s.key = next;
        s.prompt_ids = prompts[next++];
        s.max_new_tokens = 6;
        s.stop_at_eos = false;
        return s;
      },
      [&](SequenceResult&& r) { batched[r.key] = r.output_ids; }, bo);
  EXPECT_EQ(batched, single);
  const EngineStats es = e->stats();
  EXPECT_GT(es.experts_routed, 0u);
  EXPECT_LT(st.passes, 3u * 6u);  // fewer than one at a time: the sequences shared passes
}

// A Qwen MoE config whose layers are all in mlp_only_layers is a dense
// model in MoE clothing: no expert tensors, no expert cache, same logits as
// the naive forward.
TEST(MoeConfig, AllLayersDenseNeedsNoExperts) {
  TempDir tmp;
  ModelConfig cfg = find_synth_preset("tiny-qwen3moe").config;
  cfg.mlp_only_layers = {0, 1, 2};
  SynthOptions so;
  so.dtype = DType::F32;
  so.seed = 5;
  so.weight_std = 0.25f;
  write_synthetic_model(tmp / "m", cfg, so);
  ModelConfig c = load_model_config(tmp / "m");
  EXPECT_TRUE(c.is_moe());
  const Naive expect = naive_forward(c, load_tensors_f32(tmp / "m"), kIds);
  EngineOptions o;
  o.kv_type = "f32";
  auto e = Engine::open(tmp / "m", o);
  ScoreResult r = e->score(kIds, true);
  EXPECT_EQ(r.plan.expert_slots, 0u);
  EXPECT_EQ(e->info().moe_layers, 0);
  EXPECT_LT(worst_diff(as_rows(r.logits, size_t(c.vocab_size)), expect.logits), 2e-4);
}

// A qwen3moe / qwen2moe / Mixtral (`llama` with experts) GGUF written as
// llama.cpp's converter lays it out (experts stacked per layer in ffn_*_exps,
// the shared expert's gate a vector, llama q/k rows permuted; f32) gives bitwise the logits
// of the safetensors directory it was written from, reading experts by byte
// range from inside the stacks.
class MoeGguf : public ::testing::TestWithParam<const char*> {};

TEST_P(MoeGguf, FileMatchesItsSafetensors) {
  TempDir tmp;
  ModelConfig cfg = find_synth_preset(GetParam()).config;
  const std::string garch = cfg.architecture == "Qwen3MoeForCausalLM"   ? "qwen3moe"
                            : cfg.architecture == "Qwen2MoeForCausalLM" ? "qwen2moe"
                                                                        : "llama";  // Mixtral
  cfg.mlp_only_layers.clear();  // llama.cpp's qwen3moe has experts in every layer
  SynthOptions so;
  so.dtype = DType::F32;
  so.seed = 11;
  so.weight_std = 0.25f;
  write_synthetic_model(tmp / "m", cfg, so);
  const ModelConfig c = load_model_config(tmp / "m");
  Tensors T = load_tensors_f32(tmp / "m");
  {
    GgufWriter w(tmp / "m.gguf", 32);
    w.add_string("general.architecture", garch);
    const std::string a = garch + ".";
    if (c.shared_expert_intermediate_size)
      w.add_u32(a + "expert_shared_feed_forward_length", uint32_t(c.shared_expert_intermediate_size));
    w.add_u32(a + "block_count", uint32_t(c.num_layers));
    w.add_u32(a + "embedding_length", uint32_t(c.hidden_size));
    w.add_u32(a + "feed_forward_length", uint32_t(c.intermediate_size));
    w.add_u32(a + "attention.head_count", uint32_t(c.num_heads));
    w.add_u32(a + "attention.head_count_kv", uint32_t(c.num_kv_heads));
    w.add_u32(a + "attention.key_length", uint32_t(c.head_dim));
    w.add_u32(a + "context_length", uint32_t(c.max_position_embeddings));
    w.add_f32(a + "attention.layer_norm_rms_epsilon", float(c.rms_norm_eps));
    w.add_f32(a + "rope.freq_base", float(c.rope_theta));
    w.add_u32(a + "expert_count", uint32_t(c.num_experts));
    w.add_u32(a + "expert_used_count", uint32_t(c.experts_per_token));
    w.add_u32(a + "expert_feed_forward_length", uint32_t(c.moe_intermediate_size));
    std::vector<std::pair<std::string, std::vector<float>>> data;
    const ArchFamily& f = find_arch(c.architecture, "config.json");
    auto add = [&](const std::string& gguf, std::vector<uint64_t> ne, std::vector<float> v) {
      w.add_tensor(gguf, DType::F32, ne);
      data.emplace_back(gguf, std::move(v));
    };
    for (const auto& t : model_tensors(f, c)) {
      if (t.def->per_expert) continue;
      std::vector<uint64_t> ne(t.shape.rbegin(), t.shape.rend());
      if (t.role() == Role::SharedExpertGate) ne = {uint64_t(c.hidden_size)};  // a vector in llama.cpp's files
      std::vector<float> v = T.at(t.name);
      if (garch == "llama" && (t.role() == Role::Q || t.role() == Role::K)) {
        // llama.cpp's converter permutes q/k rows of `llama` files for
        // interleaved RoPE: row (head, j * half + i) goes to (head, 2i + j).
        const int64_t heads = t.role() == Role::Q ? c.num_heads : c.num_kv_heads, hd = c.head_dim, half = hd / 2,
                      cols = c.hidden_size;
        std::vector<float> p(v.size());
        for (int64_t hh = 0; hh < heads; ++hh)
          for (int64_t i = 0; i < half; ++i)
            for (int64_t j = 0; j < 2; ++j)
              std::copy_n(v.begin() + (hh * hd + j * half + i) * cols, cols, p.begin() + (hh * hd + 2 * i + j) * cols);
        v = std::move(p);
      }
      add(t.gguf_name, ne, std::move(v));
    }
    for (int64_t l = 0; l < c.num_layers; ++l)
      for (auto [role, gguf] : {std::pair{Role::ExpertGate, "ffn_gate_exps"}, std::pair{Role::ExpertUp, "ffn_up_exps"},
                                std::pair{Role::ExpertDown, "ffn_down_exps"}}) {
        std::vector<float> stack;
        std::vector<uint64_t> ne;
        for (int64_t e = 0; e < c.num_experts; ++e) {
          const std::string hf = *expert_tensor_name(f, role, l, e);
          const auto& v = T.at(hf);
          stack.insert(stack.end(), v.begin(), v.end());
        }
        const uint64_t hid = uint64_t(c.hidden_size), ff = uint64_t(c.moe_intermediate_size);
        ne = role == Role::ExpertDown ? std::vector<uint64_t>{ff, hid, uint64_t(c.num_experts)}
                                      : std::vector<uint64_t>{hid, ff, uint64_t(c.num_experts)};
        add("blk." + std::to_string(l) + "." + gguf + ".weight", ne, stack);
      }
    w.begin_data();
    for (const auto& [name, v] : data) {
      w.write(v.data(), v.size() * sizeof(float));
      w.end_tensor();
    }
    w.finish();
  }
  EngineOptions o;
  o.kv_type = "f32";
  auto st = Engine::open(tmp / "m", o);
  auto probe = Engine::open(tmp / "m.gguf", o);
  EXPECT_EQ(probe->info().architecture, c.architecture);
  EXPECT_EQ(probe->info().experts, c.num_experts);
  const std::vector<float> want = st->score(kIds, true).logits;
  o.max_memory = probe->plan_for(int64_t(kIds.size()), kIds.size()).min_budget;
  auto g = Engine::open(tmp / "m.gguf", o);
  ScoreResult r = g->score(kIds, true);
  EXPECT_EQ(r.plan.expert_slots, size_t(c.experts_per_token));
  EXPECT_EQ(r.logits, want);
  EXPECT_GT(r.passes[0].expert_bytes_read, 0u);
  const Naive expect = naive_forward(c, T, kIds);
  EXPECT_LT(worst_diff(as_rows(r.logits, size_t(c.vocab_size)), expect.logits), 2e-4);
}

INSTANTIATE_TEST_SUITE_P(Synthetic, MoeGguf, ::testing::Values("tiny-qwen3moe", "tiny-qwen2moe", "tiny-mixtral"),
                         preset_test_name);

// GGUF stacks experts in one tensor per layer; until that layout is read
// and written, an MoE model is refused with a message rather than written
// without its experts.
// `convert` writes MoE models as llama.cpp lays them out (stacked
// ffn_*_exps, the shared expert's gate a vector), and strata reads them
// back: the same logits as the safetensors directory within the
// quantization's error, the stacked experts streamed by byte range at the
// minimum budget with the same bits as all resident.
class MoeConvert : public ::testing::TestWithParam<const char*> {};

TEST_P(MoeConvert, GgufMatchesSafetensorsWithinQuantizationError) {
  TempDir tmp;
  ModelConfig cfg = find_synth_preset(GetParam()).config;
  cfg.mlp_only_layers.clear();  // GGUF MoE files have experts in every layer
  SynthOptions so;
  so.dtype = DType::F32;
  so.seed = 5;
  write_synthetic_model(tmp / "m", cfg, so);
  EngineOptions o;
  o.kv_type = "f32";
  const std::vector<float> ref = Engine::open(tmp / "m", o)->score(kIds, true).logits;
  float scale = 0;
  for (float v : ref) scale = std::max(scale, std::fabs(v));
  ASSERT_GT(scale, 0.0f);
  // (type, recipe, tolerance relative to the largest logit)
  const std::vector<std::tuple<DType, std::string, float>> cases = {
      {DType::F32, "", 1e-5f}, {DType::Q8_0, "q8_0", 0.03f}, {DType::Q4_0, "", 0.25f}, {DType::Q8_0, "q4_k_m", 0.25f}};
  for (const auto& [type, recipe, tol] : cases) {
    const std::string what = std::string(GetParam()) + " " + (recipe.empty() ? std::string(dtype_name(type)) : recipe);
    GgufConvertOptions co;
    co.type = type;
    co.recipe = recipe;
    const auto out = tmp / (what.substr(what.find(' ') + 1) + ".gguf");
    convert_to_gguf(tmp / "m", out, co);
    auto resident = Engine::open(out, o);
    ScoreResult r = resident->score(kIds, true);
    ASSERT_EQ(r.logits.size(), ref.size()) << what;
    float worst = 0;
    for (size_t i = 0; i < ref.size(); ++i) worst = std::max(worst, std::fabs(r.logits[i] - ref[i]));
    EXPECT_LE(worst, tol * scale) << what;
    EXPECT_GT(r.passes[0].experts_routed, 0u) << what;
    // Streamed at the minimum budget: experts read by byte range from the stacks.
    EngineOptions so2 = o;
    so2.max_memory = resident->plan_for(int64_t(kIds.size()), kIds.size()).min_budget;
    ScoreResult s = Engine::open(out, so2)->score(kIds, true);
    EXPECT_EQ(s.plan.expert_slots, size_t(cfg.experts_per_token)) << what;
    EXPECT_GT(s.passes[0].expert_bytes_read, 0u) << what;
    EXPECT_EQ(s.logits, r.logits) << what;
  }
}
INSTANTIATE_TEST_SUITE_P(Synthetic, MoeConvert, ::testing::Values("tiny-mixtral", "tiny-qwen3moe", "tiny-qwen2moe"),
                         preset_test_name);

TEST(MoeConfig, ConvertRefusesWhatGgufCannotHold) {
  TempDir tmp;
  write_tiny(tmp / "q3", "tiny-qwen3moe");  // layer 1 is dense (mlp_only_layers)
  try {
    convert_to_gguf(tmp / "q3", tmp / "q3.gguf", GgufConvertOptions{});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("dense layers"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(tmp / "q3.gguf"));
  EXPECT_EQ(find_arch_by_gguf("deepseek2"), nullptr);
}

}  // namespace
}  // namespace strata::test
