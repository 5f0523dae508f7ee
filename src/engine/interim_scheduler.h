// TEMPORARY stand-in (branch server only) for the scheduler of branch sched,
// so the server can be built and tested before sched's Engine::submit lands.
// It runs generate_batch() rounds on its own thread: requests that arrive
// while a round runs wait for the next round (no joining mid-round), no
// logprobs. Delete this file pair, and the four lines in engine.cpp that use
// it, when sched's implementation is merged.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "strata/strata.h"
#include "tokenizer/tokenizer.h"

namespace strata {

class InterimScheduler {
 public:
  InterimScheduler(Engine& engine, const Tokenizer* tok, int64_t context, size_t max_sequences, int64_t vocab);
  ~InterimScheduler();
  RequestHandle submit(Request r);
  EngineStats stats() const;
  void shutdown();

 private:
  void loop();
  Engine& engine_;
  const Tokenizer* tok_;
  int64_t context_;
  size_t max_sequences_;
  int64_t vocab_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<RequestHandle::State>> queue_;
  std::vector<std::shared_ptr<RequestHandle::State>> running_;
  EngineStats stats_;
  uint64_t next_id_ = 1;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace strata
