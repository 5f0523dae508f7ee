#include "hub/model_name.h"

#include <cctype>

namespace strata::hub {

static bool valid_part(const std::string& s) {
  if (s.empty() || s.size() > 96) return false;
  if (!std::isalnum(static_cast<unsigned char>(s.front()))) return false;
  if (s.find("--") != std::string::npos || s.find("..") != std::string::npos) return false;
  if (s.back() == '.' || s.back() == '-') return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return false;
  return true;
}

bool ModelName::revision_is_commit() const {
  if (revision.size() != 40) return false;
  for (char c : revision)
    if (!std::isxdigit(static_cast<unsigned char>(c)) || std::isupper(static_cast<unsigned char>(c))) return false;
  return true;
}

std::optional<ModelName> parse_model_name(const std::string& text) {
  ModelName n;
  std::string repo = text;
  if (size_t at = text.find('@'); at != std::string::npos) {
    repo = text.substr(0, at);
    n.revision = text.substr(at + 1);
    // Branch and tag names may hold '/', but no whitespace, "..", or a leading '/'.
    if (n.revision.empty() || n.revision.front() == '/' || n.revision.find("..") != std::string::npos) return std::nullopt;
    for (char c : n.revision)
      if (std::isspace(static_cast<unsigned char>(c)) || std::iscntrl(static_cast<unsigned char>(c))) return std::nullopt;
  }
  size_t slash = repo.find('/');
  if (slash == std::string::npos || repo.find('/', slash + 1) != std::string::npos) return std::nullopt;
  if (!valid_part(repo.substr(0, slash)) || !valid_part(repo.substr(slash + 1))) return std::nullopt;
  n.repo = repo;
  return n;
}

static std::string encode(const std::string& s, bool keep_slash) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out += char(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string url_encode_component(const std::string& s) { return encode(s, false); }
std::string url_encode_path(const std::string& s) { return encode(s, true); }

}  // namespace strata::hub
