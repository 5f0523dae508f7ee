#include "engine/session.h"

namespace strata {

Plan plan_session(const ModelLayout& m, const std::vector<StreamUnit>& units, const EngineOptions& opt,
                  const SessionShape& s, size_t threads) {
  const ModelConfig& c = m.config;
  PlanRequest r;
  r.budget = opt.max_memory;
  r.kv_bytes = KvCache::bytes_for(c.num_layers, s.context, c.kv_dim()) * s.sequences;
  r.activation_bytes = Transformer::activation_bytes(c, s.max_rows, s.context, threads);
  r.logits_bytes = Transformer::logits_bytes(c, s.max_logit_rows);
  r.slots = opt.streaming_slots;
  return make_plan(units, r);
}

MemoryPlan to_public(const Plan& p, int64_t context, size_t units) {
  MemoryPlan o;
  o.budget = p.budget;
  o.min_budget = p.min_budget;
  o.total_bytes = p.total_bytes;
  o.units = units;
  o.resident_units = p.resident_units();
  o.streaming_slots = p.n_slots;
  o.slot_bytes = p.slot_bytes;
  o.resident_bytes = p.resident_bytes;
  o.kv_cache_bytes = p.kv_bytes;
  o.activation_bytes = p.activation_bytes;
  o.logits_bytes = p.logits_bytes;
  o.streamed_bytes_per_pass = p.streamed_bytes_per_pass;
  o.context = context;
  return o;
}

Session::Session(const ModelLayout& m, const std::vector<StreamUnit>& units, const EngineOptions& opt,
                 const SessionShape& shape, ThreadPool& pool, IoMethod io_method)
    : plan(plan_session(m, units, opt, shape, pool.size())), ledger(plan.budget), files(m.index.files) {
  io = make_io_engine(io_method, files);
  // Order matters for the peak: the big fixed buffers first, so a planning
  // error shows before any disk read.
  for (size_t i = 0; i < shape.sequences; ++i)
    caches.push_back(std::make_unique<KvCache>(m.config.num_layers, shape.context, m.config.kv_dim(), &ledger));
  store = std::make_unique<LayerStore>(units, plan, *io, ledger);
  transformer = std::make_unique<Transformer>(m, *store, *io, pool, ledger, shape.max_rows, shape.context,
                                              shape.max_logit_rows);
}

}  // namespace strata
