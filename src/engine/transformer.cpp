#include "engine/transformer.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/memory_ledger.h"
#include "core/thread_pool.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "engine/paged_attention.h"
#include "runtime/expert_cache.h"
#include "runtime/io_engine.h"
#include "runtime/kv_pool.h"
#include "runtime/layer_store.h"

namespace strata {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

uint64_t f32_bytes(uint64_t n) { return n * sizeof(float); }

// Element-wise work below this many elements per thread is not worth a
// thread hand-off (~a few microseconds).
constexpr size_t kElementGrain = 16384;
size_t rows_grain(size_t dim) { return std::max<size_t>(1, kElementGrain / std::max<size_t>(1, dim)); }

// The widest FFN a row passes through: dense MLP, routed or shared expert.
uint64_t widest_ffn(const ModelConfig& c) {
  return std::max<uint64_t>({uint64_t(c.intermediate_size), uint64_t(c.moe_intermediate_size),
                             uint64_t(c.shared_expert_intermediate_size)});
}

// Multi-head latent attention's scratch per row: the q bottleneck, the
// compressed kv with its RoPE key, the normalized latent, and the per-head
// nope keys and values it decompresses to.
uint64_t mla_floats(const ModelConfig& c) {
  if (!c.mla) return 0;
  return uint64_t(c.q_lora_rank + c.kv_lora_rank + c.qk_rope_head_dim + c.kv_lora_rank +
                  c.num_heads * (c.qk_nope_head_dim + c.v_head_dim));
}

// The widest vector a layer reads as f32 (norm weights, the router's bias).
uint64_t widest_vec(const ModelConfig& c) {
  return std::max<uint64_t>({uint64_t(c.hidden_size), uint64_t(c.q_dim()), widest_ffn(c), uint64_t(c.num_experts),
                             uint64_t(c.q_lora_rank), uint64_t(c.kv_lora_rank)});
}

}  // namespace

uint64_t Transformer::activation_bytes(const ModelConfig& c, size_t rows, int64_t ctx, size_t threads) {
  const uint64_t h = uint64_t(c.hidden_size), q = uint64_t(c.q_dim()), kv = uint64_t(c.kv_dim()),
                 ff = widest_ffn(c);
  uint64_t per_row = f32_bytes(2 * h + q + 2 * kv + q + 2 * ff + mla_floats(c)) + h * 4 /* raw embedding row, widest dtype */;
  uint64_t vec = f32_bytes(widest_vec(c));
  uint64_t pages = 14 * 4096;  // each buffer rounds up to a page
  if (c.is_moe()) {
    const uint64_t E = uint64_t(c.num_experts), k = uint64_t(c.experts_per_token);
    per_row += f32_bytes(E + k + k * h + 2 * h) + k * sizeof(int);
    pages += 5 * 4096;
  }
  const uint64_t attn = f32_bytes(attention_scratch_floats(size_t(c.head_dim), ctx));
  return per_row * rows + attn * threads + 2 * vec + pages;
}

uint64_t Transformer::logits_bytes(const ModelConfig& c, size_t rows) {
  return f32_bytes(uint64_t(c.vocab_size) * rows) + 4096;
}

