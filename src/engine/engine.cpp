// The public Engine: validates requests, sizes a Session for each, and runs
// generation (one pass for the prompt, one per new token) and scoring.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/error.h"
#include "engine/batch_scheduler.h"
#include "engine/sampler.h"
#include "engine/session.h"
#include "runtime/io_select.h"
#include "strata/strata.h"

namespace strata {
namespace {

using Clock = std::chrono::steady_clock;

PassStats to_public(const PassProfile& p) { return {p.rows, p.wall_s, p.io_wait_s, p.compute_s, p.bytes_read}; }

class EngineImpl final : public Engine {
 public:
  EngineImpl(const std::filesystem::path& dir, const EngineOptions& opt)
      : opt_(opt), model_(open_model_layout(dir)), units_(build_stream_units(model_)), pool_(opt.threads) {
    if (opt_.max_prefill_rows == 0) throw UsageError("max_prefill_rows must be positive");
    if (!opt_.io.empty() && opt_.io != "auto" && !parse_io_method(opt_.io))
      throw UsageError("unknown I/O method '" + opt_.io + "' (expected auto, uring, direct, pread or buffered)");
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
    i.dtype = std::string(dtype_name(model_.layers[0].by_role[size_t(Role::Q)]->dtype));
    i.parameters = model_.parameter_count();
    i.total_bytes = model_.total_bytes();
    for (const auto& l : model_.layers) i.layer_bytes = std::max(i.layer_bytes, l.bytes);
    i.embedding_bytes = model_.embed->nbytes;
    i.head_bytes = model_.lm_head->nbytes + model_.final_norm->nbytes;
    i.eos_token_ids = c.eos_token_ids;
    i.bos_token_id = c.bos_token_id;
    return i;
  }

  MemoryPlan plan_for(int64_t context, size_t logit_rows, size_t sequences) const override {
    SessionShape s = sequences > 1 ? batch_shape(context, sequences) : shape(context, 1);
    if (sequences <= 1) s.max_logit_rows = std::min(std::max<size_t>(logit_rows, 1), s.max_rows);
    return to_public(plan_session(model_, units_, opt_, s, pool_.size()), context, units_.size());
  }

  std::string io_method() const override { return io_method_name(io_choice().method); }
  std::string io_method_reason() const override { return io_choice().reason; }

  GenerateResult generate(const GenerateRequest& req) override {
    validate_sampling(req.sampling);
    if (req.max_new_tokens < 0) throw UsageError("the number of new tokens must be >= 0");
    check_prompt(req.prompt_ids);
    const int64_t context = int64_t(req.prompt_ids.size()) + req.max_new_tokens;
    check_context(context);
    Session& s = session(shape(context, 1));
    KvCache& kv = *s.caches[0];
    kv.length = 0;

    GenerateResult out;
    out.plan = to_public(s.plan, s.caches[0]->capacity(), units_.size());
    Sampler sampler(req.sampling);
    const auto& eos = model_.config.eos_token_ids;
    const size_t vocab = size_t(model_.config.vocab_size);
    auto t0 = Clock::now();
    const float* logits = prefill(s, req.prompt_ids, kv, out.passes);
    out.prefill_s = std::chrono::duration<double>(Clock::now() - t0).count();
    out.finish_reason = "length";
    auto t1 = Clock::now();
    int64_t pos = int64_t(req.prompt_ids.size());
    for (int i = 0; i < req.max_new_tokens; ++i) {
      int32_t next = sampler.sample(logits, vocab);
      out.output_ids.push_back(next);
      if (req.on_token) req.on_token(next);
      if (req.stop_at_eos && std::find(eos.begin(), eos.end(), next) != eos.end()) {
        out.finish_reason = "stop";
        break;
      }
      if (i + 1 == req.max_new_tokens) break;
      PassProfile prof;
      logits = s.transformer->forward({BatchRow{next, pos++, &kv, true}}, &prof);
      out.passes.push_back(to_public(prof));
    }
    out.decode_s = std::chrono::duration<double>(Clock::now() - t1).count();
    out.peak_ledger_bytes = s.ledger.peak();
    out.io_method = s.io->name();
    return out;
  }

  ScoreResult score(const std::vector<int32_t>& ids, bool keep_logits) override {
    check_prompt(ids);
    const int64_t n = int64_t(ids.size());
    check_context(n);
    SessionShape sh = shape(n, 1);
    sh.max_logit_rows = sh.max_rows;  // every position's logits
    Session& s = session(sh);
    KvCache& kv = *s.caches[0];
    kv.length = 0;
    ScoreResult out;
    out.plan = to_public(s.plan, kv.capacity(), units_.size());
    out.io_method = s.io->name();
    const size_t vocab = size_t(model_.config.vocab_size);
    if (keep_logits) out.logits.resize(size_t(n) * vocab);
    double sum = 0;
    for (int64_t begin = 0; begin < n; begin += int64_t(sh.max_rows)) {
      int64_t end = std::min(n, begin + int64_t(sh.max_rows));
      Batch b;
      for (int64_t t = begin; t < end; ++t) b.push_back({ids[size_t(t)], t, &kv, true});
      PassProfile prof;
      const float* logits = s.transformer->forward(b, &prof);
      out.passes.push_back(to_public(prof));
      for (int64_t t = begin; t < end; ++t) {
        const float* row = logits + size_t(t - begin) * vocab;
        out.argmax.push_back(argmax(row, vocab));
        if (keep_logits) std::copy(row, row + vocab, out.logits.begin() + t * int64_t(vocab));
        if (t + 1 < n) {
          double mx = row[out.argmax.back()], z = 0;
          for (size_t j = 0; j < vocab; ++j) z += std::exp(double(row[j]) - mx);
          double lp = double(row[ids[size_t(t + 1)]]) - mx - std::log(z);
          out.logprobs.push_back(lp);
          sum += lp;
        }
      }
    }
    out.perplexity = out.logprobs.empty() ? 1.0 : std::exp(-sum / double(out.logprobs.size()));
    return out;
  }

