// Normalizers: the text rewrites a tokenizer.json applies to each span of
// input between added tokens, before pre-tokenization.
//
//   auto n = tok::Normalizer::from_json(j["normalizer"]);   // may be null
//   std::string s = "cafe\u0301"; n->normalize(s);           // NFC: "café"
//
// Supported types: NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip,
// StripAccents, ByteLevel, Sequence. Unlike the reference, no alignment
// between normalized and original bytes is kept: strata needs ids, not offsets.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <memory>
#include <string>

namespace strata::tok {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(std::string& text) const = 0;

  // Builds the normalizer a tokenizer.json "normalizer" value describes;
  // null JSON gives nullptr. Throws strata::Error for unknown types.
  static std::unique_ptr<Normalizer> from_json(const nlohmann::json& j);
};

}  // namespace strata::tok
