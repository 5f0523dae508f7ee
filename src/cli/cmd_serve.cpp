// `strata serve MODEL`: the OpenAI-compatible HTTP server (src/server).
// Signals are handled by one thread with sigwait(): SIGINT/SIGTERM stop
// accepting, cancel what runs, and the command returns 0.
#include <fmt/format.h>
#include <pthread.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include <signal.h>
#include <unistd.h>

#include "commands.h"
#include "common.h"
#include "strata/error.h"
#include "server.h"

namespace strata::cli {

Runner register_serve(CLI::App& app) {
  struct Opts {
    ModelOptions model;
    server::ServerOptions server;
    int64_t ctx = 0;
    std::string chat_template;
    int timeout_s = 10;
    SpeculativeOptions spec;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("serve", "Serve the model over an OpenAI-compatible HTTP API");
  add_model_options(*cmd, o->model);
  cmd->add_option("--host", o->server.host, "Address to listen on (default 127.0.0.1: this machine only)");
  cmd->add_option("--port", o->server.port, "Port (default 8080; 0 = any free port, printed at start)")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--api-key", o->server.api_key,
                  "Require 'Authorization: Bearer KEY' on /v1 routes (default: $STRATA_API_KEY, else none)");
  cmd->add_option("--max-batch", o->server.max_batch,
                  "Requests running in the same passes at most (default: as many as the budget allows, at most 64)");
  cmd->add_option("--max-queue", o->server.max_queue,
                  "Requests waiting beyond --max-batch before new ones get 429 (default 64)");
  cmd->add_option("--ctx", o->ctx, "Positions per request, prompt plus completion (default: the model's, at most 4096)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--model-name", o->server.model_name, "The model id clients use (default: the model's file name)");
  cmd->add_option("--chat-template", o->chat_template, "Jinja chat template file (default: the model's own)");
  cmd->add_option("--cors", o->server.cors_origin, "Allow browser requests from ORIGIN (default: no CORS)");
  cmd->add_option("--max-body", o->server.max_body_bytes, "Largest request body in bytes (default 4 MiB)")
      ->check(CLI::PositiveNumber);
  add_speculative_options(*cmd, o->spec);
  cmd->add_option("--timeout", o->timeout_s,
                  "Seconds a client may take for each read or write before it is dropped (default 10)")
      ->check(CLI::Range(1, 3600));
  return [o]() {
    server::ServerOptions& so = o->server;
    so.read_timeout_s = so.write_timeout_s = o->timeout_s;
    if (so.api_key.empty())
      if (const char* k = std::getenv("STRATA_API_KEY")) so.api_key = k;
    if (so.model_name.empty()) so.model_name = std::filesystem::path(o->model.model).lexically_normal().filename().string();
    if (so.model_name.empty()) so.model_name = std::filesystem::path(o->model.model).lexically_normal().parent_path().filename().string();
    if ((so.host == "0.0.0.0" || so.host == "::") && so.api_key.empty())
      std::fprintf(stderr,
                   "strata serve: warning: listening on all interfaces (%s) without an API key: anyone who can "
                   "reach this machine can use the model. Give --api-key or STRATA_API_KEY.\n",
                   so.host.c_str());

    // Before any thread exists, so every thread inherits the mask and only
    // the watcher below receives SIGINT/SIGTERM. A client that disconnects
    // must not kill the process with SIGPIPE.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    EngineOptions eo;
    if (!o->model.max_memory.empty()) eo.max_memory = parse_byte_size(o->model.max_memory);
    eo.threads = o->model.threads;
    eo.io = o->model.io;
    eo.max_sequences = so.max_batch;
    o->spec.apply(eo);
    so.draft_tokens = eo.draft_tokens;
    so.lookup_ngram = o->spec.lookup;
    std::unique_ptr<Engine> engine = Engine::open(o->model.model, eo);
    const ModelInfo info = engine->info();
    int64_t ctx = o->ctx ? o->ctx : std::min<int64_t>(info.max_position_embeddings, 4096);
    if (ctx > info.max_position_embeddings)
      throw UsageError(fmt::format("--ctx {} exceeds the model's context of {} positions", ctx,
                                   info.max_position_embeddings));
    eo.context = ctx;
    so.context = ctx;
    engine.reset();
    engine = Engine::open(o->model.model, eo);
    // A budget too small fails here, before binding.
    const MemoryPlan plan = engine->plan_for(ctx, 1, std::max<size_t>(so.max_batch, 1));
    std::fprintf(stderr, "strata serve: memory plan: budget %s, %zu of %zu units resident, %zu streaming slots, read per pass %s\n",
                 format_bytes(plan.budget).c_str(), plan.resident_units, plan.units, plan.streaming_slots,
                 format_bytes(plan.streamed_bytes_per_pass).c_str());

    server::ChatFormatter chat(*engine, o->chat_template);
    std::fprintf(stderr, "strata serve: chat: %s\n", chat.description().c_str());
    server::Server srv(*engine, so, std::move(chat));
    const int port = srv.bind();
    std::fprintf(stderr, "strata serve: listening on http://%s:%d (model '%s', context %lld)\n", so.host.c_str(), port,
                 so.model_name.c_str(), static_cast<long long>(ctx));
    std::fflush(stderr);

    std::thread watcher([&] {
      int sig = 0;
      sigwait(&stop_signals, &sig);
      std::fprintf(stderr, "strata serve: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
      srv.stop();
      engine->shutdown();
    });
    // Load the resident layers with a one-token request; /health says
    // "loading" until then.
    std::atomic<bool> load_failed{false};
    std::thread warmup([&] {
      std::string error;
      try {
        Request r;
        r.prompt_ids = {info.bos_token_id >= 0 ? info.bos_token_id : 0};
        r.max_new_tokens = 1;
        const RequestResult& out = engine->submit(std::move(r)).wait();
        if (out.finish_reason == "error") error = out.error;
      } catch (const std::exception& e) {
        error = e.what();
      }
      if (error.empty()) {
        srv.set_ready(true);
        std::fprintf(stderr, "strata serve: ready\n");
      } else {
        std::fprintf(stderr, "strata serve: error: loading the model failed: %s\n", error.c_str());
        load_failed = true;
        kill(getpid(), SIGTERM);  // the watcher stops the server
      }
    });
    srv.run();
    warmup.join();
    pthread_kill(watcher.native_handle(), SIGTERM);  // wakes the watcher if no signal came
    watcher.join();
    engine->shutdown();
    return load_failed ? 1 : 0;
  };
}

}  // namespace strata::cli
