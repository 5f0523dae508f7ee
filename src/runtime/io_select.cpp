#include "runtime/io_select.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/aligned_buffer.h"
#include "core/error.h"
#include "runtime/model_files.h"

namespace strata {
namespace {

using Clock = std::chrono::steady_clock;

// Below this the files are read in milliseconds whatever the method, and a
// calibration would measure nothing but latency.
constexpr uint64_t kMinCalibrationBytes = uint64_t(64) << 20;
constexpr uint64_t kCalibrationBytes = uint64_t(512) << 20;
constexpr double kCalibrationSeconds = 0.5;
// A method that reads without copying through the page cache leaves both
// cores to compute; prefer it when within this fraction of the fastest.
constexpr double kZeroCopyPreference = 0.10;

std::filesystem::path cache_file() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::filesystem::path(x) / "strata" / "io-methods.json";
  if (const char* h = std::getenv("HOME"); h && *h) return std::filesystem::path(h) / ".cache" / "strata" / "io-methods.json";
  return {};
}

std::string device_key(dev_t d) { return fmt::format("{}:{}", major(d), minor(d)); }

nlohmann::json load_cache(const std::filesystem::path& p) {
  try {
    std::ifstream f(p);
    if (!f) return nlohmann::json::object();
    auto j = nlohmann::json::parse(f);
    return j.is_object() ? j : nlohmann::json::object();
  } catch (...) {
    return nlohmann::json::object();
  }
}

// Best effort: a cache that cannot be written only means calibrating again.
void store_cache(const std::filesystem::path& p, const std::string& key, const IoChoice& c) {
  if (p.empty()) return;
  std::error_code ec;
  std::filesystem::create_directories(p.parent_path(), ec);
  nlohmann::json j = load_cache(p);
  nlohmann::json t = nlohmann::json::object();
  for (const auto& m : c.measured) t[io_method_name(m.method)] = m.bytes_per_s;
  j[key] = {{"method", io_method_name(c.method)}, {"bytes_per_s", t}};
  auto tmp = p;
  tmp += fmt::format(".{}.tmp", ::getpid());
  {
    std::ofstream f(tmp);
    f << j.dump(2) << "\n";
    if (!f) return;
  }
  std::filesystem::rename(tmp, p, ec);
  if (ec) std::filesystem::remove(tmp, ec);
}

std::optional<IoChoice> cached_choice(const ModelFiles& files, const std::vector<IoMethod>& avail) {
  nlohmann::json j = load_cache(cache_file());
  auto it = j.find(device_key(files.device()));
  if (it == j.end() || !it->is_object()) return std::nullopt;
  auto m = parse_io_method(it->value("method", std::string()));
  if (!m || std::find(avail.begin(), avail.end(), *m) == avail.end()) return std::nullopt;
  IoChoice c;
  c.method = *m;
  c.reason = "cached calibration for this file system (" + cache_file().string() + ")";
  if (auto t = it->find("bytes_per_s"); t != it->end() && t->is_object())
    for (IoMethod x : kAllIoMethods)
      if (t->contains(io_method_name(x))) c.measured.push_back({x, (*t)[io_method_name(x)].get<double>(), ""});
  return c;
}

}  // namespace

std::vector<IoMethod> available_io_methods(const ModelFiles& files, std::vector<std::string>* notes) {
  std::vector<IoMethod> out;
  for (IoMethod m : kAllIoMethods) {
    if (io_method_needs_direct(m) && !files.direct_available()) {
      if (notes) notes->push_back(fmt::format("{}: unavailable, {}", io_method_name(m), files.direct_error()));
      continue;
    }
    if (m == IoMethod::Uring) {
      try {
        make_io_engine(m, files);
      } catch (const std::exception& e) {
        if (notes) notes->push_back(fmt::format("uring: unavailable, {}", e.what()));
        continue;
      }
    }
    out.push_back(m);
  }
  return out;
}

