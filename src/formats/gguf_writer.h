// Writing GGUF version 3 files. Metadata and tensor descriptions are given
// first; begin_data() writes the header, then each tensor's bytes are written
// in the order the tensors were added, each starting at a multiple of the
// alignment; the file ends padded to the alignment after the last tensor. Everything goes to a temporary file next to the output that
// finish() renames over it, so a failed or interrupted write never leaves a
// file that looks valid (the destructor removes the temporary).
//
//   GgufWriter w("out.gguf", 4096);
//   w.add_string("general.architecture", "llama");
//   w.add_tensor("token_embd.weight", DType::Q8_0, {hidden, vocab});   // ne[0] innermost
//   w.begin_data();
//   w.write(bytes, n);  ...  w.end_tensor();
//   w.finish();
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "formats/gguf.h"

namespace strata {

class GgufWriter {
 public:
  GgufWriter(std::filesystem::path out, uint64_t alignment);
  ~GgufWriter();
  GgufWriter(const GgufWriter&) = delete;
  GgufWriter& operator=(const GgufWriter&) = delete;

  void add_string(const std::string& key, const std::string& v);
  void add_u32(const std::string& key, uint32_t v);
  void add_i32(const std::string& key, int32_t v);
  void add_f32(const std::string& key, float v);
  void add_bool(const std::string& key, bool v);
  void add_string_array(const std::string& key, const std::vector<std::string>& v);
  void add_i32_array(const std::string& key, const std::vector<int32_t>& v);
  void add_f32_array(const std::string& key, const std::vector<float>& v);

  // ne[0] is the innermost dimension (GGUF order); returns the data bytes.
  uint64_t add_tensor(const std::string& name, DType t, const std::vector<uint64_t>& ne);

  // Creates the temporary file and writes the header.
  void begin_data();
  // Appends bytes of the current tensor; end_tensor() checks its size and pads.
  void write(const void* data, size_t n);
  void end_tensor();
  // Flushes, syncs and renames the temporary file to the output.
  void finish();

  uint64_t bytes_written() const { return written_; }
  const std::filesystem::path& temp_path() const { return tmp_; }

 private:
  struct Tensor {
    std::string name;
    DType type;
    std::vector<uint64_t> ne;
    uint64_t bytes;
    uint64_t offset;
  };
  void key(const std::string& k, GgufType t);
  void put(const void* p, size_t n);  // into the header bytes
  void put_str(const std::string& s);
  void raw_write(const void* p, size_t n);  // to the file, through the buffer
  void flush();

  std::filesystem::path out_, tmp_;
  uint64_t alignment_;
  std::vector<uint8_t> kv_;  // encoded metadata
  uint64_t n_kv_ = 0;
  std::vector<Tensor> tensors_;
  uint64_t data_bytes_ = 0;
  int fd_ = -1;
  bool finished_ = false;
  size_t current_ = 0;        // tensor being written
  uint64_t current_bytes_ = 0;
  uint64_t written_ = 0;
  std::vector<uint8_t> buf_;
};

}  // namespace strata
