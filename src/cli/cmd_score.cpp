#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <memory>

#include "commands.h"
#include "common.h"
#include "strata/error.h"

namespace strata::cli {

Runner register_score(CLI::App& app) {
  struct Opts {
    ModelOptions model;
    PromptOptions prompt;
    std::string dump_logits;
    bool profile = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "score", "One forward pass over the prompt (teacher forcing): argmax and log-probability per position, perplexity");
  o->model.kv_type = "f32";  // scores are measurements: exact KV unless asked otherwise
  add_model_options(*cmd, o->model);
  add_prompt_options(*cmd, o->prompt);
  cmd->add_option("--dump-logits", o->dump_logits, "Write all logits as little-endian float32, positions x vocabulary");
  cmd->add_flag("--profile", o->profile, "Print I/O wait, compute and read throughput per forward pass");
  return [o]() {
    std::vector<int32_t> ids = prompt_ids(o->prompt, load_model_tokenizer(o->model.model), o->model.model);
    auto engine = open_engine(o->model);
    ScoreResult r = engine->score(ids, !o->dump_logits.empty());
    if (!o->dump_logits.empty()) {
      std::ofstream f(o->dump_logits, std::ios::binary | std::ios::trunc);
      f.write(reinterpret_cast<const char*>(r.logits.data()), std::streamsize(r.logits.size() * sizeof(float)));
      if (!f) throw Error(o->dump_logits + ": cannot write logits");
    }
    if (json_output(o->model)) {
      nlohmann::json j = {{"ids", ids},
                          {"argmax", r.argmax},
                          {"logprobs", r.logprobs},
                          {"perplexity", r.perplexity},
                          {"memory", plan_json(r.plan)}};
      if (o->profile) j["passes"] = passes_json(r.passes);
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("%8s %8s %8s %12s\n", "position", "id", "argmax", "logprob_next");
      for (size_t t = 0; t < ids.size(); ++t) {
        if (t < r.logprobs.size())
          std::printf("%8zu %8d %8d %12.6f\n", t, ids[t], r.argmax[t], r.logprobs[t]);
        else
          std::printf("%8zu %8d %8d %12s\n", t, ids[t], r.argmax[t], "-");
      }
      std::printf("perplexity: %.6f\n", r.perplexity);
      if (o->profile) print_profile(r.passes);
    }
    return 0;
  };
}

}  // namespace strata::cli
