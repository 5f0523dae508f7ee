// The public convert entry point (include/strata/convert.h) over convert_to_gguf.
#include <string>

#include "convert/gguf_convert.h"
#include "core/dtype.h"
#include "core/error.h"
#include "strata/convert.h"

namespace strata {

ConvertResult convert_model(const std::filesystem::path& model_dir, const std::filesystem::path& out,
                            const ConvertOptions& options) {
  GgufConvertOptions o;
  o.threads = options.threads;
  const std::string& c = options.compression;
  if (c == "8bit") o.type = DType::Q8_0;
  else if (c == "4bit") o.type = DType::Q4_0;
  else if (c == "q8_0" || c == "q4_0" || c == "f16" || c == "bf16" || c == "f32") o.type = parse_dtype(c);
  else throw UsageError("compression '" + c + "' is not one of 8bit, 4bit, q8_0, q4_0, f16, bf16, f32");
  if (options.progress)
    o.progress = [&](const GgufConvertProgress& p) {
      options.progress(ConvertProgress{p.layers_done, p.layers_total, p.bytes_written, p.bytes_total});
    };
  GgufConvertReport r = convert_to_gguf(model_dir, out, o);
  return ConvertResult{r.bytes, r.tensors, std::string(dtype_name(o.type)), r.notes, r.tokenizer};
}

}  // namespace strata
