// The BPE model of a tokenizer.json: turns one pre-tokenized piece into ids
// by applying merges in rank order, exactly as Hugging Face tokenizers'
// `BPE` does (byte-level vocabularies and sentencepiece-style ones with
// byte_fallback, unk_token, fuse_unk, continuing_subword_prefix,
// end_of_word_suffix, ignore_merges). Dropout is not supported.
//
//   auto bpe = tok::BpeModel::from_json(j["model"]);
//   std::vector<int32_t> ids;
//   bpe->tokenize("\u2581Hello", ids);
//
// Merging uses a priority queue over a linked list of symbols per piece,
// O(n log n) in the piece length, and results are memoized in a bounded
// piece -> ids cache shared by all threads.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace strata::tok {

// Hash for heterogeneous lookup of std::string keys by string_view.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
using Vocab = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// The two large tables of a BPE model. The tokenizer.json reader fills them
// straight from the JSON text, because building a DOM for them would be most
// of the load time; tables left unset are read from the model's DOM.
struct BpeTables {
  bool has_vocab = false, has_merges = false;
  std::vector<std::pair<std::string, int64_t>> vocab;
  std::vector<std::pair<std::string, std::string>> merges;
  // Rank of each merge when several share one (a GGUF SentencePiece
  // vocabulary's equal scores); empty: a merge's rank is its index.
  std::vector<int32_t> ranks;
};

class BpeModel {
 public:
  static std::unique_ptr<BpeModel> from_json(const nlohmann::json& model, BpeTables tables = {});
  ~BpeModel();

  // Appends the ids of `piece` to `out`. Thread-safe.
  void tokenize(std::string_view piece, std::vector<int32_t>& out) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  // nullptr when the id is not in the vocabulary.
  const std::string* id_to_token(int32_t id) const;
  // One past the largest id of the vocabulary.
  int32_t id_end() const { return static_cast<int32_t>(id_to_token_.size()); }

 private:
  BpeModel();
  struct MergeTable;
  struct Cache;

  void merge_word(std::string_view word, std::vector<int32_t>& out) const;
  // With `whole_word`, ignore_merges applies (the piece is not a chunk).
  void tokenize_cached(std::string_view word, bool whole_word, std::vector<int32_t>& out) const;
  int32_t char_id(std::string_view ch) const;  // -1 when not in the vocabulary
  void check_metaspace_chunking();

  Vocab vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> id_present_;
  std::unique_ptr<MergeTable> merges_;
  std::unique_ptr<Cache> cache_;

  std::optional<std::string> unk_token_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::string prefix_;  // continuing_subword_prefix ("" = none)
  std::string suffix_;  // end_of_word_suffix ("" = none)
  int32_t byte_ids_[256];
  // Ids of single code points below U+0800, the common case, so that the
  // first step of a merge does not hash strings.
  std::vector<int32_t> small_char_ids_;
  // True when no vocabulary token holds U+2581 after another character, so
  // no merge can cross the start of a "▁word" and a long sentencepiece-style
  // piece can be tokenized (and cached) one "▁word" at a time.
  bool metaspace_chunking_ = false;
};

}  // namespace strata::tok
