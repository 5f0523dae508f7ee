#include "mock_hub.h"

#include <httplib.h>
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "hub/digest.h"

namespace strata::test {

namespace fs = std::filesystem;

namespace {

std::string sha256_hex(const std::string& s) {
  hub::Digest d(hub::Digest::Kind::sha256);
  d.update(s.data(), s.size());
  return d.hex();
}

std::string git_sha1_hex(const std::string& s) {
  hub::Digest d(hub::Digest::Kind::git_blob_sha1, s.size());
  d.update(s.data(), s.size());
  return d.hex();
}

// "\"" + s + "\"" trips a false -Wrestrict in GCC 12.
std::string in_quotes(const std::string& s) {
  std::string q(1, '"');
  q.append(s);
  q.push_back('"');
  return q;
}

struct Fault {
  uint64_t drop_after = 0;  // 0 = none
  bool corrupt = false;
  std::chrono::milliseconds throttle{0};
  int fail_status = 0, fail_times = 0;
};

}  // namespace

struct MockHub::State {
  mutable std::mutex mu;
  std::map<std::string, MockRepo> repos;
  std::map<std::string, uint64_t> bytes;
  std::map<std::string, size_t> content_requests;
  std::map<std::string, std::vector<std::string>> ranges;
  std::map<std::string, Fault> faults;
  size_t api_requests = 0, all_requests = 0;
  size_t in_flight = 0, max_in_flight = 0;  // content responses being sent
  std::vector<std::string> hub_auth, cdn_auth;
  size_t chunk = 16 << 10;
  httplib::Server hub, cdn;
  int hub_port = 0, cdn_port = 0;
  std::thread hub_thread, cdn_thread;
  bool running = false;

  static void error(httplib::Response& res, int status, const std::string& code, const std::string& message) {
    res.status = status;
    if (!code.empty()) res.set_header("X-Error-Code", code);
    res.set_header("X-Error-Message", message);
    res.set_content(nlohmann::json{{"error", message}}.dump(), "application/json");
  }

  // The repository a request may see, or an error answer (nullptr).
  // `metadata`: the file list of a gated repository is public, as on the
  // real hub; its files are not.
  const MockRepo* authorize(const httplib::Request& req, httplib::Response& res, const std::string& id,
                            bool metadata = false) {
    std::string auth = req.get_header_value("Authorization");
    auto it = repos.find(id);
    if (it == repos.end()) {
      // Like the real hub: without a token a missing repository looks private.
      error(res, auth.empty() ? 401 : 404, "RepoNotFound", "Repository Not Found for url: " + req.path);
      return nullptr;
    }
    const MockRepo& r = it->second;
    if (r.gated && !metadata && auth != "Bearer " + r.token) {
      error(res, auth.empty() ? 401 : 403, "GatedRepo",
            "Access to model " + id + " is restricted. You must have access to it and be authenticated to access it.");
      return nullptr;
    }
    return &r;
  }

  bool has_revision(const MockRepo& r, const std::string& rev) const {
    if (rev == r.commit) return true;
    for (const auto& v : r.revisions)
      if (v == rev) return true;
    return false;
  }

