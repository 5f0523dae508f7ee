// Writing a Hugging Face model directory as a (quantized) GGUF file, and
// writing synthetic models (random weights at a known model's shapes), for
// callers outside the library (`strata convert` / `strata synth`, the Python
// package's compression=...).
//
//   strata::ConvertOptions o;
//   o.compression = "8bit";                                   // Q8_0 weights
//   strata::ConvertResult r = strata::convert_model("models/llama", "llama-q8.gguf", o);
//
//   strata::SyntheticModelOptions s;
//   s.preset = "llama3-8b";
//   uint64_t bytes = strata::write_synthetic_model("/tmp/llama3-8b", s);
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
  // "8bit" (Q8_0), "4bit" (Q4_0), "none" (the source's type as its
  // config.json names it, F32 when it names none), or a weight type: "q8_0",
  // "q4_0", "f16", "bf16", "f32".
  std::string compression = "8bit";
  // A llama-quantize type name (one of convert_type_names(), e.g. "q4_k_m"):
  // the recipe chooses each tensor's type as llama.cpp does. Overrides
  // `compression` when set.
  std::string type;
  size_t threads = 0;  // 0 = all cores
  // Called as layers are written (on the calling thread); may throw to abort.
  std::function<void(const ConvertProgress&)> progress;
};

struct ConvertResult {
  uint64_t bytes = 0;              // size of the output file
  size_t tensors = 0;
  std::string type;                // of the weight matrices, e.g. "Q8_0"; the recipe ("q4_k_m") when options.type chose one
  std::vector<std::string> notes;  // tensors kept at another type, and why
  bool tokenizer = false;          // the tokenizer was written into the file
};

ConvertResult convert_model(const std::filesystem::path& model_dir, const std::filesystem::path& out,
                            const ConvertOptions& options = {});

// The names ConvertOptions::type accepts: "f32, f16, bf16, q8_0, ...".
std::string convert_type_names();

struct SyntheticPreset {
  std::string name, description;
};
// Every preset write_synthetic_model knows ("llama3-8b", ...).
std::vector<SyntheticPreset> synthetic_presets();

struct SyntheticModelOptions {
  std::string preset;            // one of synthetic_presets()
  std::string dtype = "bf16";    // of the weights: "bf16", "f16" or "f32"
  uint64_t seed = 0;
  int64_t layers = 0;            // 0 = the preset's
  // Called after each tensor with (bytes written so far, total bytes).
  std::function<void(uint64_t, uint64_t)> progress;
};

// Writes a Hugging Face model directory (config.json, generation_config.json,
// safetensors) with random weights at the preset's shapes into `dir`.
// Returns the bytes of tensor data. Throws UsageError for an unknown preset
// (listing the presets) or dtype.
uint64_t write_synthetic_model(const std::filesystem::path& dir, const SyntheticModelOptions& options);

}  // namespace strata
