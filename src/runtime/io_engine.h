// Reading byte ranges of model files into memory. One small interface, so
// that io_uring, a pread pool and buffered reads are interchangeable
// implementations chosen per file system (see io_select.h).
//
//   auto io = make_io_engine(IoMethod::Uring, files);
//   io->read(requests);   // every request read completely, or Error naming the file
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace strata {

class ModelFiles;

struct ReadRequest {
  size_t file = 0;      // index into ModelFiles
  uint64_t offset = 0;  // byte offset in the file
  uint64_t size = 0;
  void* dest = nullptr;
};

enum class IoMethod {
  Uring,     // io_uring on O_DIRECT descriptors, many large requests in flight
  Direct,    // a pool of threads doing pread on O_DIRECT descriptors
  Pread,     // a pool of threads doing buffered pread, evicting what they read
  Buffered,  // sequential buffered reads with read-ahead hints, evicting what they read
};
inline constexpr IoMethod kAllIoMethods[] = {IoMethod::Uring, IoMethod::Direct, IoMethod::Pread, IoMethod::Buffered};

const char* io_method_name(IoMethod m);
// "uring", "direct", "pread", "buffered"; nullopt otherwise.
std::optional<IoMethod> parse_io_method(std::string_view s);
bool io_method_needs_direct(IoMethod m);

class IoEngine {
 public:
  explicit IoEngine(const ModelFiles& files) : files_(files) {}
  virtual ~IoEngine() = default;
  virtual IoMethod method() const = 0;
  const char* name() const { return io_method_name(method()); }
  const ModelFiles& files() const { return files_; }

  // Reads every request completely or throws Error naming the file (short
  // read = file truncated since it was opened). Safe to call from several
  // threads at once. Requests of any alignment are accepted; O_DIRECT
  // engines read the unaligned edges through the page cache.
  void read(std::span<const ReadRequest> requests);

  // Reads requests that form consecutive groups (group g is requests
  // [ends[g-1], ends[g]) ) with all of them in flight at once where the
  // engine can, and calls done(g) on this thread as soon as every request
  // of group g is in memory, so a caller (the expert cache) can hand each
  // group to compute while the others are still being read. done is not
  // called after an error; the Error is thrown once all reads have drained.
  void read_groups(std::span<const ReadRequest> requests, std::span<const size_t> ends,
                   const std::function<void(size_t)>& done);

 protected:
  virtual void read_all(std::span<const ReadRequest> requests) = 0;
  // Default: one group after the other, each at the engine's own depth.
  virtual void read_groups_all(std::span<const ReadRequest> requests, std::span<const size_t> ends,
                               const std::function<void(size_t)>& done);
  const ModelFiles& files_;
};

// Throws Error when the method cannot be used for these files (O_DIRECT
// refused by the file system, io_uring unavailable in this kernel).
std::unique_ptr<IoEngine> make_io_engine(IoMethod method, const ModelFiles& files);

// Plain pread(2) pool; kept under its old name for callers that want "any".
std::unique_ptr<IoEngine> make_pread_engine(const ModelFiles& files);

// Test hook: when set, the engine fails the Nth read request from now on
// (counting from 1) with an injected I/O error. 0 disables.
void inject_read_error_after(uint64_t n);

// Requests are cut into pieces of this size so that many are in flight.
inline constexpr uint64_t kIoChunkBytes = uint64_t(4) << 20;
// O_DIRECT alignment of offsets, sizes and buffers (a superset of 512).
inline constexpr uint64_t kDirectAlign = 4096;

}  // namespace strata
