// The forward pass of a decoder-only transformer over a Batch, pulling each
// unit's weights from the LayerStore in pass order. Weights stay in their
// stored type; scratch activations are f32 and allocated once, from the
// ledger, for the largest pass the plan allows.
#pragma once

#include <cstdint>
#include <vector>

#include "arch/model_layout.h"
#include "core/aligned_buffer.h"
#include "engine/batch.h"

namespace strata {

class ExpertCache;
class IoEngine;
class LayerStore;
class MemoryLedger;
class ThreadPool;

struct PassProfile {
  size_t rows = 0;
  double wall_s = 0, io_wait_s = 0, compute_s = 0;
  uint64_t bytes_read = 0;          // layer, head and expert reads of the pass
  uint64_t experts_routed = 0;      // distinct (layer, expert) pairs the pass needed
  uint64_t expert_hits = 0;         // of those, already in the expert cache
  uint64_t expert_bytes_read = 0;   // reading the others (part of bytes_read)
};

class Transformer {
 public:
  // Activation memory for passes of up to `max_rows` rows attending over up
  // to `max_context` positions with `threads` threads.
  static uint64_t activation_bytes(const ModelConfig& c, size_t max_rows, int64_t max_context, size_t threads);
  static uint64_t logits_bytes(const ModelConfig& c, size_t max_logit_rows);

  // `experts` is required for an MoE model (nullptr otherwise).
  Transformer(const ModelLayout& model, LayerStore& store, IoEngine& io, ThreadPool& pool, MemoryLedger& ledger,
              size_t max_rows, int64_t max_context, size_t max_logit_rows, ExpertCache* experts = nullptr);

  // Runs one pass; returns logits of the rows that asked, in row order,
  // as (count, vocab) floats valid until the next call.
  const float* forward(const Batch& batch, PassProfile* profile = nullptr);

  size_t max_rows() const { return max_rows_; }

 private:
  void embed(const Batch& batch);
  void layer(size_t l, const uint8_t* base, const Batch& batch);
  void attention(size_t l, const Batch& batch);
  // DeepSeek's multi-head latent attention: q, k, v of the rows into q_,
  // k_, v_ (per-head keys and values decompressed) and the KV cache.
  void mla_qkv(size_t l, const uint8_t* base, const Batch& batch);
  // DeepSeek's grouped sigmoid routing of one row (see transformer.cpp).
  void route_grouped(float* logits, const float* bias, std::vector<int>& order) const;
  // The routed-expert FFN of MoE layer l over n rows of xn_, added to x_.
  void moe(size_t l, const uint8_t* base, size_t n);
  void head_block(size_t unit, const uint8_t* base, const std::vector<size_t>& logit_rows);
  void linear(const float* x, size_t n, const TensorInfo* w, const uint8_t* data, float* y);
  const float* vec_f32(const TensorInfo* t, const uint8_t* data, float* scratch);

  const ModelLayout& m_;
  LayerStore& store_;
  IoEngine& io_;
  ThreadPool& pool_;
  size_t max_rows_;
  int64_t max_context_;
  size_t max_logit_rows_;
  ExpertCache* experts_;
  std::vector<float> inv_freq_;
  // MoE: router logits (rows, experts), each row's top-k weights (rows,
  // top-k), each choice's expert output (rows, top-k, hidden), rows gathered
  // for one expert and its output (rows, hidden).
  AlignedBuffer router_, choice_w_, expert_out_, gathered_, gathered_out_;
  AlignedBuffer mla_;  // DeepSeek's latent attention scratch (transformer.cpp: mla_floats)
  AlignedBuffer x_, xn_, q_, k_, v_, att_, gate_, up_, scores_, logits_, embed_raw_, vec_a_, vec_b_;
};

}  // namespace strata
