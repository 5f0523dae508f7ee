// Stop strings checked incrementally on the decoded output: each new piece
// of text is searched only where a match could newly end (the piece plus
// the longest stop string's length before it), never by re-decoding the
// whole output. The matcher also says how much text is safe to stream:
// text that may be the start of a stop string is held back until the next
// piece decides it.
//
//   StopMatcher m({"\n\n", "User:"});
//   m.add(piece);                    // true once a stop string is complete
//   stream(text up to m.safe_end());  // m.match() = where the output is cut
#pragma once

#include <string>
#include <vector>

namespace strata {

class StopMatcher {
 public:
  StopMatcher() = default;
  explicit StopMatcher(std::vector<std::string> stops);

  // Appends `piece`; returns true when the text now contains a stop string
  // (the first one, by position, is kept in match()).
  bool add(const std::string& piece);
  const std::string& text() const { return text_; }
  // Offset of the matched stop string, std::string::npos while none.
  size_t match() const { return match_; }
  // Text [0, safe_end()) can no longer become part of a stop string.
  size_t safe_end() const;
  bool empty() const { return stops_.empty(); }

 private:
  std::vector<std::string> stops_;
  size_t longest_ = 0;
  std::string text_;
  size_t match_ = std::string::npos;
};

}  // namespace strata
