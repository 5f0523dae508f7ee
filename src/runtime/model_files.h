// The open file descriptors of a model's checkpoint files. Sizes, inodes and
// modification times are recorded at open so a file truncated, rewritten or
// replaced while strata runs is detected instead of producing garbage.
// Each file is opened twice: buffered, and with O_DIRECT when the file
// system allows it (tmpfs and some network file systems refuse).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace strata {

class ModelFiles {
 public:
  explicit ModelFiles(const std::vector<std::filesystem::path>& paths);
  ~ModelFiles();
  ModelFiles(const ModelFiles&) = delete;
  ModelFiles& operator=(const ModelFiles&) = delete;

  size_t count() const { return fds_.size(); }
  int fd(size_t i) const { return fds_[i]; }
  // -1 when O_DIRECT was refused; direct_error() says why.
  int direct_fd(size_t i) const { return direct_fds_[i]; }
  bool direct_available() const { return direct_error_.empty(); }
  const std::string& direct_error() const { return direct_error_; }
  const std::string& path(size_t i) const { return paths_[i]; }
  uint64_t size(size_t i) const { return files_[i].size; }
  // The file system the model lives on (of the first file).
  dev_t device() const { return device_; }
  size_t largest_file() const;

  // Throws Error naming the file if it was truncated, rewritten or replaced
  // since it was opened.
  void check_unchanged(size_t i) const;
  // Drops the file's clean pages from the page cache (benchmarks, tests).
  void evict_from_page_cache(size_t i) const;

 private:
  struct Identity {
    uint64_t size = 0;
    dev_t dev = 0;
    ino_t ino = 0;
    int64_t mtime_ns = 0;
  };
  std::vector<int> fds_, direct_fds_;
  std::vector<std::string> paths_;
  std::vector<Identity> files_;
  std::string direct_error_;
  dev_t device_ = 0;
};

}  // namespace strata
