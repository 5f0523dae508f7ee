// A generation for the Python module: one or more sequences submitted to the
// Engine's scheduler together (so they share forward passes), tokens handed
// over as they are chosen, cancellable from any thread. The Python side
// waits on it with the GIL released and polls for signals (Ctrl-C) in
// between, so the interpreter stays responsive however long a pass takes.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "strata/strata.h"

namespace strata::py {

// An Engine shared by the Python objects that use it; Jobs keep it alive.
// Engine::submit/stats/score are thread-safe (the scheduler).
struct EngineHolder {
  std::unique_ptr<Engine> engine;
};

struct SeqSpec {
  std::vector<int32_t> prompt;
  int max_new_tokens = 64;
  SamplingParams sampling;
  bool stop_at_eos = true;
  std::vector<int32_t> stop_ids;        // more ids that end the sequence (generate(eos_token_id=...))
  std::vector<std::string> stop_strings;
  size_t lookup_ngram = 0;  // speculative decoding (Request::lookup_ngram, draft_tokens)
  size_t draft_tokens = 0;
};

struct TokenOut {
  size_t seq = 0;  // index in the job's sequences
  int32_t id = 0;
  std::string text;  // what this token completes (the scheduler's streaming decode); "" without a tokenizer
};

struct SeqOut {
  std::vector<int32_t> ids;
  std::string text;
  std::string finish_reason;  // "stop", "length" or "cancelled"
  size_t passes = 0;
  double queue_s = 0;
  size_t drafted_tokens = 0, accepted_tokens = 0;
};

struct JobStats {
  size_t sequences = 0;
  // Engine totals over the job's lifetime: the passes it took part in (and
  // any other requests running at the same time).
  uint64_t passes = 0, bytes_read = 0, generated_tokens = 0, prompt_tokens = 0;
  uint64_t drafted_tokens = 0, accepted_tokens = 0;  // this job's sequences
  uint64_t experts_routed = 0, expert_hits = 0, expert_bytes_read = 0;  // MoE, engine totals as passes
  double wall_s = 0, io_wait_s = 0, compute_s = 0, queue_s = 0;
};

class Job {
 public:
  // Submits every sequence at once (UsageError for an invalid one, and
  // nothing stays submitted).
  Job(std::shared_ptr<EngineHolder> engine, std::vector<SeqSpec> seqs);
  ~Job();  // cancels what still runs

  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;

  // Sequences stop at the next pass.
  void cancel();
  bool cancelled() const;
  // Waits until every sequence ended or `seconds` passed; true when ended.
  bool wait_done(double seconds);
  // Tokens chosen since the last call, waiting up to `seconds` for one;
  // *done when every sequence ended and every token was handed over.
  std::vector<TokenOut> take(double seconds, bool* done);
  // After wait_done: the results in order; throws Error for a sequence that
  // ended with an error.
  std::vector<SeqOut> results() const;
  JobStats stats();
  size_t size() const { return handles_.size(); }

 private:
  struct Shared {  // what the scheduler thread's callbacks touch; outlives the Job if need be
    std::mutex mu;
    std::condition_variable cv;
    std::deque<TokenOut> pending;
    std::vector<size_t> emitted;  // tokens handed to `pending` per sequence
  };
  bool all_done() const;

  std::shared_ptr<EngineHolder> eng_;
  std::shared_ptr<Shared> shared_;
  std::vector<RequestHandle> handles_;
  bool cancel_ = false;
  EngineStats start_;
  std::chrono::steady_clock::time_point t0_;
  std::optional<JobStats> final_;
};

}  // namespace strata::py
