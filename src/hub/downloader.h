// Fetches the blobs of a snapshot into the cache, several files at a time:
// each into blobs/<etag>.incomplete, continued with a Range request after a
// dropped connection, a 5xx or a kill; verified (sha256 for LFS files, git
// blob sha1 otherwise) before it is renamed to blobs/<etag> and linked from
// snapshots/<commit>/<path>. A blob already complete is only linked.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "hub/hub_cache.h"
#include "hub/repo_info.h"

namespace strata::hub {

struct DownloadSettings {
  std::string endpoint, token;
  size_t parallel = 4;
  bool progress = true;
};

struct DownloadStats {
  uint64_t downloaded = 0;  // bytes received by this run
  uint64_t reused = 0;      // bytes of blobs that were already complete
};

class Downloader {
 public:
  Downloader(const RepoCache& cache, const RepoInfo& info, DownloadSettings settings);
  // Throws Error: not enough disk space (before anything is fetched), HTTP
  // errors, verification failures (the partial file deleted), disk full.
  DownloadStats run(const std::vector<RepoFile>& files);

 private:
  uint64_t fetch(class HttpClient& http, const RepoFile& f, class ProgressBar& bar);
  const RepoCache& cache_;
  const RepoInfo& info_;
  DownloadSettings settings_;
  const std::atomic<bool>* failed_ = nullptr;  // set while run() goes: another file failed
};

// Bytes available to an unprivileged user on the file system of `dir`
// (STRATA_HUB_FREE_BYTES overrides it, for tests).
uint64_t free_disk_bytes(const std::filesystem::path& dir);

}  // namespace strata::hub
