// Pre-tokenizers: split normalized text into the pieces ("words") the model
// tokenizes independently, as a tokenizer.json "pre_tokenizer" describes.
//
//   auto p = tok::PreTokenizer::from_json(j["pre_tokenizer"]);   // may be null
//   std::vector<tok::Piece> pieces{{"Hello world", 0}};
//   p->pre_tokenize(pieces);                                       // "Hello", " world"
//
// Supported types: ByteLevel, Split (String or Regex pattern, every
// behaviour, invert), Metaspace, Digits, Punctuation, Whitespace,
// WhitespaceSplit, BertPreTokenizer, Sequence.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace strata::tok {

struct Piece {
  std::string text;
  // Byte offset in the input where the piece starts. Exact while no
  // normalizer changed lengths; only "is it 0" matters (Metaspace's
  // prepend_scheme "first").
  size_t orig_start = 0;
};

// How a Split keeps the delimiters it found (names as in tokenizer.json).
enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

// A span of a piece and whether it was matched by the pattern.
struct Span {
  size_t start, end;
  bool is_match;
};

// Receives the pieces a pre-tokenizer produces, in order.
using PieceSink = std::function<void(Piece&&)>;

// Cuts `piece` at `spans` (which cover it in order) as `behavior` says and
// passes the non-empty results to `sink`.
void split_spans(const Piece& piece, const std::vector<Span>& spans, SplitBehavior behavior, const PieceSink& sink);

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;

  // Splits one piece, passing each non-empty result to `sink`. Pieces are
  // independent, so a Sequence can run depth-first without building lists.
  virtual void split(Piece&& piece, const PieceSink& sink) const = 0;

  // Replaces every piece by the pieces it splits into.
  void pre_tokenize(std::vector<Piece>& pieces) const;

  // null JSON gives nullptr. Throws strata::Error for unknown types.
  static std::unique_ptr<PreTokenizer> from_json(const nlohmann::json& j);
};

}  // namespace strata::tok
