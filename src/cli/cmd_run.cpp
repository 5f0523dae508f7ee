#include <fmt/format.h>

#include <cstdio>
#include <memory>

#include "chat_common.h"
#include "commands.h"
#include "common.h"
#include "strata/error.h"
#include "strata/stream_decoder.h"

namespace strata::cli {

namespace {

// `strata run MODEL --chat "question" [--system TEXT]`: one assistant turn,
// formatted with the model's chat template, ended by its end-of-turn token.
int run_chat(const ModelOptions& mo, const ChatOptions& co, const std::string& question, const std::string& system,
             int max_new_tokens, const SamplingParams& sampling, bool profile) {
  std::optional<Tokenizer> tok = load_model_tokenizer(mo.model);
  if (!tok) throw UsageError(mo.model + ": --chat needs the model's tokenizer.json");
  ChatTemplate tmpl = load_chat_template(resolve_model_arg(mo.model), co);
  ChatInput in;
  if (!system.empty()) in.messages.push_back({{"role", "system"}, {"content", system}});
  in.messages.push_back({{"role", "user"}, {"content", question}});
  in.variables = template_variables(co);
  Request req;
  req.prompt_ids = tmpl.encode(in, *tok, special_parsing(co));
  req.stop_ids = tmpl.stop_token_ids(*tok);
  req.max_new_tokens = max_new_tokens;
  req.sampling = sampling;
  EngineOptions eo = engine_options(mo);
  eo.max_sequences = 1;
  eo.context = int64_t(req.prompt_ids.size()) + max_new_tokens;
  auto engine = open_engine(mo, eo);
  const bool json = json_output(mo);
  std::optional<StreamDecoder> stream;
  stream.emplace(*tok, /*skip_special=*/true);
  if (!json) {
    req.on_token = [&](const TokenEvent& e) {
      std::fputs(stream->step(e.id).c_str(), stdout);
      std::fflush(stdout);
    };
  }
  std::vector<int32_t> prompt = req.prompt_ids;
  RequestResult r = engine->submit(std::move(req)).wait();
  if (r.finish_reason == "error") throw Error(r.error);
  if (json) {
    nlohmann::json j = {{"prompt_ids", prompt},
                        {"output_ids", r.output_ids},
                        {"text", tok->decode(r.output_ids, /*skip_special=*/true)},
                        {"finish_reason", r.finish_reason},
                        {"timings", {{"prefill_s", r.prefill_s}, {"decode_s", r.decode_s}}},
                        {"passes", r.passes}};
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::fputs(stream->flush().c_str(), stdout);
    std::printf("\n");
    std::fprintf(stderr, "[%zu tokens, finish: %s, prompt %zu tokens, prefill %.3f s, decode %.3f s]\n",
                 r.output_ids.size(), r.finish_reason.c_str(), prompt.size(), r.prefill_s, r.decode_s);
    if (profile) std::fprintf(stderr, "%zu passes\n", r.passes);
  }
  return 0;
}

}  // namespace

Runner register_run(CLI::App& app) {
  struct Opts {
    ModelOptions model;
    PromptOptions prompt;
    int n = 64;
    SamplingParams sampling;
    bool profile = false;
    SpeculativeOptions spec;
    std::string chat, system;
    ChatOptions chat_opts;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("run", "Generate tokens after a prompt");
  add_model_options(*cmd, o->model);
  add_prompt_options(*cmd, o->prompt);
  CLI::Option* chat = cmd->add_option("--chat", o->chat, "A question, formatted with the model's chat template");
  cmd->add_option("--system", o->system, "With --chat: a system message");
  add_chat_options(*cmd, o->chat_opts);
  for (const char* name : {"PROMPT", "--prompt-file", "--prompt-ids"}) chat->excludes(cmd->get_option(name));
  cmd->add_option("-n,--max-new-tokens", o->n, "Tokens to generate at most (default 64)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--temperature", o->sampling.temperature, "Sampling temperature; 0 = greedy (default)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-k", o->sampling.top_k, "Keep the k most likely tokens (0 = off)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-p", o->sampling.top_p, "Keep the smallest set with this probability mass (1 = off)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--min-p", o->sampling.min_p, "Drop tokens below min-p x the top probability (0 = off)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--seed", o->sampling.seed, "Random seed for sampling (default 0)");
  cmd->add_flag("--profile", o->profile, "Print I/O wait, compute and read throughput per forward pass");
  add_speculative_options(*cmd, o->spec);
  return [o]() {
    if (!o->chat.empty())
      return run_chat(o->model, o->chat_opts, o->chat, o->system, o->n, o->sampling, o->profile);
    std::optional<Tokenizer> tok = load_model_tokenizer(o->model.model);
    GenerateRequest req;
    req.prompt_ids = prompt_ids(o->prompt, tok, o->model.model);
    req.max_new_tokens = o->n;
    req.sampling = o->sampling;
    req.lookup_ngram = o->spec.lookup;
    req.draft_tokens = o->spec.draft_tokens;
    // One request: the runtime is planned for exactly its positions.
    EngineOptions eo = engine_options(o->model);
    eo.max_sequences = 1;
    eo.context = int64_t(req.prompt_ids.size()) + o->n;
    o->spec.apply(eo);
    auto engine = open_engine(o->model, eo);
    const bool json = json_output(o->model);
    bool first = true;
    std::optional<StreamDecoder> stream;
    if (tok) stream.emplace(*tok, /*skip_special=*/true);
    if (!json) {
      req.on_token = [&](int32_t id) {
        if (stream) std::fputs(stream->step(id).c_str(), stdout);
        else std::printf(first ? "%d" : " %d", id);
        std::fflush(stdout);
        first = false;
      };
    }
    GenerateResult r = engine->generate(req);
    const EngineStats st = engine->stats();
    if (stream && !json) std::fputs(stream->flush().c_str(), stdout);
    double tps = r.decode_s > 0 && r.output_ids.size() > 1 ? double(r.output_ids.size() - 1) / r.decode_s : 0;
    if (json) {
      nlohmann::json j = {{"prompt_ids", req.prompt_ids},
                          {"output_ids", r.output_ids},
                          {"finish_reason", r.finish_reason},
                          {"timings", {{"prefill_s", r.prefill_s}, {"decode_s", r.decode_s}, {"decode_tokens_per_s", tps}}},
                          {"io_method", engine->io_method()},
                          {"memory", plan_json(r.plan)},
                          {"peak_planned_bytes_used", r.peak_ledger_bytes},
                          {"passes", r.passes.size()},
                          {"bytes_read", st.bytes_read},
                          {"resident_bytes_read", st.resident_bytes_read},
                          {"startup_s", st.startup_s}};
      if (st.experts_routed)
        j["experts"] = {{"routed", st.experts_routed},
                        {"cache_hits", st.expert_hits},
                        {"hit_rate", double(st.expert_hits) / double(st.experts_routed)},
                        {"cache_slots", r.plan.expert_slots}};
      if (o->spec.on()) j["speculative"] = speculative_json(r.drafted_tokens, r.accepted_tokens, r.output_ids.size(),
                                                          r.token_passes);
      if (tok) j["text"] = tok->decode(r.output_ids, /*skip_special=*/true);
      if (o->profile) j["passes"] = passes_json(r.passes);
      std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    } else {
      std::printf("\n");
      std::fflush(stdout);  // the text before the summary on a shared terminal
      std::fprintf(stderr, "[%zu tokens, finish: %s, prefill %.3f s, decode %.3f s (%.2f tokens/s)]\n",
                   r.output_ids.size(), r.finish_reason.c_str(), r.prefill_s, r.decode_s, tps);
      if (o->profile) {
        std::fprintf(stderr, "I/O method %s (%s); read per pass %s (resident %s); startup %.3f s\n",
                     r.io_method.c_str(), engine->io_method_reason().c_str(),
                     format_bytes(r.plan.streamed_bytes_per_pass).c_str(), format_bytes(r.plan.resident_bytes).c_str(),
                     st.startup_s);
        print_profile(r.passes);
        if (st.experts_routed)
          std::fprintf(stderr, "experts: %llu routed, %llu in the cache (hit rate %.1f%%, %zu slots of %s)\n",
                       (unsigned long long)st.experts_routed, (unsigned long long)st.expert_hits,
                       100.0 * double(st.expert_hits) / double(st.experts_routed), r.plan.expert_slots,
                       format_bytes(r.plan.expert_slot_bytes).c_str());
        if (o->spec.on())
          std::fprintf(stderr, "speculative: %s\n",
                       speculative_json(r.drafted_tokens, r.accepted_tokens, r.output_ids.size(), r.token_passes)
                           .dump()
                           .c_str());
      }
    }
    return 0;
  };
}

}  // namespace strata::cli
