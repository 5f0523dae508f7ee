#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "commands.h"
#include "common.h"
#include "strata/error.h"
#include "strata/bench.h"
#include "strata/convert.h"

namespace strata::cli {

Runner register_bench(CLI::App& app) {
  struct Opts {
    ModelOptions model;
    int tokens = 8;
    size_t batch = 1;
    std::string synthetic, dtype = "bf16";
    bool no_baselines = false;
    std::string disk_probe = "4GiB";
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Measure streaming: disk read throughput of every I/O method, decode passes, efficiency against the "
               "disk's limit, and naive and mmap baselines under the same budget");
  add_model_options(*cmd, o->model);
  cmd->add_option("--tokens", o->tokens, "Decode passes to measure (default 8)")->check(CLI::Range(1, 100000));
  cmd->add_option("--batch", o->batch, "Sequences per pass (default 1)")->check(CLI::Range(1, 1024));
  cmd->add_option("--synthetic", o->synthetic,
                  "Generate a model with random weights at these shapes (e.g. llama3-8b) into MODEL first, and "
                  "delete it afterwards");
  cmd->add_option("--dtype", o->dtype, "Weight type of --synthetic (default bf16)")
      ->check(CLI::IsMember({"bf16", "f16", "f32"}));
  cmd->add_flag("--no-baselines", o->no_baselines, "Skip the naive and mmap baselines");
  cmd->add_option("--disk-probe", o->disk_probe,
                  "Bytes the disk probe reads per method, before and after the passes (default 4GiB); a probe at "
                  "least as large as one pass reads exactly the bytes the passes read");
  return [o]() {
    const bool json = json_output(o->model);
    auto progress = [json](const std::string& s) {
      if (!json) std::fprintf(stderr, "[bench] %s\n", s.c_str());
    };
    namespace fs = std::filesystem;
    struct Cleanup {
      fs::path dir;
      ~Cleanup() {
        std::error_code ec;
        if (!dir.empty()) fs::remove_all(dir, ec);
      }
    } cleanup;
    if (!o->synthetic.empty()) {
      if (fs::exists(o->model.model) && !fs::is_empty(o->model.model))
        throw UsageError(o->model.model + ": exists and is not empty; --synthetic writes a fresh model there");
      SyntheticModelOptions so;
      so.preset = o->synthetic;
      so.dtype = o->dtype;
      progress(fmt::format("writing a synthetic {} model to {}", so.preset, o->model.model));
      cleanup.dir = o->model.model;
      write_synthetic_model(o->model.model, so);
    }
    BenchOptions bo;
    bo.model = o->synthetic.empty() ? resolve_model_arg(o->model.model) : o->model.model;
    if (!o->model.max_memory.empty()) bo.engine.max_memory = parse_byte_size(o->model.max_memory);
    bo.engine.threads = o->model.threads;
    bo.engine.io = o->model.io;
    bo.tokens = o->tokens;
    bo.batch = o->batch;
    bo.baselines = !o->no_baselines;
    bo.disk_probe_bytes = parse_byte_size(o->disk_probe);
    bo.progress = progress;
    BenchReport r = run_bench(bo);
    const double naive_speedup = r.strata.seconds_per_pass > 0 && r.naive.seconds_per_pass > 0
                                     ? r.naive.seconds_per_pass / r.strata.seconds_per_pass
                                     : 0;
    const double mmap_speedup = r.strata.seconds_per_pass > 0 && r.mmap_seconds_per_pass > 0
                                    ? r.mmap_seconds_per_pass / r.strata.seconds_per_pass
                                    : 0;
    if (json) {
      nlohmann::json disk = nlohmann::json::object();
      for (const auto& d : r.disk) disk[d.method] = d.bytes_per_s;
      nlohmann::json j = {{"model_bytes", r.model_bytes},
                          {"budget_bytes", r.budget},
                          {"batch", r.batch},
                          {"io_method", r.io_method},
                          {"io_method_reason", r.io_method_reason},
                          {"bytes_per_pass", r.strata.bytes_per_pass},
                          {"experts_routed", r.strata.experts_routed},
                          {"expert_hits", r.strata.expert_hits},
                          {"expert_hit_rate", r.strata.experts_routed ? double(r.strata.expert_hits) / double(r.strata.experts_routed) : 0.0},
                          {"expert_bytes_per_pass", r.strata.expert_bytes_per_pass},
                          {"resident_bytes", r.resident_bytes},
                          {"resident_units", r.resident_units},
                          {"units", r.units},
                          {"streaming_slots", r.streaming_slots},
                          {"disk_bytes_per_s", r.disk_bytes_per_s},
                          {"disk_best_method", r.disk_best_method},
                          {"disk_bytes_per_s_by_method", disk},
                          {"memory_bytes_per_s", r.memory_bytes_per_s},
                          {"io_wait_s", r.strata.io_wait_s},
                          {"compute_s", r.strata.compute_s},
                          {"seconds_per_pass", r.strata.seconds_per_pass},
                          {"read_only_seconds_per_pass", r.strata.read_only_seconds_per_pass},
                          {"tokens_per_s", r.strata.tokens_per_s},
                          {"efficiency", r.efficiency},
                          {"naive_seconds_per_pass", r.naive.seconds_per_pass},
                          {"naive_bytes_per_pass", r.naive.bytes_per_pass},
                          {"speedup_over_naive", naive_speedup},
                          {"mmap_touch_s", r.mmap_touch_s},
                          {"mmap_seconds_per_pass", r.mmap_seconds_per_pass},
                          {"speedup_over_mmap", mmap_speedup}};
      std::printf("%s\n", j.dump(2).c_str());
      return 0;
    }
    std::printf("model:               %s (%s)\n", o->model.model.c_str(), format_bytes(r.model_bytes).c_str());
    std::printf("budget:              %s: %zu of %zu units resident (%s), %zu streaming slots\n",
                format_bytes(r.budget).c_str(), r.resident_units, r.units, format_bytes(r.resident_bytes).c_str(),
                r.streaming_slots);
    std::printf("disk read (seq.):   ");
    for (const auto& d : r.disk)
      std::printf(" %s %s/s%s", d.method.c_str(), format_bytes(uint64_t(d.bytes_per_s)).c_str(),
                  d.bytes_per_s > 0 ? "" : (" (" + d.note + ")").c_str());
    std::printf("\nmemory read:         %s/s (one thread)\n", format_bytes(uint64_t(r.memory_bytes_per_s)).c_str());
    std::printf("read method:         %s (%s)\n", r.io_method.c_str(), r.io_method_reason.c_str());
    std::printf("bytes read per pass: %s\n", format_bytes(r.strata.bytes_per_pass).c_str());
    if (r.strata.experts_routed)
      std::printf("experts:             %s read per pass; cache hit rate %.3f (%llu of %llu routed)\n",
                  format_bytes(r.strata.expert_bytes_per_pass).c_str(),
                  double(r.strata.expert_hits) / double(r.strata.experts_routed),
                  (unsigned long long)r.strata.expert_hits, (unsigned long long)r.strata.experts_routed);
    std::printf("per pass (median):   %.3f s: I/O wait %.3f s, compute %.3f s; %.2f tokens/s (batch %zu)\n",
                r.strata.seconds_per_pass, r.strata.io_wait_s, r.strata.compute_s, r.strata.tokens_per_s, r.batch);
    if (r.strata.read_only_seconds_per_pass > 0)
      std::printf("loading only:        %.3f s per pass (the same passes with no compute)\n",
                  r.strata.read_only_seconds_per_pass);
    std::printf("streaming efficiency: %.3f (bytes per pass / best disk throughput / time per pass)\n", r.efficiency);
    if (r.naive.seconds_per_pass > 0)
      std::printf("naive baseline:      %.3f s per pass (one slot, %s read): strata %.2fx faster\n",
                  r.naive.seconds_per_pass, format_bytes(r.naive.bytes_per_pass).c_str(), naive_speedup);
    if (r.mmap_seconds_per_pass > 0)
      std::printf("mmap baseline:       %.3f s per pass (touch %.3f s + compute): strata %.2fx faster\n",
                  r.mmap_seconds_per_pass, r.mmap_touch_s, mmap_speedup);
    return 0;
  };
}

}  // namespace strata::cli
