// Reads the text of a tokenizer.json in one pass. The BPE vocabulary and
// merges, which are nearly all of a 10 MB file, go straight into flat
// tables; everything else becomes an nlohmann DOM (where model.vocab and
// model.merges are left as an empty object and array). This makes loading
// several times faster than parsing the whole file into a DOM.
#pragma once

#include <nlohmann/json.hpp>

#include <string_view>

#include "tokenizer/bpe_model.h"

namespace strata::tok {

struct TokenizerJson {
  nlohmann::json doc;
  BpeTables bpe;
};

// Throws nlohmann::json::parse_error for malformed JSON and strata::Error
// for malformed vocab or merges entries.
TokenizerJson read_tokenizer_json(std::string_view text);

}  // namespace strata::tok
