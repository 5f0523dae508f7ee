#include "engine/runtime.h"

#include <chrono>

namespace strata {

Plan plan_runtime(const ModelLayout& m, const std::vector<StreamUnit>& units, const EngineOptions& opt,
                  const RuntimeShape& s, size_t threads) {
  const ModelConfig& c = m.config;
  PlanRequest r;
  r.budget = opt.max_memory;
  r.kv_bytes = KvPool::bytes_for(c.num_layers, c.kv_dim(), s.page_positions, s.kv_pages, s.kv_type);
  r.activation_bytes = Transformer::activation_bytes(c, s.max_rows, s.context, threads);
  r.logits_bytes = Transformer::logits_bytes(c, s.max_logit_rows);
  r.slots = opt.streaming_slots;
  r.experts = expert_count(units);
  r.expert_slot_bytes = largest_expert_bytes(units);
  r.min_expert_slots = size_t(c.experts_per_token);
  return make_plan(units, r);
}

MemoryPlan to_public(const Plan& p, const RuntimeShape& s, size_t units) {
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
  o.expert_slots = p.expert_slots;
  o.expert_slot_bytes = p.expert_slot_bytes;
  o.context = s.context;
  o.kv_pages = s.kv_pages;
  o.kv_page_positions = s.page_positions;
  o.kv_type = kv_type_name(s.kv_type);
  o.max_rows = s.max_rows;
  return o;
}

Runtime::Runtime(const ModelLayout& m, const std::vector<StreamUnit>& units, const EngineOptions& opt,
                 const RuntimeShape& sh, ThreadPool& pool, IoMethod io_method)
    : shape(sh), plan(plan_runtime(m, units, opt, sh, pool.size())), ledger(plan.budget), files(m.index.files) {
  const auto t0 = std::chrono::steady_clock::now();
  io = make_io_engine(io_method, files);
  // Order matters for the peak: the big fixed buffers first, so a planning
  // error shows before any disk read.
  kv = std::make_unique<KvPool>(m.config.num_layers, m.config.kv_dim(), sh.page_positions, sh.kv_pages, sh.kv_type,
                                &ledger);
  store = std::make_unique<LayerStore>(units, plan, *io, ledger);
  resident_bytes_read = store->stats().bytes_read;
  if (plan.expert_slots)
    experts = std::make_unique<ExpertCache>(units, plan.expert_slots, plan.expert_slot_bytes, *io, ledger);
  transformer = std::make_unique<Transformer>(m, *store, *io, pool, ledger, sh.max_rows, sh.context,
                                              sh.max_logit_rows, experts.get());
  startup_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace strata
