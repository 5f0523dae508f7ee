#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "commands.h"
#include "common.h"
#include "strata/byte_size.h"
#include "strata/convert.h"
#include "strata/error.h"

namespace strata::cli {

Runner register_convert(CLI::App& app) {
  struct Opts {
    std::string model, out, compression, type;
    size_t threads = 0;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("convert", "Write a model directory as a GGUF file (optionally 8-bit or 4-bit)");
  cmd->add_option("MODEL", o->model, "Hugging Face model directory, or ORG/NAME[@REV] on the hub")->required();
  cmd->add_option("-o,--output", o->out, "Output .gguf file")->required();
  cmd->add_option("--compression", o->compression, "8bit (--type q8_0), 4bit (--type q4_0) or none (the source type)")
      ->check(CLI::IsMember({"8bit", "4bit", "none"}));
  cmd->add_option("--type", o->type,
                  "Weight types, as llama-quantize names them: " + convert_type_names() +
                      " (K-quant mixes choose per tensor as llama.cpp does)");
  cmd->add_option("--threads", o->threads, "Threads for quantization (default: all cores)");
  return [o]() {
    o->model = resolve_model_arg(o->model);
    if (!o->compression.empty() && !o->type.empty()) {
      std::fprintf(stderr, "strata convert: give --compression or --type, not both\n");
      return 2;
    }
    ConvertOptions opt;
    opt.threads = o->threads;
    if (!o->type.empty()) {
      opt.type = o->type;  // convert_model checks the name (UsageError, exit 2)
    } else if (o->compression == "4bit") {
      opt.type = "q4_0";
    } else if (o->compression == "none") {
      opt.compression = "none";  // the source's own type, as in its config (F32 when unknown)
    } else {  // --compression 8bit, the default
      opt.type = "q8_0";
    }
    const bool tty = isatty(2);
    const auto t0 = std::chrono::steady_clock::now();
    opt.progress = [&](const ConvertProgress& p) {
      if (!tty) return;
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      double rate = s > 0 ? double(p.bytes_written) / s : 0;
      double left = rate > 0 ? double(p.bytes_total - std::min(p.bytes_total, p.bytes_written)) / rate : 0;
      const int width = 30;
      int fill = p.layers_total ? int(width * p.layers_done / p.layers_total) : width;
      std::fprintf(stderr, "\r[%-*s] layer %lld/%lld  %.1f MB/s  ETA %.0f s   ", width, std::string(size_t(fill), '#').c_str(),
                   (long long)p.layers_done, (long long)p.layers_total, rate / 1e6, left);
    };
    ConvertResult r = convert_model(o->model, o->out, opt);
    if (tty) std::fprintf(stderr, "\n");
    for (const auto& n : r.notes) std::fprintf(stderr, "note: %s\n", n.c_str());
    std::printf("wrote %s (%s, %zu tensors, %s%s)\n", o->out.c_str(), r.type.c_str(),
                r.tensors, format_bytes(r.bytes).c_str(), r.tokenizer ? ", with tokenizer" : "");
    return 0;
  };
}

}  // namespace strata::cli
