#include "job.h"

#include <algorithm>
#include <chrono>
#include <optional>

namespace strata::py {

Job::Job(std::shared_ptr<EngineHolder> engine, std::vector<SeqSpec> seqs, size_t max_sequences)
    : eng_(std::move(engine)), seqs_(std::move(seqs)), max_sequences_(max_sequences) {
  out_.resize(seqs_.size());
  emitted_.assign(seqs_.size(), 0);
  worker_ = std::thread([this] { run(); });
}

Job::~Job() {
  cancel();
  if (worker_.joinable()) worker_.join();
}

void Job::cancel() {
  std::lock_guard<std::mutex> lk(mu_);
  cancel_ = true;
}

bool Job::cancelled() const {
  std::lock_guard<std::mutex> lk(mu_);
  return cancel_;
}

bool Job::wait_done(double seconds) {
  std::unique_lock<std::mutex> lk(mu_);
  return cv_.wait_for(lk, std::chrono::duration<double>(seconds), [&] { return done_; });
}

std::vector<TokenOut> Job::take(double seconds, bool* done) {
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait_for(lk, std::chrono::duration<double>(seconds), [&] { return done_ || !pending_.empty(); });
  std::vector<TokenOut> r(pending_.begin(), pending_.end());
  pending_.clear();
  *done = done_ && pending_.empty();
  return r;
}

const std::vector<SeqOut>& Job::results() const {
  std::lock_guard<std::mutex> lk(mu_);
  if (error_) std::rethrow_exception(error_);
  return out_;
}

JobStats Job::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  return stats_;
}

void Job::run() {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  try {
    // The pre-scheduler Engine runs one call at a time: later jobs queue here.
    std::unique_lock<std::mutex> engine_lock(eng_->mu);
    const double queued = std::chrono::duration<double>(Clock::now() - t0).count();
    int64_t context = 1;
    for (const auto& s : seqs_) context = std::max<int64_t>(context, int64_t(s.prompt.size()) + s.max_new_tokens);
    size_t next_index = 0;
    auto next = [&]() -> std::optional<SequenceRequest> {
      std::lock_guard<std::mutex> lk(mu_);
      if (cancel_ || next_index >= seqs_.size()) return std::nullopt;
      const size_t i = next_index++;
      const SeqSpec& s = seqs_[i];
      SequenceRequest r;
      r.key = i;
      r.prompt_ids = s.prompt;
      r.max_new_tokens = s.max_new_tokens;
      r.sampling = s.sampling;
      r.stop_at_eos = s.stop_at_eos;
      // Called after every token but an EOS: hands the token over, and
      // ends the sequence on a stop id or a cancel.
      r.should_stop = [this, i](const std::vector<int32_t>& ids) {
        std::lock_guard<std::mutex> lk(mu_);
        pending_.push_back({i, ids.back()});
        ++emitted_[i];
        cv_.notify_all();
        const auto& stop = seqs_[i].stop_ids;
        return cancel_ || std::find(stop.begin(), stop.end(), ids.back()) != stop.end();
      };
      return r;
    };
    auto done = [&](SequenceResult&& r) {
      std::lock_guard<std::mutex> lk(mu_);
      const size_t i = size_t(r.key);
      for (size_t k = emitted_[i]; k < r.output_ids.size(); ++k) pending_.push_back({i, r.output_ids[k]});
      emitted_[i] = r.output_ids.size();
      out_[i].ids = std::move(r.output_ids);
      out_[i].finish_reason = cancel_ ? "cancelled" : r.finish_reason;
      cv_.notify_all();
    };
    BatchOptions bo;
    bo.context = context;
    bo.max_sequences = max_sequences_ ? std::min(max_sequences_, seqs_.size())
                                      : std::min(seqs_.size(), eng_->engine->auto_batch_size(context, 64));
    BatchStats st = seqs_.empty() ? BatchStats{} : eng_->engine->generate_batch(next, done, bo);
    engine_lock.unlock();
    {
      std::lock_guard<std::mutex> lk(eng_->stats_mu);
      ++eng_->calls;
      eng_->passes += st.passes;
      eng_->generated_tokens += st.generated_tokens;
      eng_->prompt_tokens += st.prompt_tokens;
      eng_->bytes_read += st.bytes_read;
      eng_->io_wait_s += st.io_wait_s;
      eng_->wall_s += st.wall_s;
    }
    std::lock_guard<std::mutex> lk(mu_);
    stats_ = JobStats{st.sequences, st.passes, st.generated_tokens, st.prompt_tokens, st.bytes_read,
                      st.wall_s, st.io_wait_s, queued, st.plan};
    for (size_t i = next_index; i < seqs_.size(); ++i) out_[i].finish_reason = "cancelled";  // never started
  } catch (...) {
    std::lock_guard<std::mutex> lk(mu_);
    error_ = std::current_exception();
  }
  std::lock_guard<std::mutex> lk(mu_);
  done_ = true;
  cv_.notify_all();
}

}  // namespace strata::py
