#include "hub/progress_bar.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace strata::hub {

namespace {

std::string mb(uint64_t b) { return fmt::format("{:.1f} MB", double(b) / 1e6); }

std::string eta(double seconds) {
  if (!(seconds >= 0) || seconds > 99 * 3600) return "--:--";
  long s = long(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
  return fmt::format("{:02}:{:02}", s / 60, s % 60);
}

std::string line(const std::string& name, uint64_t size, uint64_t done, uint64_t start_done, double elapsed) {
  double rate = elapsed > 0.05 ? double(done - start_done) / elapsed : 0;
  double pct = size ? 100.0 * double(done) / double(size) : 100.0;
  int width = 24, filled = int(pct / 100.0 * width);
  std::string bar(size_t(std::clamp(filled, 0, width)), '#');
  bar.resize(size_t(width), '.');
  std::string shown = name.size() > 32 ? "..." + name.substr(name.size() - 29) : name;
  return fmt::format("{:<32} [{}] {:5.1f}% {:>10} / {:<10} {:7.1f} MB/s  ETA {}", shown, bar, pct, mb(done), mb(size),
                     rate / 1e6, rate > 0 ? eta(double(size - done) / rate) : "--:--");
}

}  // namespace

// huggingface_hub's switch for its own bars applies to ours too.
static bool bars_disabled() {
  const char* v = std::getenv("HF_HUB_DISABLE_PROGRESS_BARS");
  if (!v) return false;
  std::string s(v);
  return s == "1" || s == "true" || s == "TRUE" || s == "True" || s == "yes" || s == "YES" || s == "on" || s == "ON";
}

ProgressBar::ProgressBar(bool enabled, uint64_t total, uint64_t already)
    : enabled_(enabled && isatty(2) && !bars_disabled()), total_(total), done_(already), start_done_(already) {
  t0_ = std::chrono::steady_clock::now();
  if (enabled_) thread_ = std::thread([this] { loop(); });
}

ProgressBar::~ProgressBar() { stop(); }

size_t ProgressBar::start(const std::string& name, uint64_t size, uint64_t done) {
  std::lock_guard<std::mutex> g(mu_);
  File f;
  f.name = name;
  f.size = size;
  f.done = f.start_done = done;
  f.t0 = std::chrono::steady_clock::now();
  f.active = true;
  files_.push_back(f);
  return files_.size() - 1;
}

void ProgressBar::advance(size_t slot, uint64_t bytes) {
  std::lock_guard<std::mutex> g(mu_);
  files_[slot].done += bytes;
  done_ += bytes;
}

void ProgressBar::rewind(size_t slot, uint64_t done) {
  std::lock_guard<std::mutex> g(mu_);
  File& f = files_[slot];
  done_ -= std::min(done_, f.done - std::min(f.done, done));
  f.done = f.start_done = done;
}

void ProgressBar::finish(size_t slot) {
  std::lock_guard<std::mutex> g(mu_);
  files_[slot].active = false;
}

void ProgressBar::stop() {
  {
    std::lock_guard<std::mutex> g(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ProgressBar::loop() {
  std::unique_lock<std::mutex> lk(mu_);
  while (!stopping_) {
    draw(false);
    cv_.wait_for(lk, std::chrono::milliseconds(250));
  }
  draw(true);
}

// Called with mu_ held. Moves up over the previous drawing and rewrites it.
void ProgressBar::draw(bool final) {
  auto now = std::chrono::steady_clock::now();
  std::string out;
  if (lines_drawn_) out += fmt::format("\x1b[{}F", lines_drawn_);
  size_t n = 0;
  for (const File& f : files_) {
    if (!f.active) continue;
    out += "\x1b[2K" + line(f.name, f.size, f.done, f.start_done, std::chrono::duration<double>(now - f.t0).count()) + "\n";
    ++n;
  }
  out += "\x1b[2K" + line("total", total_, done_, start_done_, std::chrono::duration<double>(now - t0_).count()) + "\n";
  ++n;
  // Clear lines left over from a taller drawing.
  for (size_t i = n; i < lines_drawn_; ++i) out += "\x1b[2K\n";
  if (lines_drawn_ > n) out += fmt::format("\x1b[{}F", lines_drawn_ - n);
  lines_drawn_ = n;
  (void)final;
  std::fputs(out.c_str(), stderr);
  std::fflush(stderr);
}

}  // namespace strata::hub
