// Writing safetensors files without holding them in memory: each tensor is
// produced in chunks by a fill callback while the file is written.
//
//   SafetensorsWriter w;
//   w.add("model.norm.weight", DType::F32, {64},
//         [&](uint64_t off, uint8_t* dst, size_t n) { std::memcpy(dst, src + off, n); });
//   w.set_metadata("format", "pt");
//   w.write(dir / "model.safetensors");  // via model.safetensors.tmp + rename
//
// Layout: the JSON header is padded with spaces so the data area starts at a
// multiple of Options::data_alignment (4096: direct I/O can read tensors in
// place), and each tensor starts at a multiple of Options::tensor_alignment
// within the data area, the gap filled with zero bytes that no tensor covers.
//
// Compatibility: Hugging Face's reference reader (Rust `safetensors`, and the
// Python package built on it) rejects files whose tensors leave gaps or do not
// end exactly at the end of the file, so tensors are packed back to back by
// default (tensor_alignment = 1). strata needs no gaps: it reads whole pages
// around each layer and only needs the data area page-aligned.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace strata {

class SafetensorsWriter {
 public:
  // Writes bytes [offset_in_tensor, offset_in_tensor + len) of the tensor to
  // dst. Called with increasing offsets that cover the tensor exactly once.
  using Fill = std::function<void(uint64_t offset_in_tensor, uint8_t* dst, size_t len)>;

  struct Options {
    uint64_t data_alignment = 4096;  // start of the data area; power of two (8 at least is used)
    uint64_t tensor_alignment = 1;  // start of each tensor in the data area; power of two
    size_t chunk_bytes = size_t(8) << 20;  // largest piece asked of a Fill, and the write size
    bool sync = true;  // fsync before the rename, so a crash never leaves a valid-looking partial file
  };

  SafetensorsWriter();
  explicit SafetensorsWriter(Options options);

  // Throws Error for a duplicate or reserved name, a negative dimension, or a
  // shape whose size overflows.
  void add(std::string name, DType dtype, std::vector<int64_t> shape, Fill fill);
  // Convenience: the tensor's bytes are at `data`, which must outlive write().
  void add_bytes(std::string name, DType dtype, std::vector<int64_t> shape, const void* data);
  void set_metadata(std::string key, std::string value);

  size_t size() const { return entries_.size(); }
  uint64_t tensor_bytes() const { return tensor_bytes_; }  // sum of tensor sizes, without padding

  // Writes `path + ".tmp"` and renames it to `path` once complete. On any
  // failure (disk full, a Fill that throws) the temporary file is removed and
  // the exception propagates; write errors are Errors naming the file.
  void write(const std::filesystem::path& path) const;

 private:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    uint64_t nbytes;
    Fill fill;
  };
  Options opt_;
  std::vector<Entry> entries_;
  std::set<std::string> names_;
  std::map<std::string, std::string> metadata_;
  uint64_t tensor_bytes_ = 0;
};

// One tensor to write, for write_sharded.
struct TensorSource {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  SafetensorsWriter::Fill fill;
};

// Writes a sharded model directory as Hugging Face does: tensors in the given
// order into model-00001-of-0000N.safetensors ... holding at most
// `max_shard_bytes` of tensor data each (a larger tensor gets a shard of its
// own), then model.safetensors.index.json with {"metadata": {"total_size"},
// "weight_map"}. `metadata` goes into every shard's __metadata__. Creates
// `dir` if needed. An existing index is removed first and the new one written
// last, so a failure part way never leaves a directory that loads. Returns
// the shard paths.
std::vector<std::filesystem::path> write_sharded(const std::filesystem::path& dir,
                                                 const std::vector<TensorSource>& tensors,
                                                 uint64_t max_shard_bytes,
                                                 const std::map<std::string, std::string>& metadata = {},
                                                 SafetensorsWriter::Options options = {});

}  // namespace strata
