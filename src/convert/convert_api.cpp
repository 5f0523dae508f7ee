// The public convert and synth entry points (include/strata/convert.h) over
// convert_to_gguf and the synthetic model writer.
#include <cstdio>
#include <string>

#include "convert/gguf_convert.h"
#include "convert/quant_recipe.h"
#include "convert/synthetic_model.h"
#include "core/dtype.h"
#include "core/error.h"
#include "strata/convert.h"

namespace strata {

namespace {

// The source's own type as its config.json names it (F32 when it names none
// or has no config.json).
DType source_dtype(const std::filesystem::path& model_dir) {
  DType t = DType::F32;
  std::FILE* f = std::fopen((model_dir / "config.json").c_str(), "r");
  if (f) {
    std::string s(1 << 16, '\0');
    s.resize(std::fread(s.data(), 1, s.size() - 1, f));
    std::fclose(f);
    if (s.find("\"bfloat16\"") != std::string::npos) t = DType::BF16;
    else if (s.find("\"float16\"") != std::string::npos) t = DType::F16;
  }
  return t;
}

}  // namespace

ConvertResult convert_model(const std::filesystem::path& model_dir, const std::filesystem::path& out,
                            const ConvertOptions& options) {
  GgufConvertOptions o;
  o.threads = options.threads;
  const std::string& c = options.compression;
  if (!options.type.empty()) {
    const QuantRecipe* r = find_quant_recipe(options.type);
    if (!r)
      throw UsageError("type '" + options.type + "' is not one of " + quant_recipe_names());
    o.recipe = std::string(r->name);
    o.type = r->base;
  } else if (c == "8bit") o.type = DType::Q8_0;
  else if (c == "4bit") o.type = DType::Q4_0;
  else if (c == "none") o.type = source_dtype(model_dir);
  else if (c == "q8_0" || c == "q4_0" || c == "f16" || c == "bf16" || c == "f32") o.type = parse_dtype(c);
  else throw UsageError("compression '" + c + "' is not one of 8bit, 4bit, none, q8_0, q4_0, f16, bf16, f32");
  if (options.progress)
    o.progress = [&](const GgufConvertProgress& p) {
      options.progress(ConvertProgress{p.layers_done, p.layers_total, p.bytes_written, p.bytes_total});
    };
  GgufConvertReport r = convert_to_gguf(model_dir, out, o);
  return ConvertResult{r.bytes, r.tensors, o.recipe.empty() ? std::string(dtype_name(o.type)) : o.recipe, r.notes,
                       r.tokenizer};
}

std::string convert_type_names() { return quant_recipe_names(); }

std::vector<SyntheticPreset> synthetic_presets() {
  std::vector<SyntheticPreset> out;
  for (const auto& p : synth_presets()) out.push_back({p.name, p.description});
  return out;
}

uint64_t write_synthetic_model(const std::filesystem::path& dir, const SyntheticModelOptions& options) {
  const SynthPreset& preset = find_synth_preset(options.preset);
  SynthOptions so;
  if (options.dtype != "bf16" && options.dtype != "f16" && options.dtype != "f32")
    throw UsageError("synthetic model dtype '" + options.dtype + "' is not one of bf16, f16, f32");
  so.dtype = parse_dtype(options.dtype);
  so.seed = options.seed;
  so.layers = options.layers;
  so.progress = options.progress;
  return write_synthetic_model(dir, preset.config, so);
}

}  // namespace strata