double measure_read_throughput(const ModelFiles& files, IoMethod method, size_t file, uint64_t offset, uint64_t bytes,
                               double max_seconds, std::string* note, uint64_t batch_bytes) {
  std::unique_ptr<IoEngine> io;
  try {
    io = make_io_engine(method, files);
  } catch (const std::exception& e) {
    if (note) *note = e.what();
    return 0;
  }
  const uint64_t size = files.size(file);
  offset = std::min(offset / kDirectAlign * kDirectAlign, size);
  bytes = std::min(bytes, size - offset);
  batch_bytes = std::max<uint64_t>(std::min(batch_bytes, bytes), kDirectAlign);
  if (bytes == 0) return 0;
  // Clean pages only: evicting the range makes the reads go to the disk.
  ::posix_fadvise(files.fd(file), off_t(offset), off_t(bytes), POSIX_FADV_DONTNEED);
  AlignedBuffer buf(batch_bytes, nullptr, "I/O calibration");
  std::vector<ReadRequest> reqs;
  const auto t0 = Clock::now();
  uint64_t done = 0;
  while (done < bytes) {
    uint64_t n = std::min(batch_bytes, bytes - done);
    reqs.clear();
    for (uint64_t k = 0; k < n; k += kIoChunkBytes)
      reqs.push_back({file, offset + done + k, std::min(kIoChunkBytes, n - k), buf.data() + k});
    io->read(reqs);
    done += n;
    if (std::chrono::duration<double>(Clock::now() - t0).count() > max_seconds) break;
  }
  double s = std::chrono::duration<double>(Clock::now() - t0).count();
  ::posix_fadvise(files.fd(file), off_t(offset), off_t(bytes), POSIX_FADV_DONTNEED);
  return s > 0 ? double(done) / s : 0;
}

IoChoice choose_io_method(const ModelFiles& files, std::optional<IoMethod> requested) {
  std::vector<std::string> notes;
  const std::vector<IoMethod> avail = available_io_methods(files, &notes);
  IoChoice c;
  if (requested) {
    if (std::find(avail.begin(), avail.end(), *requested) != avail.end()) {
      c.method = *requested;
      c.reason = "requested";
      return c;
    }
    c.method = IoMethod::Pread;
    c.reason = fmt::format("--io {} is unavailable here ({}); using pread", io_method_name(*requested),
                           notes.empty() ? "unknown reason" : notes.front());
    return c;
  }
  const size_t big = files.largest_file();
  if (files.count() == 0 || files.size(big) < kMinCalibrationBytes) {
    c.method = IoMethod::Pread;
    c.reason = "model too small to calibrate";
    return c;
  }
  if (auto cached = cached_choice(files, avail)) return *cached;
  // Each method reads its own region, so none profits from another's reads.
  uint64_t offset = 0;
  for (IoMethod m : avail) {
    std::string note;
    double t = measure_read_throughput(files, m, big, offset, kCalibrationBytes, kCalibrationSeconds, &note);
    c.measured.push_back({m, t, note});
    offset += kCalibrationBytes;
    if (offset + kCalibrationBytes > files.size(big)) offset = 0;
  }
  double best = 0;
  for (const auto& t : c.measured) best = std::max(best, t.bytes_per_s);
  c.method = IoMethod::Pread;
  double chosen = 0;
  for (const auto& t : c.measured)
    if (t.bytes_per_s > chosen) chosen = t.bytes_per_s, c.method = t.method;
  if (!io_method_needs_direct(c.method))
    for (const auto& t : c.measured)
      if (io_method_needs_direct(t.method) && t.bytes_per_s >= best * (1 - kZeroCopyPreference) &&
          (!io_method_needs_direct(c.method) || t.bytes_per_s > chosen))
        c.method = t.method, chosen = t.bytes_per_s;
  c.reason = "calibrated";
  for (const auto& n : notes) c.reason += "; " + n;
  store_cache(cache_file(), device_key(files.device()), c);
  return c;
}

}  // namespace strata
