#include "runtime/io_engine.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "runtime/io_detail.h"
#include "runtime/model_files.h"

namespace strata {
namespace {

using io_detail::Piece;

std::atomic<uint64_t> g_fail_countdown{0};

bool injected_failure() {
  uint64_t n = g_fail_countdown.load();
  while (n > 0) {
    if (g_fail_countdown.compare_exchange_weak(n, n - 1)) return n == 1;
  }
  return false;
}

void evict(int fd, uint64_t offset, uint64_t size) { ::posix_fadvise(fd, off_t(offset), off_t(size), POSIX_FADV_DONTNEED); }

// A pool of threads reading pieces with pread: O_DIRECT pieces at a queue
// depth of `threads`, or buffered pieces evicted from the page cache once
// read, so the page cache does not grow while the model streams.
class PoolEngine final : public IoEngine {
 public:
  PoolEngine(const ModelFiles& files, IoMethod m, size_t threads) : IoEngine(files), method_(m) {
    if (m == IoMethod::Direct && !files.direct_available()) throw Error(files.direct_error());
    // Readers at scattered offsets confuse the kernel's read-ahead, which
    // then caches pages past what was asked for and nobody evicts them;
    // 4 MiB requests need no read-ahead.
    if (m == IoMethod::Pread)
      for (size_t i = 0; i < files.count(); ++i) ::posix_fadvise(files.fd(i), 0, 0, POSIX_FADV_RANDOM);
    for (size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
  }
  ~PoolEngine() override {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }
  IoMethod method() const override { return method_; }

 protected:
  void read_all(std::span<const ReadRequest> reqs) override {
    auto job = std::make_shared<Job>();
    job->pieces = io_detail::split(reqs, method_ == IoMethod::Direct);
    if (job->pieces.empty()) return;
    if (job->pieces.size() > 1) {
      {
        std::lock_guard<std::mutex> lk(mu_);
        jobs_.push_back(job);
      }
      cv_.notify_all();
    }
    run(*job);  // the caller works too
    std::unique_lock<std::mutex> lk(job->mu);
    job->cv.wait(lk, [&] { return job->done == job->pieces.size(); });
    if (job->error) std::rethrow_exception(job->error);
    // Once more over whole requests, now that no reader holds their pages:
    // evicting a piece while a neighbour is being read leaves pages behind.
    if (method_ == IoMethod::Pread)
      for (const auto& r : reqs) evict(files_.fd(r.file), r.offset, r.size);
  }

 private:
  struct Job {
    std::vector<Piece> pieces;
    std::atomic<size_t> next{0};
    std::atomic<bool> failed{false};
    std::mutex mu;
    std::condition_variable cv;
    size_t done = 0;
    std::exception_ptr error;
  };

  void run(Job& job) {
    for (;;) {
      size_t i = job.next.fetch_add(1);
      if (i >= job.pieces.size()) return;
      std::exception_ptr err;
      if (!job.failed.load()) {
        try {
          const Piece& p = job.pieces[i];
          io_detail::pread_full(files_, p);
          if (!p.direct) evict(files_.fd(p.file), p.offset, p.size);
        } catch (...) {
          err = std::current_exception();
          job.failed = true;
        }
      }
      std::lock_guard<std::mutex> lk(job.mu);
      if (err && !job.error) job.error = err;
      if (++job.done == job.pieces.size()) job.cv.notify_all();
    }
  }

  void work() {
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return stop_ || !jobs_.empty(); });
        if (stop_) return;
        job = jobs_.front();
        if (job->next.load() >= job->pieces.size()) {
          jobs_.pop_front();
          continue;
        }
      }
      run(*job);
    }
  }

  IoMethod method_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> jobs_;
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

// Sequential buffered reads on the calling thread, the kernel's read-ahead
// asked to run a window ahead (POSIX_FADV_WILLNEED) and every page dropped
// from the cache right after it is copied out (POSIX_FADV_DONTNEED).
class BufferedEngine final : public IoEngine {
 public:
  explicit BufferedEngine(const ModelFiles& files) : IoEngine(files) {
    for (size_t i = 0; i < files.count(); ++i) ::posix_fadvise(files.fd(i), 0, 0, POSIX_FADV_SEQUENTIAL);
  }
  IoMethod method() const override { return IoMethod::Buffered; }

 protected:
  void read_all(std::span<const ReadRequest> reqs) override {
    constexpr uint64_t kWindow = uint64_t(32) << 20;
    std::vector<Piece> pieces = io_detail::split(reqs, false);
    size_t hinted = 0;      // pieces [0, hinted) were hinted
    uint64_t ahead = 0;     // bytes hinted but not yet read
    for (size_t i = 0; i < pieces.size(); ++i) {
      // Keep about kWindow bytes hinted ahead so the disk keeps working
      // while this piece is copied out.
      while (hinted < pieces.size() && (hinted <= i || ahead < kWindow)) {
        const Piece& h = pieces[hinted++];
        ::posix_fadvise(files_.fd(h.file), off_t(h.offset), off_t(h.size), POSIX_FADV_WILLNEED);
        ahead += h.size;
      }
      const Piece& p = pieces[i];
      io_detail::pread_full(files_, p);
      evict(files_.fd(p.file), p.offset, p.size);
      ahead -= p.size;
    }
  }
};

}  // namespace

