// io_uring on O_DIRECT descriptors: a request is cut into 4 MiB pieces and
// up to kDepth of them are kept in flight, which is what virtual and NVMe
// disks need to reach their throughput. Each concurrent caller borrows its
// own ring from a small pool.
#include <fmt/format.h>
#include <liburing.h>

#include <cstring>
#include <functional>
#include <mutex>

#include "core/error.h"
#include "runtime/io_detail.h"
#include "runtime/model_files.h"

namespace strata::io_detail {
namespace {

constexpr unsigned kDepth = 32;

struct Ring {
  io_uring ring{};
  Ring() {
    int rc = io_uring_queue_init(kDepth, &ring, 0);
    if (rc < 0) throw Error(fmt::format("io_uring is not available: {}", std::strerror(-rc)));
  }
  ~Ring() { io_uring_queue_exit(&ring); }
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;
};

class UringEngine final : public IoEngine {
 public:
  explicit UringEngine(const ModelFiles& files) : IoEngine(files) {
    if (!files.direct_available()) throw Error(files.direct_error());
    free_.push_back(std::make_unique<Ring>());  // fail now, not on the first read
  }
  IoMethod method() const override { return IoMethod::Uring; }

 protected:
  void read_all(std::span<const ReadRequest> reqs) override {
    std::vector<Piece> pieces = split(reqs, true);
    std::unique_ptr<Ring> ring = borrow();
    std::exception_ptr err;
    try {
      run(ring->ring, pieces);
    } catch (...) {
      err = std::current_exception();
    }
    give_back(std::move(ring));
    if (err) std::rethrow_exception(err);
  }

  // Every piece of every group in one ring, so the disk queue stays full
  // across group boundaries; a group is done when its last piece lands.
  void read_groups_all(std::span<const ReadRequest> reqs, std::span<const size_t> ends,
                       const std::function<void(size_t)>& done) override {
    std::vector<Piece> pieces;
    std::vector<size_t> group_of;  // per piece
    std::vector<size_t> left(ends.size(), 0);
    for (size_t g = 0, begin = 0; g < ends.size(); begin = ends[g++]) {
      std::vector<Piece> p = split(reqs.subspan(begin, ends[g] - begin), true);
      pieces.insert(pieces.end(), p.begin(), p.end());
      group_of.insert(group_of.end(), p.size(), g);
      left[g] = p.size();
    }
    std::unique_ptr<Ring> ring = borrow();
    std::exception_ptr err;
    try {
      for (size_t g = 0; g < ends.size(); ++g)
        if (left[g] == 0) done(g);  // nothing to read (empty requests)
      run(ring->ring, pieces, [&](size_t idx) {
        if (--left[group_of[idx]] == 0) done(group_of[idx]);
      });
    } catch (...) {
      err = std::current_exception();
    }
    give_back(std::move(ring));
    if (err) std::rethrow_exception(err);
  }

 private:
  std::unique_ptr<Ring> borrow() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (!free_.empty()) {
        auto r = std::move(free_.back());
        free_.pop_back();
        return r;
      }
    }
    return std::make_unique<Ring>();
  }
  void give_back(std::unique_ptr<Ring> r) {
    std::lock_guard<std::mutex> lk(mu_);
    free_.push_back(std::move(r));
  }

  // Submits the O_DIRECT pieces kDepth at a time, reads the buffered edges
  // while they fly, and always drains the ring before returning or throwing
  // (a completion must never land in a buffer its owner has given up).
  // `landed(i)`, when given, is called for each piece i read completely,
  // until the first error.
  void run(io_uring& ring, std::vector<Piece>& pieces, const std::function<void(size_t)>& landed = {}) {
    std::vector<size_t> direct;
    for (size_t i = 0; i < pieces.size(); ++i)
      if (pieces[i].direct) direct.push_back(i);
    size_t next = 0, in_flight = 0;
    std::exception_ptr err;
    auto submit = [&](size_t idx) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring);
      const Piece& p = pieces[idx];
      io_uring_prep_read(sqe, files_.direct_fd(p.file), p.dest, unsigned(p.size), p.offset);
      io_uring_sqe_set_data64(sqe, idx);
      ++in_flight;
    };
    auto fill = [&] {
      size_t added = 0;
      while (!err && next < direct.size() && in_flight < kDepth) submit(direct[next++]), ++added;
      if (added) {
        int rc = io_uring_submit(&ring);
        if (rc < 0 && !err) {
          // Nothing of this batch was queued: forget it and stop.
          in_flight -= added;
          try {
            throw_errno(files_, pieces[direct[next - 1]].file, pieces[direct[next - 1]].offset, -rc);
          } catch (...) {
            err = std::current_exception();
          }
        }
      }
    };
    fill();
    // The unaligned edges, through the page cache, while the disk works.
    for (size_t i = 0; i < pieces.size(); ++i) {
      const Piece& p = pieces[i];
      if (p.direct || err) continue;
      try {
        pread_full(files_, p);
        if (landed) landed(i);
      } catch (...) {
        err = std::current_exception();
      }
    }
    while (in_flight > 0) {
      io_uring_cqe* cqe = nullptr;
      int rc = io_uring_wait_cqe(&ring, &cqe);
      if (rc == -EINTR) continue;
      if (rc < 0) throw Error(fmt::format("io_uring wait failed: {}", std::strerror(-rc)));  // ring unusable
      const size_t idx = size_t(io_uring_cqe_get_data64(cqe));
      const int res = cqe->res;
      io_uring_cqe_seen(&ring, cqe);
      --in_flight;
      Piece& p = pieces[idx];
      try {
        if (res == -EAGAIN || res == -EINTR) {
          pread_full(files_, p);
        } else if (res < 0) {
          throw_errno(files_, p.file, p.offset, -res);
        } else if (res == 0) {
          throw_eof(files_, p.file, p.offset);
        } else if (uint64_t(res) < p.size) {
          // Short read: finish the rest synchronously (EOF there is an error).
          pread_full(files_, {p.file, uint64_t(res) % kDirectAlign == 0, p.offset + uint64_t(res),
                              p.size - uint64_t(res), p.dest + res});
        }
        if (landed && !err) landed(idx);
      } catch (...) {
        if (!err) err = std::current_exception();
      }
      fill();
    }
    if (err) std::rethrow_exception(err);
  }

  std::mutex mu_;
  std::vector<std::unique_ptr<Ring>> free_;
};

}  // namespace

std::unique_ptr<IoEngine> make_uring_engine(const ModelFiles& files) { return std::make_unique<UringEngine>(files); }

}  // namespace strata::io_detail
