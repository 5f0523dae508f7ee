// UTF-8 and Unicode-property helpers shared by the tokenizer pipeline.
//
// Every function that takes text assumes valid UTF-8 except
// sanitize_utf8(), which is how text enters the pipeline: the tokenizer
// replaces invalid sequences once at the boundary so that nothing further
// down has to guard against them.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace strata::unicode {

// Length of the UTF-8 sequence introduced by `lead` (1 for continuation or
// invalid bytes, so a loop over sanitized text always advances).
inline size_t char_len(unsigned char lead) {
  if (lead < 0xC0) return 1;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  return 4;
}

// Decodes the code point at s[i] and advances i past it. `s` must be valid.
inline char32_t next_char(std::string_view s, size_t& i) {
  auto b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) {
    ++i;
    return b;
  }
  size_t n = char_len(b);
  char32_t cp = b & (0xFF >> (n + 1));
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += n;
  return cp;
}

// Decodes the code point that ends just before s[i] and moves i back to its start.
char32_t prev_char(std::string_view s, size_t& i);

void append_utf8(std::string& out, char32_t cp);

// True when `s` is well-formed UTF-8 (no overlongs, surrogates or values
// above U+10FFFF).
bool is_valid_utf8(std::string_view s);

// Replaces every ill-formed sequence by U+FFFD using the "maximal subpart"
// rule, which is what Python's bytes.decode(errors="replace") and Rust's
// String::from_utf8_lossy do: "\xE2\x82" gives one U+FFFD, "\xC0\xAF" two.
std::string sanitize_utf8(std::string_view s);

// Unicode White_Space, i.e. Rust's char::is_whitespace and the regex \s of
// Oniguruma and Rust's regex crate.
bool is_whitespace(char32_t c);
// General category N* (Rust's char::is_numeric).
bool is_numeric(char32_t c);
// General category P* (Rust's char::is_punctuation).
bool is_punctuation(char32_t c);
// Regex \w as Rust's regex crate defines it (Alphabetic, M, Nd, Pc,
// Join_Control), approximated with general categories.
bool is_word_char(char32_t c);

enum class NormalForm { NFC, NFD, NFKC, NFKD };
std::string normalize(std::string_view s, NormalForm form);
// Full lowercase mapping per code point (Rust's char::to_lowercase).
std::string to_lower(std::string_view s);
// Removes combining marks (category Mn), as the StripAccents normalizer does.
std::string strip_marks(std::string_view s);

// GPT-2's byte-level alphabet: every byte maps to one printable code point,
// so that byte strings become valid text a BPE vocabulary can hold.
const std::array<std::string, 256>& byte_to_chars();
// The byte a byte-level code point stands for, or -1.
int char_to_byte(char32_t c);

}  // namespace strata::unicode
