// Download progress on stderr: one line per file in flight (bytes, MB/s,
// ETA) and a total line, redrawn a few times a second; only when stderr is a
// terminal (quiet in logs, pipes and tests) and HF_HUB_DISABLE_PROGRESS_BARS
// is not set.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace strata::hub {

class ProgressBar {
 public:
  // `enabled` is ANDed with isatty(stderr). `total` is every byte of every file,
  // `already` what the cache held before (complete blobs and partial ones).
  ProgressBar(bool enabled, uint64_t total, uint64_t already);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  bool enabled() const { return enabled_; }
  // A file starts (with `done` bytes already on disk); returns its slot.
  size_t start(const std::string& name, uint64_t size, uint64_t done);
  void advance(size_t slot, uint64_t bytes);
  // The bytes of a slot went back to `done` (a restart from zero).
  void rewind(size_t slot, uint64_t done);
  void finish(size_t slot);
  // Final redraw and stop.
  void stop();

 private:
  struct File {
    std::string name;
    uint64_t size = 0, done = 0, start_done = 0;
    std::chrono::steady_clock::time_point t0;
    bool active = false;
  };
  void loop();
  void draw(bool final);

  bool enabled_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::vector<File> files_;
  uint64_t total_ = 0, done_ = 0, start_done_ = 0;
  std::chrono::steady_clock::time_point t0_;
  size_t lines_drawn_ = 0;
  std::thread thread_;
};

}  // namespace strata::hub
