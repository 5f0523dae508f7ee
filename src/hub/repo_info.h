// A repository at one commit, as the hub's API describes it
// (GET /api/models/ORG/NAME/revision/REV?blobs=true: "sha" and "siblings"
// with rfilename, size, blobId and, for LFS files, lfs.sha256), which files
// of it strata fetches, and the hub's HTTP errors turned into messages.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hub/http_client.h"

namespace strata::hub {

struct RepoFile {
  std::string path;     // in the repository, '/'-separated
  uint64_t size = 0;
  std::string blob_id;  // git blob sha1
  std::string sha256;   // of LFS files; empty otherwise
  bool lfs() const { return !sha256.empty(); }
  // Its name in blobs/: what huggingface_hub uses (the sha256 of LFS files, else the git sha1).
  const std::string& etag() const { return lfs() ? sha256 : blob_id; }
};

struct RepoInfo {
  std::string repo, revision, commit;
  std::vector<RepoFile> files;
};

// Parses the API's JSON; throws Error for anything malformed or unsafe (a
// path with "..", an absolute path, a hash that is not hex).
RepoInfo parse_repo_info(const std::string& json, const std::string& repo, const std::string& revision);

// Asks the hub (with retries on connection errors and 5xx); throws Error
// with a message for the user on 401/403/404 and when the hub is unreachable.
RepoInfo fetch_repo_info(HttpClient& http, const std::string& repo, const std::string& revision);

// fnmatch-style: '*' and '?' match any characters including '/', [abc] sets.
bool glob_match(const std::string& pattern, const std::string& path);

// The files to fetch: exactly `file` when given (error if absent); else
// those matching `include`; else strata's default set (top-level
// config/tokenizer/chat-template files and safetensors with their index; a
// repository with no safetensors but a single GGUF gets that GGUF).
std::vector<RepoFile> select_files(const RepoInfo& info, const std::vector<std::string>& include,
                                   const std::string& file);

// The message for a failed hub request (status, X-Error-Code, what was asked for).
std::string http_error_message(const HttpResponse& r, const std::string& repo, const std::string& revision,
                               const std::string& file);

// Retry policy shared by API calls and downloads: attempts and the first
// delay (doubling up to 30 s) from STRATA_HUB_RETRIES / STRATA_HUB_RETRY_DELAY_MS.
int retry_attempts();
void retry_sleep(int attempt);

}  // namespace strata::hub
