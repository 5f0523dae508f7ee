#include "tokenizer/pre_tokenizer.h"

#include <algorithm>
#include <functional>
#include <optional>

#include "tokenizer/json_util.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace strata::tok {

namespace {

// Applies a SplitBehavior to spans arriving in order, emitting each piece as
// soon as it is final. This is the reference's per-behaviour fold, done in
// one forward pass (MergedWithNext included) so that no list of spans or
// pieces is ever built: for a multi-megabyte input those lists dominated.
class SpanCutter {
 public:
  SpanCutter(const Piece& piece, SplitBehavior b, const PieceSink& sink) : piece_(piece), behavior_(b), sink_(sink) {}

  void add(size_t start, size_t end, bool is_match) {
    switch (behavior_) {
      case SplitBehavior::Isolated:
        emit(start, end);
        break;
      case SplitBehavior::Removed:
        if (!is_match) emit(start, end);
        break;
      case SplitBehavior::Contiguous:
        extend_or_replace(start, end, is_match == prev_match_);
        break;
      case SplitBehavior::MergedWithPrevious:
        extend_or_replace(start, end, is_match && !prev_match_);
        break;
      case SplitBehavior::MergedWithNext:
        // A match joins the span after it unless that span is a match too.
        if (has_pending_ && prev_match_ && !is_match) {
          pending_end_ = end;
          emit(pending_start_, pending_end_);
          has_pending_ = false;
        } else {
          flush();
          if (is_match) {
            pending_start_ = start;
            pending_end_ = end;
            has_pending_ = true;
          } else {
            emit(start, end);
          }
        }
        break;
    }
    prev_match_ = is_match;
  }

  void finish() { flush(); }

 private:
  void extend_or_replace(size_t start, size_t end, bool extend) {
    if (extend && has_pending_) {
      pending_end_ = end;
      return;
    }
    flush();
    pending_start_ = start;
    pending_end_ = end;
    has_pending_ = true;
  }
  void flush() {
    if (has_pending_) emit(pending_start_, pending_end_);
    has_pending_ = false;
  }
  void emit(size_t s, size_t e) {
    if (s < e) sink_(Piece{piece_.text.substr(s, e - s), piece_.orig_start + s});
  }

  const Piece& piece_;
  SplitBehavior behavior_;
  const PieceSink& sink_;
  bool prev_match_ = false;
  bool has_pending_ = false;
  size_t pending_start_ = 0, pending_end_ = 0;
};

}  // namespace

void split_spans(const Piece& piece, const std::vector<Span>& spans, SplitBehavior behavior, const PieceSink& sink) {
  SpanCutter cut(piece, behavior, sink);
  for (const auto& s : spans) cut.add(s.start, s.end, s.is_match);
  cut.finish();
}

void PreTokenizer::pre_tokenize(std::vector<Piece>& pieces) const {
  std::vector<Piece> out;
  out.reserve(pieces.size() * 2);
  for (auto& p : pieces) split(std::move(p), [&](Piece&& q) { out.push_back(std::move(q)); });
  pieces = std::move(out);
}

