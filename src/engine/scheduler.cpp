#include "engine/scheduler.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "core/error.h"
#include "engine/prompt_lookup.h"
#include "engine/sampler.h"
#include "engine/speculative.h"
#include "engine/stop_matcher.h"
#include "tokenizer/stream_decoder.h"
#include "tokenizer/tokenizer.h"

namespace strata {
namespace {

using Clock = std::chrono::steady_clock;
double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

}  // namespace

// --- RequestHandle ---------------------------------------------------------

uint64_t RequestHandle::id() const { return state_ ? state_->id : 0; }

void RequestHandle::cancel() const {
  if (!state_) return;
  state_->cancel_requested = true;
  if (auto in = state_->inbox.lock()) in->notify();
}

bool RequestHandle::done() const {
  if (!state_) return true;
  std::lock_guard<std::mutex> lk(state_->mu);
  return state_->finished;
}

RequestResult RequestHandle::wait() const {
  if (!state_) throw UsageError("wait() on an empty RequestHandle");
  std::unique_lock<std::mutex> lk(state_->mu);
  state_->cv.wait(lk, [&] { return state_->finished; });
  return state_->result;
}

const RequestResult* RequestHandle::wait_for(double s) const {
  if (!state_) throw UsageError("wait_for() on an empty RequestHandle");
  std::unique_lock<std::mutex> lk(state_->mu);
  if (!state_->cv.wait_for(lk, std::chrono::duration<double>(s), [&] { return state_->finished; })) return nullptr;
  return &state_->result;
}

// --- Scheduler -------------------------------------------------------------

struct Scheduler::Seq {
  std::shared_ptr<RequestHandle::State> st;
  KvSequence kv;
  std::unique_ptr<Sampler> sampler;
  std::vector<int32_t> ids;  // prompt, then every generated id
  size_t prompt_len = 0;
  int64_t computed = 0;      // positions in the KV cache
  std::vector<int32_t> out;
  std::optional<StreamDecoder> decoder;
  StopMatcher stop;
  std::vector<size_t> piece_end;  // per output token: end of its text
  std::vector<TokenEvent> events;
  size_t emitted = 0;
  bool started = false, done = false, preempted = false;
  size_t chunk = 0;  // rows in the current pass
  size_t passes = 0, cached = 0;
  std::vector<int32_t> drafts;  // drafted tokens riding in the current pass
  std::shared_ptr<CachedSequence> draft_cache;  // the draft model's KV of this sequence
  size_t drafted = 0, accepted = 0, token_passes = 0;
  Clock::time_point admitted, first_token;

