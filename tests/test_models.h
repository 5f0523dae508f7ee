// Model directories made by tests: copies of a model in another dtype or a
// sharded layout, and edits that break a model in one specific way.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace strata::test {

// Copies every tensor of `src` into `dst` converted to `dtype` (1-D tensors
// too). shard_bytes > 0 writes a sharded layout with an index.
// `round_only` keeps F32 storage but rounds each value through `dtype`, giving
// the exact f32 twin of a bf16/f16 copy.
void copy_model(const std::filesystem::path& src, const std::filesystem::path& dst, DType dtype,
                uint64_t shard_bytes = 0, bool round_only = false);

// Copies the files of a model directory except those named in `leave_out`
// (e.g. {"tokenizer.json"} for a model without a tokenizer).
void copy_model_files(const std::filesystem::path& src, const std::filesystem::path& dst,
                      const std::vector<std::string>& leave_out = {});

// Copies config.json after applying `edit` to its text.
void copy_with_config(const std::filesystem::path& src, const std::filesystem::path& dst,
                      const std::function<void(std::string&)>& edit);

// Every tensor of a model directory, converted to f32.
std::map<std::string, std::vector<float>> load_tensors_f32(const std::filesystem::path& dir);

}  // namespace strata::test
