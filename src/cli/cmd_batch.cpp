#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>

#include "batch_files.h"
#include "chat_common.h"
#include "commands.h"
#include "common.h"
#include "strata/error.h"
#include "strata/tokenizer.h"

namespace strata::cli {
namespace {

class Progress {
 public:
  Progress(bool enabled, size_t total, size_t already) : on_(enabled), total_(total), done_(already), t0_(Clock::now()) {}
  void update(size_t finished, uint64_t tokens) {
    done_ += finished;
    tokens_ += tokens;
    if (!on_) return;
    double s = std::chrono::duration<double>(Clock::now() - t0_).count();
    double rate = s > 0 ? double(tokens_) / s : 0;
    double per_seq = done_ > start_ && s > 0 ? s / double(done_ - start_) : 0;
    std::fprintf(stderr, "\r[%zu/%zu] %.1f tokens/s, ETA %.0f s   ", done_, total_, rate,
                 per_seq * double(total_ - done_));
    std::fflush(stderr);
  }
  void end() {
    if (on_) std::fprintf(stderr, "\n");
  }

 private:
  using Clock = std::chrono::steady_clock;
  bool on_;
  size_t total_, done_, start_ = done_;
  uint64_t tokens_ = 0;
  Clock::time_point t0_;
};

}  // namespace

Runner register_batch(CLI::App& app) {
  struct Opts {
    ModelOptions model;
    std::string input, output;
    size_t batch_size = 0;
    JobDefaults defaults;
    bool strict = false, quiet = false;
    SpeculativeOptions spec;
    ChatOptions chat;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "batch", "Generate for every line of a JSONL file, many sequences per forward pass; resumable");
  add_model_options(*cmd, o->model);
  cmd->add_option("--input", o->input, "JSONL input: {\"id\", \"prompt\" | \"prompt_ids\" | \"messages\" (chat, with "
                                       "optional tools, vars), optional max_new_tokens, temperature, top_p, top_k, "
                                       "min_p, seed, stop}")
      ->required();
  cmd->add_option("--output", o->output, "JSONL results, appended; re-running continues where it stopped")->required();
  cmd->add_option("--batch-size", o->batch_size, "Sequences in flight (default: the most the budget allows, up to 64)")
      ->check(CLI::Range(1, 4096));
  cmd->add_option("-n,--max-new-tokens", o->defaults.max_new_tokens, "Default tokens per sequence (default 64)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--temperature", o->defaults.sampling.temperature, "Default temperature; 0 = greedy (default)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-k", o->defaults.sampling.top_k, "Default top-k (0 = off)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-p", o->defaults.sampling.top_p, "Default top-p (1 = off)")->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--min-p", o->defaults.sampling.min_p, "Default min-p (0 = off)")->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--seed", o->defaults.sampling.seed, "Default seed (default 0)");
  cmd->add_flag("--strict", o->strict, "Stop at the first bad input line instead of answering it with an error");
  cmd->add_flag("--quiet", o->quiet, "No progress bar");
  add_speculative_options(*cmd, o->spec);
  add_chat_options(*cmd, o->chat);
  return [o]() {
    EngineOptions eo = engine_options(o->model);
    o->spec.apply(eo);
    auto engine = open_engine(o->model, eo);
    ModelInfo info = engine->info();
    std::optional<Tokenizer> tok = load_model_tokenizer(o->model.model);
    // "messages" lines need the chat template; a model without one is fine
    // as long as no line has messages (those lines get an error).
    std::optional<ChatTemplate> chat;
    const std::string model = resolve_model_arg(o->model.model);
    if (!o->chat.chat_template.empty() || ChatTemplate::model_has_template(model))
      chat.emplace(load_chat_template(model, o->chat));
    std::vector<Job> jobs = read_jobs(o->input, o->defaults, tok ? &*tok : nullptr, info.vocab_size,
                                      info.max_position_embeddings, chat ? &*chat : nullptr, o->chat.special_everywhere);
    if (o->strict)
      for (const Job& j : jobs)
        if (!j.error.empty()) throw UsageError(fmt::format("{}:{}: {}", o->input, j.line, j.error));

    ResultFile out(o->output);
    if (out.repaired() && !o->quiet)
      std::fprintf(stderr, "strata batch: removed a torn last line from %s (the previous run was interrupted)\n",
                   o->output.c_str());
    int64_t context = 1;
    std::vector<const Job*> todo;
    size_t answered = 0;
    for (const Job& j : jobs) {
      if (out.done_lines().count(j.line)) {
        ++answered;
        continue;
      }
      if (!j.error.empty()) {
        out.append({{"id", j.id}, {"line", j.line}, {"error", j.error}});
        ++answered;
        continue;
      }
      todo.push_back(&j);
      context = std::max<int64_t>(context, int64_t(j.prompt_ids.size()) + j.max_new_tokens);
    }
    Progress progress(isatty(2) && !o->quiet, jobs.size(), answered);
    if (todo.empty()) {
      progress.end();
      if (!o->quiet) std::fprintf(stderr, "strata batch: all %zu lines already answered\n", jobs.size());
      return 0;
    }

    size_t next_index = 0;
    auto next = [&]() -> std::optional<SequenceRequest> {
      if (next_index == todo.size()) return std::nullopt;
      const Job& j = *todo[next_index];
      SequenceRequest r;
      r.key = next_index++;
      r.prompt_ids = j.prompt_ids;
      r.max_new_tokens = j.max_new_tokens;
      r.sampling = j.sampling;
      r.stop_strings = j.stop;
      r.lookup_ngram = o->spec.lookup;
      r.draft_tokens = o->spec.draft_tokens;
      if (!j.stop_ids.empty()) {
        std::vector<int32_t> stop_ids = j.stop_ids;
        r.should_stop = [stop_ids](const std::vector<int32_t>& ids) {
          return !ids.empty() && std::find(stop_ids.begin(), stop_ids.end(), ids.back()) != stop_ids.end();
        };
      }
      return r;
    };
    auto done = [&](SequenceResult&& r) {
      const Job& j = *todo[r.key];
      nlohmann::json line = {{"id", j.id}, {"line", j.line}};
      if (tok) line["text"] = r.text;
      line["output_ids"] = r.output_ids;
      line["finish_reason"] = r.finish_reason;
      line["prompt_tokens"] = r.prompt_tokens;
      line["completion_tokens"] = r.output_ids.size();
      out.append(line);
      progress.update(1, r.output_ids.size());
    };
    BatchOptions bo;
    bo.max_sequences = o->batch_size;
    bo.context = context;
    BatchStats st = engine->generate_batch(next, done, bo);
    progress.end();
    if (!o->quiet) {
      std::fprintf(stderr,
                   "strata batch: %zu sequences (batch size %zu), %llu tokens generated in %zu passes, %.2f s "
                   "(%.2f tokens/s), read %s\n",
                   todo.size(), st.sequences, (unsigned long long)st.generated_tokens, st.passes, st.wall_s,
                   st.wall_s > 0 ? double(st.generated_tokens) / st.wall_s : 0.0,
                   format_bytes(st.bytes_read).c_str());
    }
    return 0;
  };
}

}  // namespace strata::cli
