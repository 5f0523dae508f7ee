// The Hugging Face hub cache, laid out as huggingface_hub lays it out so the
// two share files:
//
//   <cache>/models--ORG--NAME/blobs/<etag>               file contents, by sha256 (LFS) or git sha1
//   <cache>/models--ORG--NAME/blobs/<etag>.incomplete    a download in progress (resumed by Range)
//   <cache>/models--ORG--NAME/snapshots/<commit>/<path>  relative symlink to ../../blobs/<etag>
//   <cache>/models--ORG--NAME/refs/<revision>            the commit a branch or tag pointed to
//   <cache>/.locks/models--ORG--NAME/<etag>.lock         flock held while a blob is written
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace strata::hub {

// HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE, else hf_home()/hub.
std::filesystem::path default_cache_dir();

class RepoCache {
 public:
  RepoCache(std::filesystem::path cache_dir, const std::string& repo);

  const std::filesystem::path& root() const { return root_; }
  const std::filesystem::path& dir() const { return dir_; }  // models--ORG--NAME
  std::filesystem::path blob(const std::string& etag) const;
  std::filesystem::path incomplete(const std::string& etag) const;
  std::filesystem::path lock_file(const std::string& etag) const;
  std::filesystem::path snapshot(const std::string& commit) const;

  // The commit a revision resolves to in the cache: a commit hash itself when
  // its snapshot exists, else refs/<revision>; nullopt when unknown.
  std::optional<std::string> commit_for(const std::string& revision) const;
  void write_ref(const std::string& revision, const std::string& commit) const;
  // snapshots/<commit>/<path> -> relative path to blobs/<etag> (replacing what was there).
  void link(const std::string& commit, const std::string& path, const std::string& etag) const;

 private:
  std::filesystem::path root_, dir_;
  std::string folder_;
};

// Holds an exclusive flock on a file (created if needed) for its lifetime,
// the same lock huggingface_hub's filelock takes.
class FileLock {
 public:
  explicit FileLock(const std::filesystem::path& path);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace strata::hub
