#include "engine/interim_scheduler.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "core/error.h"
#include "tokenizer/stream_decoder.h"

namespace strata {

struct RequestHandle::State {
  std::mutex mu;
  std::condition_variable cv;
  uint64_t id = 0;
  Request req;
  RequestResult result;
  bool done = false;
  bool cancelled = false;
  std::optional<StreamDecoder> decoder;
  std::string text;
  size_t streamed_chars = 0;
};

uint64_t RequestHandle::id() const { return state_ ? state_->id : 0; }
void RequestHandle::cancel() const {
  if (!state_) return;
  std::lock_guard<std::mutex> lk(state_->mu);
  state_->cancelled = true;
}
bool RequestHandle::done() const {
  if (!state_) return true;
  std::lock_guard<std::mutex> lk(state_->mu);
  return state_->done;
}
const RequestResult& RequestHandle::wait() const {
  std::unique_lock<std::mutex> lk(state_->mu);
  state_->cv.wait(lk, [&] { return state_->done; });
  return state_->result;
}
const RequestResult* RequestHandle::wait_for(double seconds) const {
  std::unique_lock<std::mutex> lk(state_->mu);
  if (!state_->cv.wait_for(lk, std::chrono::duration<double>(seconds), [&] { return state_->done; })) return nullptr;
  return &state_->result;
}

InterimScheduler::InterimScheduler(Engine& engine, const Tokenizer* tok, int64_t context, size_t max_sequences,
                                   int64_t vocab)
    : engine_(engine), tok_(tok), context_(context), max_sequences_(max_sequences), vocab_(vocab) {
  if (max_sequences_ == 0) max_sequences_ = engine_.auto_batch_size(context_, 64);
  thread_ = std::thread([this] { loop(); });
}

InterimScheduler::~InterimScheduler() { shutdown(); }

void InterimScheduler::shutdown() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
    for (auto& s : running_) {
      std::lock_guard<std::mutex> l2(s->mu);
      s->cancelled = true;
    }
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lk(mu_);
  for (auto& s : queue_) {
    std::lock_guard<std::mutex> l2(s->mu);
    s->result.request_id = s->id;
    s->result.finish_reason = "cancelled";
    s->done = true;
    s->cv.notify_all();
  }
  queue_.clear();
}

RequestHandle InterimScheduler::submit(Request r) {
  if (r.prompt_ids.empty()) throw UsageError("prompt_ids: the prompt is empty");
  for (int32_t id : r.prompt_ids)
    if (id < 0 || id >= vocab_) throw UsageError(fmt::format("prompt_ids: token {} is outside the vocabulary", id));
  if (r.max_new_tokens < 0) throw UsageError("max_new_tokens: must be >= 0");
  if (int64_t(r.prompt_ids.size()) + r.max_new_tokens > context_)
    throw UsageError(fmt::format("prompt_ids: prompt plus new tokens ({}) exceed the context of {} positions",
                                 r.prompt_ids.size() + size_t(r.max_new_tokens), context_));
  if (!r.stop_strings.empty() && !tok_) throw UsageError("stop_strings: the model has no tokenizer");
  if (r.top_logprobs > 20) throw UsageError("top_logprobs: must be 0..20");
  auto s = std::make_shared<RequestHandle::State>();
  s->req = std::move(r);
  if (tok_) s->decoder.emplace(*tok_, true);
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_) throw Error("the engine is shutting down");
    s->id = next_id_++;
    ++stats_.requests_submitted;
    queue_.push_back(s);
  }
  cv_.notify_all();
  return RequestHandle(s);
}

EngineStats InterimScheduler::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  EngineStats st = stats_;
  st.queued = queue_.size();
  st.running = running_.size();
  return st;
}

void InterimScheduler::loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
    }
    auto next = [&]() -> std::optional<SequenceRequest> {
      std::lock_guard<std::mutex> lk(mu_);
      if (queue_.empty() || stop_) return std::nullopt;
      auto s = queue_.front();
      queue_.pop_front();
      running_.push_back(s);
      SequenceRequest q;
      q.key = s->id;
      q.prompt_ids = s->req.prompt_ids;
      q.max_new_tokens = s->req.max_new_tokens;
      q.sampling = s->req.sampling;
      q.stop_at_eos = s->req.stop_at_eos;
      q.should_stop = [this, s](const std::vector<int32_t>& ids) {
        int32_t id = ids.back();
        {
          std::lock_guard<std::mutex> l2(s->mu);
          if (s->cancelled) return true;
        }
        const Request& r = s->req;
        if (std::find(r.stop_ids.begin(), r.stop_ids.end(), id) != r.stop_ids.end()) return true;
        TokenEvent e;
        e.request_id = s->id;
        e.id = id;
        e.index = ids.size() - 1;
        std::string piece = s->decoder ? s->decoder->step(id) : std::string();
        s->text += piece;
        for (const auto& stop : r.stop_strings) {
          size_t at = s->text.find(stop);
          if (at != std::string::npos) {
            s->text.resize(at);
            return true;
          }
        }
        e.text = piece;
        s->result.tokens.push_back(e);
        s->result.output_ids.push_back(id);
        if (r.on_token) r.on_token(e);
        return false;
      };
      return q;
    };
    auto done = [&](SequenceResult&& res) {
      std::shared_ptr<RequestHandle::State> s;
      {
        std::lock_guard<std::mutex> lk(mu_);
        auto it = std::find_if(running_.begin(), running_.end(), [&](auto& x) { return x->id == res.key; });
        if (it == running_.end()) return;
        s = *it;
        running_.erase(it);
        ++stats_.requests_finished;
        stats_.prompt_tokens += res.prompt_tokens;
      }
      std::lock_guard<std::mutex> l2(s->mu);
      RequestResult& out = s->result;
      out.request_id = s->id;
      out.prompt_tokens = res.prompt_tokens;
      out.finish_reason = s->cancelled ? "cancelled" : res.finish_reason;
      if (s->cancelled) {
        std::lock_guard<std::mutex> lk(mu_);
        ++stats_.requests_cancelled;
      }
      if (s->decoder) s->text += s->decoder->flush();
      out.text = s->text;
      s->done = true;
      s->cv.notify_all();
    };
    BatchOptions bo;
    bo.context = context_;
    bo.max_sequences = max_sequences_;
    try {
      BatchStats b = engine_.generate_batch(next, done, bo);
      std::lock_guard<std::mutex> lk(mu_);
      stats_.passes += b.passes;
      stats_.generated_tokens += b.generated_tokens;
      stats_.bytes_read += b.bytes_read;
      stats_.io_wait_s += b.io_wait_s;
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lk(mu_);
      for (auto& s : running_) {
        std::lock_guard<std::mutex> l2(s->mu);
        s->result.finish_reason = "error";
        s->result.error = e.what();
        s->done = true;
        s->cv.notify_all();
      }
      running_.clear();
    }
  }
}

}  // namespace strata
