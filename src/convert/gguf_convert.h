// Converting a Hugging Face model directory to a GGUF file that other GGUF
// tools read: standard tensor names and metadata, ggml block layouts, q/k
// rows of `llama` permuted to the interleaved RoPE layout as llama.cpp's
// convert_hf_to_gguf.py does, and the tokenizer when tokenizer.json exists.
//
//   GgufConvertOptions o;
//   o.type = DType::Q8_0;
//   GgufConvertReport r = convert_to_gguf("models/llama", "llama-q8.gguf", o);
//
// Layer tensors are written contiguously, layer by layer, aligned to 4096
// bytes, so one layer is one direct-I/O read. Output goes through a
// temporary file renamed at the end (GgufWriter): a failed conversion
// leaves no output file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace strata {

struct GgufConvertProgress {
  int64_t layers_done = 0, layers_total = 0;
  uint64_t bytes_written = 0, bytes_total = 0;
};

struct GgufConvertOptions {
  DType type = DType::Q8_0;  // of 2-D weight matrices; norms and biases stay F32
  // A llama.cpp-style recipe ("q4_k_m", "q8_0", ...: convert/quant_recipe.h)
  // choosing each tensor's type; overrides `type` when set.
  std::string recipe;
  uint64_t alignment = 4096;
  size_t threads = 0;        // 0 = hardware concurrency
  std::function<void(const GgufConvertProgress&)> progress;
};

struct GgufConvertReport {
  uint64_t bytes = 0;       // size of the output file
  size_t tensors = 0;
  std::vector<std::string> notes;  // tensors kept at another type, and why
  bool tokenizer = false;          // tokenizer.ggml.* written
};

GgufConvertReport convert_to_gguf(const std::filesystem::path& model_dir, const std::filesystem::path& out,
                                  const GgufConvertOptions& opt);

// The q/k row permutation of llama.cpp's converter for one [rows, cols]
// matrix (or a bias, cols = 1) of `heads` heads: Hugging Face rotate-half
// row order -> interleaved (Meta) row order.
void permute_rows_to_interleaved(const float* src, float* dst, int64_t heads, int64_t head_dim, int64_t cols);

}  // namespace strata
