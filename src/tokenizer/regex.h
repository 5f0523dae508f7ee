// A compiled regular expression with the matching semantics Hugging Face
// tokenizers get from Oniguruma, implemented with PCRE2 (UTF + UCP + JIT).
//
//   tok::Regex re(R"(\p{N}{1,3})");
//   for (auto [s, e] : re.find_all("abc 12345")) ...   // (4,7) (7,9)
//
// The pattern is translated where the two engines differ: \s means Unicode
// White_Space (PCRE2 adds U+180E), \w means Alphabetic|M|Nd|Pc (PCRE2 uses
// L|N|_), \h is a hex digit, and ^/$ match at line breaks (Ruby syntax).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace strata::tok {

class Regex {
 public:
  // Throws strata::Error naming the pattern and PCRE2's message if it does not compile.
  explicit Regex(std::string_view pattern);

  // Non-overlapping matches left to right as (start, end) byte offsets, with
  // Oniguruma's iteration rule for empty matches. `text` must be valid UTF-8.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;
  // The same matches passed to `f(start, end)` as they are found, without a list.
  void for_each_match(std::string_view text, const std::function<void(size_t, size_t)>& f) const;

  // Escapes every metacharacter so the result matches `literal` exactly.
  static std::string escape(std::string_view literal);

  const std::string& pattern() const { return pattern_; }

 private:
  struct Code;
  std::string pattern_;
  std::shared_ptr<Code> code_;
};

// Replaces every non-overlapping occurrence of `literal` (or of `re` when it
// is not null) by `content`, left to right, as the Replace normalizer and
// decoder do.
std::string replace_all(std::string_view text, const Regex* re, std::string_view literal, std::string_view content);

}  // namespace strata::tok