  int64_t pending() const { return int64_t(ids.size()) - computed; }
  bool generating() const { return !st->all_logits; }
};

Scheduler::Scheduler(const ModelConfig& config, std::shared_ptr<Runtime> runtime, const Tokenizer* tokenizer,
                     size_t max_running, Engine* draft)
    : config_(config), rt_(std::move(runtime)), tok_(tokenizer), max_running_(std::max<size_t>(max_running, 1)),
      draft_(draft),
      inbox_(std::make_shared<SchedulerInbox>()) {
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() { shutdown(); }

void Scheduler::shutdown() {
  if (std::this_thread::get_id() == thread_.get_id())
    throw UsageError("shutdown() from a token callback: it would wait for itself");
  std::call_once(shutdown_once_, [&] {
    {
      std::lock_guard<std::mutex> lk(inbox_->mu);
      inbox_->stop = true;
    }
    inbox_->cv.notify_all();
    if (thread_.joinable()) thread_.join();
  });
}

RequestHandle Scheduler::submit(std::shared_ptr<RequestHandle::State> st) {
  st->id = next_id_++;
  st->submitted = Clock::now();
  st->inbox = inbox_;
  st->result.request_id = st->id;
  bool stopped;
  {
    std::lock_guard<std::mutex> lk(inbox_->mu);
    stopped = inbox_->stop;
    if (!stopped) inbox_->incoming.push_back(st);
  }
  {
    std::lock_guard<std::mutex> lk(stats_mu_);
    ++stats_.requests_submitted;
  }
  if (stopped) {
    std::lock_guard<std::mutex> lk(st->mu);
    st->result.finish_reason = "error";
    st->result.error = "the engine was shut down";
    st->finished = true;
    st->cv.notify_all();
  } else {
    inbox_->cv.notify_all();
  }
  return RequestHandle(st);
}

void Scheduler::add_stats(EngineStats& s) const {
  {
    std::lock_guard<std::mutex> lk(stats_mu_);
    const EngineStats& m = stats_;
    s.requests_submitted += m.requests_submitted;
    s.requests_finished += m.requests_finished;
    s.requests_cancelled += m.requests_cancelled;
    s.prompt_tokens += m.prompt_tokens;
    s.generated_tokens += m.generated_tokens;
    s.passes += m.passes;
    s.pass_rows += m.pass_rows;
    s.bytes_read += m.bytes_read;
    s.io_wait_s += m.io_wait_s;
    s.compute_s += m.compute_s;
    s.running = m.running;
    s.queued = m.queued;
    s.preemptions += m.preemptions;
    s.drafted_tokens += m.drafted_tokens;
    s.accepted_tokens += m.accepted_tokens;
    s.experts_routed += m.experts_routed;
    s.expert_hits += m.expert_hits;
    s.expert_bytes_read += m.expert_bytes_read;
  }
  s.kv_pages_total = rt_->kv->pages_total();
  s.kv_pages_used = rt_->kv->pages_used();
  s.kv_page_positions = rt_->kv->page_positions();
  s.kv_pool_bytes = rt_->kv->bytes();
}

void Scheduler::loop() {
  for (;;) {
    std::deque<std::shared_ptr<RequestHandle::State>> fresh;
    bool stop;
    {
      std::unique_lock<std::mutex> lk(inbox_->mu);
      auto ready = [&] { return inbox_->stop || inbox_->poke || !inbox_->incoming.empty() || !running_.empty(); };
      // Requests waiting with nothing running wait for pages held by kept
      // caches: look again now and then.
      if (waiting_.empty()) inbox_->cv.wait(lk, ready);
      else inbox_->cv.wait_for(lk, std::chrono::milliseconds(20), ready);
      inbox_->poke = false;
      fresh.swap(inbox_->incoming);
      stop = inbox_->stop;
    }
    for (auto& st : fresh) {
      auto s = std::make_unique<Seq>();
      s->st = std::move(st);
      const Request& r = s->st->req;
      s->ids = r.prompt_ids;
      s->prompt_len = r.prompt_ids.size();
      s->kv = KvSequence(rt_->kv.get());
      s->sampler = std::make_unique<Sampler>(r.sampling);
      if (tok_) s->decoder.emplace(*tok_, /*skip_special=*/true);
      s->stop = StopMatcher(r.stop_strings);
      waiting_.push_back(std::move(s));
    }
    if (stop) break;
    for (auto& s : running_)
      if (s->st->cancel_requested) finish(*s, "cancelled");
    for (auto& s : waiting_)
      if (s->st->cancel_requested) finish(*s, "cancelled");
    drop_finished();
    if (!reserve_decode_rows()) continue;
    admit();
    {
      std::lock_guard<std::mutex> lk(stats_mu_);
      stats_.running = running_.size();
      stats_.queued = waiting_.size();
    }
    if (running_.empty()) continue;
    run_pass();
    drop_finished();
  }
  finish_all("cancelled", "");
}

void Scheduler::finish_all(const char* reason, const std::string& error) {
  for (auto& s : running_) finish(*s, reason, error);
  for (auto& s : waiting_) finish(*s, reason, error);
  std::deque<std::shared_ptr<RequestHandle::State>> rest;
  {
    std::lock_guard<std::mutex> lk(inbox_->mu);
    rest.swap(inbox_->incoming);
  }
  for (auto& st : rest) {
    Seq s;
    s.st = st;
    s.prompt_len = st->req.prompt_ids.size();
    finish(s, reason, error);
  }
  drop_finished();
}

void Scheduler::drop_finished() {
  running_.erase(std::remove_if(running_.begin(), running_.end(), [](const auto& s) { return s->done; }),
                 running_.end());
  waiting_.erase(std::remove_if(waiting_.begin(), waiting_.end(), [](const auto& s) { return s->done; }),
                 waiting_.end());
}

void Scheduler::preempt(Seq* s) {
  s->kv.release();
  s->computed = 0;
  s->preempted = true;
  std::lock_guard<std::mutex> lk(stats_mu_);
  ++stats_.preemptions;
}

// Every running sequence gets room for the rows it computes next; when the
// pool is short the youngest other sequence gives its pages back.
bool Scheduler::reserve_decode_rows() {
  for (size_t i = 0; i < running_.size(); ++i) {
    Seq& s = *running_[i];
    if (s.preempted || s.done) continue;
    while (!s.kv.reserve(int64_t(s.ids.size()))) {
      Seq* victim = nullptr;
      for (size_t j = running_.size(); j-- > 0;)
        if (j != i && !running_[j]->preempted && !running_[j]->done) {
          victim = running_[j].get();
          break;
        }
      if (!victim) {
        const KvPool& p = *rt_->kv;
        finish(s, "error",
               fmt::format("the KV pool ({} pages of {} positions, {} positions) cannot hold this sequence's {} "
                           "positions; raise max_memory or lower max_new_tokens",
                           p.pages_total(), p.page_positions(), p.pages_total() * p.page_positions(), s.ids.size()));
        break;
      }
      preempt(victim);
    }
  }
  // Preempted sequences wait at the head of the queue, oldest first.
  for (size_t j = running_.size(); j-- > 0;) {
    if (!running_[j]->preempted) continue;
    running_[j]->preempted = false;
    waiting_.push_front(std::move(running_[j]));
  }
  running_.erase(std::remove(running_.begin(), running_.end(), nullptr), running_.end());
  drop_finished();
  return true;
}

void Scheduler::admit() {
  KvPool& pool = *rt_->kv;
  while (running_.size() < max_running_ && !waiting_.empty()) {
    Seq& s = *waiting_.front();
    const int64_t need = int64_t(s.ids.size());
    const size_t pages = KvPool::pages_for(need, pool.page_positions());
    if (pages > pool.pages_total()) {
      finish(s, "error",
             fmt::format("the request needs {} KV positions but the pool holds {} ({} pages of {}); raise max_memory",
                         need, pool.pages_total() * pool.page_positions(), pool.pages_total(), pool.page_positions()));
      waiting_.pop_front();
      continue;
    }
    // Leave each running sequence that can still outgrow its pages a page to
    // grow into, so admitting this one does not preempt it at the next pass.
    // One that already holds its longest length needs none: counting those
    // too halved a batch of short sequences (64 one-page sequences in a pool
    // of 66 pages ran 32 at a time).
    size_t headroom = 0;
    for (const auto& r : running_) {
      const auto& q = r->st->req;
      const int64_t longest = int64_t(r->prompt_len) + int64_t(q.max_new_tokens) + int64_t(q.draft_tokens);
      if (r->kv.capacity() < longest) ++headroom;
    }
    const size_t free_pages = pool.pages_total() - pool.pages_used();
    if (!running_.empty() && free_pages < pages + headroom) break;
    if (!s.kv.reserve(need)) break;
    if (!s.started) {
      s.started = true;
      s.admitted = Clock::now();
      if (auto prefix = std::dynamic_pointer_cast<const KeptSequence>(s.st->req.prefix)) {
        const auto& pids = prefix->ids();
        size_t common = 0;
        const size_t limit = std::min({pids.size(), size_t(prefix->kv().length), s.prompt_len});
        while (common < limit && pids[common] == s.ids[common]) ++common;
        if (common == s.prompt_len) --common;  // the last prompt position gives the first token's logits
        if (common > 0) {
          s.kv.copy_from(prefix->kv(), int64_t(common));
          s.computed = int64_t(common);
          s.cached = common;
        }
      }
      s.st->req.prefix.reset();
      std::lock_guard<std::mutex> lk(stats_mu_);
      stats_.prompt_tokens += s.prompt_len;
    }
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
}

void Scheduler::run_pass() {
  Transformer& tf = *rt_->transformer;
  const size_t R = tf.max_rows(), L = rt_->shape.max_logit_rows, vocab = size_t(config_.vocab_size);
  Batch batch;
  struct Owner {
    Seq* s;
    int64_t pos;
    bool draft_row = false;  // verified with the decode row before it
  };
  std::vector<Owner> owners;
  std::vector<Seq*> in_pass;
  for (auto& p : running_) p->chunk = 0;
  // Decode rows first (one each, they keep latency low), then prompt chunks
  // in arrival order with the rows that remain.
  for (auto& p : running_) {
    Seq& s = *p;
    if (s.pending() != 1 || !s.generating() || batch.size() >= R || owners.size() >= L) continue;
    draft(s, std::min(R - batch.size(), L - owners.size()) - 1);
    batch.push_back({s.ids[size_t(s.computed)], s.computed, &s.kv, true});
    owners.push_back({&s, s.computed});
    for (size_t k = 0; k < s.drafts.size(); ++k) {
      const int64_t pos = s.computed + 1 + int64_t(k);
      batch.push_back({s.drafts[k], pos, &s.kv, true});
      owners.push_back({&s, pos, true});
    }
    s.chunk = 1 + s.drafts.size();
    in_pass.push_back(&s);
  }
  for (auto& p : running_) {
    Seq& s = *p;
    if (s.chunk || s.pending() <= 0 || batch.size() >= R) continue;
    s.drafts.clear();
    size_t take = std::min(size_t(s.pending()), R - batch.size());
    if (s.st->all_logits) take = std::min(take, L - owners.size());
    else if (s.computed + int64_t(take) == int64_t(s.ids.size()) && owners.size() >= L) --take;
    if (take == 0) continue;
    for (size_t k = 0; k < take; ++k) {
      const int64_t pos = s.computed + int64_t(k);
      const bool logits = s.st->all_logits || pos + 1 == int64_t(s.ids.size());
      batch.push_back({s.ids[size_t(pos)], pos, &s.kv, logits});
      if (logits) owners.push_back({&s, pos});
    }
    s.chunk = take;
    in_pass.push_back(&s);
  }
  if (batch.empty()) return;

  PassProfile prof;
  const float* logits = nullptr;
  try {
    std::lock_guard<std::mutex> lk(pass_mu_);
    logits = tf.forward(batch, &prof);
  } catch (const std::exception& e) {
    // A failed read leaves the layer store unusable: every sequence fails.
    std::string msg = e.what();
    for (auto& s : running_) finish(*s, "error", msg);
    for (auto& s : waiting_) finish(*s, "error", msg);
    return;
  }
  {
    std::lock_guard<std::mutex> lk(stats_mu_);
    ++stats_.passes;
    stats_.pass_rows += batch.size();
    stats_.bytes_read += prof.bytes_read;
    stats_.io_wait_s += prof.io_wait_s;
    stats_.compute_s += prof.compute_s;
    stats_.experts_routed += prof.experts_routed;
    stats_.expert_hits += prof.expert_hits;
    stats_.expert_bytes_read += prof.expert_bytes_read;
  }
  const PassStats ps{prof.rows,           prof.wall_s,      prof.io_wait_s,          prof.compute_s,
                     prof.bytes_read,     prof.experts_routed, prof.expert_hits,   prof.expert_bytes_read};
  for (Seq* s : in_pass) {
    s->computed += int64_t(s->chunk);
    ++s->passes;
    if (s->st->record_passes) s->st->pass_log.push_back(ps);
  }
  for (size_t i = 0; i < owners.size(); ++i) {
    Seq& s = *owners[i].s;
    if (s.done) continue;
    const float* row = logits + i * vocab;
    if (s.st->all_logits) {
      if (s.st->on_logits) s.st->on_logits(owners[i].pos, row);
    } else if (owners[i].draft_row) {
      continue;  // taken with its decode row
    } else if (!s.drafts.empty()) {
      verify(s, row);  // this row and the drafts' rows after it
    } else if (owners[i].pos + 1 == int64_t(s.ids.size())) {
      sample(s, row);
    }
  }
  for (Seq* s : in_pass)
    if (!s->done && s->st->all_logits && s->pending() == 0) finish(*s, "length");
}

void Scheduler::sample(Seq& s, const float* row) {
  const Request& r = s.st->req;
  if (int(s.out.size()) >= r.max_new_tokens) {
    finish(s, "length");
    return;
  }
  ++s.token_passes;
  append(s, s.sampler->sample(row, size_t(config_.vocab_size)), row);
}

// Drafts only where they can all be used: within max_new_tokens (the last
// new token never needs drafts after it), the pass's free rows and the KV
// pool (a draft that cannot get its page is dropped, never preempts).
void Scheduler::draft(Seq& s, size_t room) {
  s.drafts.clear();
  const Request& r = s.st->req;
  if (!r.draft_tokens || (!r.lookup_ngram && !draft_)) return;
  const int64_t left = int64_t(r.max_new_tokens) - int64_t(s.out.size()) - 1;
  const size_t k = std::min({r.draft_tokens, room, size_t(std::max<int64_t>(left, 0))});
  if (!k) return;
  if (r.lookup_ngram) {
    s.drafts = lookup_draft(s.ids, r.lookup_ngram, k);
  } else {
    // Greedy drafts: a deterministic function of the sequence, so the
    // verification treats them as a point mass and sampled output keeps
    // the target's distribution. The draft model computes only what its
    // kept cache of this sequence does not hold.
    Request d;
    d.prompt_ids = s.ids;
    d.max_new_tokens = int(k);
    d.stop_at_eos = false;
    d.keep_cache = true;
    d.prefix = std::move(s.draft_cache);
    RequestResult res = draft_->submit(std::move(d)).wait();
    if (res.finish_reason == "error") return;  // no drafts this pass; the target goes on alone
    s.drafts = std::move(res.output_ids);
    s.draft_cache = std::move(res.cache);
  }
  if (!s.drafts.empty() && !s.kv.reserve(int64_t(s.ids.size() + s.drafts.size()))) s.drafts.clear();
}

// `rows`: the decode row's logits, then one row per draft. The KV cache
// keeps the positions whose tokens stand (the decode row's and the accepted
// drafts'); the rejected drafts' positions are truncated away.
void Scheduler::verify(Seq& s, const float* rows) {
  const size_t vocab = size_t(config_.vocab_size);
  const size_t k = s.drafts.size();
  const Verdict v = verify_drafts(*s.sampler, rows, vocab, {s.drafts, {}});
  s.drafted += k;
  s.accepted += v.accepted;
  ++s.token_passes;
  {
    std::lock_guard<std::mutex> lk(stats_mu_);
    stats_.drafted_tokens += k;
    stats_.accepted_tokens += v.accepted;
  }
  s.drafts.clear();
  s.computed -= int64_t(k - v.accepted);
  for (size_t j = 0; j < v.tokens.size() && !s.done; ++j) {
    if (int(s.out.size()) >= s.st->req.max_new_tokens) {
      finish(s, "length");
      break;
    }
    append(s, v.tokens[j], rows + j * vocab);
  }
  // A stop inside the accepted drafts: the positions after it do not stand.
  s.computed = std::min(s.computed, int64_t(s.ids.size()));
  s.kv.truncate(s.computed);
}

void Scheduler::append(Seq& s, int32_t id, const float* row) {
  const Request& r = s.st->req;
  const size_t vocab = size_t(config_.vocab_size);
  TokenEvent e;
  e.request_id = s.st->id;
  e.id = id;
  e.index = s.out.size();
  if (r.logprobs || r.top_logprobs) {
    float mx = *std::max_element(row, row + vocab);
    double z = 0;
    for (size_t j = 0; j < vocab; ++j) z += std::exp(double(row[j]) - mx);
    const double lz = double(mx) + std::log(z);
    e.logprob = float(double(row[id]) - lz);
    if (r.top_logprobs) {
      std::vector<int32_t> order(vocab);
      for (size_t j = 0; j < vocab; ++j) order[j] = int32_t(j);
      const size_t k = std::min(r.top_logprobs, vocab);
      std::partial_sort(order.begin(), order.begin() + ptrdiff_t(k), order.end(), [&](int32_t a, int32_t b) {
        return row[a] > row[b] || (row[a] == row[b] && a < b);
      });
      for (size_t j = 0; j < k; ++j) e.top.push_back({order[j], float(double(row[order[j]]) - lz)});
    }
  }
  if (s.out.empty()) s.first_token = Clock::now();
  s.out.push_back(id);
  s.ids.push_back(id);
  {
    std::lock_guard<std::mutex> lk(stats_mu_);
    ++stats_.generated_tokens;
  }
  std::string piece = s.decoder ? s.decoder->step(id) : std::string();
  e.text = piece;
  s.events.push_back(std::move(e));
  const bool matched = s.stop.add(piece);
  s.piece_end.push_back(s.stop.text().size());
  const auto& eos = config_.eos_token_ids;
  const bool stop_id = (r.stop_at_eos && std::find(eos.begin(), eos.end(), id) != eos.end()) ||
                       std::find(r.stop_ids.begin(), r.stop_ids.end(), id) != r.stop_ids.end();
  if (matched || stop_id || (s.st->should_stop && s.st->should_stop(s.out))) finish(s, "stop");
  else if (int(s.out.size()) >= r.max_new_tokens) finish(s, "length");
  else emit_safe(s);
}

void Scheduler::emit_safe(Seq& s) {
  const size_t safe = s.stop.empty() ? std::string::npos : s.stop.safe_end();
  while (s.emitted < s.events.size() && (safe == std::string::npos || s.piece_end[s.emitted] <= safe)) {
    const TokenEvent& e = s.events[s.emitted++];
    if (!s.st->req.on_token) continue;
    try {
      s.st->req.on_token(e);
    } catch (const std::exception& ex) {
      finish(s, "error", std::string("on_token: ") + ex.what());
      return;
    }
  }
}

void Scheduler::finish(Seq& s, const char* reason, const std::string& error) {
  if (s.done) return;
  s.done = true;
  std::string why = reason;
  const bool failed = why == "error";
  if (!failed && s.decoder && s.stop.match() == std::string::npos) {
    std::string rest = s.decoder->flush();
    if (!rest.empty()) {
      if (s.stop.add(rest)) why = "stop";
      // Streamed with the last token when it is still held back; otherwise
      // only the result's text has it.
      if (!s.events.empty()) {
        if (s.emitted < s.events.size()) s.events.back().text += rest;
        s.piece_end.back() = s.stop.text().size();
      }
    }
  }
  std::string text = s.stop.text();
  const size_t cut = s.stop.match();
  if (cut != std::string::npos) {
    // Keep the tokens whose text starts before the stop string; the last of
    // them keeps only its text before it.
    size_t keep = 0;
    while (keep < s.out.size() && (keep == 0 ? 0 : s.piece_end[keep - 1]) < cut) ++keep;
    if (keep > 0) {
      const size_t start = keep == 1 ? 0 : s.piece_end[keep - 2];
      s.events[keep - 1].text = text.substr(start, std::min(s.piece_end[keep - 1], cut) - start);
    }
    s.out.resize(keep);
    s.events.resize(keep);
    s.piece_end.resize(keep);
    s.emitted = std::min(s.emitted, keep);
    text.resize(cut);
  }
  if (!failed) {
    s.stop = StopMatcher();  // no more holding back
    emit_safe(s);
    s.done = true;  // emit_safe may have tried to finish with an error
  }
  const auto now = Clock::now();
  RequestResult res;
  res.request_id = s.st->id;
  res.output_ids = std::move(s.out);
  res.text = std::move(text);
  res.finish_reason = why;
  res.error = error;
  res.tokens = std::move(s.events);
  res.prompt_tokens = s.prompt_len;
  res.cached_prompt_tokens = s.cached;
  res.passes = s.passes;
  res.drafted_tokens = s.drafted;
  res.accepted_tokens = s.accepted;
  res.token_passes = s.token_passes;
  if (s.started) {
    res.queue_s = seconds(s.st->submitted, s.admitted);
    if (!res.output_ids.empty()) {
      res.prefill_s = seconds(s.admitted, s.first_token);
      res.decode_s = seconds(s.first_token, now);
    } else {
      res.prefill_s = seconds(s.admitted, now);
    }
  } else {
    res.queue_s = seconds(s.st->submitted, now);
  }
  if (s.st->req.keep_cache && !failed && s.kv.pool()) {
    s.kv.length = s.computed;
    std::vector<int32_t> ids(s.ids.begin(), s.ids.begin() + s.computed);
    res.cache = std::make_shared<KeptSequence>(rt_, std::move(s.kv), std::move(ids));
  }
  s.kv.release();
  s.draft_cache.reset();
  s.st->req.prefix.reset();
  {
    std::lock_guard<std::mutex> lk(stats_mu_);
    ++stats_.requests_finished;
    if (why == "cancelled") ++stats_.requests_cancelled;
  }
  std::function<void()> done_hook;
  {
    std::lock_guard<std::mutex> lk(s.st->mu);
    s.st->result = std::move(res);
    s.st->finished = true;
    done_hook = s.st->on_done;
  }
  s.st->cv.notify_all();
  if (done_hook) done_hook();
}

}  // namespace strata
