// Decoders: turn token strings back into text, per tokenizer.json's
// "decoder". Each one rewrites the list of token strings (the reference's
// decode_chain); the text is their concatenation at the end.
//
//   auto d = tok::Decoder::from_json(j["decoder"]);   // may be null
//   std::string text = d->decode({"\u2581Hello", "<0x21>"});   // "Hello!" for Llama 2
//
// Supported types: ByteLevel, ByteFallback, Fuse, Strip, Replace, Metaspace,
// BPEDecoder, Sequence.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <memory>
#include <string>
#include <vector>

namespace strata::tok {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;

  std::string decode(std::vector<std::string> tokens) const;

  // null JSON gives nullptr. Throws strata::Error for unknown types.
  static std::unique_ptr<Decoder> from_json(const nlohmann::json& j);
};

}  // namespace strata::tok
