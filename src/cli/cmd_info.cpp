#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>

#include "commands.h"
#include "common.h"

namespace strata::cli {

Runner register_info(CLI::App& app) {
  struct Opts {
    ModelOptions model;
    int64_t context = 0;
    bool load = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("info", "Describe a model and the memory plan strata would use");
  add_model_options(*cmd, o->model);
  cmd->add_option("--context", o->context,
                  "Positions the plan's KV cache holds (default: min(2048, the model's context))")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--load", o->load,
                "Also build the runtime of the plan (read the resident units) and report the startup time");
  return [o]() {
    using Clock = std::chrono::steady_clock;
    const auto t0 = Clock::now();
    EngineOptions eo = engine_options(o->model);
    if (o->load) eo.context = o->context;  // the runtime load() builds is the plan shown (0 = set below)
    auto engine = open_engine(o->model, eo);
    const double open_s = std::chrono::duration<double>(Clock::now() - t0).count();
    ModelInfo i = engine->info();
    int64_t ctx = o->context ? o->context : std::min<int64_t>(2048, i.max_position_embeddings);
    if (o->load && !o->context) {
      // The default context was only known once the model was open.
      eo.context = ctx;
      engine = open_engine(o->model, eo);
    }
    MemoryPlan p = engine->plan_for(ctx);
    // Startup: opening the model (manifest, validation) plus building the
    // runtime (I/O engine, KV pool, slots, resident units read).
    EngineStats st;
    if (o->load) {
      engine->load(ctx);
      st = engine->stats();
    }
    if (json_output(o->model)) {
      nlohmann::json j = {{"path", i.path},
                          {"architecture", i.architecture},
                          {"family", i.family},
                          {"layers", i.layers},
                          {"hidden_size", i.hidden_size},
                          {"intermediate_size", i.intermediate_size},
                          {"heads", i.heads},
                          {"kv_heads", i.kv_heads},
                          {"head_dim", i.head_dim},
                          {"vocab_size", i.vocab_size},
                          {"max_position_embeddings", i.max_position_embeddings},
                          {"tied_embeddings", i.tied_embeddings},
                          {"dtype", i.dtype},
                          {"parameters", i.parameters},
                          {"total_bytes", i.total_bytes},
                          {"layer_bytes", i.layer_bytes},
                          {"embedding_bytes", i.embedding_bytes},
                          {"head_bytes", i.head_bytes},
                          {"eos_token_ids", i.eos_token_ids},
                          {"experts", i.experts},
                          {"experts_per_token", i.experts_per_token},
                          {"moe_layers", i.moe_layers},
                          {"expert_bytes", i.expert_bytes},
                          {"token_layer_bytes", i.token_layer_bytes},
                          {"all_layer_bytes", i.all_layer_bytes},
                          {"io_method", engine->io_method()},
                          {"io_method_reason", engine->io_method_reason()},
                          {"bytes_read_per_pass", p.streamed_bytes_per_pass},
                          {"min_memory_bytes", p.min_budget},
                          {"plan", plan_json(p)},
                          {"open_s", open_s}};
      if (o->load) {
        j["startup_s"] = open_s + st.startup_s;
        j["runtime_s"] = st.startup_s;
        j["resident_bytes_read"] = st.resident_bytes_read;
      }
      std::printf("%s\n", j.dump(2).c_str());
      return 0;
    }
    std::printf("model:          %s\n", i.path.c_str());
    std::printf("architecture:   %s (%s)\n", i.architecture.c_str(), i.family.c_str());
    std::printf("parameters:     %llu (%s, weights %s)\n", (unsigned long long)i.parameters,
                format_bytes(i.total_bytes).c_str(), i.dtype.c_str());
    std::printf("shape:          %lld layers, hidden %lld, ffn %lld, heads %lld (kv %lld, dim %lld), vocab %lld, "
                "context %lld%s\n",
                (long long)i.layers, (long long)i.hidden_size, (long long)i.intermediate_size, (long long)i.heads,
                (long long)i.kv_heads, (long long)i.head_dim, (long long)i.vocab_size,
                (long long)i.max_position_embeddings, i.tied_embeddings ? ", tied embeddings" : "");
    std::printf("bytes:          %s per layer, embedding %s, head %s\n", format_bytes(i.layer_bytes).c_str(),
                format_bytes(i.embedding_bytes).c_str(), format_bytes(i.head_bytes).c_str());
    if (i.experts) {
      std::printf("experts:        %lld per MoE layer (%lld of %lld layers), %lld per token, %s each\n",
                  (long long)i.experts, (long long)i.moe_layers, (long long)i.layers, (long long)i.experts_per_token,
                  format_bytes(i.expert_bytes).c_str());
      std::printf("per token:      %s of the layers (dense part + top-%lld experts) vs %s whole (%.1f%%)\n",
                  format_bytes(i.token_layer_bytes).c_str(), (long long)i.experts_per_token,
                  format_bytes(i.all_layer_bytes).c_str(),
                  100.0 * double(i.token_layer_bytes) / double(std::max<uint64_t>(i.all_layer_bytes, 1)));
    }
    std::printf("I/O method:     %s (%s)\n", engine->io_method().c_str(), engine->io_method_reason().c_str());
    std::printf("read per pass:  %s (model %s - resident %s)\n", format_bytes(p.streamed_bytes_per_pass).c_str(),
                format_bytes(i.total_bytes).c_str(), format_bytes(p.resident_bytes).c_str());
    std::printf("memory plan for a context of %lld positions:\n%s", (long long)ctx, plan_text(p).c_str());
    if (o->load)
      std::printf("startup:        %.3f s (open %.3f s, runtime %.3f s: %zu resident units, %s read)\n",
                  open_s + st.startup_s, open_s, st.startup_s, p.resident_units, format_bytes(st.resident_bytes_read).c_str());
    else
      std::printf("startup:        open %.3f s (--load also reads the resident units and times it)\n", open_s);
    return 0;
  };
}

}  // namespace strata::cli
