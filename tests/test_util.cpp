#include "test_util.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <cstring>
#include <thread>

namespace strata::test {

std::filesystem::path testdata() { return STRATA_TESTDATA_DIR; }
std::filesystem::path stories_dir() { return testdata() / "stories260K"; }
std::string strata_bin() { return STRATA_BIN; }

TempDir::TempDir() {
  std::random_device rd;
  const char* base = std::getenv("TMPDIR");
  std::filesystem::path root = base ? base : "/tmp";
  path_ = root / ("strata-test-" + std::to_string(getpid()) + "-" + std::to_string(rd()));
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

static std::string slurp_fd(int fd) {
  std::string s;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) s.append(buf, size_t(n));
  close(fd);
  return s;
}

int spawn_strata(const std::vector<std::string>& args, const std::filesystem::path& out_path,
                 const std::filesystem::path& err_path) {
  return spawn_program(strata_bin(), args, out_path, err_path);
}

int spawn_program(std::string bin, const std::vector<std::string>& args, const std::filesystem::path& out_path,
                  const std::filesystem::path& err_path) {
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  argv.push_back(bin.data());
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    int o = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int in = open("/dev/null", O_RDONLY);
    dup2(o, 1);
    dup2(e, 2);
    dup2(in, 0);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

static int wait_status(int pid, struct rusage* ru) {
  int st = 0;
  wait4(pid, &st, 0, ru);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int wait_strata(int pid) {
  struct rusage ru {};
  return wait_status(pid, &ru);
}

CommandResult run_strata(const std::vector<std::string>& args) { return run_program(strata_bin(), args); }

CommandResult run_program(const std::string& bin, const std::vector<std::string>& args) {
  TempDir tmp;
  auto out_path = tmp / "out", err_path = tmp / "err";
  int pid = spawn_program(bin, args, out_path, err_path);
  struct rusage ru {};
  CommandResult r;
  r.status = wait_status(pid, &ru);
  r.max_rss_kb = ru.ru_maxrss;
  r.out = slurp_fd(open(out_path.c_str(), O_RDONLY));
  r.err = slurp_fd(open(err_path.c_str(), O_RDONLY));
  return r;
}

std::vector<float> read_f32_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + p.string());
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), {});
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), v.size() * 4);
  return v;
}

std::string read_text(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace strata::test
