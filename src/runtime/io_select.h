// Choosing the fastest way to read a model's files. The fastest method is
// not obvious and changes between machines (and runs), so strata measures:
// a short calibration reads part of the largest file with every available
// method, after evicting it from the page cache, and the result is cached
// per file system in $XDG_CACHE_HOME/strata/io-methods.json (or
// ~/.cache/strata) keyed by the device number.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "runtime/io_engine.h"

namespace strata {

class ModelFiles;

struct IoThroughput {
  IoMethod method;
  double bytes_per_s = 0;  // 0 = unavailable
  std::string note;        // why unavailable
};

struct IoChoice {
  IoMethod method = IoMethod::Pread;
  std::string reason;                    // "calibrated", "cached calibration", "requested", ...
  std::vector<IoThroughput> measured;    // from the calibration, when there was one
};

// Sequential read throughput of `method` over about `bytes` of file `file`
// starting at `offset`, after evicting that range from the page cache, in
// 4 MiB pieces `batch_bytes` at a time. Stops early after `max_seconds`.
// Returns 0 (with `note`) when the method is unavailable here.
double measure_read_throughput(const ModelFiles& files, IoMethod method, size_t file, uint64_t offset, uint64_t bytes,
                               double max_seconds, std::string* note = nullptr, uint64_t batch_bytes = 64ull << 20);

// Calibrates (or reads the cached calibration) and picks a method. A
// requested method that cannot work here (O_DIRECT refused) is replaced
// and the reason says so.
IoChoice choose_io_method(const ModelFiles& files, std::optional<IoMethod> requested);

// The methods usable on these files, fastest first is not implied.
std::vector<IoMethod> available_io_methods(const ModelFiles& files, std::vector<std::string>* notes = nullptr);

}  // namespace strata
