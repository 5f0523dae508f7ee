// The streaming benchmark behind `strata bench`: in one run, the best
// sequential read throughput of the model's files over every available
// method (page cache evicted first), the memory bandwidth, decode passes
// under a budget, and two baselines with the same budget: a naive engine
// (one slot: each unit read synchronously, then computed) and an estimate of
// an mmap engine (the files mapped and touched unit by unit with
// MADV_SEQUENTIAL/MADV_WILLNEED, page faults blocking compute).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "strata/strata.h"

namespace strata {

struct BenchOptions {
  std::filesystem::path model;
  EngineOptions engine;       // max_memory, io, threads
  int tokens = 8;             // decode passes measured (after the prompt pass)
  size_t batch = 1;           // sequences per pass
  bool baselines = true;
  uint64_t disk_probe_bytes = uint64_t(4) << 30;  // read per method at most
  std::function<void(const std::string&)> progress;
};

struct MethodThroughput {
  std::string method;
  double bytes_per_s = 0;
  std::string note;
};

struct BenchRun {
  double seconds_per_pass = 0, io_wait_s = 0, compute_s = 0;  // medians per decode pass
  uint64_t bytes_per_pass = 0;         // measured: layer and head units, plus routed experts (MoE)
  uint64_t unit_bytes_per_pass = 0;    // the planned layer and head units alone (what read-only passes read)
  double tokens_per_s = 0;
  double read_only_seconds_per_pass = 0;  // the same passes, loading only (median)
  // MoE: over the decode passes (batch 1) or every pass (batch > 1): distinct
  // (layer, expert) pairs routed, of those found in the expert cache, and
  // the bytes of experts read per pass (part of bytes_per_pass).
  uint64_t experts_routed = 0, expert_hits = 0, expert_bytes_per_pass = 0;
};

struct BenchReport {
  std::vector<MethodThroughput> disk;  // every method
  std::string disk_best_method;
  double disk_bytes_per_s = 0;         // best of `disk`
  double memory_bytes_per_s = 0;       // one-thread sequential read
  std::string io_method, io_method_reason;
  uint64_t model_bytes = 0, resident_bytes = 0, budget = 0;
  size_t streaming_slots = 0, resident_units = 0, units = 0, batch = 1;
  BenchRun strata;
  double efficiency = 0;  // (bytes per pass / best disk throughput) / time per pass
  BenchRun naive;         // one slot
  double mmap_seconds_per_pass = 0, mmap_touch_s = 0;
  std::vector<int32_t> output_ids;
};

BenchReport run_bench(const BenchOptions& opt);

// One thread summing a buffer of `bytes`: bytes per second.
double measure_memory_bandwidth(uint64_t bytes = uint64_t(256) << 20);

}  // namespace strata
