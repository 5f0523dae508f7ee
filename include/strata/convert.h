// Writing a Hugging Face model directory as a (quantized) GGUF file, for
// callers outside the library (the Python package's compression=...).
//
//   strata::ConvertOptions o;
//   o.compression = "8bit";                                   // Q8_0 weights
//   strata::ConvertResult r = strata::convert_model("models/llama", "llama-q8.gguf", o);
//
// The output is written to a temporary file and renamed at the end, so a
// failed or interrupted conversion (an exception from `progress` included)
// leaves no output file. Throws UsageError for a bad compression name and
// Error naming the file for anything the model directory gets wrong.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace strata {

struct ConvertProgress {
  int64_t layers_done = 0, layers_total = 0;
  uint64_t bytes_written = 0, bytes_total = 0;
};

struct ConvertOptions {
  // "8bit" (Q8_0), "4bit" (Q4_0), or a weight type: "q8_0", "q4_0", "f16", "bf16", "f32".
  std::string compression = "8bit";
  size_t threads = 0;  // 0 = all cores
  // Called as layers are written (on the calling thread); may throw to abort.
  std::function<void(const ConvertProgress&)> progress;
};

struct ConvertResult {
  uint64_t bytes = 0;              // size of the output file
  size_t tensors = 0;
  std::string type;                // of the weight matrices, e.g. "Q8_0"
  std::vector<std::string> notes;  // tensors kept at another type, and why
  bool tokenizer = false;          // the tokenizer was written into the file
};

ConvertResult convert_model(const std::filesystem::path& model_dir, const std::filesystem::path& out,
                            const ConvertOptions& options = {});

}  // namespace strata
