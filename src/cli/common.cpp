#include "common.h"

#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "strata/error.h"
#include "strata/hub.h"
#include "strata/prompt.h"

namespace strata::cli {

void add_model_options(CLI::App& cmd, ModelOptions& o, bool with_memory) {
  cmd.add_option("MODEL", o.model, "Model directory (config.json + safetensors), or ORG/NAME[@REV] on the Hugging Face hub")->required();
  if (with_memory) {
    cmd.add_option("--max-memory", o.max_memory,
                   "Memory budget for everything strata allocates (e.g. 512MiB, 4GiB, 2.5GB). Default: everything "
                   "resident if it fits in 80% of available memory, else 80% of available memory");
    cmd.add_option("--threads", o.threads, "Compute threads (default: all cores)")->check(CLI::Range(1, 1024));
    cmd.add_option("--io", o.io,
                   "How to read the model files: auto (the fastest on this file system, measured once and cached), "
                   "uring (io_uring + O_DIRECT), direct (O_DIRECT pread threads), pread (buffered pread threads), "
                   "buffered (sequential reads with read-ahead); the page cache is emptied behind every method")
        ->check(CLI::IsMember({"auto", "uring", "direct", "pread", "buffered"}));
    cmd.add_option("--kv-type", o.kv_type, "KV cache storage: f16 (default, half the memory) or f32")
        ->check(CLI::IsMember({"f16", "f32"}));
  }
  cmd.add_option("--format", o.format, "Output format")->check(CLI::IsMember({"text", "json"}));
}

std::string resolve_model_arg(const std::string& model) { return resolve_model(model).string(); }

EngineOptions engine_options(const ModelOptions& o) {
  EngineOptions e;
  if (!o.max_memory.empty()) e.max_memory = parse_byte_size(o.max_memory);
  e.threads = o.threads;
  e.io = o.io;
  e.kv_type = o.kv_type;
  return e;
}

std::unique_ptr<Engine> open_engine(const ModelOptions& o, const EngineOptions& e) {
  return Engine::open(resolve_model_arg(o.model), e);
}

std::unique_ptr<Engine> open_engine(const ModelOptions& o) { return open_engine(o, engine_options(o)); }

bool json_output(const ModelOptions& o) { return o.format == "json"; }

std::optional<Tokenizer> load_model_tokenizer(const std::string& model) {
  std::filesystem::path p(resolve_model_arg(model));
  if (std::filesystem::is_regular_file(p)) {
    if (p.extension() == ".gguf") return Tokenizer::from_gguf_if_any(p);  // the tokenizer in its metadata
    return Tokenizer::from_file(p);
  }
  if (std::filesystem::exists(p / "tokenizer.json")) return Tokenizer::from_file(p / "tokenizer.json");
  return std::nullopt;
}

std::vector<int32_t> parse_ids(const std::string& text, const char* flag) {
  std::vector<int32_t> ids;
  std::string cur;
  auto flush = [&] {
    if (cur.empty()) return;
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(cur, &used);
    } catch (...) {
      used = 0;
    }
    if (used != cur.size() || v < 0 || v > INT32_MAX)
      throw UsageError(fmt::format("{}: '{}' is not a token id (expected non-negative integers like 1,345,22)", flag, cur));
    ids.push_back(int32_t(v));
    cur.clear();
  };
  for (char c : text) {
    if (c == ',' || c == ' ' || c == '\t' || c == '\n') flush();
    else cur += c;
  }
  flush();
  if (ids.empty()) throw UsageError(fmt::format("{}: no token ids given", flag));
  return ids;
}

std::vector<int32_t> encode_prompt(const Tokenizer& tok, const std::string& text, bool special_as_text) {
  std::vector<int32_t> ids = strata::encode_prompt(tok, text, /*add_special_tokens=*/true, special_as_text);
  if (ids.empty()) throw UsageError("the prompt encodes to no tokens");
  return ids;
}

std::string read_prompt_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot open the prompt file");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void add_prompt_options(CLI::App& cmd, PromptOptions& p) {
  CLI::Option* text = cmd.add_option("PROMPT", p.text, "Prompt text (needs the model's tokenizer.json)");
  CLI::Option* file = cmd.add_option("--prompt-file", p.file, "Read the prompt text from a file");
  CLI::Option* ids = cmd.add_option("--prompt-ids", p.ids, "Prompt as token ids, e.g. 1,345,22");
  text->excludes(file)->excludes(ids);
  file->excludes(ids);
  cmd.add_flag("--special-as-text", p.special_as_text,
               "Treat special-token text in the prompt (e.g. <|eot_id|>) as plain text");
}

std::vector<int32_t> prompt_ids(const PromptOptions& p, const std::optional<Tokenizer>& tok, const std::string& model) {
  if (!p.ids.empty()) return parse_ids(p.ids, "--prompt-ids");
  if (p.text.empty() && p.file.empty())
    throw UsageError("give a prompt: PROMPT text, --prompt-file FILE or --prompt-ids 1,2,3");
  if (!tok) throw UsageError(model + ": no tokenizer.json in the model directory; use --prompt-ids");
  return encode_prompt(*tok, p.file.empty() ? p.text : read_prompt_file(p.file), p.special_as_text);
}

void SpeculativeOptions::apply(EngineOptions& e) const {
  e.draft_tokens = on() ? draft_tokens : 0;
  e.draft_model = draft_model;
}

