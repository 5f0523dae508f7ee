// strata: run Llama-family models larger than memory by streaming their
// layers from disk under a fixed memory budget.
//
//   strata::EngineOptions opt;
//   opt.max_memory = 2ull << 30;                       // 2 GiB for everything
//   auto engine = strata::Engine::open("models/llama3-8b", opt);
//   strata::GenerateRequest req;
//   req.prompt_ids = {128000, 9906};
//   req.max_new_tokens = 32;
//   strata::GenerateResult out = engine->generate(req); // out.output_ids
//
// Errors are thrown as strata::Error (bad input, budget too small, I/O).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "strata/error.h"
#include "strata/sampling.h"
#include "strata/scheduler.h"

namespace strata {

struct EngineOptions {
  uint64_t max_memory = 0;  // bytes for everything strata allocates; 0 = automatic
  size_t threads = 0;       // 0 = all cores
  // Prompt positions per forward pass; 0 = the planner's choice: 512, or
  // more (up to the context) when the budget has room for their
  // activations without giving up a resident unit or a streaming slot.
  size_t max_prefill_rows = 0;
  // How model files are read: "uring", "direct", "pread", "buffered", or
  // "" / "auto" for the fastest on the model's file system (calibrated once
  // per file system and cached).
  std::string io;
  // Streaming slots: one computing, the others loading ahead (prefetch
  // depth + 1); 1 reads each unit synchronously before computing it.
  // 0 = the planner's choice.
  size_t streaming_slots = 0;
  // The scheduler (see scheduler.h): KV pages of `kv_page_positions`
  // positions in `kv_type` ("f16" or "f32"); at most `max_sequences` running
  // at once (0 = as many as the budget allows, at most 64); `context` =
  // positions one sequence may reach (0 = the model's, capped by the budget).
  std::string kv_type = "f16";
  size_t kv_page_positions = 32;
  size_t max_sequences = 0;
  // Speculative decoding: rows planned per sequence and pass for drafted
  // tokens (Request::lookup_ngram); 0 = none.
  size_t draft_tokens = 0;
  // A small model with the same vocabulary that drafts for every request
  // (unless the request uses prompt lookup), greedily and kept resident;
  // its weights and KV pages come out of max_memory. Empty = none.
  std::filesystem::path draft_model;
  int64_t context = 0;
  // Pages in the KV pool; 0 = enough for max_sequences sequences of
  // `context` positions. Fewer pages than that make requests queue (and
  // running sequences preempt each other) instead of reserving memory for
  // positions they may never reach.
  size_t kv_pages = 0;
};

struct PassStats {
  size_t rows = 0;          // tokens computed in the pass
  double wall_s = 0;
  double io_wait_s = 0;     // compute blocked waiting for a layer
  double compute_s = 0;
  uint64_t bytes_read = 0;  // from the model files during the pass (experts included)
  // MoE models: distinct (layer, expert) pairs the pass routed rows to, how
  // many of them were in the expert cache, and the bytes read for the rest.
  uint64_t experts_routed = 0, expert_hits = 0, expert_bytes_read = 0;
};

struct MemoryPlan {
  uint64_t budget = 0;
  uint64_t min_budget = 0;
  uint64_t total_bytes = 0;      // what the plan may allocate
  size_t units = 0;              // layers + head blocks
  size_t resident_units = 0;
  size_t streaming_slots = 0;
  uint64_t slot_bytes = 0;
  uint64_t resident_bytes = 0;
  uint64_t kv_cache_bytes = 0;
  uint64_t activation_bytes = 0;
  uint64_t logits_bytes = 0;
  uint64_t streamed_bytes_per_pass = 0;  // layer and head units (experts: as routed)
  size_t expert_slots = 0;       // MoE expert cache, in experts
  uint64_t expert_slot_bytes = 0;
  int64_t context = 0;           // positions the KV cache holds
  // The KV pool kv_cache_bytes pays for: pages of page positions, in kv_type.
  size_t kv_pages = 0, kv_page_positions = 0;
  std::string kv_type;
  size_t max_rows = 0;           // rows per forward pass (prompt chunk + decode rows)
};

struct ModelInfo {
  std::string path;
  std::string architecture;     // e.g. "LlamaForCausalLM"
  std::string family;           // e.g. "Llama"
  int64_t layers = 0, hidden_size = 0, intermediate_size = 0, heads = 0, kv_heads = 0, head_dim = 0,
          vocab_size = 0, max_position_embeddings = 0;
  bool tied_embeddings = false;
  std::string dtype;            // of the layer weights, e.g. "BF16"
  uint64_t parameters = 0;
  uint64_t total_bytes = 0;     // of every tensor used
  uint64_t layer_bytes = 0;     // largest layer
  uint64_t embedding_bytes = 0, head_bytes = 0;
  // Mixture of experts (experts = 0 for a dense model): routed experts per
  // MoE layer, chosen per token, layers with experts, bytes of one expert;
  // and what one token reads of the layers: the dense part (attention,
  // norms, router, shared and dense MLPs) plus top-k experts per MoE layer,
  // against the layers' whole size (layer_bytes * layers for a dense model).
  int64_t experts = 0, experts_per_token = 0, moe_layers = 0;
  uint64_t expert_bytes = 0;
  uint64_t token_layer_bytes = 0, all_layer_bytes = 0;
  std::vector<int32_t> eos_token_ids;
  int32_t bos_token_id = -1;
};

struct GenerateRequest {
  std::vector<int32_t> prompt_ids;
  int max_new_tokens = 64;
  SamplingParams sampling;
  bool stop_at_eos = true;
  std::function<void(int32_t)> on_token;  // called as each token is chosen
  // Speculative decoding by prompt lookup (see Request::lookup_ngram).
  size_t lookup_ngram = 0;
  size_t draft_tokens = 4;
};

struct GenerateResult {
  std::vector<int32_t> output_ids;   // generated ids only
  std::string finish_reason;         // "stop" (EOS) or "length"
  double prefill_s = 0, decode_s = 0;
  std::vector<PassStats> passes;
  MemoryPlan plan;
  uint64_t peak_ledger_bytes = 0;
  std::string io_method;             // how the model files were read
  size_t drafted_tokens = 0, accepted_tokens = 0;  // speculative decoding
  size_t token_passes = 0;           // passes that gave new tokens (tokens per pass = output / this)
};

struct ScoreResult {
  std::vector<int32_t> argmax;       // per position: most likely next id
  std::vector<double> logprobs;      // per position t < n-1: log p(ids[t+1] | ids[..t])
  double perplexity = 0;             // exp(-mean logprobs)
  std::vector<float> logits;         // positions x vocab, when asked for
  std::vector<PassStats> passes;
  MemoryPlan plan;
  std::string io_method;
};

// One sequence of a batch job. `key` identifies it in the results.
struct SequenceRequest {
  uint64_t key = 0;
  std::vector<int32_t> prompt_ids;
  int max_new_tokens = 64;
  SamplingParams sampling;
  bool stop_at_eos = true;
  // Called after each new token with the ids so far; true ends the sequence
  // with finish_reason "stop" (stop strings are checked here).
  std::function<bool(const std::vector<int32_t>&)> should_stop;
  // End the sequence ("stop") when the decoded output contains one; the
  // result's text is cut before it (needs the tokenizer). Checked
  // incrementally, unlike should_stop.
  std::vector<std::string> stop_strings;
  size_t lookup_ngram = 0;  // speculative decoding (see Request::lookup_ngram)
  size_t draft_tokens = 4;
};

struct SequenceResult {
  uint64_t key = 0;
  std::vector<int32_t> output_ids;
  std::string finish_reason;  // "stop" or "length"
  size_t prompt_tokens = 0;
  std::string text;           // decoded output (stop string cut); "" without a tokenizer
};

struct BatchOptions {
  size_t max_sequences = 0;  // sequences in flight; 0 = the largest the budget allows (at most 64)
  int64_t context = 0;       // KV positions per sequence (prompt + new tokens); required
};

struct BatchStats {
  size_t sequences = 0;          // in flight at most (the batch size used)
  size_t passes = 0;
  uint64_t generated_tokens = 0;
  uint64_t prompt_tokens = 0;
  uint64_t bytes_read = 0;
  double wall_s = 0, io_wait_s = 0;
  MemoryPlan plan;
};

class Engine {
 public:
  // Opens and validates the model directory; loads nothing yet.
  static std::unique_ptr<Engine> open(const std::filesystem::path& model_dir, const EngineOptions& options = {});
  virtual ~Engine() = default;

