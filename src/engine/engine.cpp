// The public Engine: validates requests and sends every one of them through
// the scheduler's one decode loop, over a runtime built once (at first use)
// and kept for the Engine's life.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <unordered_map>

#include "core/error.h"
#include "engine/runtime.h"
#include "engine/sampler.h"
#include "engine/scheduler.h"
#include "runtime/io_select.h"
#include "strata/strata.h"
#include "tokenizer/tokenizer.h"

namespace strata {
namespace {

using Clock = std::chrono::steady_clock;

// What the first use of an Engine tells about the runtime to build.
enum class Use { Generate, Score, Batch, Submit };

class EngineImpl final : public Engine {
 public:
  EngineImpl(const std::filesystem::path& dir, const EngineOptions& opt)
      : opt_(opt), model_(open_model_layout(dir)), units_(build_stream_units(model_)), pool_(opt.threads) {
    if (!opt_.io.empty() && opt_.io != "auto" && !parse_io_method(opt_.io))
      throw UsageError("unknown I/O method '" + opt_.io + "' (expected auto, uring, direct, pread or buffered)");
    kv_type_ = parse_kv_type(opt_.kv_type);
    if (opt_.kv_page_positions == 0) throw UsageError("kv_page_positions must be positive");
    if (opt_.context < 0) throw UsageError("context must be >= 0");
    if (opt_.context > model_.config.max_position_embeddings)
      throw UsageError(fmt::format("context {} (prompt plus new tokens) exceeds the model's context of {} positions",
                                   opt_.context, model_.config.max_position_embeddings));
    open_draft();
  }

  ~EngineImpl() override { shutdown(); }

  // The draft model of speculative decoding: planned fully resident, with a
  // KV pool for a kept cache per target sequence plus the one being
  // drafted (so a draft never waits for pages), out of the same budget.
  void open_draft() {
    if (opt_.draft_model.empty()) return;
    if (!opt_.draft_tokens) opt_.draft_tokens = 4;
    EngineOptions d;
    d.threads = opt_.threads;
    d.io = opt_.io;
    d.kv_type = opt_.kv_type;
    d.max_sequences = 1;
    d.context = opt_.context;  // drafts stay within max_new_tokens, so within the context
    const int64_t ctx = d.context ? d.context : std::min<int64_t>(4096, model_.config.max_position_embeddings);
    const size_t seqs = (opt_.max_sequences ? opt_.max_sequences : 16) + 2;
    d.kv_pages = seqs * KvPool::pages_for(ctx, opt_.kv_page_positions);
    d.kv_page_positions = opt_.kv_page_positions;
    auto probe = Engine::open(opt_.draft_model, d);
    if (probe->info().vocab_size != model_.config.vocab_size)
      throw UsageError(fmt::format("draft_model {} has a vocabulary of {} tokens, the model {}: they must share one",
                                   opt_.draft_model.string(), probe->info().vocab_size, model_.config.vocab_size));
    if (opt_.max_memory) {
      const MemoryPlan all = probe->plan_for(ctx);
      const uint64_t need = all.total_bytes + (all.units - all.resident_units) * all.slot_bytes;
      d.max_memory = std::max(need, all.min_budget);
      if (d.max_memory >= opt_.max_memory)
        throw UsageError(fmt::format("max_memory {} cannot hold the draft model ({} resident) and the model",
                                     format_bytes(opt_.max_memory), format_bytes(d.max_memory)));
      opt_.max_memory -= d.max_memory;
    }
    draft_ = Engine::open(opt_.draft_model, d);
  }