void add_speculative_options(CLI::App& cmd, SpeculativeOptions& s) {
  cmd.add_option("--lookup", s.lookup,
                 "Speculative decoding by prompt lookup: draft from earlier occurrences of the last N tokens "
                 "(0 = off; greedy output is unchanged)")
      ->check(CLI::Range(0, 16));
  cmd.add_option("--draft", s.draft_model,
                 "Speculative decoding with a small model of the same vocabulary (kept resident, drafts greedily; "
                 "its memory comes out of --max-memory)");
  cmd.add_option("--draft-tokens", s.draft_tokens, "Tokens drafted per sequence and pass at most (default 4)")
      ->check(CLI::Range(1, 32));
}

nlohmann::json speculative_json(size_t drafted, size_t accepted, size_t tokens, size_t passes) {
  return {{"drafted", drafted},
          {"accepted", accepted},
          {"acceptance_rate", drafted ? double(accepted) / double(drafted) : 0.0},
          {"tokens_per_pass", passes ? double(tokens) / double(passes) : 0.0}};
}

nlohmann::json plan_json(const MemoryPlan& p) {
  return {{"budget_bytes", p.budget},
          {"min_memory_bytes", p.min_budget},
          {"planned_bytes", p.total_bytes},
          {"units", p.units},
          {"resident_units", p.resident_units},
          {"streaming_slots", p.streaming_slots},
          {"slot_bytes", p.slot_bytes},
          {"resident_bytes", p.resident_bytes},
          {"kv_cache_bytes", p.kv_cache_bytes},
          {"activation_bytes", p.activation_bytes},
          {"logits_bytes", p.logits_bytes},
          {"streamed_bytes_per_pass", p.streamed_bytes_per_pass},
          {"context", p.context},
          {"kv_pool", {{"type", p.kv_type}, {"pages", p.kv_pages}, {"page_positions", p.kv_page_positions},
                       {"positions", p.kv_pages * p.kv_page_positions}, {"bytes", p.kv_cache_bytes}}},
          {"max_rows", p.max_rows},
          {"expert_slots", p.expert_slots},
          {"expert_slot_bytes", p.expert_slot_bytes}};
}

nlohmann::json passes_json(const std::vector<PassStats>& passes) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& p : passes)
    a.push_back({{"rows", p.rows},
                 {"wall_s", p.wall_s},
                 {"io_wait_s", p.io_wait_s},
                 {"compute_s", p.compute_s},
                 {"bytes_read", p.bytes_read},
                 {"experts_routed", p.experts_routed},
                 {"expert_hits", p.expert_hits},
                 {"expert_bytes_read", p.expert_bytes_read},
                 {"read_bytes_per_s", p.wall_s > 0 ? double(p.bytes_read) / p.wall_s : 0.0}});
  return a;
}

std::string plan_text(const MemoryPlan& p) {
  std::ostringstream s;
  s << fmt::format("  budget:            {}\n", format_bytes(p.budget));
  s << fmt::format("  minimum budget:    {}\n", format_bytes(p.min_budget));
  s << fmt::format("  planned total:     {}\n", format_bytes(p.total_bytes));
  s << fmt::format("  resident units:    {} of {} ({})\n", p.resident_units, p.units, format_bytes(p.resident_bytes));
  s << fmt::format("  streaming slots:   {} x {}\n", p.streaming_slots, format_bytes(p.slot_bytes));
  s << fmt::format("  KV pool:           {} ({} pages of {} positions in {}: {} positions; {} per sequence)\n",
                   format_bytes(p.kv_cache_bytes), p.kv_pages, p.kv_page_positions, p.kv_type,
                   p.kv_pages * p.kv_page_positions, p.context);
  s << fmt::format("  activations:       {}\n", format_bytes(p.activation_bytes));
  s << fmt::format("  logits:            {}\n", format_bytes(p.logits_bytes));
  s << fmt::format("  read per pass:     {}\n", format_bytes(p.streamed_bytes_per_pass));
  if (p.expert_slot_bytes)
    s << fmt::format("  expert cache:      {} x {} (+ routed experts not cached, read per pass)\n", p.expert_slots,
                     format_bytes(p.expert_slot_bytes));
  return s.str();
}

std::string cli_message(std::string what) {
  static const std::pair<const char*, const char*> names[] = {
      {"max_memory ", "--max-memory "},   {"temperature must", "--temperature must"},
      {"top_k must", "--top-k must"},     {"top_p must", "--top-p must"},
      {"min_p must", "--min-p must"},     {"kv_type must", "--kv-type must"}};
  for (const auto& [from, to] : names)
    if (what.rfind(from, 0) == 0) return to + what.substr(std::string(from).size());
  return what;
}

void print_profile(const std::vector<PassStats>& passes) {
  for (size_t i = 0; i < passes.size(); ++i) {
    const auto& p = passes[i];
    double tput = p.wall_s > 0 ? double(p.bytes_read) / p.wall_s : 0;
    std::fprintf(stderr, "pass %zu: %zu rows, %.2f ms (I/O wait %.2f ms, compute %.2f ms), read %s at %s/s\n", i,
                 p.rows, p.wall_s * 1e3, p.io_wait_s * 1e3, p.compute_s * 1e3, format_bytes(p.bytes_read).c_str(),
                 format_bytes(uint64_t(tput)).c_str());
    if (p.experts_routed)
      std::fprintf(stderr, "  experts: %llu routed, %llu cache hits (%.1f%%), %s read for the others\n",
                   (unsigned long long)p.experts_routed, (unsigned long long)p.expert_hits,
                   100.0 * double(p.expert_hits) / double(p.experts_routed), format_bytes(p.expert_bytes_read).c_str());
  }
}

}  // namespace strata::cli