namespace {

// Splits `piece` at the matches of `re` (the reference's find_matches
// followed by the behaviour), streaming.
void split_regex(const Piece& piece, const Regex& re, bool invert, SplitBehavior behavior, const PieceSink& sink) {
  SpanCutter cut(piece, behavior, sink);
  const std::string& text = piece.text;
  size_t prev = 0;
  re.for_each_match(text, [&](size_t s, size_t e) {
    if (prev != s) cut.add(prev, s, invert);
    cut.add(s, e, !invert);
    prev = e;
  });
  if (prev != text.size()) cut.add(prev, text.size(), invert);
  cut.finish();
}

// Splits where every character satisfying `pred` is a match of its own.
void split_chars(const Piece& piece, const std::function<bool(char32_t)>& pred, SplitBehavior behavior,
                 const PieceSink& sink) {
  SpanCutter cut(piece, behavior, sink);
  const std::string& text = piece.text;
  size_t last = 0, i = 0;
  while (i < text.size()) {
    size_t b = i;
    char32_t c = unicode::next_char(text, i);
    if (pred(c)) {
      if (last < b) cut.add(last, b, false);
      cut.add(b, i, true);
      last = i;
    }
  }
  if (last < text.size()) cut.add(last, text.size(), false);
  cut.finish();
}

SplitBehavior parse_behavior(const nlohmann::json& j, std::string_view where, SplitBehavior fallback) {
  auto it = j.find("behavior");
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_string()) throw Error(fmt::format("{}: 'behavior' must be a string", where));
  auto s = it->get<std::string>();
  if (s == "Removed") return SplitBehavior::Removed;
  if (s == "Isolated") return SplitBehavior::Isolated;
  if (s == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (s == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (s == "Contiguous") return SplitBehavior::Contiguous;
  throw Error(fmt::format("{}: unsupported split behavior '{}'", where, s));
}

// GPT-2's split pattern, used by ByteLevel when use_regex is true.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevel final : public PreTokenizer {
 public:
  ByteLevel(bool add_prefix_space, bool use_regex) : add_prefix_space_(add_prefix_space) {
    if (use_regex) regex_.emplace(kGpt2Pattern);
  }

 public:
  void split(Piece&& piece, const PieceSink& sink) const override {
    if (add_prefix_space_ && (piece.text.empty() || piece.text[0] != ' ')) piece.text.insert(piece.text.begin(), ' ');
    auto map_bytes = [&sink](Piece&& p) {
      const auto& table = unicode::byte_to_chars();
      std::string mapped;
      mapped.reserve(p.text.size() * 2);
      for (char c : p.text) mapped += table[static_cast<unsigned char>(c)];
      p.text = std::move(mapped);
      sink(std::move(p));
    };
    if (regex_) {
      split_regex(piece, *regex_, false, SplitBehavior::Isolated, map_bytes);
    } else if (!piece.text.empty()) {
      map_bytes(std::move(piece));
    }
  }

 private:
  bool add_prefix_space_;
  std::optional<Regex> regex_;
};

class SplitPre final : public PreTokenizer {
 public:
  SplitPre(const PatternSpec& p, SplitBehavior b, bool invert)
      : regex_(p.is_regex ? p.text : Regex::escape(p.text)), empty_literal_(!p.is_regex && p.text.empty()),
        behavior_(b), invert_(invert) {}

 public:
  void split(Piece&& piece, const PieceSink& sink) const override {
    if (empty_literal_) {
      // The reference treats an empty string pattern as matching nothing.
      split_spans(piece, {{0, piece.text.size(), invert_}}, behavior_, sink);
      return;
    }
    split_regex(piece, regex_, invert_, behavior_, sink);
  }

 private:
  Regex regex_;
  bool empty_literal_;
  SplitBehavior behavior_;
  bool invert_;
};

class Metaspace final : public PreTokenizer {
 public:
  enum class Prepend { Always, First, Never };
  Metaspace(char32_t replacement, Prepend scheme, bool split) : scheme_(scheme), split_(split), replacement_(replacement) {
    unicode::append_utf8(rep_, replacement);
  }

 public:
  void split(Piece&& piece, const PieceSink& sink) const override {
    std::string text;
    text.reserve(piece.text.size() + rep_.size());
    for (char c : piece.text) {
      if (c == ' ') {
        text += rep_;
      } else {
        text += c;
      }
    }
    bool starts = text.compare(0, rep_.size(), rep_) == 0;
    if (!starts && (scheme_ == Prepend::Always || (scheme_ == Prepend::First && piece.orig_start == 0)))
      text.insert(0, rep_);
    piece.text = std::move(text);
    if (!split_) {
      if (!piece.text.empty()) sink(std::move(piece));
      return;
    }
    char32_t r = replacement_;
    split_chars(piece, [r](char32_t c) { return c == r; }, SplitBehavior::MergedWithNext, sink);
  }

 private:
  Prepend scheme_;
  bool split_;
  char32_t replacement_;
  std::string rep_;
};

// Splits on characters matching a predicate (Digits, Punctuation,
// WhitespaceSplit).
class CharSplit final : public PreTokenizer {
 public:
  CharSplit(std::function<bool(char32_t)> pred, SplitBehavior b) : pred_(std::move(pred)), behavior_(b) {}

 public:
  void split(Piece&& piece, const PieceSink& sink) const override {
    split_chars(piece, pred_, behavior_, sink);
  }

