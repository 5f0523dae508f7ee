// Prompt ids the way transformers' tokenizer(text) gives them for a model:
// the tokenizer.json post-processor, plus BOS when tokenizer_config.json sets
// add_bos_token and the post-processor did not add it (transformers rebuilds
// the post-processor from add_bos_token; tokenizer.json alone may lack it).
//
//   std::vector<int32_t> ids = strata::encode_prompt(tokenizer, "Once upon a time");
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace strata {

class Tokenizer;

// `add_special_tokens` = false gives the bare ids (no post-processor, no BOS).
// `special_as_text` keeps special-token text in `text` as plain text.
// An empty text gives the special tokens alone (possibly no ids at all).
std::vector<int32_t> encode_prompt(const Tokenizer& tok, std::string_view text, bool add_special_tokens = true,
                                   bool special_as_text = false);

}  // namespace strata
