// Reading byte ranges of model files into memory. One small interface, so
// that io_uring, a pread pool and buffered reads are interchangeable
// implementations chosen per file system.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace strata {

class ModelFiles;

struct ReadRequest {
  size_t file = 0;      // index into ModelFiles
  uint64_t offset = 0;  // byte offset in the file
  uint64_t size = 0;
  void* dest = nullptr;
};

class IoEngine {
 public:
  virtual ~IoEngine() = default;
  virtual const char* name() const = 0;
  // Reads every request completely or throws Error naming the file (short
  // read = file truncated since it was opened). Safe to call from several
  // threads at once.
  virtual void read(std::span<const ReadRequest> requests) = 0;
};

// Plain pread(2) on the calling thread.
std::unique_ptr<IoEngine> make_pread_engine(const ModelFiles& files);

// Test hook: when set, the engine fails the Nth read request from now on
// (counting from 1) with an injected I/O error. 0 disables.
void inject_read_error_after(uint64_t n);

}  // namespace strata