  // Streams `content` for repository file `path` with counting and faults;
  // called with mu held.
  void serve(const httplib::Request& req, httplib::Response& res, const std::string& path, std::string content) {
    ++content_requests[path];
    ranges[path].push_back(req.get_header_value("Range"));
    Fault& f = faults[path];
    if (f.fail_times > 0) {
      --f.fail_times;
      error(res, f.fail_status, "", "injected failure");
      return;
    }
    if (f.corrupt && !content.empty()) content[content.size() / 2] ^= 0x5a;
    uint64_t drop = f.drop_after;
    f.drop_after = 0;
    auto throttle = f.throttle;
    auto data = std::make_shared<std::string>(std::move(content));
    auto sent = std::make_shared<uint64_t>(0);
    res.set_content_provider(
        data->size(), "application/octet-stream",
        [this, path, data, drop, throttle, sent](size_t offset, size_t length, httplib::DataSink& sink) {
          size_t n;
          {
            std::lock_guard<std::mutex> g(mu);
            n = std::min(length, chunk);
          }
          if (throttle.count()) std::this_thread::sleep_for(throttle);
          bool cut = drop && *sent + n >= drop;
          if (cut) n = size_t(drop - *sent);
          if (n) {
            if (!sink.write(data->data() + offset, n)) return false;
            *sent += n;
            std::lock_guard<std::mutex> g(mu);
            bytes[path] += n;
          }
          return !cut;  // false closes the connection mid-body
        },
        [this](bool) {
          std::lock_guard<std::mutex> g(mu);
          --in_flight;
        });
    max_in_flight = std::max(max_in_flight, ++in_flight);
  }
};

MockRepo repo_from_dir(const std::string& id, const fs::path& dir) {
  MockRepo r;
  r.id = id;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream f(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    std::string ext = e.path().extension().string();
    r.files[e.path().filename().string()] = {ss.str(), ext == ".safetensors" || ext == ".gguf" || ext == ".bin"};
  }
  return r;
}

MockHub::MockHub() : s_(std::make_unique<State>()) {
  signal(SIGPIPE, SIG_IGN);  // a client killed mid-download must not kill the test
  State* s = s_.get();
  s->hub.set_keep_alive_timeout(1);
  s->cdn.set_keep_alive_timeout(1);
  s->hub.Get(R"(/api/models/([^/]+)/([^/]+)/revision/(.+))", [s](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> g(s->mu);
    ++s->api_requests;
    ++s->all_requests;
    s->hub_auth.push_back(req.get_header_value("Authorization"));
    std::string id = std::string(req.matches[1]) + "/" + std::string(req.matches[2]);
    const MockRepo* r = s->authorize(req, res, id, /*metadata=*/true);
    if (!r) return;
    std::string rev = req.matches[3];
    if (!s->has_revision(*r, rev)) return State::error(res, 404, "RevisionNotFound", "Invalid rev id: " + rev);
    nlohmann::json siblings = nlohmann::json::array();
    for (const auto& [path, f] : r->files) {
      nlohmann::json e = {{"rfilename", path}, {"size", f.content.size()}};
      if (f.lfs) {
        e["blobId"] = git_sha1_hex("version https://git-lfs.github.com/spec/v1\n" + path);  // the pointer's id
        e["lfs"] = {{"sha256", sha256_hex(f.content)}, {"size", f.content.size()}, {"pointerSize", 134}};
      } else {
        e["blobId"] = git_sha1_hex(f.content);
      }
      siblings.push_back(e);
    }
    res.set_content(nlohmann::json{{"id", id}, {"sha", r->commit}, {"siblings", siblings},
                                   {"gated", r->gated ? nlohmann::json("manual") : nlohmann::json(false)}}
                        .dump(),
                    "application/json");
  });
  s->hub.Get(R"(/([^/]+)/([^/]+)/resolve/([^/]+)/(.+))", [s](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> g(s->mu);
    ++s->all_requests;
    s->hub_auth.push_back(req.get_header_value("Authorization"));
    std::string id = std::string(req.matches[1]) + "/" + std::string(req.matches[2]);
    const MockRepo* r = s->authorize(req, res, id);
    if (!r) return;
    std::string rev = req.matches[3], path = req.matches[4];
    if (!s->has_revision(*r, rev)) return State::error(res, 404, "RevisionNotFound", "Invalid rev id: " + rev);
    auto it = r->files.find(path);
    if (it == r->files.end()) return State::error(res, 404, "EntryNotFound", path + " does not exist on " + rev);
    res.set_header("X-Repo-Commit", r->commit);
    if (it->second.lfs) {
      std::string sha = sha256_hex(it->second.content);
      res.status = 302;
      res.set_header("ETag", in_quotes(git_sha1_hex("pointer " + path)));
      res.set_header("X-Linked-Etag", in_quotes(sha));
      res.set_header("X-Linked-Size", std::to_string(it->second.content.size()));
      res.set_header("Location", "http://127.0.0.1:" + std::to_string(s->cdn_port) + "/repos/" + sha +
                                     "?file=" + httplib::detail::encode_query_param(path) + "&sig=abc");
      return;
    }
    res.set_header("ETag", in_quotes(git_sha1_hex(it->second.content)));
    s->serve(req, res, path, it->second.content);
  });
  s->cdn.Get(R"(/repos/([0-9a-f]{64}))", [s](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> g(s->mu);
    ++s->all_requests;
    s->cdn_auth.push_back(req.get_header_value("Authorization"));
    std::string sha = req.matches[1];
    std::string path = req.get_param_value("file");
    for (const auto& [id, r] : s->repos)
      for (const auto& [p, f] : r.files)
        if (f.lfs && p == path && sha256_hex(f.content) == sha) return s->serve(req, res, path, f.content);
    State::error(res, 404, "", "no such object");
  });
  s->hub_port = s->hub.bind_to_any_port("127.0.0.1");
  s->cdn_port = s->cdn.bind_to_any_port("127.0.0.1");
  if (s->hub_port <= 0 || s->cdn_port <= 0) throw std::runtime_error("mock hub: cannot bind 127.0.0.1");
  s->hub_thread = std::thread([s] { s->hub.listen_after_bind(); });
  s->cdn_thread = std::thread([s] { s->cdn.listen_after_bind(); });
  s->running = true;
}

MockHub::~MockHub() { shut_down(); }

void MockHub::shut_down() {
  if (!s_->running) return;
  s_->running = false;
  s_->hub.stop();
  s_->cdn.stop();
  s_->hub_thread.join();
  s_->cdn_thread.join();
}

std::string MockHub::endpoint() const { return "http://127.0.0.1:" + std::to_string(s_->hub_port); }
std::string MockHub::cdn_origin() const { return "http://127.0.0.1:" + std::to_string(s_->cdn_port); }

void MockHub::add_repo(MockRepo repo) {
  if (repo.commit.empty()) repo.commit = git_sha1_hex("commit of " + repo.id);
  std::lock_guard<std::mutex> g(s_->mu);
  s_->repos[repo.id] = std::move(repo);
}

const MockRepo& MockHub::repo(const std::string& id) const {
  std::lock_guard<std::mutex> g(s_->mu);
  return s_->repos.at(id);
}

uint64_t MockHub::bytes_sent(const std::string& path) const {
  std::lock_guard<std::mutex> g(s_->mu);
  auto it = s_->bytes.find(path);
  return it == s_->bytes.end() ? 0 : it->second;
}

size_t MockHub::content_requests(const std::string& path) const {
  std::lock_guard<std::mutex> g(s_->mu);
  auto it = s_->content_requests.find(path);
  return it == s_->content_requests.end() ? 0 : it->second;
}

size_t MockHub::api_requests() const {
  std::lock_guard<std::mutex> g(s_->mu);
  return s_->api_requests;
}

size_t MockHub::all_requests() const {
  std::lock_guard<std::mutex> g(s_->mu);
  return s_->all_requests;
}

size_t MockHub::max_parallel_downloads() const {
  std::lock_guard<std::mutex> g(s_->mu);
  return s_->max_in_flight;
}

size_t MockHub::downloads_in_flight() const {
  std::lock_guard<std::mutex> g(s_->mu);
  return s_->in_flight;
}

std::vector<std::string> MockHub::hub_authorizations() const {
  std::lock_guard<std::mutex> g(s_->mu);
  return s_->hub_auth;
}

std::vector<std::string> MockHub::cdn_authorizations() const {
  std::lock_guard<std::mutex> g(s_->mu);
  return s_->cdn_auth;
}

std::vector<std::string> MockHub::ranges(const std::string& path) const {
  std::lock_guard<std::mutex> g(s_->mu);
  auto it = s_->ranges.find(path);
  return it == s_->ranges.end() ? std::vector<std::string>{} : it->second;
}

void MockHub::set_chunk_bytes(size_t n) {
  std::lock_guard<std::mutex> g(s_->mu);
  s_->chunk = n;
}

void MockHub::drop_after(const std::string& path, uint64_t bytes) {
  std::lock_guard<std::mutex> g(s_->mu);
  s_->faults[path].drop_after = bytes;
}

void MockHub::corrupt(const std::string& path) {
  std::lock_guard<std::mutex> g(s_->mu);
  s_->faults[path].corrupt = true;
}

void MockHub::throttle(const std::string& path, std::chrono::milliseconds per_chunk) {
  std::lock_guard<std::mutex> g(s_->mu);
  s_->faults[path].throttle = per_chunk;
}

void MockHub::fail(const std::string& path, int status, int times) {
  std::lock_guard<std::mutex> g(s_->mu);
  s_->faults[path].fail_status = status;
  s_->faults[path].fail_times = times;
}

void MockHub::clear_faults() {
  std::lock_guard<std::mutex> g(s_->mu);
  s_->faults.clear();
}

}  // namespace strata::test
