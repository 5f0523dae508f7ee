#include "hub/repo_info.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>

#include "hub/model_name.h"

namespace strata::hub {

namespace {

bool is_hex(const std::string& s, size_t n) {
  if (s.size() != n) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// A repository path that stays inside the snapshot directory.
bool safe_path(const std::string& p) {
  if (p.empty() || p.front() == '/' || p.find('\\') != std::string::npos || p.find('\0') != std::string::npos)
    return false;
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    std::string part = p.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

bool is_default_file(const std::string& p) {
  if (p.find('/') != std::string::npos) return false;  // top level only: subfolders hold other formats
  static const char* names[] = {"config.json",           "generation_config.json", "tokenizer.json",
                                "tokenizer_config.json", "tokenizer.model",        "special_tokens_map.json",
                                "added_tokens.json",     "vocab.json",             "merges.txt",
                                "chat_template.json",    "chat_template.jinja"};
  for (const char* n : names)
    if (p == n) return true;
  return glob_match("*.safetensors", p) || glob_match("*.safetensors.index.json", p);
}

bool glob_at(const char* pat, const char* s) {
  for (; *pat; ++pat, ++s) {
    if (*pat == '*') {
      while (pat[1] == '*') ++pat;
      for (const char* t = s;; ++t) {
        if (glob_at(pat + 1, t)) return true;
        if (!*t) return false;
      }
    }
    if (!*s) return false;
    if (*pat == '?') continue;
    if (*pat == '[') {
      const char* q = pat + 1;
      bool neg = *q == '!' || *q == '^';
      if (neg) ++q;
      bool hit = false;
      const char* set = q;
      for (; *q && (*q != ']' || q == set); ++q) {
        if (q[1] == '-' && q[2] && q[2] != ']') {
          hit |= *s >= q[0] && *s <= q[2];
          q += 2;
        } else {
          hit |= *s == *q;
        }
      }
      if (!*q) {  // no closing bracket: a literal '['
        if (*s != '[') return false;
        continue;
      }
      if (hit == neg) return false;
      pat = q;
      continue;
    }
    if (*pat != *s) return false;
  }
  return !*s;
}

}  // namespace

bool glob_match(const std::string& pattern, const std::string& path) { return glob_at(pattern.c_str(), path.c_str()); }

RepoInfo parse_repo_info(const std::string& text, const std::string& repo, const std::string& revision) {
  RepoInfo info;
  info.repo = repo;
  info.revision = revision;
  auto bad = [&](const std::string& why) {
    return Error(fmt::format("{}@{}: the hub's repository information is not usable: {}", repo, revision, why));
  };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    throw bad(std::string("not JSON (") + e.what() + ")");
  }
  if (!j.is_object() || !j.contains("sha") || !j["sha"].is_string()) throw bad("no commit hash (\"sha\")");
  info.commit = j["sha"].get<std::string>();
  if (!is_hex(info.commit, 40)) throw bad("commit '" + info.commit + "' is not a 40-digit hash");
  if (!j.contains("siblings") || !j["siblings"].is_array()) throw bad("no file list (\"siblings\")");
  for (const auto& s : j["siblings"]) {
    if (!s.is_object() || !s.contains("rfilename") || !s["rfilename"].is_string()) throw bad("a file without a name");
    RepoFile f;
    f.path = s["rfilename"].get<std::string>();
    if (!safe_path(f.path)) throw bad("unsafe file path '" + f.path + "'");
    if (s.contains("size") && s["size"].is_number_unsigned()) f.size = s["size"].get<uint64_t>();
    if (s.contains("blobId") && s["blobId"].is_string()) f.blob_id = s["blobId"].get<std::string>();
    if (s.contains("lfs") && s["lfs"].is_object()) {
      const auto& l = s["lfs"];
      if (l.contains("sha256") && l["sha256"].is_string()) f.sha256 = l["sha256"].get<std::string>();
      if (l.contains("size") && l["size"].is_number_unsigned()) f.size = l["size"].get<uint64_t>();
      if (!is_hex(f.sha256, 64)) throw bad(f.path + ": LFS sha256 '" + f.sha256 + "' is not 64 hex digits");
    }
    if (!f.lfs() && !is_hex(f.blob_id, 40)) throw bad(f.path + ": no blobId (was ?blobs=true honoured?)");
    info.files.push_back(std::move(f));
  }
  return info;
}

int retry_attempts() {
  const char* v = std::getenv("STRATA_HUB_RETRIES");
  int n = v && *v ? std::atoi(v) : 5;
  return std::max(1, n);
}

void retry_sleep(int attempt) {
  const char* v = std::getenv("STRATA_HUB_RETRY_DELAY_MS");
  long base = v && *v ? std::strtol(v, nullptr, 10) : 1000;
  long ms = std::min<long>(30000, base << std::min(attempt, 10));
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

std::string http_error_message(const HttpResponse& r, const std::string& repo, const std::string& revision,
                               const std::string& file) {
  std::string code = r.header("x-error-code");
  std::string server = r.header("x-error-message");
  std::string what = file.empty() ? fmt::format("{}@{}", repo, revision) : fmt::format("{} in {}@{}", file, repo, revision);
  std::string tail = server.empty() ? "" : " (hub: " + server + ")";
  if (code == "GatedRepo" || ((r.status == 401 || r.status == 403) && code != "RepoNotFound"))
    return fmt::format(
        "{}: access denied (HTTP {}): the repository is gated or private. Accept its license on the hub "
        "(https://huggingface.co/{}) with your account, then pass a token with access: --token, HF_TOKEN, or "
        "`huggingface-cli login`{}",
        what, r.status, repo, tail);
  if (code == "RepoNotFound" || (r.status == 404 && code.empty() && file.empty()))
    return fmt::format(
        "repository {} not found on the hub (HTTP {}); check the name, or pass a token if it is private{}", repo,
        r.status, tail);
  if (code == "RevisionNotFound") return fmt::format("revision '{}' not found in {} (HTTP {}){}", revision, repo, r.status, tail);
  if (code == "EntryNotFound" || r.status == 404)
    return fmt::format("file {} not found in {}@{} (HTTP {}){}", file, repo, revision, r.status, tail);
  if (r.status == 429) return fmt::format("{}: the hub is rate-limiting requests (HTTP 429); try again later", what);
  return fmt::format("{}: the hub answered HTTP {}{}", what, r.status, tail);
}

RepoInfo fetch_repo_info(HttpClient& http, const std::string& repo, const std::string& revision) {
  std::string url = fmt::format("{}/api/models/{}/revision/{}?blobs=true", http.endpoint(), repo,
                                url_encode_component(revision));
  int attempts = retry_attempts();
  for (int a = 0;; ++a) {
    try {
      HttpResponse r = http.get(url);
      if (r.status == 200) return parse_repo_info(r.body, repo, revision);
      if (r.status < 500 || a + 1 >= attempts) throw Error(http_error_message(r, repo, revision, ""));
    } catch (const TransportError& e) {
      if (a + 1 >= attempts)
        throw Error(fmt::format("cannot reach the hub at {} ({}): check the network connection or HF_ENDPOINT; set "
                                "HF_HUB_OFFLINE=1 to use only models already in the cache",
                                http.endpoint(), e.what()));
    }
    retry_sleep(a);
  }
}

std::vector<RepoFile> select_files(const RepoInfo& info, const std::vector<std::string>& include,
                                   const std::string& file) {
  std::vector<RepoFile> out;
  if (!file.empty()) {
    for (const auto& f : info.files)
      if (f.path == file) out.push_back(f);
    if (out.empty()) {
      std::string ggufs;
      for (const auto& f : info.files)
        if (glob_match("*.gguf", f.path)) ggufs += (ggufs.empty() ? "" : ", ") + f.path;
      throw Error(fmt::format("file {} not found in {}@{}{}", file, info.repo, info.revision,
                              ggufs.empty() ? "" : "; its GGUF files: " + ggufs));
    }
    return out;
  }
  if (!include.empty()) {
    for (const auto& f : info.files)
      if (std::any_of(include.begin(), include.end(), [&](const std::string& g) { return glob_match(g, f.path); }))
        out.push_back(f);
    if (out.empty()) throw Error(fmt::format("no file of {}@{} matches --include", info.repo, info.revision));
    return out;
  }
  bool has_safetensors = false;
  for (const auto& f : info.files) {
    if (is_default_file(f.path)) out.push_back(f);
    has_safetensors |= f.path.find('/') == std::string::npos && glob_match("*.safetensors", f.path);
  }
  if (!has_safetensors) {
    std::vector<RepoFile> ggufs;
    for (const auto& f : info.files)
      if (glob_match("*.gguf", f.path)) ggufs.push_back(f);
    if (ggufs.size() == 1) {
      out.push_back(ggufs[0]);
    } else if (ggufs.size() > 1) {
      std::string names;
      for (size_t i = 0; i < ggufs.size() && i < 12; ++i) names += (i ? ", " : "") + ggufs[i].path;
      if (ggufs.size() > 12) names += ", ...";
      throw UsageError(fmt::format("{}@{} holds {} GGUF files and no safetensors; pick one with "
                                   "`strata pull {} --file NAME.gguf` ({})",
                                   info.repo, info.revision, ggufs.size(), info.repo, names));
    } else {
      throw Error(fmt::format("{}@{} has no safetensors or GGUF weights strata can read", info.repo, info.revision));
    }
  }
  return out;
}

}  // namespace strata::hub
