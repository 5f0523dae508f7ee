#include "runtime/memory_limit.h"

#include <fstream>
#include <sstream>
#include <vector>

namespace strata {
namespace {

std::optional<uint64_t> read_number(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::string s;
  if (!(f >> s) || s == "max") return std::nullopt;
  try {
    return std::stoull(s);
  } catch (...) {
    return std::nullopt;
  }
}

// The limit and usage files of each cgroup from `dir` up to the mount root.
std::optional<uint64_t> walk(const std::filesystem::path& root, std::filesystem::path rel, const char* limit_file,
                             const char* usage_file) {
  std::optional<uint64_t> best;
  for (;;) {
    const std::filesystem::path dir = root / rel.relative_path();
    auto limit = read_number(dir / limit_file);
    // v1 reports "no limit" as a huge page-rounded number.
    if (limit && *limit < (uint64_t(1) << 60)) {
      uint64_t used = read_number(dir / usage_file).value_or(0);
      uint64_t left = *limit > used ? *limit - used : 0;
      if (!best || left < *best) best = left;
    }
    if (rel == rel.root_path() || rel.empty()) break;
    rel = rel.parent_path();
  }
  return best;
}

}  // namespace

std::optional<uint64_t> cgroup_memory_available(const std::string& text, const std::filesystem::path& root) {
  std::istringstream in(text);
  std::string line;
  std::optional<uint64_t> best;
  auto take = [&](std::optional<uint64_t> v) {
    if (v && (!best || *v < *best)) best = v;
  };
  while (std::getline(in, line)) {
    // hierarchy-id:controllers:path
    size_t a = line.find(':'), b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    const std::string id = line.substr(0, a), ctl = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    if (id == "0" && ctl.empty()) {
      // cgroup v2: mounted at the root, or at unified/ beside v1.
      for (const char* sub : {"", "unified"}) {
        std::filesystem::path r = root / sub;
        if (std::filesystem::exists(r / "cgroup.controllers")) take(walk(r, path, "memory.max", "memory.current"));
      }
    } else {
      std::stringstream cs(ctl);
      std::string c;
      while (std::getline(cs, c, ','))
        if (c == "memory") take(walk(root / "memory", path, "memory.limit_in_bytes", "memory.usage_in_bytes"));
    }
  }
  return best;
}

uint64_t available_memory() {
  uint64_t avail = 0;
  std::ifstream f("/proc/meminfo");
  std::string key, unit;
  uint64_t kb;
  while (f >> key >> kb >> unit) {
    if (key == "MemAvailable:") {
      avail = kb * 1024;
      break;
    }
  }
  if (avail == 0) avail = uint64_t(4) << 30;
  std::ifstream cg("/proc/self/cgroup");
  std::stringstream ss;
  ss << cg.rdbuf();
  if (auto left = cgroup_memory_available(ss.str(), "/sys/fs/cgroup")) avail = std::min(avail, *left);
  return avail;
}

}  // namespace strata
