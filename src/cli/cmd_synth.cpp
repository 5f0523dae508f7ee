#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>

#include "commands.h"
#include "strata/byte_size.h"
#include "strata/convert.h"

namespace strata::cli {

Runner register_synth(CLI::App& app) {
  struct Opts {
    std::string preset, out, dtype = "bf16";
    int64_t layers = 0;
    uint64_t seed = 0;
    bool list = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "synth", "Write a Hugging Face model directory with random weights at the real shapes of a known model");
  cmd->add_option("--preset", o->preset, "Model shapes to use (see --list)");
  cmd->add_option("--layers", o->layers, "Number of layers (default: the preset's)")->check(CLI::Range(1, 1000));
  cmd->add_option("--dtype", o->dtype, "Weight type")->check(CLI::IsMember({"bf16", "f16", "f32"}));
  cmd->add_option("--seed", o->seed, "Random seed (default 0)");
  cmd->add_option("-o,--output", o->out, "Output directory");
  cmd->add_flag("--list", o->list, "List the presets");
  return [o]() {
    if (o->list || o->preset.empty()) {
      if (!o->list) {
        std::fprintf(stderr, "strata synth: --preset is required; presets:\n");
      }
      for (const auto& p : synthetic_presets()) std::printf("  %-14s %s\n", p.name.c_str(), p.description.c_str());
      return o->list ? 0 : 2;
    }
    if (o->out.empty()) {
      std::fprintf(stderr, "strata synth: -o DIR is required\n");
      return 2;
    }
    SyntheticModelOptions so;
    so.preset = o->preset;
    so.dtype = o->dtype;
    so.seed = o->seed;
    so.layers = o->layers;
    const bool tty = isatty(2);
    auto t0 = std::chrono::steady_clock::now();
    so.progress = [&](uint64_t done, uint64_t total) {
      if (!tty) return;
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      double rate = s > 0 ? double(done) / s : 0;
      std::fprintf(stderr, "\r%5.1f%%  %s of %s  %s/s  ETA %.0f s   ", 100.0 * double(done) / double(total),
                   format_bytes(done).c_str(), format_bytes(total).c_str(), format_bytes(uint64_t(rate)).c_str(),
                   rate > 0 ? double(total - done) / rate : 0.0);
    };
    uint64_t bytes = write_synthetic_model(o->out, so);
    if (tty) std::fprintf(stderr, "\n");
    std::printf("wrote %s (%s, %s of weights)\n", o->out.c_str(), so.preset.c_str(), format_bytes(bytes).c_str());
    return 0;
  };
}

}  // namespace strata::cli
