// Helpers shared by tests: paths to the shared test data and the strata
// binary, temporary directories, and running the CLI.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace strata::test {

std::filesystem::path testdata();            // ../shared/testdata
std::filesystem::path stories_dir();         // testdata()/stories260K
std::string strata_bin();

// A fresh directory removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int status = -1;  // exit status, or 128+signal
  std::string out, err;
  long max_rss_kb = 0;  // peak resident memory of the child (ru_maxrss)
};
// Runs strata with the given arguments (no shell), capturing stdout/stderr.
CommandResult run_strata(const std::vector<std::string>& args);

// Starts strata in the background with stdout/stderr to files; returns the pid.
int spawn_strata(const std::vector<std::string>& args, const std::filesystem::path& out,
                 const std::filesystem::path& err);
// The same for any program (a path; no PATH lookup).
CommandResult run_program(const std::string& bin, const std::vector<std::string>& args);
int spawn_program(std::string bin, const std::vector<std::string>& args, const std::filesystem::path& out,
                  const std::filesystem::path& err);
// Waits for a spawned process; returns its exit status or 128+signal.
int wait_strata(int pid);

std::vector<float> read_f32_file(const std::filesystem::path& p);
std::string read_text(const std::filesystem::path& p);

}  // namespace strata::test
