// Options and output helpers shared by the subcommands.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "strata/strata.h"
#include "strata/tokenizer.h"

namespace strata::cli {

struct ModelOptions {
  std::string model;
  std::string max_memory;  // empty = automatic
  size_t threads = 0;
  std::string format = "text";
  std::string io = "auto";  // --io
  std::string kv_type = "f16";  // --kv-type

};

// MODEL as given on the command line -> what to open: a local path as is,
// ORG/NAME[@REV] from the Hugging Face cache (downloaded when missing, with
// HF_TOKEN / the token file; refused under HF_HUB_OFFLINE=1). Every command
// that reads MODEL goes through this.
std::string resolve_model_arg(const std::string& model);

// MODEL positional, --max-memory, --threads, --format.
void add_model_options(CLI::App& cmd, ModelOptions& o, bool with_memory = true);
std::unique_ptr<Engine> open_engine(const ModelOptions& o);
// MODEL (a path, or ORG/NAME[@REV] resolved through the hub cache) with `e`.
std::unique_ptr<Engine> open_engine(const ModelOptions& o, const EngineOptions& e);
EngineOptions engine_options(const ModelOptions& o);
bool json_output(const ModelOptions& o);
// The tokenizer of a model: MODEL/tokenizer.json if present, or MODEL itself
// when it is a tokenizer.json file; nullopt when there is none.
std::optional<Tokenizer> load_model_tokenizer(const std::string& model);
// Ids for a prompt: the tokenizer's post-processor, plus BOS when
// tokenizer_config.json asks for it and the post-processor did not add it.
std::vector<int32_t> encode_prompt(const Tokenizer& tok, const std::string& text, bool special_as_text);
// Whole file as text; throws Error naming the file.
std::string read_prompt_file(const std::string& path);

// A prompt given as PROMPT text, --prompt-file or --prompt-ids (one of them).
struct PromptOptions {
  std::string text, file, ids;
  bool special_as_text = false;
};
void add_prompt_options(CLI::App& cmd, PromptOptions& p);
// The ids of the prompt: --prompt-ids as given, text through the model's
// tokenizer (UsageError naming the model when it has none).
std::vector<int32_t> prompt_ids(const PromptOptions& p, const std::optional<Tokenizer>& tok, const std::string& model);

// "1,345,22" or "1 345 22"; throws UsageError naming the flag.
std::vector<int32_t> parse_ids(const std::string& text, const char* flag);

// Speculative decoding: --lookup N, --draft MODEL, --draft-tokens K.
struct SpeculativeOptions {
  size_t lookup = 0, draft_tokens = 4;
  std::string draft_model;
  bool on() const { return lookup || !draft_model.empty(); }
  // Sets the engine's draft model and the rows it plans for drafts.
  void apply(EngineOptions& e) const;
};
void add_speculative_options(CLI::App& cmd, SpeculativeOptions& s);
// {"drafted", "accepted", "acceptance_rate", "tokens_per_pass"}.
nlohmann::json speculative_json(size_t drafted, size_t accepted, size_t tokens, size_t passes);

nlohmann::json plan_json(const MemoryPlan& p);
nlohmann::json passes_json(const std::vector<PassStats>& passes);
// Human-readable plan lines, "  resident layers: ..." etc.
std::string plan_text(const MemoryPlan& p);
// A library error for the command line: parameter names (max_memory,
// temperature...) become the flags that set them.
std::string cli_message(std::string what);
// One line per pass on stderr, for --profile.
void print_profile(const std::vector<PassStats>& passes);

}  // namespace strata::cli