  virtual ModelInfo info() const = 0;
  // The plan a request needing `context` positions, with logits for
  // `logit_rows` rows per pass (1 for generation, the prompt for scoring),
  // would get; with sequences > 1, the plan of a batch of that size.
  virtual MemoryPlan plan_for(int64_t context, size_t logit_rows = 1, size_t sequences = 1) const = 0;
  virtual GenerateResult generate(const GenerateRequest& request) = 0;
  virtual ScoreResult score(const std::vector<int32_t>& ids, bool keep_logits) = 0;
  // The read method ("uring", "direct", "pread", "buffered"); chosen (and
  // calibrated if needed) on first use. io_method_reason() says why.
  virtual std::string io_method() const = 0;
  virtual std::string io_method_reason() const = 0;

  // Continuous batching: pulls requests from `next` (nullopt = no more) while
  // fewer than the batch size are in flight, runs every active sequence in
  // each forward pass (prompt chunks and decode steps together, so each
  // layer is read once per pass for all of them), and hands each finished
  // sequence to `done` as soon as it ends. Greedy results equal generate()'s
  // for the same prompt, whatever the batch.
  virtual BatchStats generate_batch(const std::function<std::optional<SequenceRequest>()>& next,
                                    const std::function<void(SequenceResult&&)>& done, const BatchOptions& options) = 0;
  // The batch size generate_batch would choose for `context`.
  virtual size_t auto_batch_size(int64_t context, size_t cap) const = 0;

