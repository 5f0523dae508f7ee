// The files of a `strata batch` job: the JSONL input, parsed and checked up
// front (so the job knows its total and its context, and reports bad lines
// by number), and the JSONL output, which doubles as the job's journal: a
// result line is appended whole when its sequence finishes, so re-running
// the same command skips every line already answered.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "strata/sampling.h"

namespace strata {
class Tokenizer;
class ChatTemplate;
}

namespace strata::cli {

struct JobDefaults {
  int max_new_tokens = 64;
  SamplingParams sampling;
};

struct Job {
  size_t line = 0;          // 1-based line number in the input
  nlohmann::json id;        // as given (string or integer); null when missing
  std::vector<int32_t> prompt_ids;
  int max_new_tokens = 0;
  SamplingParams sampling;
  std::vector<std::string> stop;
  std::vector<int32_t> stop_ids;  // a chat template's end-of-turn ids ("messages" lines)
  std::string error;        // non-empty: this line is answered with an error
};

// Parses every line of `path`. Blank lines are skipped. Lines that cannot
// run get Job::error set (malformed JSON, missing or duplicate id, bad field,
// prompt too long for `max_context`, text without a tokenizer...).
// Lines with "messages" (OpenAI-style, with optional "tools", "vars" and
// "add_generation_prompt") are formatted with `chat` (null: such lines are
// errors), their contents tokenized as text, and end at its end-of-turn ids.
std::vector<Job> read_jobs(const std::string& path, const JobDefaults& defaults, const Tokenizer* tokenizer,
                           int64_t vocab_size, int64_t max_context, const ChatTemplate* chat = nullptr,
                           bool chat_special_everywhere = false);

// Opens the output for appending after checking what it already holds:
// a torn last line (no newline: the previous run was killed mid-write) is
// cut off; returns the input line numbers already answered.
class ResultFile {
 public:
  explicit ResultFile(const std::string& path);
  ~ResultFile();
  ResultFile(const ResultFile&) = delete;
  ResultFile& operator=(const ResultFile&) = delete;

  const std::set<size_t>& done_lines() const { return done_; }
  bool repaired() const { return repaired_; }
  // Appends one line with a single write(2) and flushes it to the kernel, so
  // a killed process leaves either the whole line or none of it.
  void append(const nlohmann::json& line);

 private:
  std::string path_;
  int fd_ = -1;
  std::set<size_t> done_;
  bool repaired_ = false;
};

}  // namespace strata::cli
