// Post-processors: what encode(text, add_special_tokens=true) adds around
// the ids of one sequence, per tokenizer.json's "post_processor".
//
//   auto p = tok::PostProcessor::from_json(j["post_processor"]);  // may be null
//   p->process(ids, /*add_special_tokens=*/true);                   // "<s> $A": {1, ...ids}
//
// Supported types: TemplateProcessing (the "single" template), ByteLevel
// (ids unchanged: it only adjusts offsets), BertProcessing,
// RobertaProcessing, Sequence. strata encodes single sequences only, so
// "pair" templates are read but never applied.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <memory>
#include <vector>

namespace strata::tok {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  virtual void process(std::vector<int32_t>& ids, bool add_special_tokens) const = 0;

  // null JSON gives nullptr. Throws strata::Error for unknown types.
  static std::unique_ptr<PostProcessor> from_json(const nlohmann::json& j);
};

}  // namespace strata::tok