  // Benchmark hook: `passes` passes through the current plan's stream units
  // that load every streamed unit and compute nothing (after a generate or
  // generate_batch call, with its plan, slots and residents; otherwise with a
  // one-sequence plan). Returns the median seconds per pass after the first,
  // i.e. how fast the runtime can feed compute on this disk.
  virtual double read_only_pass_seconds(int passes) = 0;

  // The scheduler: thread-safe. submit() validates the request (UsageError
  // naming the field) and returns at once; the request joins the running
  // passes as soon as the KV pool has room. See scheduler.h.
  virtual RequestHandle submit(Request request) = 0;
  virtual EngineStats stats() const = 0;
  // Builds the runtime now, as the first generate() of `context` positions
  // would (KV pool, streaming slots, resident units read), instead of at the
  // first request; nothing when it is built already. stats().startup_s and
  // resident_bytes_read say what it cost. Throws UsageError for a context
  // beyond the model's, Error when the budget cannot hold the plan.
  virtual void load(int64_t context = 1) = 0;
  // The model's tokenizer (tokenizer.json beside the weights, or a GGUF's
  // metadata), or nullptr when it has none.
  virtual const class Tokenizer* tokenizer() const = 0;
  // Cancels everything running or queued and stops the scheduler thread;
  // the destructor does the same.
  virtual void shutdown() = 0;
};

// Parses "512MiB", "4GiB", "2.5GB"...; throws strata::UsageError.
uint64_t parse_byte_size(std::string_view text);
std::string format_bytes(uint64_t bytes);

}  // namespace strata
