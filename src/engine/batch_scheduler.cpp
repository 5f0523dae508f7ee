#include "engine/batch_scheduler.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <memory>

#include "core/error.h"
#include "engine/sampler.h"

namespace strata {
namespace {

struct Active {
  SequenceRequest req;
  std::unique_ptr<Sampler> sampler;
  KvCache* cache = nullptr;
  size_t prompt_done = 0;  // prompt positions already in the cache
  std::vector<int32_t> out;
  bool has_pending = false;  // out.back() still has to go through the model
};

}  // namespace

BatchStats run_batch(Session& s, const ModelConfig& c, const std::function<std::optional<SequenceRequest>()>& next,
                     const std::function<void(SequenceResult&&)>& done) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  BatchStats st;
  st.sequences = s.caches.size();
  std::vector<KvCache*> free_caches;
  for (auto it = s.caches.rbegin(); it != s.caches.rend(); ++it) free_caches.push_back(it->get());
  std::vector<Active> active;
  bool exhausted = false;
  const size_t vocab = size_t(c.vocab_size);
  const size_t max_rows = s.transformer->max_rows();
  const auto& eos = c.eos_token_ids;

  auto finish = [&](Active& a, const char* reason) {
    SequenceResult r{a.req.key, std::move(a.out), reason, a.req.prompt_ids.size()};
    free_caches.push_back(a.cache);
    a.cache = nullptr;
    done(std::move(r));
  };

  for (;;) {
    while (!exhausted && !free_caches.empty()) {
      std::optional<SequenceRequest> r = next();
      if (!r) {
        exhausted = true;
        break;
      }
      const int64_t need = int64_t(r->prompt_ids.size()) + r->max_new_tokens;
      if (r->prompt_ids.empty()) throw UsageError("a sequence has an empty prompt");
      if (need > free_caches.back()->capacity())
        throw UsageError(fmt::format("a sequence needs {} positions but the batch context is {}", need,
                                     free_caches.back()->capacity()));
      for (int32_t id : r->prompt_ids)
        if (id < 0 || id >= c.vocab_size)
          throw UsageError(fmt::format("prompt token {} is outside the vocabulary (0..{})", id, c.vocab_size - 1));
      validate_sampling(r->sampling);
      Active a;
      a.sampler = std::make_unique<Sampler>(r->sampling);
      a.req = std::move(*r);
      a.cache = free_caches.back();
      free_caches.pop_back();
      a.cache->length = 0;
      st.prompt_tokens += a.req.prompt_ids.size();
      if (a.req.max_new_tokens == 0) {
        finish(a, "length");
        continue;
      }
      active.push_back(std::move(a));
    }
    if (active.empty()) break;

    // Decode rows first (one each, they keep latency low), then prompt
    // chunks in arrival order with the rows that remain.
    Batch batch;
    std::vector<std::pair<size_t, size_t>> logit_owner;  // (active index, logits row)
    size_t logit_rows = 0;
    for (size_t i = 0; i < active.size(); ++i) {
      Active& a = active[i];
      if (!a.has_pending) continue;
      int64_t pos = int64_t(a.req.prompt_ids.size() + a.out.size()) - 1;
      batch.push_back({a.out.back(), pos, a.cache, true});
      logit_owner.emplace_back(i, logit_rows++);
    }
    for (size_t i = 0; i < active.size() && batch.size() < max_rows; ++i) {
      Active& a = active[i];
      if (a.prompt_done == a.req.prompt_ids.size()) continue;
      size_t take = std::min(a.req.prompt_ids.size() - a.prompt_done, max_rows - batch.size());
      for (size_t k = 0; k < take; ++k) {
        size_t p = a.prompt_done + k;
        bool last = p + 1 == a.req.prompt_ids.size();
        batch.push_back({a.req.prompt_ids[p], int64_t(p), a.cache, last});
        if (last) logit_owner.emplace_back(i, logit_rows++);
      }
      a.prompt_done += take;
    }
    PassProfile prof;
    const float* logits = s.transformer->forward(batch, &prof);
    ++st.passes;
    st.bytes_read += prof.bytes_read;
    st.io_wait_s += prof.io_wait_s;

    std::vector<bool> finished(active.size(), false);
    for (auto [i, row] : logit_owner) {
      Active& a = active[i];
      int32_t id = a.sampler->sample(logits + row * vocab, vocab);
      a.out.push_back(id);
      a.has_pending = true;
      ++st.generated_tokens;
      bool stop = a.req.stop_at_eos && std::find(eos.begin(), eos.end(), id) != eos.end();
      if (!stop && a.req.should_stop) stop = a.req.should_stop(a.out);
      if (stop) {
        finish(a, "stop");
        finished[i] = true;
      } else if (int(a.out.size()) >= a.req.max_new_tokens) {
        finish(a, "length");
        finished[i] = true;
      }
    }
    size_t w = 0;
    for (size_t i = 0; i < active.size(); ++i) {
      if (finished[i]) continue;
      if (w != i) active[w] = std::move(active[i]);
      ++w;
    }
    active.resize(w);
  }
  st.wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
  return st;
}

}  // namespace strata
