#include <fmt/format.h>

#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "tokenizer/stream_decoder.h"

namespace strata::cli {

Runner register_run(CLI::App& app) {
  struct Opts {
    ModelOptions model;
    std::string prompt, prompt_file, prompt_ids;
    bool special_as_text = false;
    int n = 64;
    SamplingParams sampling;
    bool profile = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("run", "Generate tokens after a prompt");
  add_model_options(*cmd, o->model);
  CLI::Option* text = cmd->add_option("PROMPT", o->prompt, "Prompt text (needs the model's tokenizer.json)");
  CLI::Option* file = cmd->add_option("--prompt-file", o->prompt_file, "Read the prompt text from a file");
  CLI::Option* ids = cmd->add_option("--prompt-ids", o->prompt_ids, "Prompt as token ids, e.g. 1,345,22");
  text->excludes(file)->excludes(ids);
  file->excludes(ids);
  cmd->add_flag("--special-as-text", o->special_as_text,
                "Treat special-token text in the prompt (e.g. <|eot_id|>) as plain text");
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
  return [o]() {
    if (o->prompt.empty() && o->prompt_file.empty() && o->prompt_ids.empty())
      throw UsageError("give a prompt: PROMPT text, --prompt-file FILE or --prompt-ids 1,2,3");
    std::optional<Tokenizer> tok = load_model_tokenizer(o->model.model);
    GenerateRequest req;
    if (!o->prompt_ids.empty()) {
      req.prompt_ids = parse_ids(o->prompt_ids, "--prompt-ids");
    } else {
      if (!tok) throw UsageError(o->model.model + ": no tokenizer.json in the model directory; use --prompt-ids");
      std::string text = o->prompt_file.empty() ? o->prompt : read_prompt_file(o->prompt_file);
      req.prompt_ids = encode_prompt(*tok, text, o->special_as_text);
    }
    req.max_new_tokens = o->n;
    req.sampling = o->sampling;
    // One request: the runtime is planned for exactly its positions.
    EngineOptions eo = engine_options(o->model);
    eo.max_sequences = 1;
    eo.context = int64_t(req.prompt_ids.size()) + o->n;
    auto engine = Engine::open(resolve_model_arg(o->model.model), eo);
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
      if (tok) j["text"] = tok->decode(r.output_ids, /*skip_special=*/true);
      if (o->profile) j["passes"] = passes_json(r.passes);
      std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    } else {
      std::printf("\n");
      std::fprintf(stderr, "[%zu tokens, finish: %s, prefill %.3f s, decode %.3f s (%.2f tokens/s)]\n",
                   r.output_ids.size(), r.finish_reason.c_str(), r.prefill_s, r.decode_s, tps);
      if (o->profile) {
        std::fprintf(stderr, "I/O method %s (%s); read per pass %s (resident %s); startup %.3f s\n",
                     r.io_method.c_str(), engine->io_method_reason().c_str(),
                     format_bytes(r.plan.streamed_bytes_per_pass).c_str(), format_bytes(r.plan.resident_bytes).c_str(),
                     st.startup_s);
        print_profile(r.passes);
      }
    }
    return 0;
  };
}

}  // namespace strata::cli
