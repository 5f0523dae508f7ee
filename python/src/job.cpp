#include "job.h"

#include <algorithm>

#include "strata/error.h"

namespace strata::py {

Job::Job(std::shared_ptr<EngineHolder> engine, std::vector<SeqSpec> seqs)
    : eng_(std::move(engine)), shared_(std::make_shared<Shared>()) {
  shared_->emitted.assign(seqs.size(), 0);
  start_ = eng_->engine->stats();
  t0_ = std::chrono::steady_clock::now();
  try {
    for (size_t i = 0; i < seqs.size(); ++i) {
      SeqSpec& s = seqs[i];
      Request r;
      r.prompt_ids = std::move(s.prompt);
      r.max_new_tokens = s.max_new_tokens;
      r.sampling = s.sampling;
      r.stop_at_eos = s.stop_at_eos;
      r.stop_ids = std::move(s.stop_ids);
      r.stop_strings = std::move(s.stop_strings);
      r.lookup_ngram = s.lookup_ngram;
      r.draft_tokens = s.draft_tokens;
      // On the scheduler's thread after each pass: quick, never blocks on the Engine.
      r.on_token = [sh = shared_, i](const TokenEvent& e) {
        std::lock_guard<std::mutex> lk(sh->mu);
        sh->pending.push_back({i, e.id, e.text});
        ++sh->emitted[i];
        sh->cv.notify_all();
      };
      handles_.push_back(eng_->engine->submit(std::move(r)));
    }
  } catch (...) {
    for (const auto& h : handles_) h.cancel();
    throw;
  }
}

Job::~Job() {
  // Requests end at the next pass; their callbacks only touch `shared_`.
  for (const auto& h : handles_) h.cancel();
}

void Job::cancel() {
  {
    std::lock_guard<std::mutex> lk(shared_->mu);
    cancel_ = true;
  }
  for (const auto& h : handles_) h.cancel();
}

bool Job::cancelled() const {
  std::lock_guard<std::mutex> lk(shared_->mu);
  return cancel_;
}

bool Job::all_done() const {
  return std::all_of(handles_.begin(), handles_.end(), [](const RequestHandle& h) { return h.done(); });
}

bool Job::wait_done(double seconds) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  for (const auto& h : handles_) {
    double left = std::chrono::duration<double>(end - std::chrono::steady_clock::now()).count();
    if (!h.wait_for(std::max(left, 0.0))) return false;
  }
  return true;
}

std::vector<TokenOut> Job::take(double seconds, bool* done) {
  const bool ended = all_done();  // before draining: tokens of an ended request are all delivered
  std::unique_lock<std::mutex> lk(shared_->mu);
  if (!ended) shared_->cv.wait_for(lk, std::chrono::duration<double>(seconds), [&] { return !shared_->pending.empty(); });
  std::vector<TokenOut> r(std::make_move_iterator(shared_->pending.begin()),
                          std::make_move_iterator(shared_->pending.end()));
  shared_->pending.clear();
  if (ended) {
    // Tokens the callbacks did not deliver (none expected): from the results.
    for (size_t i = 0; i < handles_.size(); ++i) {
      const RequestResult& res = handles_[i].wait();
      for (size_t k = shared_->emitted[i]; k < res.output_ids.size(); ++k) {
        r.push_back({i, res.output_ids[k], k < res.tokens.size() ? res.tokens[k].text : std::string()});
      }
      shared_->emitted[i] = std::max(shared_->emitted[i], res.output_ids.size());
    }
  }
  *done = ended;
  return r;
}

std::vector<SeqOut> Job::results() const {
  std::vector<SeqOut> out;
  for (const auto& h : handles_) {
    const RequestResult& r = h.wait();
    if (r.finish_reason == "error") throw Error(r.error);
    out.push_back({r.output_ids, r.text, r.finish_reason, r.passes, r.queue_s, r.drafted_tokens, r.accepted_tokens});
  }
  return out;
}

JobStats Job::stats() {
  if (final_) return *final_;
  const bool ended = all_done();
  const EngineStats s = eng_->engine->stats();
  JobStats j;
  j.sequences = handles_.size();
  j.passes = s.passes - start_.passes;
  j.bytes_read = s.bytes_read - start_.bytes_read;
  j.io_wait_s = s.io_wait_s - start_.io_wait_s;
  j.experts_routed = s.experts_routed - start_.experts_routed;
  j.expert_hits = s.expert_hits - start_.expert_hits;
  j.expert_bytes_read = s.expert_bytes_read - start_.expert_bytes_read;
  j.compute_s = s.compute_s - start_.compute_s;
  j.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  for (const auto& h : handles_) {
    if (!h.done()) continue;
    const RequestResult& r = h.wait();
    j.generated_tokens += r.output_ids.size();
    j.prompt_tokens += r.prompt_tokens;
    j.drafted_tokens += r.drafted_tokens;
    j.accepted_tokens += r.accepted_tokens;
    j.queue_s = std::max(j.queue_s, r.queue_s);
  }
  if (ended) final_ = j;  // later calls must not count later requests' passes
  return j;
}

}  // namespace strata::py
