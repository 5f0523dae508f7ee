// Hub model names: ORG/NAME[@REVISION], as huggingface_hub spells repo ids
// (letters, digits, '-', '_', '.'; no "--" or ".." that would be ambiguous in
// the cache folder name models--ORG--NAME).
#pragma once

#include <optional>
#include <string>

namespace strata::hub {

struct ModelName {
  std::string repo;             // ORG/NAME
  std::string revision = "main";
  bool revision_is_commit() const;  // 40 hex digits
};

// nullopt when `text` is not of that form (whether or not it exists on disk).
std::optional<ModelName> parse_model_name(const std::string& text);

// Percent-encodes a revision for a URL path ("refs/pr/1" -> "refs%2Fpr%2F1").
std::string url_encode_component(const std::string& s);
// Percent-encodes a repository file path, keeping its '/' separators.
std::string url_encode_path(const std::string& s);

}  // namespace strata::hub