Transformer::Transformer(const ModelLayout& m, LayerStore& store, IoEngine& io, ThreadPool& pool,
                         MemoryLedger& ledger, size_t max_rows, int64_t max_context, size_t max_logit_rows,
                         ExpertCache* experts)
    : m_(m), store_(store), io_(io), pool_(pool), max_rows_(max_rows), max_context_(max_context),
      max_logit_rows_(max_logit_rows), experts_(experts), inv_freq_(rope_inv_freq(m.config)) {
  const ModelConfig& c = m.config;
  const size_t R = max_rows, h = size_t(c.hidden_size), q = size_t(c.q_dim()), kv = size_t(c.kv_dim()),
               ff = size_t(widest_ffn(c));
  for (const auto& L : m.layers)
    if (!L.experts.empty() && !experts) throw Error("internal: an MoE model without an expert cache");
  auto buf = [&](size_t floats) { return AlignedBuffer(f32_bytes(floats), &ledger, "activations"); };
  x_ = buf(R * h);
  xn_ = buf(R * h);
  q_ = buf(R * q);
  k_ = buf(R * kv);
  v_ = buf(R * kv);
  att_ = buf(R * q);
  gate_ = buf(R * ff);
  up_ = buf(R * ff);
  scores_ = buf(attention_scratch_floats(size_t(c.head_dim), max_context) * pool.size());
  embed_raw_ = AlignedBuffer(R * h * 4, &ledger, "activations");
  size_t vec = size_t(widest_vec(c));
  if (c.mla) mla_ = buf(R * size_t(mla_floats(c)));
  vec_a_ = buf(vec);
  vec_b_ = buf(vec);
  logits_ = AlignedBuffer(logits_bytes(c, max_logit_rows) - 4096, &ledger, "logits");
  if (c.is_moe()) {
    const size_t E = size_t(c.num_experts), k = size_t(c.experts_per_token);
    router_ = buf(R * E);
    choice_w_ = buf(R * k);
    expert_out_ = buf(R * k * h);
    gathered_ = buf(R * h);
    gathered_out_ = buf(R * h);
  }
}

const float* Transformer::vec_f32(const TensorInfo* t, const uint8_t* data, float* scratch) {
  to_float(data, t->dtype, size_t(t->numel()), scratch);
  return scratch;
}

void Transformer::linear(const float* x, size_t n, const TensorInfo* w, const uint8_t* data, float* y) {
  size_t out = size_t(w->shape[0]), in = size_t(w->shape[1]);
  matmul(x, n, in, data, w->dtype, out, y, out, &pool_);
}

void Transformer::embed(const Batch& b) {
  const TensorInfo* e = m_.embed;
  const uint64_t row_bytes = e->nbytes / uint64_t(m_.config.vocab_size);
  std::vector<ReadRequest> reqs;
  for (size_t r = 0; r < b.size(); ++r)
    reqs.push_back({size_t(e->file), e->offset + uint64_t(b[r].token) * row_bytes, row_bytes,
                    embed_raw_.data() + r * row_bytes});
  io_.read(reqs);
  const size_t h = size_t(m_.config.hidden_size);
  for (size_t r = 0; r < b.size(); ++r) to_float(embed_raw_.data() + r * row_bytes, e->dtype, h, x_.as<float>() + r * h);
}

void Transformer::attention(size_t l, const Batch& b) {
  const ModelConfig& c = m_.config;
  const size_t hd = size_t(c.head_dim), nh = size_t(c.num_heads), nkv = size_t(c.num_kv_heads);
  // Values are vd <= hd wide (DeepSeek's v_head_dim, in the first vd floats
  // of each head's slot); att_ holds nh * vd floats per row.
  const size_t vd = size_t(c.attn_out_dim() / c.num_heads);
  const size_t group = nh / nkv;
  const float scale = c.mla ? float(c.attention_scale()) : 1.0f / std::sqrt(float(hd));
  // Jobs: for each sequence of the batch (its rows in batch order) and each
  // KV head, blocks of up to kAttentionQueryBlock (row, q head) queries that
  // share that KV head. A prompt's rows are one sequence, so its scores
  // become gemms over K; a batch of single rows still groups each GQA group.
  struct Job {
    const KvSequence* kv;
    size_t kvh, first, count;  // queries [first, first + count) of `queries`
  };
  struct Query {
    size_t row, head;
  };
  std::vector<Query> queries;
  std::vector<Job> jobs;
  std::vector<char> done(b.size(), 0);
  for (size_t r0 = 0; r0 < b.size(); ++r0) {
    if (done[r0]) continue;
    std::vector<size_t> rows;
    for (size_t r = r0; r < b.size(); ++r)
      if (b[r].cache == b[r0].cache) rows.push_back(r), done[r] = 1;
    for (size_t g = 0; g < nkv; ++g) {
      const size_t first = queries.size();
      for (size_t r : rows)
        for (size_t h = g * group; h < (g + 1) * group; ++h) queries.push_back({r, h});
      for (size_t q0 = first; q0 < queries.size(); q0 += kAttentionQueryBlock)
        jobs.push_back({b[r0].cache, g, q0, std::min(kAttentionQueryBlock, queries.size() - q0)});
    }
  }
  const size_t chunk = (jobs.size() + pool_.size() - 1) / pool_.size();
  const size_t scratch = attention_scratch_floats(hd, max_context_);
  // Chunks map one-to-one to threads (the static split), so each chunk owns
  // one scratch area.
  pool_.parallel_for(jobs.size(), chunk, [&](size_t j0, size_t j1) {
    float* s = scores_.as<float>() + (j0 / chunk) * scratch;
    const float* qp[kAttentionQueryBlock];
    float* op[kAttentionQueryBlock];
    size_t np[kAttentionQueryBlock];
    for (size_t j = j0; j < j1; ++j) {
      const Job& job = jobs[j];
      for (size_t i = 0; i < job.count; ++i) {
        const Query& qu = queries[job.first + i];
        qp[i] = q_.as<float>() + qu.row * nh * hd + qu.head * hd;
        op[i] = att_.as<float>() + qu.row * nh * vd + qu.head * vd;
        np[i] = size_t(b[qu.row].pos + 1);
      }
      attend_block(*job.kv, int64_t(l), job.kvh * hd, hd, vd, scale, qp, np, op, job.count, max_context_, s);
    }
  });
}

