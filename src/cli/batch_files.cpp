#include "batch_files.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>

#include "strata/error.h"
#include "strata/chat.h"
#include "strata/tokenizer.h"

namespace strata::cli {
namespace {

using nlohmann::json;

template <class T>
bool read_number(const json& j, const char* key, T* out, std::string& err) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return false;
  if (!it->is_number()) {
    err = fmt::format("'{}' must be a number", key);
    return false;
  }
  *out = it->get<T>();
  return true;
}

struct ChatContext {
  const ChatTemplate* tmpl = nullptr;
  bool special_everywhere = false;
  std::vector<int32_t> stop_ids;
};

// The prompt of a "messages" line. `line` is the line's text, parsed again
// keeping key order (tool arguments are printed in their given order).
void chat_prompt(Job& job, const std::string& line, const Tokenizer* tok, const ChatContext& chat) {
  std::string& err = job.error;
  if (!chat.tmpl) {
    err = "'messages' needs a chat template: the model has none (give --chat-template FILE)";
    return;
  }
  if (!tok) {
    err = "'messages' needs the model's tokenizer.json";
    return;
  }
  nlohmann::ordered_json o = nlohmann::ordered_json::parse(line);
  ChatInput in;
  in.messages = o["messages"];
  if (!in.messages.is_array()) {
    err = "'messages' must be an array of {\"role\", \"content\"} objects";
    return;
  }
  if (o.contains("tools")) in.tools = o["tools"];
  if (o.contains("add_generation_prompt")) in.add_generation_prompt = o["add_generation_prompt"].is_boolean() && o["add_generation_prompt"].get<bool>();
  if (o.contains("vars")) {
    if (!o["vars"].is_object()) {
      err = "'vars' must be an object";
      return;
    }
    in.variables = o["vars"];
  }
  try {
    job.prompt_ids = chat.tmpl->encode(
        in, *tok, chat.special_everywhere ? SpecialTokenParsing::Everywhere : SpecialTokenParsing::TemplateOnly);
  } catch (const ChatTemplateError& e) {
    err = e.what();
    return;
  }
  if (job.prompt_ids.empty()) err = "'messages' render to no tokens";
  job.stop_ids = chat.stop_ids;
}

void parse_job(Job& job, const json& j, const JobDefaults& d, const Tokenizer* tok, int64_t vocab, int64_t max_ctx,
               const std::string& line, const ChatContext& chat) {
  std::string& err = job.error;
  if (!j.is_object()) {
    err = "expected a JSON object";
    return;
  }
  auto id = j.find("id");
  if (id == j.end() || !(id->is_string() || id->is_number_integer())) {
    err = "missing 'id' (a string or an integer)";
    return;
  }
  job.id = *id;
  const bool has_text = j.contains("prompt"), has_ids = j.contains("prompt_ids"), has_msgs = j.contains("messages");
  if (int(has_text) + int(has_ids) + int(has_msgs) != 1) {
    err = "give exactly one of 'prompt' (text), 'prompt_ids' and 'messages'";
    return;
  }
  if (has_msgs) {
    chat_prompt(job, line, tok, chat);
    if (!err.empty()) return;
  } else if (has_ids) {
    const json& ids = j["prompt_ids"];
    if (!ids.is_array() || ids.empty()) {
      err = "'prompt_ids' must be a non-empty array of token ids";
      return;
    }
    for (const auto& v : ids) {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= vocab) {
        err = fmt::format("'prompt_ids' holds {} which is not a token id of this model (0..{})", v.dump(), vocab - 1);
        return;
      }
      job.prompt_ids.push_back(int32_t(v.get<int64_t>()));
    }
  } else {
    if (!j["prompt"].is_string()) {
      err = "'prompt' must be a string";
      return;
    }
    if (!tok) {
      err = "'prompt' is text but the model has no tokenizer.json; give 'prompt_ids'";
      return;
    }
    // Documents in a batch are untrusted: special-token text stays text.
    job.prompt_ids = tok->encode(j["prompt"].get<std::string>(), true, /*special_as_text=*/true);
    if (job.prompt_ids.empty()) {
      err = "'prompt' encodes to no tokens";
      return;
    }
  }
  job.max_new_tokens = d.max_new_tokens;
  job.sampling = d.sampling;
  int64_t n = 0;
  if (read_number(j, "max_new_tokens", &n, err)) {
    if (n < 0 || n > (int64_t(1) << 30)) err = "'max_new_tokens' must be >= 0";
    job.max_new_tokens = int(n);
  }
  read_number(j, "temperature", &job.sampling.temperature, err);
  read_number(j, "top_p", &job.sampling.top_p, err);
  read_number(j, "top_k", &job.sampling.top_k, err);
  read_number(j, "min_p", &job.sampling.min_p, err);
  read_number(j, "seed", &job.sampling.seed, err);
  if (!err.empty()) return;
  if (!(job.sampling.temperature >= 0)) err = "'temperature' must be >= 0";
  else if (job.sampling.top_k < 0) err = "'top_k' must be >= 0";
  else if (!(job.sampling.top_p > 0 && job.sampling.top_p <= 1)) err = "'top_p' must be in (0, 1]";
  else if (!(job.sampling.min_p >= 0 && job.sampling.min_p <= 1)) err = "'min_p' must be in [0, 1]";
  if (!err.empty()) return;
  if (j.contains("stop")) {
    const json& s = j["stop"];
    auto add = [&](const json& v) {
      if (!v.is_string() || v.get<std::string>().empty()) err = "'stop' must be a non-empty string or a list of them";
      else job.stop.push_back(v);
    };
    if (s.is_array())
      for (const auto& v : s) add(v);
    else
      add(s);
    if (!err.empty()) return;
    if (!tok) {
      err = "'stop' strings need a tokenizer.json in the model directory";
      return;
    }
  }
  int64_t need = int64_t(job.prompt_ids.size()) + job.max_new_tokens;
  if (need > max_ctx)
    err = fmt::format("prompt ({} tokens) plus max_new_tokens ({}) exceed the model's context of {}",
                      job.prompt_ids.size(), job.max_new_tokens, max_ctx);
}

}  // namespace

