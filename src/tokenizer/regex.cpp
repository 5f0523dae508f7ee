#include "tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <fmt/format.h>

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace strata::tok {

namespace {

// Unicode White_Space, the meaning of \s in Oniguruma. Written as the body of
// a character class so it can be spliced into an existing class.
constexpr std::string_view kSpaceSet =
    R"(\t\n\x0B\f\r\x20\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";
constexpr std::string_view kWordSet =
    R"(\p{L}\p{M}\p{Nd}\p{Nl}\p{Pc}\x{200C}\x{200D}\x{24B6}-\x{24E9}\x{1F130}-\x{1F149}\x{1F150}-\x{1F169}\x{1F170}-\x{1F189})";
constexpr std::string_view kHexSet = "0-9a-fA-F";

// Rewrites the escapes whose meaning differs between Oniguruma and PCRE2.
// Negated sets inside a class (e.g. [\S]) cannot be spliced and keep PCRE2's
// meaning; no tokenizer we know of uses them.
std::string translate(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 64);
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      char e = p[i + 1];
      std::string_view set;
      bool negated = false;
      switch (e) {
        case 's': set = kSpaceSet; break;
        case 'S': set = kSpaceSet; negated = true; break;
        case 'w': set = kWordSet; break;
        case 'W': set = kWordSet; negated = true; break;
        case 'h': set = kHexSet; break;
        case 'H': set = kHexSet; negated = true; break;
        default: break;
      }
      if (!set.empty() && !(in_class && negated)) {
        if (in_class) {
          out += set;
        } else {
          out += negated ? "[^" : "[";
          out += set;
          out += ']';
        }
      } else {
        out += c;
        out += e;
      }
      ++i;
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
      out += c;
      continue;
    }
    if (c == '[') {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal member, not the end.
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

struct Regex::Code {
  pcre2_code* code = nullptr;
  ~Code() { pcre2_code_free(code); }
};

Regex::Regex(std::string_view pattern) : pattern_(pattern), code_(std::make_shared<Code>()) {
  std::string translated = translate(pattern);
  int err = 0;
  PCRE2_SIZE err_off = 0;
  code_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                              PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE, &err, &err_off, nullptr);
  if (!code_->code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    throw Error(fmt::format("invalid regex '{}': {} at offset {}", pattern, reinterpret_cast<char*>(msg), err_off));
  }
  // JIT is an optimization only: without it (e.g. no executable memory) the
  // interpreter gives the same matches.
  pcre2_jit_compile(code_->code, PCRE2_JIT_COMPLETE);
}

std::vector<std::pair<size_t, size_t>> Regex::find_all(std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> out;
  for_each_match(text, [&](size_t s, size_t e) { out.emplace_back(s, e); });
  return out;
}

void Regex::for_each_match(std::string_view text, const std::function<void(size_t, size_t)>& f) const {
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
      pcre2_match_data_create_from_pattern(code_->code, nullptr), &pcre2_match_data_free);
  if (!md) throw Error("regex: out of memory for match data");
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  size_t last_end = static_cast<size_t>(-1);
  while (pos <= text.size()) {
    // The text was validated on entry to the tokenizer; re-checking it on
    // every call would make matching quadratic.
    int rc = pcre2_match(code_->code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, md.get(), nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      throw Error(fmt::format("regex '{}' failed: {}", pattern_, reinterpret_cast<char*>(msg)));
    }
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    size_t s = ov[0], e = ov[1];
    if (s == e && e == last_end) {
      // An empty match right where the previous one ended is skipped and the
      // search resumes one character later (Oniguruma and Rust's regex).
      if (s >= text.size()) break;
      pos = s + unicode::char_len(static_cast<unsigned char>(text[s]));
      continue;
    }
    f(s, e);
    last_end = e;
    if (e > pos) {
      pos = e;
    } else {
      if (e >= text.size()) break;
      pos = e + unicode::char_len(static_cast<unsigned char>(text[e]));
    }
  }
}

std::string Regex::escape(std::string_view literal) {
  std::string out;
  for (char c : literal) {
    if (std::string_view("\\^$.|?*+()[]{}-#&~ ").find(c) != std::string_view::npos ||
        static_cast<unsigned char>(c) < 0x20) {
      if (static_cast<unsigned char>(c) < 0x20 || c == ' ') {
        out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
        continue;
      }
      out += '\\';
    }
    out += c;
  }
  return out;
}

std::string replace_all(std::string_view text, const Regex* re, std::string_view literal, std::string_view content) {
  std::string out;
  size_t prev = 0;
  if (re) {
    for (auto [s, e] : re->find_all(text)) {
      out.append(text.substr(prev, s - prev));
      out.append(content);
      prev = e;
    }
  } else if (!literal.empty()) {
    for (size_t pos = text.find(literal); pos != std::string_view::npos; pos = text.find(literal, prev)) {
      out.append(text.substr(prev, pos - prev));
      out.append(content);
      prev = pos + literal.size();
    }
  }
  out.append(text.substr(prev));
  return out;
}

}  // namespace strata::tok