void Transformer::layer(size_t l, const uint8_t* base, const Batch& b) {
  const ModelConfig& c = m_.config;
  const StreamUnit& u = store_.units()[l];
  const LayerLayout& L = m_.layers[l];
  auto T = [&](Role r) { return L.by_role[size_t(r)]; };
  auto D = [&](Role r) { return u.data(base, T(r)); };
  const size_t n = b.size(), h = size_t(c.hidden_size), hd = size_t(c.head_dim), nh = size_t(c.num_heads),
               nkv = size_t(c.num_kv_heads), qd = nh * hd, kvd = nkv * hd, ff = size_t(c.intermediate_size);
  const float eps = float(c.rms_norm_eps);
  float *x = x_.as<float>(), *xn = xn_.as<float>(), *q = q_.as<float>(), *k = k_.as<float>(), *v = v_.as<float>();

  // The per-row operations run on every thread too (rows or elements split
  // in contiguous chunks, each computed exactly as on one thread): left on
  // the calling thread, they idled the other cores for ~10% of a prefill.
  auto norm = [&](const float* in, const float* w, size_t rows, size_t dim, float* out) {
    parallel_for(&pool_, rows, rows_grain(dim),
                 [&](size_t r0, size_t r1) { rmsnorm(in + r0 * dim, w, r1 - r0, dim, eps, out + r0 * dim); });
  };
  auto add_into = [&](float* dst, const float* src, size_t count) {
    parallel_for(&pool_, count, kElementGrain, [&](size_t i0, size_t i1) {
      for (size_t i = i0; i < i1; ++i) dst[i] += src[i];
    });
  };
  norm(x, vec_f32(T(Role::AttnNorm), D(Role::AttnNorm), vec_a_.as<float>()), n, h, xn);
  if (c.mla) {
    mla_qkv(l, base, b);
  } else {
    linear(xn, n, T(Role::Q), D(Role::Q), q);
    linear(xn, n, T(Role::K), D(Role::K), k);
    linear(xn, n, T(Role::V), D(Role::V), v);
    if (T(Role::QBias)) {
      const Role roles[3] = {Role::QBias, Role::KBias, Role::VBias};
      float* outs[3] = {q, k, v};
      size_t dims[3] = {qd, kvd, kvd};
      for (int i = 0; i < 3; ++i) {
        const float* bias = vec_f32(T(roles[i]), D(roles[i]), vec_a_.as<float>());
        for (size_t r = 0; r < n; ++r)
          for (size_t j = 0; j < dims[i]; ++j) outs[i][r * dims[i] + j] += bias[j];
      }
    }
    if (T(Role::QNorm)) {
      norm(q, vec_f32(T(Role::QNorm), D(Role::QNorm), vec_a_.as<float>()), n * nh, hd, q);
      norm(k, vec_f32(T(Role::KNorm), D(Role::KNorm), vec_b_.as<float>()), n * nkv, hd, k);
    }
    // Rows write distinct cache positions (pages are allocated before the pass).
    parallel_for(&pool_, n, 1, [&](size_t r0, size_t r1) {
      for (size_t r = r0; r < r1; ++r) {
        rope(q + r * qd, nh, hd, b[r].pos, inv_freq_.data(), m_.config.rope_interleaved);
        rope(k + r * kvd, nkv, hd, b[r].pos, inv_freq_.data(), m_.config.rope_interleaved);
        b[r].cache->store(int64_t(l), b[r].pos, k + r * kvd, v + r * kvd);
      }
    });
  }
  attention(l, b);
  linear(att_.as<float>(), n, T(Role::O), D(Role::O), xn);
  add_into(x, xn, n * h);

  norm(x, vec_f32(T(Role::FfnNorm), D(Role::FfnNorm), vec_a_.as<float>()), n, h, xn);
  if (T(Role::Router)) {
    moe(l, base, n);
    return;
  }
  float *g = gate_.as<float>(), *up = up_.as<float>();
  linear(xn, n, T(Role::Gate), D(Role::Gate), g);
  linear(xn, n, T(Role::Up), D(Role::Up), up);
  parallel_for(&pool_, n * ff, kElementGrain, [&](size_t i0, size_t i1) { silu_mul(g + i0, up + i0, i1 - i0); });
  linear(g, n, T(Role::Down), D(Role::Down), xn);
  add_into(x, xn, n * h);
}

