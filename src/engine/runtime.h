// What an Engine keeps for its whole life, built once (at first use) and
// charged to one ledger: the plan, the open files and I/O engine, the layer
// store with its resident units (read exactly once per Engine) and
// streaming slots, the KV pool every sequence takes pages from, and the
// forward pass with activations for the largest pass the plan allows.
// Per-request state lives in the scheduler's sequences, not here.
#pragma once

#include <memory>

#include "arch/model_layout.h"
#include "core/memory_ledger.h"
#include "core/thread_pool.h"
#include "engine/transformer.h"
#include "runtime/expert_cache.h"
#include "runtime/io_engine.h"
#include "runtime/kv_pool.h"
#include "runtime/layer_store.h"
#include "runtime/model_files.h"
#include "runtime/planner.h"
#include "strata/strata.h"

namespace strata {

struct RuntimeShape {
  int64_t context = 0;        // positions one sequence may reach
  size_t sequences = 1;       // running at once
  size_t max_rows = 1;        // rows per forward pass
  size_t max_logit_rows = 1;
  size_t kv_pages = 0;        // pages in the KV pool
  size_t page_positions = 32;
  KvType kv_type = KvType::F16;
};

// Computes the plan without allocating anything.
Plan plan_runtime(const ModelLayout& m, const std::vector<StreamUnit>& units, const EngineOptions& opt,
                  const RuntimeShape& shape, size_t threads);
MemoryPlan to_public(const Plan& p, const RuntimeShape& shape, size_t units);

class Runtime {
 public:
  Runtime(const ModelLayout& m, const std::vector<StreamUnit>& units, const EngineOptions& opt,
          const RuntimeShape& shape, ThreadPool& pool, IoMethod io_method = IoMethod::Pread);

  RuntimeShape shape;
  Plan plan;
  MemoryLedger ledger;
  ModelFiles files;
  std::unique_ptr<IoEngine> io;
  std::unique_ptr<KvPool> kv;
  std::unique_ptr<LayerStore> store;
  std::unique_ptr<ExpertCache> experts;   // MoE models only
  std::unique_ptr<Transformer> transformer;
  double startup_s = 0;               // building all of it, resident units loaded
  uint64_t resident_bytes_read = 0;   // loading resident units
};

}  // namespace strata