std::vector<Job> read_jobs(const std::string& path, const JobDefaults& d, const Tokenizer* tok, int64_t vocab,
                           int64_t max_ctx, const ChatTemplate* chat_template, bool chat_special_everywhere) {
  ChatContext chat;
  chat.tmpl = chat_template;
  chat.special_everywhere = chat_special_everywhere;
  if (chat_template && tok) chat.stop_ids = chat_template->stop_token_ids(*tok);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the input file");
  std::vector<Job> jobs;
  std::map<std::string, size_t> seen;  // id (as JSON text) -> first line
  std::string text;
  for (size_t line = 1; std::getline(in, text); ++line) {
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.find_first_not_of(" \t") == std::string::npos) continue;
    Job job;
    job.line = line;
    try {
      parse_job(job, json::parse(text), d, tok, vocab, max_ctx, text, chat);
    } catch (const json::exception& e) {
      job.error = std::string("malformed JSON: ") + e.what();
    }
    if (!job.id.is_null()) {
      auto [it, fresh] = seen.emplace(job.id.dump(), line);
      if (!fresh && job.error.empty()) job.error = fmt::format("duplicate id {} (first on line {})", job.id.dump(), it->second);
    }
    jobs.push_back(std::move(job));
  }
  return jobs;
}

ResultFile::ResultFile(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(path + ": cannot open the output file: " + std::strerror(errno));
  std::string content;
  char buf[1 << 16];
  ssize_t n;
  while ((n = ::pread(fd_, buf, sizeof buf, off_t(content.size()))) > 0) content.append(buf, size_t(n));
  size_t keep = content.rfind('\n');
  keep = keep == std::string::npos ? 0 : keep + 1;
  if (keep < content.size()) {
    if (::ftruncate(fd_, off_t(keep)) != 0) throw Error(path + ": cannot repair the torn last line: " + std::strerror(errno));
    repaired_ = true;
  }
  size_t start = 0, number = 1;
  while (start < keep) {
    size_t end = content.find('\n', start);
    std::string_view l(content.data() + start, end - start);
    try {
      auto j = nlohmann::json::parse(l);
      if (!j.contains("line") || !j["line"].is_number_unsigned()) throw Error("no 'line' field");
      done_.insert(j["line"].get<size_t>());
    } catch (const std::exception& e) {
      throw Error(fmt::format("{}: line {} is not a result of strata batch ({}); refusing to append to it", path, number,
                              e.what()));
    }
    start = end + 1;
    ++number;
  }
}

ResultFile::~ResultFile() {
  if (fd_ >= 0) ::close(fd_);
}

void ResultFile::append(const nlohmann::json& line) {
  std::string s = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  size_t done = 0;
  while (done < s.size()) {
    ssize_t n = ::write(fd_, s.data() + done, s.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(path_ + ": cannot write a result: " + std::strerror(errno));
    }
    done += size_t(n);
  }
}

}  // namespace strata::cli