// transformers' DeepseekV3Attention up to the attention itself: q (through
// the q_lora_rank bottleneck, or a plain q_proj), the compressed kv and its
// RoPE key from kv_a_proj_with_mqa, the latent normalized and decompressed
// by kv_b_proj into each head's nope key and value. RoPE turns the last
// qk_rope_head_dim of each q head and the one shared key on pairs
// (2i, 2i+1), writing them in rotate-half order as transformers'
// apply_rotary_pos_emb_interleave does (q and k alike, so scores are
// unchanged). The cache holds each head's full key (nope | rope) and its
// value in the first v_head_dim of the slot.
void Transformer::mla_qkv(size_t l, const uint8_t* base, const Batch& b) {
  const ModelConfig& c = m_.config;
  const StreamUnit& u = store_.units()[l];
  const LayerLayout& L = m_.layers[l];
  auto T = [&](Role r) { return L.by_role[size_t(r)]; };
  auto D = [&](Role r) { return u.data(base, T(r)); };
  const size_t n = b.size(), nh = size_t(c.num_heads), hd = size_t(c.head_dim), nope = size_t(c.qk_nope_head_dim),
               rd = size_t(c.qk_rope_head_dim), vd = size_t(c.v_head_dim), qlr = size_t(c.q_lora_rank),
               kvlr = size_t(c.kv_lora_rank), kvd = nh * hd, kvb_w = nope + vd;
  // DeepseekV3RMSNorm's default epsilon: the two latent norms do not take rms_norm_eps.
  const float latent_eps = 1e-6f;
  float *xn = xn_.as<float>(), *q = q_.as<float>(), *k = k_.as<float>(), *v = v_.as<float>();
  float* qa = mla_.as<float>();
  float* kva = qa + n * qlr;
  float* lat = kva + n * (kvlr + rd);
  float* kvb = lat + n * kvlr;
  if (T(Role::QA)) {
    linear(xn, n, T(Role::QA), D(Role::QA), qa);
    rmsnorm(qa, vec_f32(T(Role::QANorm), D(Role::QANorm), vec_a_.as<float>()), n, qlr, latent_eps, qa);
    linear(qa, n, T(Role::QB), D(Role::QB), q);
  } else {
    linear(xn, n, T(Role::Q), D(Role::Q), q);
  }
  linear(xn, n, T(Role::KvA), D(Role::KvA), kva);
  for (size_t r = 0; r < n; ++r) std::memcpy(lat + r * kvlr, kva + r * (kvlr + rd), kvlr * sizeof(float));
  rmsnorm(lat, vec_f32(T(Role::KvANorm), D(Role::KvANorm), vec_a_.as<float>()), n, kvlr, latent_eps, lat);
  linear(lat, n, T(Role::KvB), D(Role::KvB), kvb);
  // yarn scales cos and sin: both rotated parts grow by the attention factor.
  const float af = float(c.rope_attention_factor());
  for (size_t r = 0; r < n; ++r) {
    float* kpe = kva + r * (kvlr + rd) + kvlr;
    rope(kpe, 1, rd, b[r].pos, inv_freq_.data(), c.rope_interleaved);
    float *qr = q + r * kvd, *kr = k + r * kvd, *vr = v + r * kvd;
    for (size_t hh = 0; hh < nh; ++hh) {
      float* qpe = qr + hh * hd + nope;
      rope(qpe, 1, rd, b[r].pos, inv_freq_.data(), c.rope_interleaved);
      const float* src = kvb + r * nh * kvb_w + hh * kvb_w;
      std::memcpy(kr + hh * hd, src, nope * sizeof(float));
      for (size_t i = 0; i < rd; ++i) {
        qpe[i] *= af;
        kr[hh * hd + nope + i] = kpe[i] * af;
      }
      std::memcpy(vr + hh * hd, src + nope, vd * sizeof(float));
      std::fill(vr + hh * hd + vd, vr + (hh + 1) * hd, 0.0f);
    }
    b[r].cache->store(int64_t(l), b[r].pos, kr, vr);
  }
}