namespace io_detail {

std::vector<Piece> split(std::span<const ReadRequest> reqs, bool direct, uint64_t chunk) {
  std::vector<Piece> out;
  auto add = [&](size_t file, bool d, uint64_t off, uint64_t size, uint8_t* dst) {
    for (uint64_t done = 0; done < size; done += chunk)
      out.push_back({file, d, off + done, std::min(chunk, size - done), dst + done});
  };
  for (const auto& r : reqs) {
    uint8_t* dst = static_cast<uint8_t*>(r.dest);
    if (r.size == 0) continue;
    if (!direct || (r.offset % kDirectAlign) != (reinterpret_cast<uintptr_t>(dst) % kDirectAlign)) {
      add(r.file, false, r.offset, r.size, dst);
      continue;
    }
    uint64_t head = std::min(r.size, (kDirectAlign - r.offset % kDirectAlign) % kDirectAlign);
    uint64_t middle = (r.size - head) / kDirectAlign * kDirectAlign;
    uint64_t tail = r.size - head - middle;
    add(r.file, false, r.offset, head, dst);
    add(r.file, true, r.offset + head, middle, dst + head);
    add(r.file, false, r.offset + head + middle, tail, dst + head + middle);
  }
  return out;
}

void throw_eof(const ModelFiles& files, size_t file, uint64_t offset) {
  throw Error(fmt::format("{}: unexpected end of file at offset {} (the file was truncated or replaced after "
                          "loading started)",
                          files.path(file), offset));
}

void throw_errno(const ModelFiles& files, size_t file, uint64_t offset, int err) {
  throw Error(fmt::format("{}: read error at offset {}: {}", files.path(file), offset, std::strerror(err)));
}

void pread_full(const ModelFiles& files, const Piece& p) {
  const int fd = p.direct ? files.direct_fd(p.file) : files.fd(p.file);
  uint64_t done = 0;
  while (done < p.size) {
    ssize_t n = ::pread(fd, p.dest + done, p.size - done, off_t(p.offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno(files, p.file, p.offset + done, errno);
    }
    if (n == 0) throw_eof(files, p.file, p.offset + done);
    done += uint64_t(n);
    if (p.direct && done < p.size && done % kDirectAlign != 0) {
      // A short O_DIRECT read off a block boundary: finish through the cache.
      pread_full(files, {p.file, false, p.offset + done, p.size - done, p.dest + done});
      return;
    }
  }
}

}  // namespace io_detail

const char* io_method_name(IoMethod m) {
  switch (m) {
    case IoMethod::Uring: return "uring";
    case IoMethod::Direct: return "direct";
    case IoMethod::Pread: return "pread";
    case IoMethod::Buffered: return "buffered";
  }
  return "?";
}

std::optional<IoMethod> parse_io_method(std::string_view s) {
  for (IoMethod m : kAllIoMethods)
    if (s == io_method_name(m)) return m;
  return std::nullopt;
}

bool io_method_needs_direct(IoMethod m) { return m == IoMethod::Uring || m == IoMethod::Direct; }

namespace {
// Every request inside its file, before anything is read.
void validate(const ModelFiles& files, std::span<const ReadRequest> reqs) {
  for (const auto& r : reqs) {
    if (injected_failure())
      throw Error(fmt::format("{}: read error at offset {}: injected I/O error", files.path(r.file), r.offset));
    if (r.file >= files.count()) throw Error("internal: read request for an unknown file");
    if (r.offset + r.size > files.size(r.file) || r.offset + r.size < r.offset)
      throw Error(fmt::format("{}: read of {} bytes at offset {} is beyond the end of the file ({} bytes when opened)",
                              files.path(r.file), r.size, r.offset, files.size(r.file)));
  }
}
}  // namespace

void IoEngine::read(std::span<const ReadRequest> reqs) {
  validate(files_, reqs);
  read_all(reqs);
}

void IoEngine::read_groups(std::span<const ReadRequest> reqs, std::span<const size_t> ends,
                           const std::function<void(size_t)>& done) {
  for (size_t g = 0; g < ends.size(); ++g)
    if (ends[g] > reqs.size() || (g > 0 && ends[g] < ends[g - 1])) throw Error("internal: bad read groups");
  if (ends.empty() ? !reqs.empty() : ends.back() != reqs.size()) throw Error("internal: bad read groups");
  validate(files_, reqs);
  read_groups_all(reqs, ends, done);
}

void IoEngine::read_groups_all(std::span<const ReadRequest> reqs, std::span<const size_t> ends,
                               const std::function<void(size_t)>& done) {
  for (size_t g = 0, begin = 0; g < ends.size(); begin = ends[g++]) {
    read_all(reqs.subspan(begin, ends[g] - begin));
    done(g);
  }
}

std::unique_ptr<IoEngine> make_io_engine(IoMethod m, const ModelFiles& files) {
  switch (m) {
    case IoMethod::Uring: return io_detail::make_uring_engine(files);
    case IoMethod::Direct: return std::make_unique<PoolEngine>(files, m, 8);
    case IoMethod::Pread: return std::make_unique<PoolEngine>(files, m, 4);
    case IoMethod::Buffered: return std::make_unique<BufferedEngine>(files);
  }
  throw Error("internal: unknown I/O method");
}

std::unique_ptr<IoEngine> make_pread_engine(const ModelFiles& files) { return make_io_engine(IoMethod::Pread, files); }

void inject_read_error_after(uint64_t n) { g_fail_countdown.store(n); }

}  // namespace strata
