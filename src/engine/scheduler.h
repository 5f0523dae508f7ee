// The one decode loop. A thread owns the running sequences; every forward
// pass carries one decode row per running sequence plus prompt chunks of
// newly admitted ones (up to the pass's rows), so each layer read serves all
// of them. submit() may be called from any thread and returns at once;
// tokens are delivered after each pass; cancel() takes effect at the next
// pass and frees the sequence's KV pages.
//
// Admission is FIFO: a request waits until the KV pool has pages for its
// prompt. A running sequence that cannot grow preempts the youngest other
// one (its pages are freed; it recomputes prompt and output when it is
// admitted again, bitwise the same by the determinism contract) or, when it
// runs alone, ends with an error naming the pool size.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/runtime.h"
#include "strata/scheduler.h"

namespace strata {

class Tokenizer;

// Wakes the loop: new requests, cancels, shutdown.
struct SchedulerInbox {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::shared_ptr<RequestHandle::State>> incoming;
  bool poke = false, stop = false;
  void notify() {
    {
      std::lock_guard<std::mutex> lk(mu);
      poke = true;
    }
    cv.notify_all();
  }
};

struct RequestHandle::State {
  uint64_t id = 0;
  Request req;
  // Engine-internal uses of a request:
  bool all_logits = false;  // scoring: logits of every prompt position to on_logits
  std::function<void(int64_t pos, const float* logits)> on_logits;
  std::function<bool(const std::vector<int32_t>&)> should_stop;  // legacy batch hook
  bool record_passes = false;
  std::vector<PassStats> pass_log;
  std::function<void()> on_done;  // on the loop thread, after the result is set

  std::chrono::steady_clock::time_point submitted;
  std::atomic<bool> cancel_requested{false};
  std::weak_ptr<SchedulerInbox> inbox;

  std::mutex mu;
  std::condition_variable cv;
  bool finished = false;
  RequestResult result;
};

class Scheduler {
 public:
  // `runtime` is shared so that kept caches (CachedSequence) can outlive
  // the Engine safely. `tokenizer` may be null (no text, no stop strings).
  Scheduler(const ModelConfig& config, std::shared_ptr<Runtime> runtime, const Tokenizer* tokenizer,
            size_t max_running);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // The request was validated by the Engine.
  RequestHandle submit(std::shared_ptr<RequestHandle::State> state);
  // Cancels everything running or queued and joins the loop thread.
  void shutdown();
  void add_stats(EngineStats& s) const;
  size_t max_running() const { return max_running_; }
  // Every submitted request finished.
  bool idle() const {
    std::lock_guard<std::mutex> lk(stats_mu_);
    return stats_.requests_submitted == stats_.requests_finished;
  }
  // Held around every pass: whoever else drives the layer store (the
  // read-only benchmark passes) takes it too.
  std::mutex& pass_mutex() { return pass_mu_; }

 private:
  struct Seq;
  void loop();
  bool step();  // one pass; false when there was nothing to run
  void admit();
  bool reserve_decode_rows();
  void preempt(Seq* s);
  void run_pass();
  void on_logits_row(Seq& s, int64_t pos, const float* logits);
  void sample(Seq& s, const float* logits);
  void emit_safe(Seq& s);
  void finish(Seq& s, const char* reason, const std::string& error = {});
  void finish_all(const char* reason, const std::string& error);
  void drop_finished();

  const ModelConfig& config_;
  std::shared_ptr<Runtime> rt_;
  const Tokenizer* tok_;
  size_t max_running_;
  std::shared_ptr<SchedulerInbox> inbox_;
  std::atomic<uint64_t> next_id_{1};
  std::mutex pass_mu_;

  // Loop thread only.
  std::vector<std::unique_ptr<Seq>> running_;
  std::deque<std::unique_ptr<Seq>> waiting_;

  mutable std::mutex stats_mu_;
  EngineStats stats_;
  std::thread thread_;
  std::once_flag shutdown_once_;
};

}  // namespace strata

namespace strata {

// The pages and ids a finished sequence left behind for the next turn of a
// conversation. Holds the runtime, so the pages stay valid (and charged to
// the pool) even after the Engine is gone.
class KeptSequence final : public CachedSequence {
 public:
  KeptSequence(std::shared_ptr<Runtime> rt, KvSequence kv, std::vector<int32_t> ids)
      : rt_(std::move(rt)), kv_(std::move(kv)), ids_(std::move(ids)) {}
  const std::vector<int32_t>& ids() const override { return ids_; }
  const KvSequence& kv() const { return kv_; }
  const Runtime* runtime() const { return rt_.get(); }

 private:
  std::shared_ptr<Runtime> rt_;  // first: destroyed after the pages go back
  KvSequence kv_;
  std::vector<int32_t> ids_;
};

}  // namespace strata