// DeepseekV3TopkRouter's choice for one row: `p` holds the router logits
// and leaves holding sigmoid scores (the weights); the choice ranks scores
// plus the correction bias. Each of n_group groups is scored by the sum of
// its two best biased scores, the topk_group best groups are kept, and the
// top-k experts within them land in order[0, k). Experts of dropped groups
// are never chosen (DeepSeek's reference code masks them with -inf;
// transformers masks with 0, which differs only if fewer than k kept
// experts have a positive biased score). Ties go to the lower index.
void Transformer::route_grouped(float* p, const float* bias, std::vector<int>& order) const {
  const ModelConfig& c = m_.config;
  const size_t E = size_t(c.num_experts), k = size_t(c.experts_per_token), G = size_t(c.n_group),
               per = E / G, keep = size_t(c.topk_group);
  std::vector<float> choice(E);
  for (size_t e = 0; e < E; ++e) {
    p[e] = 1.0f / (1.0f + std::exp(-p[e]));
    choice[e] = p[e] + (bias ? bias[e] : 0.0f);
  }
  auto better = [&](int a, int b) { return choice[a] > choice[b] || (choice[a] == choice[b] && a < b); };
  order.clear();
  if (G > 1 && keep < G) {
    std::vector<float> gscore(G);
    for (size_t g = 0; g < G; ++g) {
      float best = -INFINITY, second = -INFINITY;
      for (size_t e = g * per; e < (g + 1) * per; ++e) {
        if (choice[e] > best) second = best, best = choice[e];
        else if (choice[e] > second) second = choice[e];
      }
      gscore[g] = best + second;
    }
    std::vector<int> groups(G);
    for (size_t g = 0; g < G; ++g) groups[g] = int(g);
    std::partial_sort(groups.begin(), groups.begin() + long(keep), groups.end(),
                      [&](int a, int b) { return gscore[a] > gscore[b] || (gscore[a] == gscore[b] && a < b); });
    for (size_t i = 0; i < keep; ++i)
      for (size_t e = size_t(groups[i]) * per; e < size_t(groups[i] + 1) * per; ++e) order.push_back(int(e));
  } else {
    for (size_t e = 0; e < E; ++e) order.push_back(int(e));
  }
  std::partial_sort(order.begin(), order.begin() + long(k), order.end(), better);
}

