#include "tokenizer/added_vocabulary.h"

#include <algorithm>
#include <array>

#include "tokenizer/normalizer.h"
#include "tokenizer/unicode.h"

namespace strata::tok {

// A byte trie answering "longest pattern starting here", which is all that
// leftmost-longest matching needs when positions are scanned left to right.
class AddedVocabulary::Trie {
 public:
  void insert(std::string_view pattern, int32_t value) {
    if (pattern.empty()) return;
    int32_t node = 0;
    for (char ch : pattern) {
      auto b = static_cast<uint8_t>(ch);
      auto& edges = nodes_[node].edges;
      auto it = std::lower_bound(edges.begin(), edges.end(), b, [](const auto& e, uint8_t v) { return e.first < v; });
      if (it != edges.end() && it->first == b) {
        node = it->second;
      } else {
        auto child = static_cast<int32_t>(nodes_.size());
        edges.insert(it, {b, child});
        nodes_.emplace_back();
        node = child;
      }
    }
    // The first token inserted for a string wins, as with duplicate patterns
    // in the reference's automaton.
    if (nodes_[node].value < 0) nodes_[node].value = value;
    first_byte_[static_cast<uint8_t>(pattern[0])] = true;
    empty_ = false;
  }

  bool empty() const { return empty_; }

  // Leftmost-longest match at or after `from`: sets [s, e) and the value.
  bool find(std::string_view text, size_t from, size_t& s, size_t& e, int32_t& value) const {
    for (size_t p = from; p < text.size(); ++p) {
      if (!first_byte_[static_cast<uint8_t>(text[p])]) continue;
      int32_t node = 0;
      int32_t best = -1;
      size_t best_end = 0;
      for (size_t q = p; q < text.size(); ++q) {
        const auto& edges = nodes_[node].edges;
        auto b = static_cast<uint8_t>(text[q]);
        auto it = std::lower_bound(edges.begin(), edges.end(), b, [](const auto& x, uint8_t v) { return x.first < v; });
        if (it == edges.end() || it->first != b) break;
        node = it->second;
        if (nodes_[node].value >= 0) {
          best = nodes_[node].value;
          best_end = q + 1;
        }
      }
      if (best >= 0) {
        s = p;
        e = best_end;
        value = best;
        return true;
      }
    }
    return false;
  }

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> edges;  // sorted by byte
    int32_t value = -1;
  };
  std::vector<Node> nodes_{1};
  std::array<bool, 256> first_byte_{};
  bool empty_ = true;
};

AddedVocabulary::AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer)
    : tokens_(std::move(tokens)), raw_(std::make_unique<Trie>()), normalized_(std::make_unique<Trie>()) {
  for (size_t i = 0; i < tokens_.size(); ++i) {
    by_id_[tokens_[i].id] = i;
    by_content_[tokens_[i].content] = i;
  }
  // The reference builds its automaton from special tokens first, then the others.
  std::vector<size_t> order(tokens_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_partition(order.begin(), order.end(), [&](size_t i) { return tokens_[i].special; });
  for (size_t i : order) {
    const auto& t = tokens_[i];
    if (t.content.empty()) continue;
    if (!t.normalized) {
      raw_->insert(t.content, static_cast<int32_t>(i));
    } else {
      std::string pattern = t.content;
      if (normalizer) normalizer->normalize(pattern);
      normalized_->insert(pattern, static_cast<int32_t>(i));
    }
  }
}

AddedVocabulary::~AddedVocabulary() = default;
AddedVocabulary::AddedVocabulary(AddedVocabulary&&) noexcept = default;
AddedVocabulary& AddedVocabulary::operator=(AddedVocabulary&&) noexcept = default;

bool AddedVocabulary::has_normalized_tokens() const { return !normalized_->empty(); }
bool AddedVocabulary::has_raw_tokens() const { return !raw_->empty(); }

const AddedToken* AddedVocabulary::find_by_id(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedVocabulary::find_by_content(std::string_view content) const {
  auto it = by_content_.find(std::string(content));
  return it == by_content_.end() ? nullptr : &tokens_[it->second];
}

namespace {

bool ends_with_word(std::string_view s) {
  if (s.empty()) return false;
  size_t i = s.size();
  return unicode::is_word_char(unicode::prev_char(s, i));
}

bool starts_with_word(std::string_view s) {
  if (s.empty()) return false;
  size_t i = 0;
  return unicode::is_word_char(unicode::next_char(s, i));
}

// Start of the run of whitespace that ends `s`.
size_t leftmost_space_at_end(std::string_view s) {
  size_t e = s.size();
  while (e > 0) {
    size_t i = e;
    if (!unicode::is_whitespace(unicode::prev_char(s, i))) break;
    e = i;
  }
  return e;
}

// Length of the run of whitespace that starts `s`.
size_t rightmost_space_at_start(std::string_view s) {
  size_t b = 0;
  while (b < s.size()) {
    size_t i = b;
    if (!unicode::is_whitespace(unicode::next_char(s, i))) break;
    b = i;
  }
  return b;
}

}  // namespace

std::vector<AddedVocabulary::Segment> AddedVocabulary::split(std::string_view text, bool normalized_set,
                                                             bool skip_special) const {
  std::vector<Segment> out;
  const Trie& trie = normalized_set ? *normalized_ : *raw_;
  if (text.empty() || trie.empty()) {
    out.push_back({0, text.size(), -1});
    return out;
  }
  size_t start_offset = 0, pos = 0;
  size_t ms = 0, me = 0;
  int32_t idx = -1;
  while (pos < text.size() && trie.find(text, pos, ms, me, idx)) {
    pos = me;  // matches never overlap, even when one is discarded below
    const AddedToken& t = tokens_[idx];
    if (skip_special && t.special) continue;
    size_t start = ms, stop = me;
    if (t.single_word) {
      bool space_before = start == 0 || !ends_with_word(text.substr(0, start));
      bool space_after = stop == text.size() || !starts_with_word(text.substr(stop));
      if (!space_before || !space_after) continue;
    }
    if (t.lstrip) start = std::max(leftmost_space_at_end(text.substr(0, start)), start_offset);
    if (t.rstrip) stop += rightmost_space_at_start(text.substr(stop));
    // An rstrip may have swallowed the start of this match; never overlap.
    start = std::max(start, start_offset);
    if (stop < start) continue;
    if (start_offset < start) out.push_back({start_offset, start, -1});
    out.push_back({start, stop, t.id});
    start_offset = stop;
    pos = std::max(pos, stop);
  }
  if (start_offset != text.size()) out.push_back({start_offset, text.size(), -1});
  return out;
}

}  // namespace strata::tok
