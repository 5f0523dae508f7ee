// Everything a request needs at run time, sized for it and charged to one
// ledger: the plan, the open files, the layer store, the KV cache and the
// forward pass. Built per request shape; the model layout is shared.
#pragma once

#include <memory>

#include "arch/model_layout.h"
#include "core/memory_ledger.h"
#include "core/thread_pool.h"
#include "engine/transformer.h"
#include "runtime/io_engine.h"
#include "runtime/kv_cache.h"
#include "runtime/layer_store.h"
#include "runtime/model_files.h"
#include "runtime/planner.h"
#include "strata/strata.h"

namespace strata {

struct SessionShape {
  int64_t context = 0;        // KV positions per sequence
  size_t sequences = 1;
  size_t max_rows = 1;        // rows per forward pass
  size_t max_logit_rows = 1;
};

// Computes the plan without allocating anything.
Plan plan_session(const ModelLayout& m, const std::vector<StreamUnit>& units, const EngineOptions& opt,
                  const SessionShape& shape, size_t threads);
MemoryPlan to_public(const Plan& p, int64_t context, size_t units);

class Session {
 public:
  Session(const ModelLayout& m, const std::vector<StreamUnit>& units, const EngineOptions& opt,
          const SessionShape& shape, ThreadPool& pool, IoMethod io_method = IoMethod::Pread);

  Plan plan;
  MemoryLedger ledger;
  ModelFiles files;
  std::unique_ptr<IoEngine> io;
  std::unique_ptr<LayerStore> store;
  std::vector<std::unique_ptr<KvCache>> caches;
  std::unique_ptr<Transformer> transformer;
};

}  // namespace strata
