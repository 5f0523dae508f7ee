// The open file descriptors of a model's checkpoint files. Sizes are
// recorded at open so a file truncated or replaced while strata runs is
// detected on the next read instead of producing garbage.
#pragma once

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
  const std::string& path(size_t i) const { return paths_[i]; }
  uint64_t size(size_t i) const { return sizes_[i]; }

 private:
  std::vector<int> fds_;
  std::vector<std::string> paths_;
  std::vector<uint64_t> sizes_;
};

}  // namespace strata