  size_t auto_batch_size(int64_t context, size_t cap) const override {
    // The largest batch whose plan fits: KV caches and activations grow with
    // it, and a budget spent on them is not spent on resident layers, but
    // every extra sequence shares each layer read, which is the larger win.
    size_t lo = 1, hi = std::max<size_t>(cap, 1);
    if (!fits(context, lo)) return 1;  // make_plan will explain the minimum
    while (lo < hi) {
      size_t mid = (lo + hi + 1) / 2;
      if (fits(context, mid)) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  double read_only_pass_seconds(int passes) override {
    Session& s = session_ ? *session_ : session(shape(1, 1));
    std::vector<double> secs;
    for (int p = 0; p < std::max(passes, 2); ++p) {
      const auto t0 = std::chrono::steady_clock::now();
      for (size_t i = 0; i < units_.size(); ++i) {
        s.store->acquire(i);
        s.store->release(i);
      }
      // The first pass starts with the slots the previous call left loaded.
      if (p > 0) secs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(secs.begin(), secs.end());
    return secs[secs.size() / 2];
  }

  BatchStats generate_batch(const std::function<std::optional<SequenceRequest>()>& next,
                            const std::function<void(SequenceResult&&)>& done, const BatchOptions& bo) override {
    if (bo.context <= 0) throw UsageError("batch context must be positive");
    check_context(bo.context);
    size_t n = bo.max_sequences ? bo.max_sequences : auto_batch_size(bo.context, 64);
    Session& s = session(batch_shape(bo.context, n));
    BatchStats st = run_batch(s, model_.config, next, done);
    st.plan = to_public(s.plan, bo.context, units_.size());
    return st;
  }

 private:
  SessionShape batch_shape(int64_t context, size_t sequences) const {
    SessionShape s = shape(context, sequences);
    // Decode rows of every sequence plus a prompt chunk share a pass.
    s.max_rows = std::max(sequences, size_t(std::min<int64_t>(int64_t(opt_.max_prefill_rows), context * int64_t(sequences))));
    return s;
  }

  bool fits(int64_t context, size_t sequences) const {
    try {
      plan_session(model_, units_, opt_, batch_shape(context, sequences), pool_.size());
      return true;
    } catch (const Error&) {
      return false;
    }
  }

  SessionShape shape(int64_t context, size_t sequences) const {
    SessionShape s;
    s.context = std::max<int64_t>(context, 1);
    s.sequences = sequences;
    s.max_rows = size_t(std::min<int64_t>(s.context, int64_t(opt_.max_prefill_rows)));
    s.max_logit_rows = sequences;
    return s;
  }

  Session& session(const SessionShape& sh) {
    // Reuse the current session when it is big enough for this request.
    if (!session_ || shape_.context < sh.context || shape_.max_rows < sh.max_rows ||
        shape_.max_logit_rows < sh.max_logit_rows || shape_.sequences != sh.sequences) {
      session_.reset();
      session_ = std::make_unique<Session>(model_, units_, opt_, sh, pool_, io_choice().method);
      shape_ = sh;
    }
    return *session_;
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

  // The prompt in passes of up to max_rows positions; logits only for the
  // last position.
  const float* prefill(Session& s, const std::vector<int32_t>& ids, KvCache& kv, std::vector<PassStats>& passes) {
    const float* logits = nullptr;
    const size_t step = s.transformer->max_rows();
    for (size_t begin = 0; begin < ids.size(); begin += step) {
      size_t end = std::min(ids.size(), begin + step);
      Batch b;
      for (size_t t = begin; t < end; ++t) b.push_back({ids[t], int64_t(t), &kv, t + 1 == ids.size()});
      PassProfile prof;
      logits = s.transformer->forward(b, &prof);
      passes.push_back(to_public(prof));
    }
    return logits;
  }

  // Chosen on first use: a calibration reads the disk, which `info` on a
  // small model or a plan query should not pay for.
  const IoChoice& io_choice() const {
    if (!io_choice_) {
      std::optional<IoMethod> req;
      if (!opt_.io.empty() && opt_.io != "auto") req = parse_io_method(opt_.io);
      ModelFiles files(model_.index.files);
      io_choice_ = choose_io_method(files, req);
    }
    return *io_choice_;
  }

  EngineOptions opt_;
  mutable std::optional<IoChoice> io_choice_;
  ModelLayout model_;
  std::vector<StreamUnit> units_;
  mutable ThreadPool pool_;
  std::unique_ptr<Session> session_;
  SessionShape shape_;
};

}  // namespace

std::unique_ptr<Engine> Engine::open(const std::filesystem::path& dir, const EngineOptions& opt) {
  return std::make_unique<EngineImpl>(dir, opt);
}

}  // namespace strata
