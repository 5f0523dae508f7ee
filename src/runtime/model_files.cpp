#include "runtime/model_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace strata {

ModelFiles::ModelFiles(const std::vector<std::filesystem::path>& paths) {
  for (const auto& p : paths) {
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      for (int f : fds_) ::close(f);
      throw Error(p.string() + ": cannot open: " + std::strerror(errno));
    }
    struct stat st {};
    fstat(fd, &st);
    fds_.push_back(fd);
    paths_.push_back(p.string());
    sizes_.push_back(uint64_t(st.st_size));
  }
}

ModelFiles::~ModelFiles() {
  for (int f : fds_) ::close(f);
}

}  // namespace strata