 private:
  std::function<bool(char32_t)> pred_;
  SplitBehavior behavior_;
};

class RegexKeep final : public PreTokenizer {
 public:
  explicit RegexKeep(std::string_view pattern) : regex_(pattern) {}

 protected:
  // Keeps only what the pattern matches (Split with invert + Removed).
  void split(Piece&& piece, const PieceSink& sink) const override {
    split_regex(piece, regex_, true, SplitBehavior::Removed, sink);
  }

 private:
  Regex regex_;
};

class SequencePre final : public PreTokenizer {
 public:
  explicit SequencePre(std::vector<std::unique_ptr<PreTokenizer>> parts) : parts_(std::move(parts)) {}
  void split(Piece&& piece, const PieceSink& sink) const override { run(0, std::move(piece), sink); }

 private:
  void run(size_t stage, Piece&& piece, const PieceSink& sink) const {
    if (stage == parts_.size()) {
      if (!piece.text.empty()) sink(std::move(piece));
      return;
    }
    parts_[stage]->split(std::move(piece), [&](Piece&& p) { run(stage + 1, std::move(p), sink); });
  }

  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

bool is_bert_punctuation(char32_t c) {
  return (c < 0x80 && ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126))) ||
         unicode::is_punctuation(c);
}

}  // namespace

std::unique_ptr<PreTokenizer> PreTokenizer::from_json(const nlohmann::json& j) {
  if (j.is_null()) return nullptr;
  std::string type = component_type(j, "pre_tokenizer");
  std::string where = "pre_tokenizer " + type;
  if (type == "ByteLevel")
    return std::make_unique<ByteLevel>(optional_field(j, "add_prefix_space", true, where),
                                       optional_field(j, "use_regex", true, where));
  if (type == "Split")
    return std::make_unique<SplitPre>(pattern_spec(j, where), parse_behavior(j, where, SplitBehavior::Isolated),
                                      optional_field(j, "invert", false, where));
  if (type == "Metaspace") {
    Metaspace::Prepend scheme;
    auto ps = j.find("prepend_scheme");
    if (ps != j.end() && ps->is_string()) {
      auto s = ps->get<std::string>();
      if (s == "always") {
        scheme = Metaspace::Prepend::Always;
      } else if (s == "first") {
        scheme = Metaspace::Prepend::First;
      } else if (s == "never") {
        scheme = Metaspace::Prepend::Never;
      } else {
        throw Error(fmt::format("{}: unsupported prepend_scheme '{}'", where, s));
      }
    } else {
      // Files older than prepend_scheme only have add_prefix_space.
      scheme = optional_field(j, "add_prefix_space", true, where) ? Metaspace::Prepend::Always
                                                                   : Metaspace::Prepend::Never;
    }
    return std::make_unique<Metaspace>(require_char(j, "replacement", where), scheme,
                                       optional_field(j, "split", true, where));
  }
  if (type == "Digits") {
    bool individual = optional_field(j, "individual_digits", false, where);
    return std::make_unique<CharSplit>(unicode::is_numeric,
                                       individual ? SplitBehavior::Isolated : SplitBehavior::Contiguous);
  }
  if (type == "Punctuation")
    return std::make_unique<CharSplit>(is_bert_punctuation, parse_behavior(j, where, SplitBehavior::Isolated));
  if (type == "WhitespaceSplit") return std::make_unique<CharSplit>(unicode::is_whitespace, SplitBehavior::Removed);
  if (type == "Whitespace") return std::make_unique<RegexKeep>(R"(\w+|[^\w\s]+)");
  if (type == "BertPreTokenizer") {
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    parts.push_back(std::make_unique<CharSplit>(unicode::is_whitespace, SplitBehavior::Removed));
    parts.push_back(std::make_unique<CharSplit>(is_bert_punctuation, SplitBehavior::Isolated));
    return std::make_unique<SequencePre>(std::move(parts));
  }
  if (type == "Sequence") {
    const auto& list = require(j, "pretokenizers", where);
    if (!list.is_array()) throw Error(where + ": 'pretokenizers' must be an array");
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (const auto& item : list) {
      if (auto p = from_json(item)) parts.push_back(std::move(p));
    }
    return std::make_unique<SequencePre>(std::move(parts));
  }
  throw Error(fmt::format("unsupported pre_tokenizer type '{}'", type));
}

}  // namespace strata::tok
