#include "runtime/model_files.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace strata {
namespace {

int64_t mtime_ns(const struct stat& st) { return int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec; }

}  // namespace

ModelFiles::ModelFiles(const std::vector<std::filesystem::path>& paths) {
  auto fail = [&](const std::string& msg) {
    for (int f : fds_) ::close(f);
    for (int f : direct_fds_)
      if (f >= 0) ::close(f);
    throw Error(msg);
  };
  for (const auto& p : paths) {
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(p.string() + ": cannot open: " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      int e = errno;
      ::close(fd);
      fail(p.string() + ": cannot stat: " + std::strerror(e));
    }
    fds_.push_back(fd);
    int dfd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
    if (dfd < 0 && direct_error_.empty())
      direct_error_ = fmt::format("{}: the file system refuses O_DIRECT ({})", p.string(), std::strerror(errno));
    direct_fds_.push_back(dfd);
    paths_.push_back(p.string());
    files_.push_back({uint64_t(st.st_size), st.st_dev, st.st_ino, mtime_ns(st)});
    if (fds_.size() == 1) device_ = st.st_dev;
  }
  if (!direct_error_.empty()) {
    for (int& f : direct_fds_)
      if (f >= 0) ::close(f), f = -1;
  }
}

ModelFiles::~ModelFiles() {
  for (int f : fds_) ::close(f);
  for (int f : direct_fds_)
    if (f >= 0) ::close(f);
}

size_t ModelFiles::largest_file() const {
  size_t best = 0;
  for (size_t i = 1; i < files_.size(); ++i)
    if (files_[i].size > files_[best].size) best = i;
  return best;
}

void ModelFiles::check_unchanged(size_t i) const {
  const Identity& id = files_[i];
  struct stat st {};
  if (::fstat(fds_[i], &st) != 0) throw Error(fmt::format("{}: cannot stat: {}", paths_[i], std::strerror(errno)));
  if (uint64_t(st.st_size) != id.size)
    throw Error(fmt::format("{}: the file changed size from {} to {} bytes after loading started (truncated or "
                            "rewritten while strata was reading it)",
                            paths_[i], id.size, uint64_t(st.st_size)));
  if (mtime_ns(st) != id.mtime_ns)
    throw Error(fmt::format("{}: the file was modified after loading started", paths_[i]));
  struct stat now {};
  if (::stat(paths_[i].c_str(), &now) != 0 || now.st_ino != id.ino || now.st_dev != id.dev)
    throw Error(fmt::format("{}: the file was replaced or removed after loading started", paths_[i]));
}

void ModelFiles::evict_from_page_cache(size_t i) const {
  ::fdatasync(fds_[i]);
  ::posix_fadvise(fds_[i], 0, 0, POSIX_FADV_DONTNEED);
}

}  // namespace strata
