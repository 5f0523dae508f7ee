// Requests to a long-lived Engine: submit from any thread, stream tokens as
// passes complete, cancel, wait for the result. Every submitted request is a
// sequence in the Engine's one decode loop; concurrent requests share each
// forward pass (and so each layer read).
//
//   strata::Request r;
//   r.prompt_ids = {1, 403, 407};
//   r.max_new_tokens = 32;
//   r.on_token = [](const strata::TokenEvent& e) { std::cout << e.text << std::flush; };
//   strata::RequestHandle h = engine->submit(std::move(r));   // returns at once
//   strata::RequestResult out = h.wait();                      // out.output_ids, out.finish_reason
//
// Contract: callbacks run on the scheduler's thread after each pass; they
// must be quick and must not block on this Engine (submit() from a callback
// is allowed, wait() is not). Greedy results are bitwise identical whatever
// else is running (see DESIGN.md, determinism).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "strata/sampling.h"

namespace strata {

struct TopLogprob {
  int32_t id = 0;
  float logprob = 0;  // natural log of the probability under the model (before sampling filters)
};

// One chosen token, delivered after the pass that produced it.
struct TokenEvent {
  uint64_t request_id = 0;
  int32_t id = 0;
  size_t index = 0;          // 0 for the first new token
  std::string text;          // the text this token completes (UTF-8 safe streaming decode); "" without a tokenizer
  float logprob = 0;         // filled when Request::logprobs
  std::vector<TopLogprob> top;  // Request::top_logprobs alternatives, most likely first
};

struct Request {
  std::vector<int32_t> prompt_ids;
  int max_new_tokens = 64;
  SamplingParams sampling;
  bool stop_at_eos = true;             // the model's EOS ids end the sequence ("stop")
  std::vector<int32_t> stop_ids;       // more ids that end it (e.g. a template's end-of-turn token)
  // Ends the sequence ("stop") when the decoded output contains one of them;
  // the result's text is cut before it and its tokens are not streamed.
  // Needs the Engine's tokenizer (UsageError otherwise).
  std::vector<std::string> stop_strings;
  bool logprobs = false;
  size_t top_logprobs = 0;             // 0..20
  std::function<void(const TokenEvent&)> on_token;
  // Conversations: keep this sequence's KV cache after it ends (result.cache);
  // a later request whose prompt starts with cache->ids() passes it in
  // `prefix` and only its new tokens are computed.
  bool keep_cache = false;
  std::shared_ptr<const class CachedSequence> prefix;
  // Speculative decoding by prompt lookup: before each pass, up to
  // `draft_tokens` next tokens are drafted from what followed the latest
  // earlier occurrence of the sequence's last lookup_ngram..1 tokens (its
  // prompt and output), and verified in the same pass as extra rows. Greedy
  // output is token for token that of plain decoding; sampled output has the
  // same distribution. 0 = off. The rows a pass can hold for drafts are
  // planned by EngineOptions::draft_tokens.
  size_t lookup_ngram = 0;
  size_t draft_tokens = 4;
};

// KV pages of a finished sequence, held while this object lives (they count
// against the KV pool); opaque apart from the ids they hold.
class CachedSequence {
 public:
  virtual ~CachedSequence() = default;
  virtual const std::vector<int32_t>& ids() const = 0;  // positions 0..n-1 present in the cache
};

struct RequestResult {
  uint64_t request_id = 0;
  std::vector<int32_t> output_ids;     // generated ids only (a matched stop string's tokens excluded)
  std::string text;                    // decoded output, stop string cut; "" without a tokenizer
  // "stop" (EOS, stop id or stop string), "length", "cancelled", or "error" (see `error`).
  std::string finish_reason;
  std::string error;
  std::vector<TokenEvent> tokens;      // per output token, with logprobs when asked
  size_t prompt_tokens = 0;
  size_t cached_prompt_tokens = 0;     // reused from `prefix`
  size_t passes = 0;                   // forward passes this sequence took part in
  size_t drafted_tokens = 0, accepted_tokens = 0;  // speculative decoding
  size_t token_passes = 0;             // passes that gave this sequence new tokens
  double queue_s = 0, prefill_s = 0, decode_s = 0;  // waiting for admission, prompt, new tokens
  std::shared_ptr<CachedSequence> cache;  // when keep_cache
};

// Shared handle to a submitted request; copyable, thread-safe.
class RequestHandle {
 public:
  RequestHandle() = default;
  uint64_t id() const;
  // Stops the sequence at the next pass (finish_reason "cancelled") and
  // frees its KV pages; no effect once it finished.
  void cancel() const;
  bool done() const;
  // Blocks until the request finished; the same result on every call. A
  // copy, so `const auto& r = engine->submit(req).wait();` stays valid
  // after the temporary handle is gone.
  RequestResult wait() const;
  // nullptr on timeout.
  const RequestResult* wait_for(double seconds) const;

  struct State;
  explicit RequestHandle(std::shared_ptr<State> s) : state_(std::move(s)) {}

 private:
  std::shared_ptr<State> state_;
};

// Counters since the Engine was opened (for /metrics, tests, profiles).
struct EngineStats {
  uint64_t requests_submitted = 0, requests_finished = 0, requests_cancelled = 0;
  uint64_t prompt_tokens = 0, generated_tokens = 0;
  uint64_t passes = 0, pass_rows = 0;   // rows summed over passes
  uint64_t bytes_read = 0;              // from model files, all passes
  uint64_t resident_bytes_read = 0;     // loading resident units (once per Engine)
  double io_wait_s = 0, compute_s = 0;
  double startup_s = 0;                 // building the runtime (resident units loaded)
  size_t running = 0, queued = 0;       // sequences now
  size_t kv_pages_total = 0, kv_pages_used = 0, kv_page_positions = 0;
  uint64_t kv_pool_bytes = 0;
  size_t preemptions = 0;
  uint64_t drafted_tokens = 0, accepted_tokens = 0;  // speculative decoding
  uint64_t experts_routed = 0, expert_hits = 0;      // MoE: expert cache hit rate = hits / routed
  uint64_t expert_bytes_read = 0;                    // MoE: reading the missed experts (part of bytes_read)
};

}  // namespace strata
