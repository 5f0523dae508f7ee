// `strata chat MODEL`: an interactive conversation. Each answer streams as
// it is generated; the conversation's KV cache is kept between turns, so a
// new turn computes only the tokens after the part of the prompt already
// cached. Ctrl-C interrupts an answer without leaving the chat.
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>

#include "chat_common.h"
#include "commands.h"
#include "common.h"
#include "strata/error.h"
#include "strata/stream_decoder.h"

namespace strata::cli {
namespace {

std::atomic<bool> g_interrupted{false};

void on_sigint(int) { g_interrupted = true; }

// SIGINT sets a flag instead of killing the process; without SA_RESTART a
// blocking read of the next line returns, so Ctrl-C at the prompt is seen.
struct SigintGuard {
  struct sigaction old {};
  SigintGuard() {
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    sigaction(SIGINT, &sa, &old);
  }
  ~SigintGuard() { sigaction(SIGINT, &old, nullptr); }
};

// Reads one line from stdin with read(2) (stdio would retry after EINTR).
// Returns false at end of input; `interrupted` when Ctrl-C came first.
bool read_line(std::string& line, bool& interrupted) {
  line.clear();
  interrupted = false;
  char c;
  while (true) {
    ssize_t n = ::read(0, &c, 1);
    if (n == 1) {
      if (c == '\n') return true;
      line += c;
      continue;
    }
    if (n < 0 && errno == EINTR) {
      if (g_interrupted.exchange(false)) {
        interrupted = true;
        return true;
      }
      continue;
    }
    return !line.empty();
  }
}

}  // namespace

Runner register_chat(CLI::App& app) {
  struct Opts {
    ModelOptions model;
    ChatOptions chat;
    std::string system;
    int n = 512;
    int64_t context = 0;
    SamplingParams sampling;
    bool profile = false, no_stop = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("chat", "Interactive chat with an instruct model (its chat template)");
  add_model_options(*cmd, o->model);
  add_chat_options(*cmd, o->chat);
  cmd->add_option("--system", o->system, "System message");
  cmd->add_option("-n,--max-new-tokens", o->n, "Tokens per answer at most (default 512)")->check(CLI::PositiveNumber);
  cmd->add_option("--context", o->context, "Positions the conversation may use (default: the model's, at most 8192)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--temperature", o->sampling.temperature, "Sampling temperature; 0 = greedy (default)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-p", o->sampling.top_p, "Top-p (1 = off)")->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--seed", o->sampling.seed, "Random seed for sampling (default 0)");
  cmd->add_flag("--profile", o->profile, "After each answer: tokens computed vs reused from the cache, passes, time");
  cmd->add_flag("--no-stop", o->no_stop, "Do not stop at end-of-turn tokens (answers run to --max-new-tokens)");
  return [o]() {
    std::optional<Tokenizer> tok = load_model_tokenizer(o->model.model);
    if (!tok) throw UsageError(o->model.model + ": chat needs the model's tokenizer.json");
    ChatTemplate tmpl = load_chat_template(o->model.model, o->chat);
    const std::vector<int32_t> stop_ids = tmpl.stop_token_ids(*tok);
    const nlohmann::ordered_json vars = template_variables(o->chat);
    const bool tty = isatty(0);

    // Probe the model's context before planning the engine for it.
    int64_t context = o->context;
    {
      auto probe = open_engine(o->model);
      int64_t max_pos = probe->info().max_position_embeddings;
      if (context == 0) context = std::min<int64_t>(max_pos > 0 ? max_pos : 4096, 8192);
    }
    EngineOptions eo = engine_options(o->model);
    eo.max_sequences = 1;
    eo.context = context;
    auto engine = open_engine(o->model, eo);

    nlohmann::ordered_json messages = nlohmann::ordered_json::array();
    std::string system = o->system;
    std::shared_ptr<const CachedSequence> cache;
    auto reset = [&]() {
      messages = nlohmann::ordered_json::array();
      if (!system.empty()) messages.push_back({{"role", "system"}, {"content", system}});
      cache.reset();
    };
    reset();
    SigintGuard sigint;
    if (tty)
      std::fprintf(stderr, "strata chat: %s (template %s). /reset, /system TEXT, /save FILE, /exit; Ctrl-C stops an answer.\n",
                   o->model.model.c_str(), tmpl.origin().c_str());
    size_t turn = 0;
    std::string line;
    while (true) {
      if (tty) {
        std::fputs("> ", stdout);
        std::fflush(stdout);
      }
      bool interrupted = false;
      if (!read_line(line, interrupted)) break;
      if (interrupted) {
        std::fputs("\n", stdout);
        continue;
      }
      if (line.empty()) continue;
      if (line == "/exit" || line == "/quit") break;
      if (line == "/reset") {
        reset();
        std::fprintf(stderr, "[conversation reset]\n");
        continue;
      }
      if (line.rfind("/system", 0) == 0 && (line.size() == 7 || line[7] == ' ')) {
        system = line.size() > 8 ? line.substr(8) : "";
        reset();
        std::fprintf(stderr, "[system message set; conversation reset]\n");
        continue;
      }
      if (line.rfind("/save ", 0) == 0) {
        std::string path = line.substr(6);
        std::ofstream f(path, std::ios::binary);
        f << messages.dump(2) << "\n";
        std::fprintf(stderr, f ? "[saved %zu messages to %s]\n" : "[cannot write %zu messages to %s]\n",
                     messages.size(), path.c_str());
        continue;
      }
      if (line[0] == '/') {
        std::fprintf(stderr, "[unknown command %s: /reset, /system TEXT, /save FILE, /exit]\n", line.c_str());
        continue;
      }

      messages.push_back({{"role", "user"}, {"content", line}});
      ChatInput in;
      in.messages = messages;
      in.variables = vars;
      Request req;
      try {
        req.prompt_ids = tmpl.encode(in, *tok, special_parsing(o->chat));
      } catch (const ChatTemplateError& e) {
        messages.erase(messages.size() - 1);
        std::fprintf(stderr, "[template error: %s]\n", e.what());
        continue;
      }
      int64_t room = context - int64_t(req.prompt_ids.size());
      if (room <= 1) {
        messages.erase(messages.size() - 1);
        std::fprintf(stderr, "[the conversation fills the context of %lld tokens; /reset to start again]\n",
                     (long long)context);
        continue;
      }
      req.max_new_tokens = int(std::min<int64_t>(o->n, room));
      req.sampling = o->sampling;
      req.stop_at_eos = !o->no_stop;
      if (!o->no_stop) req.stop_ids = stop_ids;
      req.keep_cache = true;
      req.prefix = cache;
      StreamDecoder stream(*tok, /*skip_special=*/true);
      req.on_token = [&](const TokenEvent& e) {
        std::fputs(stream.step(e.id).c_str(), stdout);
        std::fflush(stdout);
      };
      const size_t prompt_tokens = req.prompt_ids.size();
      // (A Ctrl-C typed since the line was read interrupts this answer.)
      RequestHandle h = engine->submit(std::move(req));
      bool cancelled = false;
      // Poll often: a small model answers in milliseconds.
      while (!h.wait_for(0.002)) {
        if (g_interrupted.exchange(false) && !cancelled) {
          h.cancel();
          cancelled = true;
        }
      }
      g_interrupted = false;  // a Ctrl-C as the answer ended must not cancel the next one
      RequestResult r = h.wait();
      std::fputs(stream.flush().c_str(), stdout);
      std::fputs("\n", stdout);
      if (r.finish_reason == "cancelled") std::fprintf(stderr, "[interrupted]\n");
      if (r.finish_reason == "error") {
        messages.erase(messages.size() - 1);
        std::fprintf(stderr, "[error: %s]\n", r.error.c_str());
        cache.reset();
        continue;
      }
      std::vector<int32_t> out = r.output_ids;
      while (!out.empty() && std::find(stop_ids.begin(), stop_ids.end(), out.back()) != stop_ids.end()) out.pop_back();
      messages.push_back({{"role", "assistant"}, {"content", tok->decode(out, /*skip_special=*/true)}});
      cache = r.cache;
      ++turn;
      if (o->profile)
        std::fprintf(stderr,
                     "[turn %zu: prompt %zu tokens (%zu from the cache, %zu computed), %zu generated, %zu passes, "
                     "prefill %.3f s, decode %.3f s, finish %s]\n",
                     turn, prompt_tokens, r.cached_prompt_tokens, prompt_tokens - r.cached_prompt_tokens,
                     r.output_ids.size(), r.passes, r.prefill_s, r.decode_s, r.finish_reason.c_str());
      std::fflush(stderr);
    }
    return 0;
  };
}

}  // namespace strata::cli