  ModelInfo info() const override {
    const ModelConfig& c = model_.config;
    ModelInfo i;
    i.path = model_.dir.string();
    i.architecture = c.architecture;
    i.family = model_.arch->display;
    i.layers = c.num_layers;
    i.hidden_size = c.hidden_size;
    i.intermediate_size = c.intermediate_size;
    i.heads = c.num_heads;
    i.kv_heads = c.num_kv_heads;
    i.head_dim = c.head_dim;
    i.vocab_size = c.vocab_size;
    i.max_position_embeddings = c.max_position_embeddings;
    i.tied_embeddings = model_.lm_head == model_.embed;
    i.dtype = std::string(dtype_name(model_.layers[0].by_role[size_t(Role::O)]->dtype));  // every family has o_proj
    i.parameters = model_.parameter_count();
    i.total_bytes = model_.total_bytes();
    for (const auto& l : model_.layers) i.layer_bytes = std::max(i.layer_bytes, l.bytes);
    i.embedding_bytes = model_.embed->nbytes;
    i.head_bytes = model_.lm_head->nbytes + model_.final_norm->nbytes;
    i.eos_token_ids = c.eos_token_ids;
    i.bos_token_id = c.bos_token_id;
    i.experts = c.num_experts;
    i.experts_per_token = c.experts_per_token;
    for (const auto& l : model_.layers) {
      i.all_layer_bytes += l.bytes;
      i.token_layer_bytes += l.dense_bytes;
      if (l.experts.empty()) continue;
      ++i.moe_layers;
      i.expert_bytes = std::max(i.expert_bytes, l.experts[0].bytes());
      i.token_layer_bytes += uint64_t(c.experts_per_token) * l.experts[0].bytes();
    }
    return i;
  }

  MemoryPlan plan_for(int64_t context, size_t logit_rows, size_t sequences) const override {
    RuntimeShape s = sequences > 1 ? batch_shape(context, sequences) : shape(context, 1);
    if (sequences <= 1) s.max_logit_rows = std::min(std::max<size_t>(logit_rows, 1), s.max_rows);
    return to_public(plan_runtime(model_, units_, opt_, s, pool_.size()), s, units_.size());
  }

  std::string io_method() const override { return io_method_name(io_choice().method); }
  std::string io_method_reason() const override { return io_choice().reason; }

  GenerateResult generate(const GenerateRequest& req) override {
    validate_sampling(req.sampling);
    if (req.max_new_tokens < 0) throw UsageError("the number of new tokens must be >= 0");
    check_prompt(req.prompt_ids);
    const int64_t need = int64_t(req.prompt_ids.size()) + req.max_new_tokens;
    check_context(need);
    Active a = runtime(Use::Generate, need, 1, req.prompt_ids.size());
    Runtime& rt = *a.rt;
    check_runtime_context(rt, need);
    auto st = std::make_shared<RequestHandle::State>();
    st->req.prompt_ids = req.prompt_ids;
    st->req.max_new_tokens = req.max_new_tokens;
    st->req.sampling = req.sampling;
    st->req.stop_at_eos = req.stop_at_eos;
    st->req.lookup_ngram = req.lookup_ngram;
    st->req.draft_tokens = req.draft_tokens;
    if (req.on_token) st->req.on_token = [cb = req.on_token](const TokenEvent& e) { cb(e.id); };
    st->record_passes = true;
    const RequestResult r = a.sched->submit(st).wait();
    if (r.finish_reason == "error") throw Error(r.error);
    GenerateResult out;
    out.output_ids = r.output_ids;
    out.finish_reason = r.finish_reason;
    out.prefill_s = r.prefill_s;
    out.decode_s = r.decode_s;
    out.passes = st->pass_log;
    out.plan = to_public(rt.plan, rt.shape, units_.size());
    out.peak_ledger_bytes = rt.ledger.peak();
    out.io_method = rt.io->name();
    out.drafted_tokens = r.drafted_tokens;
    out.accepted_tokens = r.accepted_tokens;
    out.token_passes = r.token_passes;
    return out;
  }