// transformers' MixtralSparseMoeBlock / Qwen2MoeSparseMoeBlock /
// Qwen3MoeSparseMoeBlock: softmax over the router logits, the top-k experts
// (renormalized when norm_topk_prob), each a SwiGLU MLP, summed with those
// weights; plus, in Qwen2MoE, a shared expert scaled by sigmoid(gate . x).
void Transformer::moe(size_t l, const uint8_t* base, size_t n) {
  const ModelConfig& c = m_.config;
  const StreamUnit& u = store_.units()[l];
  const LayerLayout& L = m_.layers[l];
  auto T = [&](Role r) { return L.by_role[size_t(r)]; };
  auto D = [&](Role r) { return u.data(base, T(r)); };
  const size_t h = size_t(c.hidden_size), E = size_t(c.num_experts), k = size_t(c.experts_per_token);
  float *x = x_.as<float>(), *xn = xn_.as<float>(), *logits = router_.as<float>(), *w = choice_w_.as<float>();
  float* out = expert_out_.as<float>();

  linear(xn, n, T(Role::Router), D(Role::Router), logits);
  // Top-k of the softmax; ties go to the lower expert index (as torch.topk
  // on CPU in practice), so the choice is deterministic.
  std::vector<std::vector<size_t>> rows_of(E);  // choices (row * k + j) routed to each expert
  std::vector<int> order(E);
  const float* bias = T(Role::RouterBias) ? vec_f32(T(Role::RouterBias), D(Role::RouterBias), vec_a_.as<float>()) : nullptr;
  for (size_t r = 0; r < n; ++r) {
    float* p = logits + r * E;
    if (c.sigmoid_router) {
      route_grouped(p, bias, order);
      float sum = 0;
      for (size_t j = 0; j < k; ++j) sum += p[order[j]];
      for (size_t j = 0; j < k; ++j) {
        const float wj = c.norm_topk_prob ? p[order[j]] / (sum + 1e-20f) : p[order[j]];
        w[r * k + j] = wj * float(c.routed_scaling_factor);
        rows_of[size_t(order[j])].push_back(r * k + j);
      }
      continue;
    }
    softmax(p, E);
    for (size_t e = 0; e < E; ++e) order[e] = int(e);
    std::partial_sort(order.begin(), order.begin() + long(k), order.end(),
                      [&](int a, int b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
    float sum = 0;
    for (size_t j = 0; j < k; ++j) sum += p[order[j]];
    for (size_t j = 0; j < k; ++j) {
      w[r * k + j] = c.norm_topk_prob ? p[order[j]] / sum : p[order[j]];
      rows_of[size_t(order[j])].push_back(r * k + j);
    }
  }
  std::vector<int> needed;
  for (size_t e = 0; e < E; ++e)
    if (!rows_of[e].empty()) needed.push_back(int(e));

  // One read of each chosen expert serves all its rows; each choice's
  // output lands in its own row of `out`, so the sum below is in a fixed
  // order whatever order the cache hands experts over in.
  float *xg = gathered_.as<float>(), *yg = gathered_out_.as<float>(), *g = gate_.as<float>(), *up = up_.as<float>();
  experts_->run(l, needed, [&](int e, const uint8_t* wbase) {
    const StreamUnit& eu = u.experts[size_t(e)];
    const ExpertLayout& X = L.experts[size_t(e)];
    const std::vector<size_t>& choices = rows_of[size_t(e)];
    const size_t m = choices.size(), ff = size_t(X.gate->shape[0]);
    for (size_t i = 0; i < m; ++i) std::memcpy(xg + i * h, xn + (choices[i] / k) * h, h * sizeof(float));
    linear(xg, m, X.gate, eu.data(wbase, X.gate), g);
    linear(xg, m, X.up, eu.data(wbase, X.up), up);
    silu_mul(g, up, m * ff);
    linear(g, m, X.down, eu.data(wbase, X.down), yg);
    for (size_t i = 0; i < m; ++i) std::memcpy(out + choices[i] * h, yg + i * h, h * sizeof(float));
  });

  if (T(Role::SharedGate)) {
    const size_t sf = size_t(c.shared_expert_intermediate_size);
    linear(xn, n, T(Role::SharedGate), D(Role::SharedGate), g);
    linear(xn, n, T(Role::SharedUp), D(Role::SharedUp), up);
    silu_mul(g, up, n * sf);
    linear(g, n, T(Role::SharedDown), D(Role::SharedDown), yg);
  }
  if (T(Role::SharedExpertGate)) {  // Qwen2MoE's sigmoid gate; DeepSeek's shared experts are ungated
    float* gate = xg;  // n scalars
    linear(xn, n, T(Role::SharedExpertGate), D(Role::SharedExpertGate), gate);
    for (size_t r = 0; r < n; ++r) {
      const float s = 1.0f / (1.0f + std::exp(-gate[r]));
      for (size_t i = 0; i < h; ++i) yg[r * h + i] *= s;
    }
  }
  for (size_t r = 0; r < n; ++r) {
    float* xr = x + r * h;
    for (size_t i = 0; i < h; ++i) {
      float acc = 0;
      for (size_t j = 0; j < k; ++j) acc += w[r * k + j] * out[(r * k + j) * h + i];
      if (T(Role::SharedGate)) acc += yg[r * h + i];
      xr[i] += acc;
    }
  }
}

void Transformer::head_block(size_t unit, const uint8_t* base, const std::vector<size_t>& rows) {
  const StreamUnit& u = store_.units()[unit];
  const size_t h = size_t(m_.config.hidden_size), vocab = size_t(m_.config.vocab_size);
  float* xn = xn_.as<float>();
  if (u.row_begin == 0) {
    // The first block carries the final norm: normalize the rows that need
    // logits once, packed together, for every block of the head.
    const float* w = vec_f32(m_.final_norm, u.data(base, m_.final_norm), vec_a_.as<float>());
    for (size_t i = 0; i < rows.size(); ++i)
      rmsnorm(x_.as<float>() + rows[i] * h, w, 1, h, float(m_.config.rms_norm_eps), xn + i * h);
  }
  if (rows.empty()) return;
  matmul(xn, rows.size(), h, u.data(base, m_.lm_head), m_.lm_head->dtype, size_t(u.row_end - u.row_begin),
         logits_.as<float>() + u.row_begin, vocab, &pool_);
}

const float* Transformer::forward(const Batch& b, PassProfile* profile) {
  const ModelConfig& c = m_.config;
  if (b.empty()) throw Error("internal: empty batch");
  if (b.size() > max_rows_) throw Error(fmt::format("internal: pass of {} rows exceeds the planned {}", b.size(), max_rows_));
  std::vector<size_t> logit_rows;
  for (size_t r = 0; r < b.size(); ++r) {
    if (b[r].token < 0 || b[r].token >= c.vocab_size)
      throw Error(fmt::format("token id {} is outside the vocabulary (0..{})", b[r].token, c.vocab_size - 1));
    if (!b[r].cache || b[r].pos < 0 || b[r].pos >= b[r].cache->capacity() || b[r].pos >= max_context_)
      throw Error(fmt::format("position {} is beyond the context of {} planned for this run", b[r].pos, max_context_));
    if (b[r].logits) logit_rows.push_back(r);
  }
  if (logit_rows.size() > max_logit_rows_)
    throw Error(fmt::format("internal: {} logit rows exceed the planned {}", logit_rows.size(), max_logit_rows_));

  const auto t0 = Clock::now();
  const StoreStats s0 = store_.stats();
  const ExpertStats e0 = experts_ ? experts_->stats() : ExpertStats{};
  embed(b);
  const auto& units = store_.units();
  for (size_t i = 0; i < units.size(); ++i) {
    const uint8_t* base = store_.acquire(i);
    if (units[i].kind == StreamUnit::Kind::Layer) layer(i, base, b);
    else head_block(i, base, logit_rows);
    store_.release(i);
  }
  for (const auto& row : b) row.cache->length = std::max(row.cache->length, row.pos + 1);
  if (profile) {
    const StoreStats s1 = store_.stats();
    profile->rows = b.size();
    profile->wall_s = seconds_since(t0);
    profile->io_wait_s = double(s1.io_wait_ns - s0.io_wait_ns) * 1e-9;
    profile->compute_s = profile->wall_s - profile->io_wait_s;
    profile->bytes_read = s1.bytes_read - s0.bytes_read;
    if (experts_) {
      const ExpertStats e1 = experts_->stats();
      profile->experts_routed = e1.routed - e0.routed;
      profile->expert_hits = e1.hits - e0.hits;
      profile->expert_bytes_read = e1.bytes_read - e0.bytes_read;
      profile->bytes_read += profile->expert_bytes_read;
      // Compute waits for expert reads only when the expert it needs next
      // has not landed yet (reads overlap the other experts' compute).
      profile->io_wait_s += double(e1.read_ns - e0.read_ns) * 1e-9;
      profile->compute_s = profile->wall_s - profile->io_wait_s;
    }
  }
  return logits_.as<float>();
}

}  // namespace strata
