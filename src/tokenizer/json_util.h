// Small checked accessors for tokenizer.json, so that a missing or mistyped
// field becomes a strata::Error naming the field and the component instead
// of an nlohmann exception or a crash. The loader adds the file name.
#pragma once

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace strata::tok {

inline const nlohmann::json& require(const nlohmann::json& j, std::string_view key, std::string_view where) {
  if (!j.is_object()) throw Error(fmt::format("{} is not a JSON object", where));
  auto it = j.find(key);
  if (it == j.end()) throw Error(fmt::format("{}: missing field '{}'", where, key));
  return *it;
}

inline std::string require_string(const nlohmann::json& j, std::string_view key, std::string_view where) {
  const auto& v = require(j, key, where);
  if (!v.is_string()) throw Error(fmt::format("{}: field '{}' must be a string", where, key));
  return v.get<std::string>();
}

// A field that may be absent or null; returns `fallback` then.
template <typename T>
T optional_field(const nlohmann::json& j, std::string_view key, T fallback, std::string_view where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception&) {
    throw Error(fmt::format("{}: field '{}' has the wrong type", where, key));
  }
}

// A field that may be absent or null, as std::optional.
template <typename T>
std::optional<T> optional_value(const nlohmann::json& j, std::string_view key, std::string_view where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception&) {
    throw Error(fmt::format("{}: field '{}' has the wrong type", where, key));
  }
}

// The "type" of a component object, e.g. "Split".
inline std::string component_type(const nlohmann::json& j, std::string_view kind) {
  if (!j.is_object()) throw Error(fmt::format("{} is not a JSON object", kind));
  return require_string(j, "type", kind);
}

// A Split/Replace "pattern": {"String": "..."} or {"Regex": "..."}.
struct PatternSpec {
  bool is_regex = false;
  std::string text;
};

inline PatternSpec pattern_spec(const nlohmann::json& j, std::string_view where) {
  const auto& p = require(j, "pattern", where);
  if (p.is_object()) {
    if (p.contains("Regex") && p["Regex"].is_string()) return {true, p["Regex"].get<std::string>()};
    if (p.contains("String") && p["String"].is_string()) return {false, p["String"].get<std::string>()};
  }
  throw Error(fmt::format("{}: 'pattern' must be {{\"String\": ...}} or {{\"Regex\": ...}}", where));
}

// The single code point of a string field such as Metaspace's "replacement".
inline char32_t require_char(const nlohmann::json& j, std::string_view key, std::string_view where) {
  std::string s = require_string(j, key, where);
  size_t i = 0;
  if (s.empty() || !unicode::is_valid_utf8(s) || (unicode::next_char(s, i), i != s.size()))
    throw Error(fmt::format("{}: field '{}' must be exactly one character", where, key));
  i = 0;
  return unicode::next_char(s, i);
}

}  // namespace strata::tok