  ScoreResult score(const std::vector<int32_t>& ids, bool keep_logits) override {
    check_prompt(ids);
    const int64_t n = int64_t(ids.size());
    check_context(n);
    Active a = runtime(Use::Score, n, 1, ids.size());
    Runtime& rt = *a.rt;
    check_runtime_context(rt, n);
    ScoreResult out;
    out.plan = to_public(rt.plan, rt.shape, units_.size());
    out.io_method = rt.io->name();
    const size_t vocab = size_t(model_.config.vocab_size);
    if (keep_logits) out.logits.resize(size_t(n) * vocab);
    double sum = 0;
    auto st = std::make_shared<RequestHandle::State>();
    st->req.prompt_ids = ids;
    st->req.max_new_tokens = 0;
    st->req.stop_at_eos = false;
    st->all_logits = true;
    st->record_passes = true;
    // Runs on the scheduler thread, positions in order; `out` is not read
    // before wait() returns.
    st->on_logits = [&](int64_t t, const float* row) {
      out.argmax.push_back(argmax(row, vocab));
      if (keep_logits) std::copy(row, row + vocab, out.logits.begin() + t * int64_t(vocab));
      if (t + 1 < n) {
        double mx = row[out.argmax.back()], z = 0;
        for (size_t j = 0; j < vocab; ++j) z += std::exp(double(row[j]) - mx);
        double lp = double(row[ids[size_t(t + 1)]]) - mx - std::log(z);
        out.logprobs.push_back(lp);
        sum += lp;
      }
    };
    const RequestResult r = a.sched->submit(st).wait();
    if (r.finish_reason == "error") throw Error(r.error);
    out.passes = st->pass_log;
    out.perplexity = out.logprobs.empty() ? 1.0 : std::exp(-sum / double(out.logprobs.size()));
    return out;
  }

