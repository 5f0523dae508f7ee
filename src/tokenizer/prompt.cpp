#include "strata/prompt.h"

#include <optional>

#include "tokenizer/tokenizer.h"

namespace strata {

std::vector<int32_t> encode_prompt(const Tokenizer& tok, std::string_view text, bool add_special_tokens,
                                   bool special_as_text) {
  std::vector<int32_t> ids = tok.encode(text, add_special_tokens, special_as_text);
  if (!add_special_tokens) return ids;
  std::optional<int32_t> bos = tok.bos_id();
  if (tok.config().add_bos_token.value_or(false) && bos && (ids.empty() || ids.front() != *bos))
    ids.insert(ids.begin(), *bos);
  return ids;
}

}  // namespace strata
