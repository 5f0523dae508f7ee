// Reading safetensors files: an 8-byte little-endian header length N, N bytes
// of JSON mapping tensor names to {dtype, shape, data_offsets}, then the data.
// Nothing in the header is trusted: every length, offset and shape is checked
// against the file size and the dtype before it is used.
//
//   TensorIndex idx = load_tensor_index(model_dir);   // single file or sharded
//   const TensorInfo* t = idx.find("model.embed_tokens.weight");
//   // read t->nbytes bytes at t->offset of idx.files[t->file]
//
// Writing is in safetensors_writer.h.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace strata {

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;  // outermost first, as stored
  int file = 0;                // index into TensorIndex::files
  uint64_t offset = 0;         // absolute byte offset in the file
  uint64_t nbytes = 0;

  uint64_t numel() const;
};

// Largest header accepted (the reference implementation's limit): a bigger
// length field means a corrupt file or not a safetensors file at all.
inline constexpr uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;

struct SafetensorsHeader {
  uint64_t data_start = 0;  // 8 + header length
  std::vector<TensorInfo> tensors;  // file == 0, offsets absolute, sorted by offset
  std::map<std::string, std::string> metadata;  // "__metadata__"
};

// Parses and validates a header held in memory. `bytes` holds at least the
// first min(file_size, 8 + N) bytes of the file; `file_size` is the file's
// real size. Throws Error whose message starts with `display_name`.
SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, size_t len, uint64_t file_size,
                                           const std::string& display_name);

// Reads and validates the header of one file on disk.
SafetensorsHeader read_safetensors_header(const std::filesystem::path& path);

// Every tensor of a model directory: `model.safetensors`, or the shards named
// by `model.safetensors.index.json`. Tensor names are unique across shards.
// `files` are sorted by name and tensors are grouped by file, by offset within
// a file. With an index, every shard it names must exist inside `model_dir`
// and hold the tensors the index assigns to it.
struct TensorIndex {
  std::vector<std::filesystem::path> files;
  std::vector<TensorInfo> tensors;
  std::map<std::string, size_t> by_name;  // name -> position in tensors

  const TensorInfo* find(const std::string& name) const;
};

TensorIndex load_tensor_index(const std::filesystem::path& model_dir);

}  // namespace strata