  size_t auto_batch_size(int64_t context, size_t cap) const override {
    // The largest batch whose plan fits: KV pages and activations grow with
    // it, and a budget spent on them is not spent on resident layers, but
    // every extra sequence shares each layer read, which is the larger win.
    size_t lo = 1, hi = std::max<size_t>(cap, 1);
    if (!fits(batch_shape(context, lo))) return 1;  // make_plan will explain the minimum
    while (lo < hi) {
      size_t mid = (lo + hi + 1) / 2;
      if (fits(batch_shape(context, mid))) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  double read_only_pass_seconds(int passes) override {
    Active a = runtime(Use::Generate, 1, 1);
    Runtime& rt = *a.rt;
    std::lock_guard<std::mutex> lk(a.sched->pass_mutex());
    std::vector<double> secs;
    for (int p = 0; p < std::max(passes, 2); ++p) {
      const auto t0 = Clock::now();
      for (size_t i = 0; i < units_.size(); ++i) {
        rt.store->acquire(i);
        rt.store->release(i);
      }
      // The first pass starts with the slots the previous call left loaded.
      if (p > 0) secs.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
    std::sort(secs.begin(), secs.end());
    return secs[secs.size() / 2];
  }

  BatchStats generate_batch(const std::function<std::optional<SequenceRequest>()>& next,
                            const std::function<void(SequenceResult&&)>& done, const BatchOptions& bo) override {
    if (bo.context <= 0) throw UsageError("batch context must be positive");
    check_context(bo.context);
    Active a = runtime(Use::Batch, bo.context, bo.max_sequences);
    Runtime& rt = *a.rt;
    check_runtime_context(rt, bo.context);
    const size_t n = std::min(bo.max_sequences ? bo.max_sequences : rt.shape.sequences, a.sched->max_running());
    const EngineStats s0 = stats();
    const auto t0 = Clock::now();

    // Finished requests come back from the scheduler thread; `done` runs
    // here, on the caller's thread.
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::pair<uint64_t, std::shared_ptr<RequestHandle::State>>> finished;
    size_t inflight = 0;
    bool exhausted = false;
    std::string error;
    // Two batches in flight keep the queue ahead of the loop; results do
    // not depend on it.
    const size_t ahead = 2 * n;
    std::unordered_map<const void*, RequestHandle> handles;
    // `done`, `next` or a check may throw with requests in flight whose
    // on_done points at this frame: cancel and wait for them first.
    struct Drain {
      std::unordered_map<const void*, RequestHandle>& h;
      ~Drain() {
        for (auto& x : h) x.second.cancel();
        for (auto& x : h) x.second.wait();
      }
    } drain{handles};
    for (;;) {
      while (!exhausted && inflight < ahead) {
        std::optional<SequenceRequest> r = next();
        if (!r) {
          exhausted = true;
          break;
        }
        if (r->prompt_ids.empty()) throw UsageError("a sequence has an empty prompt");
        const int64_t need = int64_t(r->prompt_ids.size()) + r->max_new_tokens;
        if (need > bo.context)
          throw UsageError(fmt::format("a sequence needs {} positions but the batch context is {}", need, bo.context));
        for (int32_t id : r->prompt_ids)
          if (id < 0 || id >= model_.config.vocab_size)
            throw UsageError(
                fmt::format("prompt token {} is outside the vocabulary (0..{})", id, model_.config.vocab_size - 1));
        validate_sampling(r->sampling);
        if (!r->stop_strings.empty() && !tokenizer())
          throw UsageError("stop_strings need the model's tokenizer");
        auto st = std::make_shared<RequestHandle::State>();
        st->req.prompt_ids = std::move(r->prompt_ids);
        st->req.max_new_tokens = r->max_new_tokens;
        st->req.sampling = r->sampling;
        st->req.stop_at_eos = r->stop_at_eos;
        st->req.stop_strings = std::move(r->stop_strings);
        st->req.lookup_ngram = r->lookup_ngram;
        st->req.draft_tokens = r->draft_tokens;
        st->should_stop = std::move(r->should_stop);
        const uint64_t key = r->key;
        // Notified under the lock: once this frame sees the last result it
        // may return and destroy `cv`, which must not still be in use by
        // the scheduler thread (found by ThreadSanitizer).
        st->on_done = [&, key, w = std::weak_ptr<RequestHandle::State>(st)] {
          std::lock_guard<std::mutex> lk(mu);
          finished.emplace_back(key, w.lock());
          cv.notify_all();
        };
        handles.emplace(st.get(), RequestHandle(st));
        ++inflight;
        a.sched->submit(st);
      }
      if (inflight == 0) break;
      std::vector<std::pair<uint64_t, std::shared_ptr<RequestHandle::State>>> got;
      {
        std::unique_lock<std::mutex> lk(mu);
        cv.wait(lk, [&] { return !finished.empty(); });
        got.swap(finished);
      }
      for (auto& [key, st] : got) {
        --inflight;
        handles.erase(st.get());
        RequestResult& r = st->result;
        if (r.finish_reason == "error" && error.empty()) error = r.error;
        if (!error.empty()) continue;
        SequenceResult sr;
        sr.key = key;
        sr.output_ids = std::move(r.output_ids);
        sr.finish_reason = r.finish_reason;
        sr.prompt_tokens = r.prompt_tokens;
        sr.text = std::move(r.text);
        done(std::move(sr));
      }
      if (!error.empty()) exhausted = true;
    }
    if (!error.empty()) throw Error(error);
    const EngineStats s1 = stats();
    BatchStats st;
    st.sequences = n;
    st.passes = s1.passes - s0.passes;
    st.generated_tokens = s1.generated_tokens - s0.generated_tokens;
    st.prompt_tokens = s1.prompt_tokens - s0.prompt_tokens;
    st.bytes_read = s1.bytes_read - s0.bytes_read;
    st.io_wait_s = s1.io_wait_s - s0.io_wait_s;
    st.wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
    st.plan = to_public(rt.plan, rt.shape, units_.size());
    return st;
  }

  RequestHandle submit(Request req) override {
    validate_sampling(req.sampling);
    if (req.max_new_tokens < 0) throw UsageError("max_new_tokens must be >= 0");
    check_prompt(req.prompt_ids);
    if (req.top_logprobs > 20) throw UsageError("top_logprobs must be at most 20");
    if (!req.stop_strings.empty() && !tokenizer())
      throw UsageError("stop_strings need the model's tokenizer (no tokenizer.json beside the weights)");
    const int64_t need = int64_t(req.prompt_ids.size()) + req.max_new_tokens;
    check_context(need);
    Active a = runtime(Use::Submit, need, 0, req.prompt_ids.size());
    Runtime& rt = *a.rt;
    check_runtime_context(rt, need);
    if (req.prefix) {
      auto kept = std::dynamic_pointer_cast<const KeptSequence>(req.prefix);
      if (!kept || kept->runtime() != a.rt.get())
        throw UsageError("prefix must be a cache kept by this Engine (RequestResult::cache)");
    }
    auto st = std::make_shared<RequestHandle::State>();
    st->req = std::move(req);
    return a.sched->submit(st);
  }

  void load(int64_t context) override {
    if (context < 1) throw UsageError("context must be at least 1");
    check_context(context);
    runtime(Use::Generate, context, 1);
  }

  EngineStats stats() const override {
    EngineStats s;
    std::lock_guard<std::mutex> lk(rt_mu_);
    if (!runtime_) return s;
    sched_->add_stats(s);
    s.requests_submitted += retired_.requests_submitted;
    s.requests_finished += retired_.requests_finished;
    s.requests_cancelled += retired_.requests_cancelled;
    s.prompt_tokens += retired_.prompt_tokens;
    s.generated_tokens += retired_.generated_tokens;
    s.passes += retired_.passes;
    s.pass_rows += retired_.pass_rows;
    s.bytes_read += retired_.bytes_read;
    s.io_wait_s += retired_.io_wait_s;
    s.compute_s += retired_.compute_s;
    s.preemptions += retired_.preemptions;
    s.experts_routed += retired_.experts_routed;
    s.expert_hits += retired_.expert_hits;
    s.expert_bytes_read += retired_.expert_bytes_read;
    s.resident_bytes_read = retired_.resident_bytes_read + runtime_->resident_bytes_read;
    s.startup_s = retired_.startup_s + runtime_->startup_s;
    return s;
  }

  const Tokenizer* tokenizer() const override {
    std::call_once(tok_once_, [&] {
      std::filesystem::path dir = std::filesystem::is_directory(model_.dir) ? model_.dir : model_.dir.parent_path();
      if (!std::filesystem::exists(dir / "tokenizer.json")) return;
      try {
        tok_ = std::make_unique<Tokenizer>(Tokenizer::from_file(dir / "tokenizer.json"));
      } catch (const Error&) {
        // Generation from ids works without it; text features say it is missing.
      }
    });
    return tok_.get();
  }

  void shutdown() override {
    std::lock_guard<std::mutex> lk(rt_mu_);
    if (sched_) sched_->shutdown();
  }

 private:
  // Rows per pass before the planner widens them (max_prefill_rows = 0).
  size_t prefill_rows() const { return opt_.max_prefill_rows ? opt_.max_prefill_rows : 512; }

  RuntimeShape base_shape() const {
    RuntimeShape s;
    s.page_positions = opt_.kv_page_positions;
    s.kv_type = kv_type_;
    return s;
  }

  RuntimeShape batch_shape(int64_t context, size_t sequences) const {
    RuntimeShape s = shape(context, sequences);
    // Decode rows of every sequence plus a prompt chunk share a pass.
    s.max_rows = std::max(sequences, size_t(std::min<int64_t>(int64_t(prefill_rows()), context * int64_t(sequences))));
    return s;
  }

  RuntimeShape shape(int64_t context, size_t sequences) const {
    RuntimeShape s = base_shape();
    s.context = std::max<int64_t>(context, 1);
    s.sequences = sequences;
    s.max_rows = size_t(std::min<int64_t>(s.context, int64_t(prefill_rows())));
    // A sequence's last token and its drafts all need logits.
    s.max_logit_rows = sequences * (1 + opt_.draft_tokens);
    s.max_rows = std::max(s.max_rows, s.max_logit_rows);
    s.kv_pages = sequences * KvPool::pages_for(s.context + int64_t(opt_.draft_tokens), s.page_positions);
    if (opt_.kv_pages) s.kv_pages = opt_.kv_pages;
    return s;
  }

  bool fits(const RuntimeShape& s) const {
    try {
      plan_runtime(model_, units_, opt_, s, pool_.size());
      return true;
    } catch (const Error&) {
      return false;
    }
  }

  // The runtime, built at first use. Its shape: positions per sequence are
  // EngineOptions::context, or else the most the budget allows up to
  // min(model, 4096) (never below what the first request needs; a batch
  // job's own context for generate_batch); sequences are max_sequences, or
  // else 1 for generate/score and the budget's largest batch (at most 64)
  // for generate_batch and submit.
  struct Active {
    std::shared_ptr<Runtime> rt;
    std::shared_ptr<Scheduler> sched;
  };

  Active runtime(Use use, int64_t need, size_t sequences, size_t prompt_rows = 0) {
    std::lock_guard<std::mutex> lk(rt_mu_);
    if (runtime_ && need > runtime_->shape.context && !opt_.context && sched_->idle() &&
        runtime_.use_count() == 2) {
      // A longer request than the automatic context allowed, with nothing
      // running and no kept cache: plan again (legacy single-request
      // callers that open with a budget for their longest request). The
      // resident units are read again; EngineOptions::context avoids it.
      sched_->shutdown();
      sched_->add_stats(retired_);
      retired_.resident_bytes_read += runtime_->resident_bytes_read;
      retired_.startup_s += runtime_->startup_s;
      sched_.reset();
      runtime_.reset();
    }
    if (runtime_) return {runtime_, sched_};
    const size_t max_rows_for_score = size_t(need);
    // The first request's prompt in one pass when the budget allows it,
    // even before resident units: each pass over a long prompt reads every
    // streamed layer again.
    size_t rows_hint = opt_.max_prefill_rows ? 0 : prompt_rows;
    auto make = [&](int64_t ctx, size_t seqs) {
      RuntimeShape s = seqs > 1 ? batch_shape(ctx, seqs) : shape(ctx, 1);
      if (rows_hint) s.max_rows = std::max(s.max_rows, std::min(rows_hint, size_t(ctx)));
      if (use == Use::Score) s.max_logit_rows = std::max(s.max_logit_rows, std::min(s.max_rows, max_rows_for_score));
      return s;
    };
    if (rows_hint && !fits(make(need, 1))) rows_hint = 0;
    int64_t ctx = opt_.context;
    if (!ctx) {
      const int64_t want = use == Use::Batch ? need : std::max(need, std::min<int64_t>(4096, model_.config.max_position_embeddings));
      // The largest context in [need, want] that costs no streaming slot of
      // what the first request alone would get (resident units may give way
      // to it): room for later, longer requests. Callers that know their
      // longest request (the CLI) set EngineOptions::context instead.
      std::optional<Plan> base;
      try {
        base = plan_runtime(model_, units_, opt_, make(need, 1), pool_.size());
      } catch (const Error&) {
      }
      auto same = [&](int64_t c) {
        if (!base) return false;
        try {
          Plan p = plan_runtime(model_, units_, opt_, make(c, 1), pool_.size());
          return p.n_slots == base->n_slots;
        } catch (const Error&) {
          return false;
        }
      };
      int64_t lo = need, hi = std::max(want, need);
      if (same(hi)) lo = hi;
      while (lo < hi) {
        int64_t mid = lo + (hi - lo + 1) / 2;
        if (same(mid)) lo = mid;
        else hi = mid - 1;
      }
      ctx = lo;
    }
    size_t seqs = opt_.max_sequences ? opt_.max_sequences : sequences;
    if (!seqs) seqs = (use == Use::Generate || use == Use::Score) ? 1 : auto_batch_size(ctx, 64);
    RuntimeShape s = make(ctx, seqs);
    if (!opt_.max_prefill_rows) s = widen_rows(s);
    tokenizer();
    runtime_ = std::make_shared<Runtime>(model_, units_, opt_, s, pool_, io_choice().method);
    sched_ = std::make_shared<Scheduler>(model_.config, runtime_, tokenizer(),
                                         std::min(s.sequences, s.max_logit_rows / (1 + opt_.draft_tokens)),
                                         draft_.get());
    return {runtime_, sched_};
  }

  // Long prompts in few passes: every pass reads each streamed layer once,
  // so a prompt split over k passes reads the model k times. Rows grow (up
  // to the context) while the activations they need fit in what the plan
  // leaves over, never at the cost of a resident unit or a streaming slot.
  RuntimeShape widen_rows(RuntimeShape s) const {
    Plan base;
    try {
      base = plan_runtime(model_, units_, opt_, s, pool_.size());
    } catch (const Error&) {
      return s;  // the caller's plan reports the problem
    }
    auto same = [&](size_t rows) {
      RuntimeShape t = s;
      t.max_rows = rows;
      try {
        Plan p = plan_runtime(model_, units_, opt_, t, pool_.size());
        return p.n_slots == base.n_slots && p.resident_units() == base.resident_units();
      } catch (const Error&) {
        return false;
      }
    };
    size_t lo = s.max_rows, hi = std::max(s.max_rows, size_t(s.context));
    if (same(hi)) lo = hi;
    while (lo < hi) {
      size_t mid = lo + (hi - lo + 1) / 2;
      if (same(mid)) lo = mid;
      else hi = mid - 1;
    }
    s.max_rows = lo;
    return s;
  }

  void check_prompt(const std::vector<int32_t>& ids) const {
    if (ids.empty()) throw UsageError("the prompt is empty: give at least one token id");
    for (size_t i = 0; i < ids.size(); ++i)
      if (ids[i] < 0 || ids[i] >= model_.config.vocab_size)
        throw UsageError(fmt::format("prompt token {} at position {} is outside the vocabulary (0..{})", ids[i], i,
                                     model_.config.vocab_size - 1));
  }

  void check_context(int64_t needed) const {
    if (needed > model_.config.max_position_embeddings)
      throw UsageError(fmt::format("prompt plus new tokens ({}) exceed the model's context of {} positions", needed,
                                   model_.config.max_position_embeddings));
  }

  void check_runtime_context(const Runtime& rt, int64_t needed) const {
    if (needed > rt.shape.context)
      throw UsageError(fmt::format("prompt plus new tokens ({}) exceed the {} positions per sequence this Engine "
                                   "was planned for (EngineOptions::context, max_memory)",
                                   needed, rt.shape.context));
  }

  // Chosen on first use: a calibration reads the disk, which `info` on a
  // small model or a plan query should not pay for.
  const IoChoice& io_choice() const {
    std::call_once(io_once_, [&] {
      std::optional<IoMethod> req;
      if (!opt_.io.empty() && opt_.io != "auto") req = parse_io_method(opt_.io);
      ModelFiles files(model_.index.files);
      io_choice_ = choose_io_method(files, req);
    });
    return *io_choice_;
  }

  EngineOptions opt_;
  KvType kv_type_ = KvType::F16;
  mutable std::once_flag io_once_, tok_once_;
  mutable std::optional<IoChoice> io_choice_;
  mutable std::unique_ptr<Tokenizer> tok_;
  ModelLayout model_;
  std::vector<StreamUnit> units_;
  mutable ThreadPool pool_;
  mutable std::mutex rt_mu_;
  std::shared_ptr<Engine> draft_;  // before sched_: outlives the loop that drafts with it
  std::shared_ptr<Runtime> runtime_;
  std::shared_ptr<Scheduler> sched_;  // after runtime_: stopped before it goes
  EngineStats retired_;               // counters of runtimes planned again
};

}  // namespace

std::unique_ptr<Engine> Engine::open(const std::filesystem::path& dir, const EngineOptions& opt) {
  return std::make_unique<EngineImpl>(dir, opt);
}

}  // namespace strata
