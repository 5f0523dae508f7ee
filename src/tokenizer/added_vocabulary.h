// Added tokens ("added_tokens" in tokenizer.json): strings such as
// "<|im_start|>" that are found in the text before the model sees it and
// become one id each, as Hugging Face tokenizers' AddedVocabulary does.
//
// Tokens with normalized=false are matched in the raw text; tokens with
// normalized=true are matched, in their normalized form, in the normalized
// text of the spans between the former. Matching is leftmost-longest, then
// single_word / lstrip / rstrip are honoured. With `skip_special`, special
// tokens are not matched at all (their text is tokenized as ordinary text),
// which is what untrusted input needs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace strata::tok {

class Normalizer;

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

class AddedVocabulary {
 public:
  // `normalizer` (may be null) gives the form in which normalized tokens are
  // searched; it is only used during construction.
  AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer);
  ~AddedVocabulary();
  AddedVocabulary(AddedVocabulary&&) noexcept;
  AddedVocabulary& operator=(AddedVocabulary&&) noexcept;

  // A part of a text: either an added token (id >= 0) or plain text (id -1).
  struct Segment {
    size_t start, end;
    int32_t id;
  };
  // Splits `text` into segments covering it (the reference's find_matches).
  // `normalized_set` selects the tokens matched after normalization.
  std::vector<Segment> split(std::string_view text, bool normalized_set, bool skip_special) const;
  bool has_normalized_tokens() const;
  bool has_raw_tokens() const;

  const std::vector<AddedToken>& tokens() const { return tokens_; }
  const AddedToken* find_by_id(int32_t id) const;
  const AddedToken* find_by_content(std::string_view content) const;

 private:
  class Trie;
  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, size_t> by_id_;
  std::unordered_map<std::string, size_t> by_content_;
  std::unique_ptr<Trie> raw_;         // normalized == false
  std::unique_ptr<Trie> normalized_;  // normalized == true, patterns normalized
};

}  // namespace strata::tok
