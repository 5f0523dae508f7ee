#include "hub/downloader.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "hub/digest.h"
#include "hub/http_client.h"
#include "hub/model_name.h"
#include "hub/progress_bar.h"
#include "strata/strata.h"

namespace fs = std::filesystem;

namespace strata::hub {

namespace {

uint64_t file_size_or_zero(const fs::path& p) {
  std::error_code ec;
  uint64_t n = fs::file_size(p, ec);
  return ec ? 0 : n;
}

bool blob_complete(const fs::path& blob, uint64_t size) {
  std::error_code ec;
  return fs::is_regular_file(blob, ec) && file_size_or_zero(blob) == size;
}

// An ETag header's value without W/ and quotes.
std::string etag_value(std::string v) {
  if (v.rfind("W/", 0) == 0) v = v.substr(2);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  return v;
}

bool all_hex(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// Closes the fd and ends the progress slot on every way out.
struct OpenPart {
  int fd = -1;
  ProgressBar* bar = nullptr;
  size_t slot = 0;
  bool slot_open = false;
  ~OpenPart() {
    if (fd >= 0) ::close(fd);
    if (slot_open) bar->finish(slot);
  }
};

}  // namespace

uint64_t free_disk_bytes(const fs::path& dir) {
  if (const char* v = std::getenv("STRATA_HUB_FREE_BYTES"); v && *v) return std::strtoull(v, nullptr, 10);
  struct statvfs s {};
  if (::statvfs(dir.c_str(), &s) != 0) return UINT64_MAX;  // unknown: let writes report a full disk
  return uint64_t(s.f_bavail) * uint64_t(s.f_frsize);
}

Downloader::Downloader(const RepoCache& cache, const RepoInfo& info, DownloadSettings settings)
    : cache_(cache), info_(info), settings_(std::move(settings)) {}

DownloadStats Downloader::run(const std::vector<RepoFile>& files) {
  DownloadStats stats;
  fs::path blobs = cache_.dir() / "blobs";
  fs::create_directories(blobs);
  std::vector<const RepoFile*> todo;
  uint64_t total = 0, already = 0, needed = 0;
  for (const RepoFile& f : files) {
    total += f.size;
    if (blob_complete(cache_.blob(f.etag()), f.size)) {
      stats.reused += f.size;
      already += f.size;
      cache_.link(info_.commit, f.path, f.etag());
      continue;
    }
    uint64_t part = std::min(file_size_or_zero(cache_.incomplete(f.etag())), f.size);
    already += part;
    needed += f.size - part;
    todo.push_back(&f);
  }
  if (todo.empty()) return stats;
  uint64_t free = free_disk_bytes(blobs);
  if (needed > free)
    throw Error(fmt::format("not enough disk space in {}: the download needs {} more, {} are free", blobs.string(),
                            format_bytes(needed), format_bytes(free)));

  ProgressBar bar(settings_.progress, total, already);
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::atomic<uint64_t> downloaded{0};
  std::exception_ptr first_error;
  std::mutex error_mu;
  auto worker = [&] {
    try {
      HttpClient http(settings_.endpoint, settings_.token);
      for (size_t i; !failed && (i = next++) < todo.size();) downloaded += fetch(http, *todo[i], bar);
    } catch (...) {
      std::lock_guard<std::mutex> g(error_mu);
      if (!failed.exchange(true)) first_error = std::current_exception();
    }
  };
  failed_ = &failed;
  size_t n = std::max<size_t>(1, std::min(settings_.parallel, todo.size()));
  std::vector<std::thread> threads;
  for (size_t i = 1; i < n; ++i) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  bar.stop();
  failed_ = nullptr;
  if (first_error) std::rethrow_exception(first_error);
  stats.downloaded = downloaded;
  return stats;
}

uint64_t Downloader::fetch(HttpClient& http, const RepoFile& f, ProgressBar& bar) {
  const std::string etag = f.etag();
  const fs::path blob = cache_.blob(etag), part = cache_.incomplete(etag);
  // Another strata or huggingface_hub process may be writing the same blob.
  FileLock lock(cache_.lock_file(etag));
  if (blob_complete(blob, f.size)) {
    cache_.link(info_.commit, f.path, etag);
    return 0;
  }
  OpenPart p;
  p.fd = ::open(part.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (p.fd < 0) throw Error(part.string() + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  ::fstat(p.fd, &st);
  uint64_t have = uint64_t(st.st_size);
  if (have > f.size) {
    if (::ftruncate(p.fd, 0) != 0) throw Error(part.string() + ": cannot truncate: " + std::strerror(errno));
    have = 0;
  }
  Digest digest(f.lfs() ? Digest::Kind::sha256 : Digest::Kind::git_blob_sha1, f.size);
  digest_file_prefix(digest, part, have);  // a resumed file is hashed once, then extended
  if (::lseek(p.fd, off_t(have), SEEK_SET) < 0) throw Error(part.string() + ": seek failed");
  p.bar = &bar;
  p.slot = bar.start(f.path, f.size, have);
  p.slot_open = true;

  const std::string url = fmt::format("{}/{}/resolve/{}/{}", http.endpoint(), info_.repo, info_.commit,
                                      url_encode_path(f.path));
  uint64_t received = 0;
  int failures = 0;
  const int attempts = retry_attempts();
  std::string last_problem;
  while (have < f.size) {
    std::string sink_error;
    uint64_t got = 0;
    BodySink sink = [&](const HttpResponse& answer, const char* data, size_t size) -> bool {
      if (failed_ && *failed_) return false;  // another file failed: stop, keep what we have
      try {
        if (got == 0 && answer.status == 200 && have > 0) {
          // The server ignored the Range: start the file over.
          if (::ftruncate(p.fd, 0) != 0 || ::lseek(p.fd, 0, SEEK_SET) != 0) {
            sink_error = part.string() + ": cannot truncate";
            return false;
          }
          digest.reset();
          have = 0;
          bar.rewind(p.slot, 0);
        }
        if (got == 0 && answer.status == 206) {
          // "bytes START-END/TOTAL": it must continue exactly where the file stops.
          std::string cr = answer.header("content-range");
          size_t sp = cr.find(' ');
          uint64_t start = sp == std::string::npos ? UINT64_MAX : std::strtoull(cr.c_str() + sp + 1, nullptr, 10);
          if (start != have) {
            sink_error = fmt::format("{}: asked for bytes from {}, the server sent '{}'", f.path, have, cr);
            return false;
          }
        }
        if (have + size > f.size) {
          sink_error = fmt::format("{}: the server sent more than the {} bytes the hub listed", f.path, f.size);
          return false;
        }
        for (size_t off = 0; off < size;) {
          ssize_t n = ::write(p.fd, data + off, size - off);
          if (n < 0 && errno == EINTR) continue;
          if (n < 0) {
            int e = errno;
            if (e == ENOSPC || e == EDQUOT)
              sink_error = fmt::format(
                  "disk full while writing {} ({} of {} bytes written, {} free): free some space and run the "
                  "command again; the download resumes where it stopped",
                  part.string(), have + off, f.size, format_bytes(free_disk_bytes(part.parent_path())));
            else
              sink_error = part.string() + ": write failed: " + std::strerror(e);
            return false;
          }
          off += size_t(n);
        }
        digest.update(data, size);
        have += size;
        got += size;
        received += size;
        bar.advance(p.slot, size);
        return true;
      } catch (const std::exception& e) {
        sink_error = e.what();
        return false;
      }
    };
    try {
      HttpResponse r = http.download(url, have, sink);
      if (r.status == 200 || r.status == 206) {
        // The hub names an LFS file by X-Linked-Etag (its sha256) on the
        // redirect, a small file by its ETag (git blob sha1); both must agree
        // with the file list the blob was named after.
        std::string v = etag_value(r.first_header(f.lfs() ? "x-linked-etag" : "etag"));
        if (all_hex(v) && v.size() == etag.size() && v != etag)
          throw Error(fmt::format("{}: the hub's ETag ({}) differs from its file list ({}); the repository may "
                                  "have changed during the download, run the command again",
                                  f.path, v, etag));
        if (have < f.size) last_problem = fmt::format("the transfer ended at byte {} of {}", have, f.size);
      } else if (r.status == 416) {
        // The server has fewer bytes than we do: start over.
        if (::ftruncate(p.fd, 0) != 0 || ::lseek(p.fd, 0, SEEK_SET) != 0) throw Error(part.string() + ": cannot truncate");
        digest.reset();
        have = 0;
        bar.rewind(p.slot, 0);
        last_problem = "HTTP 416 for a resumed range";
      } else if (r.status >= 500 || r.status == 429) {
        last_problem = fmt::format("HTTP {}", r.status);
      } else {
        throw Error(http_error_message(r, info_.repo, info_.revision, f.path));
      }
    } catch (const TransportError& e) {
      last_problem = e.what();
    } catch (const Error&) {
      if (!sink_error.empty()) throw Error(sink_error);
      if (failed_ && *failed_) throw Error("stopped after another download failed");
      throw;
    }
    if (have >= f.size) break;
    failures = got > 0 ? 0 : failures + 1;  // progress restarts the count: a flaky link still finishes
    if (failures >= attempts)
      throw Error(fmt::format("{}: download failed after {} attempts ({}); {} of {} bytes are kept in {}, run the "
                              "command again to resume (check the network connection or HF_ENDPOINT)",
                              f.path, attempts, last_problem, have, f.size, part.string()));
    if (got == 0) retry_sleep(failures - 1);
  }
  std::string got_hash = digest.hex();
  if (got_hash != etag) {
    ::close(p.fd);
    p.fd = -1;
    std::error_code ec;
    fs::remove(part, ec);
    throw Error(fmt::format("{}: {} mismatch: expected {}, the downloaded data has {}; the corrupted partial file "
                            "was deleted and nothing was linked, run the command again",
                            f.path, f.lfs() ? "sha256" : "git blob sha1", etag, got_hash));
  }
  if (::fdatasync(p.fd) != 0) throw Error(part.string() + ": sync failed: " + std::strerror(errno));
  ::close(p.fd);
  p.fd = -1;
  fs::rename(part, blob);
  cache_.link(info_.commit, f.path, etag);
  return received;
}

}  // namespace strata::hub
