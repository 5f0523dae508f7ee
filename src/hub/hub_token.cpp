#include "hub/hub_token.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace strata::hub {

static std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

static std::string trim(std::string s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  size_t e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::filesystem::path hf_home() {
  if (std::string h = env("HF_HOME"); !h.empty()) return h;
  if (std::string x = env("XDG_CACHE_HOME"); !x.empty()) return std::filesystem::path(x) / "huggingface";
  std::string home = env("HOME");
  return std::filesystem::path(home.empty() ? "/" : home) / ".cache" / "huggingface";
}

std::string find_token(const std::string& explicit_token) {
  if (!explicit_token.empty()) return trim(explicit_token);
  if (std::string t = trim(env("HF_TOKEN")); !t.empty()) return t;
  // Older huggingface_hub versions read this name.
  if (std::string t = trim(env("HUGGING_FACE_HUB_TOKEN")); !t.empty()) return t;
  std::filesystem::path file = env("HF_TOKEN_PATH");
  if (file.empty()) file = hf_home() / "token";
  std::ifstream f(file);
  if (!f) return "";
  std::stringstream ss;
  ss << f.rdbuf();
  return trim(ss.str());
}

}  // namespace strata::hub
