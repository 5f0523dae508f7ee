// A generation running on its own thread for the Python module: one or more
// sequences sharing forward passes, tokens handed over as they are chosen,
// cancellable from any thread. The Python side waits on it with the GIL
// released and polls for signals (Ctrl-C) in between, so the interpreter
// stays responsive however long a pass takes.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "strata/strata.h"

namespace strata::py {

// An Engine shared by the Python objects that use it; Jobs keep it alive.
struct EngineHolder {
  std::unique_ptr<Engine> engine;
  // Engine::generate_batch/score are not re-entrant: one call at a time.
  std::mutex mu;
  // Totals over every call, for Model.stats().
  std::mutex stats_mu;
  uint64_t calls = 0, passes = 0, generated_tokens = 0, prompt_tokens = 0, bytes_read = 0;
  double io_wait_s = 0, wall_s = 0;
};

struct SeqSpec {
  std::vector<int32_t> prompt;
  int max_new_tokens = 64;
  SamplingParams sampling;
  bool stop_at_eos = true;
  std::vector<int32_t> stop_ids;  // more ids that end the sequence (generate(eos_token_id=...))
};

struct TokenOut {
  size_t seq = 0;  // index in the job's sequences
  int32_t id = 0;
};

struct SeqOut {
  std::vector<int32_t> ids;
  std::string finish_reason;  // "stop", "length" or "cancelled"
};

struct JobStats {
  size_t sequences = 0;  // batch size used
  size_t passes = 0;
  uint64_t generated_tokens = 0, prompt_tokens = 0, bytes_read = 0;
  double wall_s = 0, io_wait_s = 0, queue_s = 0;
  MemoryPlan plan;  // of the batch the job ran in
};

class Job {
 public:
  // Starts at once; `max_sequences` 0 = as many at a time as the budget allows.
  Job(std::shared_ptr<EngineHolder> engine, std::vector<SeqSpec> seqs, size_t max_sequences);
  ~Job();  // cancels and joins
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;

  // Sequences stop at their next token; those not started never start.
  void cancel();
  bool cancelled() const;
  // Waits until done or `seconds` passed; true when done.
  bool wait_done(double seconds);
  // Tokens chosen since the last call, waiting up to `seconds` for at least one.
  std::vector<TokenOut> take(double seconds, bool* done);
  // After wait_done: rethrows the worker's exception, else the results in order.
  const std::vector<SeqOut>& results() const;
  JobStats stats() const;
  size_t size() const { return seqs_.size(); }

 private:
  void run();

  std::shared_ptr<EngineHolder> eng_;
  std::vector<SeqSpec> seqs_;
  size_t max_sequences_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<TokenOut> pending_;
  std::vector<SeqOut> out_;
  std::vector<size_t> emitted_;  // tokens handed to pending_ per sequence
  bool done_ = false;
  bool cancel_ = false;
  std::exception_ptr error_;
  JobStats stats_;
  std::thread worker_;
};

}  // namespace strata::py
