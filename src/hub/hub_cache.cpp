#include "hub/hub_cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "hub/hub_token.h"

namespace fs = std::filesystem;

namespace strata::hub {

fs::path default_cache_dir() {
  for (const char* name : {"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"})
    if (const char* v = std::getenv(name); v && *v) return v;
  return hf_home() / "hub";
}

RepoCache::RepoCache(fs::path cache_dir, const std::string& repo) : root_(std::move(cache_dir)) {
  folder_ = "models--" + repo;
  size_t slash = folder_.find('/');
  if (slash != std::string::npos) folder_.replace(slash, 1, "--");
  dir_ = root_ / folder_;
}

fs::path RepoCache::blob(const std::string& etag) const { return dir_ / "blobs" / etag; }
fs::path RepoCache::incomplete(const std::string& etag) const { return dir_ / "blobs" / (etag + ".incomplete"); }
fs::path RepoCache::lock_file(const std::string& etag) const { return root_ / ".locks" / folder_ / (etag + ".lock"); }
fs::path RepoCache::snapshot(const std::string& commit) const { return dir_ / "snapshots" / commit; }

std::optional<std::string> RepoCache::commit_for(const std::string& revision) const {
  std::error_code ec;
  std::ifstream f(dir_ / "refs" / revision);
  if (f) {
    std::stringstream ss;
    ss << f.rdbuf();
    std::string c = ss.str();
    while (!c.empty() && (c.back() == '\n' || c.back() == '\r' || c.back() == ' ')) c.pop_back();
    if (!c.empty()) return c;
  }
  if (fs::is_directory(snapshot(revision), ec)) return revision;
  return std::nullopt;
}

// Writes via a temporary file and rename so a reader never sees half a ref.
void RepoCache::write_ref(const std::string& revision, const std::string& commit) const {
  if (revision == commit) return;  // huggingface_hub writes no ref for a commit hash
  fs::path ref = dir_ / "refs" / revision;
  fs::create_directories(ref.parent_path());
  fs::path tmp = ref;
  tmp += ".tmp" + std::to_string(getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << commit;  // no newline, as huggingface_hub writes it
    if (!f) throw Error(tmp.string() + ": cannot write");
  }
  fs::rename(tmp, ref);
}

void RepoCache::link(const std::string& commit, const std::string& path, const std::string& etag) const {
  fs::path dst = snapshot(commit) / path;
  fs::create_directories(dst.parent_path());
  // Relative, so the cache can be moved: one "../" per directory below models--ORG--NAME.
  fs::path target;
  fs::path rel = fs::path("snapshots") / commit / path;
  for (auto it = rel.begin(); std::next(it) != rel.end(); ++it) target /= "..";
  target /= fs::path("blobs") / etag;
  std::error_code ec;
  fs::remove(dst, ec);
  fs::create_symlink(target, dst, ec);
  if (ec) throw Error(dst.string() + ": cannot create the snapshot link: " + ec.message());
}

FileLock::FileLock(const fs::path& path) {
  fs::create_directories(path.parent_path());
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(path.string() + ": cannot open the lock file: " + std::strerror(errno));
  while (::flock(fd_, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    int e = errno;
    ::close(fd_);
    throw Error(path.string() + ": cannot lock: " + std::strerror(e));
  }
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

}  // namespace strata::hub
