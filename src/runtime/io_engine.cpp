#include "runtime/io_engine.h"

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "runtime/model_files.h"

namespace strata {
namespace {

std::atomic<uint64_t> g_fail_countdown{0};

bool injected_failure() {
  uint64_t n = g_fail_countdown.load();
  while (n > 0) {
    if (g_fail_countdown.compare_exchange_weak(n, n - 1)) return n == 1;
  }
  return false;
}

class PreadEngine final : public IoEngine {
 public:
  explicit PreadEngine(const ModelFiles& files) : files_(files) {}
  const char* name() const override { return "pread"; }

  void read(std::span<const ReadRequest> reqs) override {
    for (const auto& r : reqs) read_one(r);
  }

 private:
  void read_one(const ReadRequest& r) {
    const std::string& path = files_.path(r.file);
    if (injected_failure()) throw Error(fmt::format("{}: read error at offset {}: injected I/O error", path, r.offset));
    uint8_t* dst = static_cast<uint8_t*>(r.dest);
    uint64_t done = 0;
    while (done < r.size) {
      ssize_t n = ::pread(files_.fd(r.file), dst + done, r.size - done, off_t(r.offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        throw Error(fmt::format("{}: read error at offset {}: {}", path, r.offset + done, std::strerror(errno)));
      }
      if (n == 0)
        throw Error(fmt::format("{}: unexpected end of file at offset {} (the file was truncated or replaced "
                                "after loading started)",
                                path, r.offset + done));
      done += uint64_t(n);
    }
  }

  const ModelFiles& files_;
};

}  // namespace

std::unique_ptr<IoEngine> make_pread_engine(const ModelFiles& files) { return std::make_unique<PreadEngine>(files); }

void inject_read_error_after(uint64_t n) { g_fail_countdown.store(n); }

}  // namespace strata
