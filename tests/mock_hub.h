// A mock Hugging Face hub for tests: two cpp-httplib servers on 127.0.0.1
// with ephemeral ports, in this process. The "hub" answers the routes strata
// uses (GET /api/models/ORG/NAME/revision/REV?blobs=true, GET
// /ORG/NAME/resolve/REV/FILE), redirecting LFS files to the "CDN" server (a
// different origin, which must never see the token). Both serve Range
// requests, count the bytes they send per file, and inject faults: a
// connection dropped mid-file, corrupted content, throttling, 5xx answers.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace strata::test {

struct MockFile {
  std::string content;
  bool lfs = false;  // served by a redirect to the CDN, listed with lfs.sha256
};

struct MockRepo {
  std::string id;                           // ORG/NAME
  std::string commit;                       // 40 hex digits; derived from id when empty
  std::vector<std::string> revisions{"main"};
  std::map<std::string, MockFile> files;    // by repository path
  bool gated = false;                       // needs "Authorization: Bearer <token>"
  std::string token;
};

// Every regular file of `dir` as a repository file; *.safetensors, *.gguf and
// *.bin are LFS files.
MockRepo repo_from_dir(const std::string& id, const std::filesystem::path& dir);

class MockHub {
 public:
  MockHub();
  ~MockHub();
  MockHub(const MockHub&) = delete;
  MockHub& operator=(const MockHub&) = delete;

  std::string endpoint() const;  // http://127.0.0.1:<hub port>
  std::string cdn_origin() const;
  void add_repo(MockRepo repo);
  const MockRepo& repo(const std::string& id) const;
  // Stops both servers: later requests are refused like an unreachable host.
  void shut_down();

  // Bytes of this repository file sent by either server (body bytes only).
  uint64_t bytes_sent(const std::string& path) const;
  // GETs that served (or tried to serve) this file's content.
  size_t content_requests(const std::string& path) const;
  size_t api_requests() const;
  // The most file contents being sent at the same moment.
  size_t max_parallel_downloads() const;
  size_t downloads_in_flight() const;
  size_t all_requests() const;
  // The Authorization header of every request each server got ("" when absent).
  std::vector<std::string> hub_authorizations() const;
  std::vector<std::string> cdn_authorizations() const;
  // The Range headers the CDN and hub got for this file ("" when absent).
  std::vector<std::string> ranges(const std::string& path) const;

  // Faults, for the next responses with this file's content.
  void set_chunk_bytes(size_t n);                     // bytes per write (default 16 KiB)
  void drop_after(const std::string& path, uint64_t bytes);  // once: close the connection after this many body bytes
  void corrupt(const std::string& path);              // serve it with one byte flipped (until cleared)
  void throttle(const std::string& path, std::chrono::milliseconds per_chunk);  // sleep before each chunk
  void fail(const std::string& path, int status, int times);  // answer `status` this many times
  void clear_faults();

  struct State;

 private:
  std::unique_ptr<State> s_;
};

}  // namespace strata::test
