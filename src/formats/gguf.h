// Reading GGUF files (version 2 and 3): a header of metadata key/values and
// tensor descriptions, then tensor data aligned to general.alignment.
// Nothing in the header is trusted: every count, length, type, shape and
// offset is checked against the file size before it is used (the checks and
// the vulnerability classes they answer are listed in docs/FUZZING.md).
//
//   GgufFile g = read_gguf(path);
//   g.header.find("general.architecture")->s;          // metadata
//   g.index.find("blk.0.attn_q.weight");               // GGUF names, shapes outermost first
//
// This level knows the file format, not architectures: tensors keep their
// GGUF names and only their shapes are reversed (GGUF ne[0] is the
// innermost dimension). arch/gguf_model.h maps names to Hugging Face names
// and metadata to a ModelConfig. Writing is in gguf_writer.h.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "formats/safetensors.h"

namespace strata {

inline constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" little-endian
inline constexpr uint32_t kGgufVersion = 3;
inline constexpr uint64_t kGgufDefaultAlignment = 32;
// Bounds that no real model comes near; larger values mean a corrupt file.
inline constexpr uint64_t kGgufMaxHeaderBytes = 1ull << 30;
inline constexpr uint64_t kGgufMaxTensors = 1ull << 20;
inline constexpr uint64_t kGgufMaxKeys = 1ull << 20;
inline constexpr uint32_t kGgufMaxDims = 4;

enum class GgufType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7, String = 8, Array = 9, U64 = 10,
  I64 = 11, F64 = 12,
};

// ggml tensor type ids of the types strata reads and writes.
enum class GgmlType : uint32_t { F32 = 0, F16 = 1, Q4_0 = 2, Q8_0 = 8, BF16 = 30 };
uint32_t ggml_type_of(DType t);
// Throws Error "unsupported tensor type N" for other ids.
DType dtype_of_ggml_type(uint32_t ggml_type, const std::string& context);

// One metadata value. Scalars use the field of their kind (integers in i or
// u, floats in f); arrays hold elements of one kind in ints/floats/strs.
struct GgufValue {
  GgufType type = GgufType::U32;
  GgufType elem_type = GgufType::U32;  // arrays only
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0;
  std::string s;
  std::vector<int64_t> ints;  // integer and bool arrays
  std::vector<double> floats;
  std::vector<std::string> strs;
  uint64_t array_len = 0;

  bool is_integer() const;
  bool is_float() const;
};

struct GgufTensor {
  std::string name;             // as stored (GGUF name)
  uint32_t ggml_type = 0;
  std::vector<uint64_t> ne;     // ne[0] innermost
  uint64_t offset = 0;          // relative to the data section
};

struct GgufHeader {
  uint32_t version = 0;
  uint64_t alignment = kGgufDefaultAlignment;
  uint64_t data_start = 0;  // absolute
  std::vector<std::pair<std::string, GgufValue>> kv;  // in file order
  std::map<std::string, size_t> kv_index;
  std::vector<GgufTensor> tensors;                    // in file order
  std::vector<TensorInfo> infos;  // GGUF names, shapes outermost first, absolute offsets, sorted by offset

  const GgufValue* find(const std::string& key) const;
};

// Parses a header held in memory: `bytes` holds the first `len` bytes of a
// file of `file_size` bytes. Throws Error starting with `display_name`; if
// the header runs past `len` but not past the file, throws GgufNeedMore.
struct GgufNeedMore {
  uint64_t bytes;
};
GgufHeader parse_gguf_header(const uint8_t* bytes, size_t len, uint64_t file_size, const std::string& display_name);

struct GgufFile {
  GgufHeader header;
  TensorIndex index;  // one file, GGUF names
};

GgufFile read_gguf(const std::filesystem::path& path);

// True when the file starts with the GGUF magic (used to tell files apart).
bool is_gguf_file(const std::filesystem::path& path);

// A ggml type id as "Q6_K (type 14)", or "type 99" for an id ggml lacks.
std::string gguf_type_label(uint32_t ggml_type);

}  // namespace strata
