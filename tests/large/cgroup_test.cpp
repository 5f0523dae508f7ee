// Budgets that hold inside containers: `strata run` and `strata bench` in a
// memory cgroup (the way Docker, systemd and Kubernetes cap memory) with
// --max-memory at 95% of the limit, on a model 2-3x larger than the limit,
// finish without the kernel's OOM killer. The cgroup is a child of the test's
// own (cgroup v2 when the unified hierarchy has the memory controller, else
// v1's memory hierarchy), removed afterwards; where none can be created (no
// permission, no memory controller) the test skips and says why.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "convert/synthetic_model.h"
#include "test_util.h"

namespace strata {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

bool write_file(const fs::path& p, const std::string& text) {
  int fd = ::open(p.c_str(), O_WRONLY);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == ssize_t(text.size());
  ::close(fd);
  return ok;
}

// "key value" lines (memory.events, memory.oom_control): the value of `key`, -1 when absent.
long long field(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string k;
  long long v;
  while (in >> k >> v)
    if (k == key) return v;
  return -1;
}

// Drops the model's pages from the page cache (they were written by this
// process, outside the cgroup).
void evict(const fs::path& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    int fd = ::open(e.path().c_str(), O_RDONLY);
    if (fd < 0) continue;
    ::fdatasync(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
}

// A memory cgroup with a hard limit, a child of this process's own cgroup.
class MemoryCgroup {
 public:
  // Empty reason() on success.
  explicit MemoryCgroup(uint64_t limit) {
    const std::string self = read_file("/proc/self/cgroup");
    std::istringstream lines(self);
    std::string line, v1_path, v2_path;
    bool have_v2 = false;
    while (std::getline(lines, line)) {
      // hierarchy-id:controllers:path
      size_t a = line.find(':'), b = line.find(':', a + 1);
      if (a == std::string::npos || b == std::string::npos) continue;
      std::string controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
      if (line.substr(0, a) == "0" && controllers.empty()) v2_path = path, have_v2 = true;
      std::istringstream cs(controllers);
      for (std::string c; std::getline(cs, c, ',');)
        if (c == "memory") v1_path = path;
    }
    const std::string name = "strata-test-" + std::to_string(::getpid());
    if (have_v2 && fs::exists("/sys/fs/cgroup/cgroup.controllers")) {
      const fs::path parent = fs::path("/sys/fs/cgroup") / fs::path(v2_path).relative_path();
      if (read_file(parent / "cgroup.controllers").find("memory") != std::string::npos) {
        // The parent hands the memory controller to its children (fails
        // harmlessly when it already does, or when it holds processes).
        write_file(parent / "cgroup.subtree_control", "+memory");
        if (try_create(parent / name) && write_file(dir_ / "memory.max", std::to_string(limit))) {
          write_file(dir_ / "memory.swap.max", "0");
          v2_ = true;
          return;
        }
        remove();
      }
    }
    if (!v1_path.empty() && fs::exists("/sys/fs/cgroup/memory/memory.limit_in_bytes")) {
      const fs::path parent = fs::path("/sys/fs/cgroup/memory") / fs::path(v1_path).relative_path();
      if (try_create(parent / name) && write_file(dir_ / "memory.limit_in_bytes", std::to_string(limit))) {
        if (fs::exists(dir_ / "memory.memsw.limit_in_bytes"))
          write_file(dir_ / "memory.memsw.limit_in_bytes", std::to_string(limit));
        return;
      }
      remove();
    }
    reason_ = "cannot create a memory cgroup with a limit (cgroup v2 at /sys/fs/cgroup without the memory "
              "controller, or no write access to /sys/fs/cgroup/memory): " + std::string(std::strerror(errno));
  }
  ~MemoryCgroup() { remove(); }

  const std::string& reason() const { return reason_; }
  const fs::path& dir() const { return dir_; }
  const char* version() const { return v2_ ? "v2" : "v1"; }

  // OOM kills inside the cgroup since it was made.
  long long oom_kills() const {
    return v2_ ? field(read_file(dir_ / "memory.events"), "oom_kill")
               : field(read_file(dir_ / "memory.oom_control"), "oom_kill");
  }
  // Peak charge (bytes; v2's memory.peak needs Linux 5.19, -1 without it).
  long long peak() const {
    const std::string s = read_file(dir_ / (v2_ ? "memory.peak" : "memory.max_usage_in_bytes"));
    return s.empty() ? -1 : std::stoll(s);
  }
  void reset_peak() const {
    write_file(dir_ / (v2_ ? "memory.peak" : "memory.max_usage_in_bytes"), "0");
  }

  // Runs strata inside the cgroup; returns its exit status or 128+signal.
  int run(const std::vector<std::string>& args, const fs::path& out, const fs::path& err) const {
    pid_t pid = ::fork();
    if (pid == 0) {
      const std::string me = std::to_string(::getpid());
      if (!write_file(dir_ / "cgroup.procs", me)) _exit(125);
      int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (o < 0 || e < 0) _exit(126);
      ::dup2(o, 1);
      ::dup2(e, 2);
      std::vector<std::string> full{test::strata_bin()};
      full.insert(full.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (auto& a : full) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      _exit(127);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  bool try_create(const fs::path& d) {
    std::error_code ec;
    if (!fs::create_directory(d, ec)) return false;
    dir_ = d;
    return true;
  }
  void remove() {
    if (!dir_.empty()) ::rmdir(dir_.c_str());
    dir_.clear();
  }

  fs::path dir_;
  bool v2_ = false;
  std::string reason_;
};

TEST(Cgroup, RunAndBenchHoldTheBudgetInsideAMemoryCgroup) {
  const uint64_t mib = 1 << 20, limit = 128 * mib;
  MemoryCgroup cg(limit);
  if (!cg.reason().empty()) GTEST_SKIP() << cg.reason();

  // A Llama 3-style model of ~290 MiB in bf16 (2.3x the limit): 11 layers of
  // ~23 MiB, so a streaming slot is a small part of the budget.
  test::TempDir tmp;
  ModelConfig c = find_synth_preset("tiny-llama3").config;
  c.hidden_size = 1024;
  c.intermediate_size = 2816;
  c.num_layers = 11;
  c.num_heads = 8;
  c.num_kv_heads = 4;
  c.head_dim = 128;
  c.vocab_size = 8000;
  c.max_position_embeddings = 2048;
  SynthOptions so;
  so.seed = 11;
  const uint64_t bytes = write_synthetic_model(tmp / "m", c, so);
  ASSERT_GE(bytes, 2 * limit);
  ASSERT_LE(bytes, 3 * limit);

  const std::string budget = std::to_string(limit * 95 / 100);
  struct Case {
    const char* name;
    std::vector<std::string> args;
  };
  const std::vector<Case> cases = {
      {"run", {"run", (tmp / "m").string(), "--prompt-ids", "1,2,3,4,5,6,7,8", "-n", "8", "--max-memory", budget}},
      {"bench",
       {"bench", (tmp / "m").string(), "--max-memory", budget, "--tokens", "3"}},
  };
  for (const auto& k : cases) {
    SCOPED_TRACE(k.name);
    cg.reset_peak();
    evict(tmp / "m");  // the reads inside the cgroup are charged to it, as on a cold start
    const long long kills_before = cg.oom_kills();
    const int status = cg.run(k.args, tmp / "out.txt", tmp / "err.txt");
    const long long kills = cg.oom_kills() - kills_before;
    std::printf("%s in a %s cgroup of %llu MiB at --max-memory %s: exit %d, oom kills %lld, peak charge %.1f MiB\n",
                k.name, cg.version(), (unsigned long long)(limit / mib), budget.c_str(), status, kills,
                double(cg.peak()) / double(mib));
    EXPECT_EQ(status, 0) << test::read_text(tmp / "err.txt");
    EXPECT_EQ(kills, 0);
    EXPECT_FALSE(test::read_text(tmp / "out.txt").empty());
  }
}

}  // namespace
}  // namespace strata
