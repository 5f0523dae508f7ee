// Internals shared by the IoEngine implementations: requests cut into
// pieces that each go to one descriptor (O_DIRECT for the aligned middle of
// a request, the buffered descriptor for unaligned edges).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "runtime/io_engine.h"

namespace strata::io_detail {

struct Piece {
  size_t file = 0;
  bool direct = false;
  uint64_t offset = 0, size = 0;
  uint8_t* dest = nullptr;
};

// Cuts requests into pieces of at most kIoChunkBytes. With `direct`, the
// aligned middle of each request goes to O_DIRECT and its unaligned head
// and tail (or the whole request, when the buffer and the file offset are
// misaligned differently) to the buffered descriptor.
std::vector<Piece> split(std::span<const ReadRequest> reqs, bool direct, uint64_t chunk = kIoChunkBytes);

// pread until `size` bytes are in, or throw Error naming the file.
void pread_full(const ModelFiles& files, const Piece& p);
// Error for a short read at `offset`: the file ended early.
[[noreturn]] void throw_eof(const ModelFiles& files, size_t file, uint64_t offset);
[[noreturn]] void throw_errno(const ModelFiles& files, size_t file, uint64_t offset, int err);

std::unique_ptr<IoEngine> make_uring_engine(const ModelFiles& files);

}  // namespace strata::io_detail
