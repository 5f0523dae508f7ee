#include "tokenizer/jinja/lexer.h"

#include <fmt/format.h>

#include "tokenizer/jinja/value.h"

namespace strata::jinja {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Python's str.splitlines() + "\n".join(): every line break becomes "\n",
// and a final line break is dropped.
std::string normalize_newlines(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    if (c == '\r') {
      len = (i + 1 < s.size() && s[i + 1] == '\n') ? 2 : 1;
    } else if (c == '\n' || c == '\v' || c == '\f' || c == 0x1c || c == 0x1d || c == 0x1e) {
      len = 1;
    } else if (c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x85) {
      len = 2;
    } else if (c == 0xE2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
               (static_cast<unsigned char>(s[i + 2]) == 0xA8 || static_cast<unsigned char>(s[i + 2]) == 0xA9)) {
      len = 3;
    }
    if (len) {
      if (i + len < s.size()) out += '\n';
      i += len - 1;
    } else {
      out += s[i];
    }
  }
  return out;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class Lexer {
 public:
  explicit Lexer(std::string src) : s_(std::move(src)) {}

  std::vector<Token> run() {
    bool line_starting = true;
    while (pos_ < s_.size()) {
      size_t tag = find_tag(pos_);
      std::string data = s_.substr(pos_, tag - pos_);
      if (tag == s_.size()) {
        push_data(std::move(data));
        break;
      }
      char kind = s_[tag + 1];  // '{', '%' or '#'
      char ctrl = tag + 2 < s_.size() ? s_[tag + 2] : '\0';
      if (ctrl == '-') {
        size_t e = data.size();
        while (e > 0 && is_space(data[e - 1])) --e;
        count_lines(data, e);
        data.resize(e);
      } else if (ctrl != '+' && kind != '{') {
        size_t l = data.rfind('\n');
        size_t lpos = l == std::string::npos ? 0 : l + 1;
        if (lpos > 0 || line_starting) {
          bool ws = lpos < data.size();
          for (size_t i = lpos; i < data.size(); ++i)
            if (data[i] != ' ' && data[i] != '\t') ws = false;
          if (ws) data.resize(lpos);
        }
      }
      push_data(std::move(data));
      pos_ = tag + 2 + ((ctrl == '-' || ctrl == '+') ? 1 : 0);
      size_t before_end = pos_;
      (void)before_end;
      if (kind == '#') {
        line_starting = comment();
      } else if (kind == '{') {
        push(Token::Type::VarBegin, "");
        line_starting = expression(false);
      } else if (raw_block()) {
        line_starting = last_end_newline_;
      } else {
        push(Token::Type::BlockBegin, "");
        line_starting = expression(true);
      }
    }
    push(Token::Type::Eof, "");
    return std::move(out_);
  }

 private:
  [[noreturn]] void fail(const std::string& msg) const {
    throw TemplateError(fmt::format("template syntax error, line {}: {}", line_, msg));
  }

  size_t find_tag(size_t from) const {
    for (size_t i = from; i + 1 < s_.size(); ++i)
      if (s_[i] == '{' && (s_[i + 1] == '{' || s_[i + 1] == '%' || s_[i + 1] == '#')) return i;
    return s_.size();
  }

  void count_lines(const std::string& text, size_t from) {
    for (size_t i = from; i < text.size(); ++i)
      if (text[i] == '\n') ++stripped_lines_;
  }

  void push_data(std::string data) {
    int line = line_;
    for (char c : data)
      if (c == '\n') ++line_;
    line_ += stripped_lines_;
    stripped_lines_ = 0;
    if (!data.empty()) out_.push_back({Token::Type::Data, std::move(data), line});
  }

  void push(Token::Type t, std::string text) { out_.push_back({t, std::move(text), line_}); }

  // After a tag's end marker: "-" eats all whitespace, otherwise a block or
  // comment end eats one newline (trim_blocks). Returns whether what was
  // consumed ended with a newline (Jinja2's line_starting).
  bool after_end(bool trim_ws, bool trim_newline) {
    bool nl = false;
    if (trim_ws) {
      while (pos_ < s_.size() && is_space(s_[pos_])) {
        nl = s_[pos_] == '\n';
        if (nl) ++line_;
        ++pos_;
      }
    } else if (trim_newline && pos_ < s_.size() && s_[pos_] == '\n') {
      ++pos_;
      ++line_;
      nl = true;
    }
    return nl;
  }

  bool comment() {
    size_t e = s_.find("#}", pos_);
    if (e == std::string::npos) fail("missing end of comment tag");
    bool minus = e > pos_ && s_[e - 1] == '-';
    bool plus = e > pos_ && s_[e - 1] == '+';
    for (size_t i = pos_; i < e; ++i)
      if (s_[i] == '\n') ++line_;
    pos_ = e + 2;
    return after_end(minus, !plus);
  }

  // {% raw %}...{% endraw %}: the text between is data, untouched.
  bool raw_block() {
    size_t p = pos_;
    while (p < s_.size() && is_space(s_[p])) ++p;
    if (s_.compare(p, 3, "raw") != 0 || (p + 3 < s_.size() && (is_name_start(s_[p + 3]) || is_digit(s_[p + 3]))))
      return false;
    p += 3;
    while (p < s_.size() && is_space(s_[p])) ++p;
    bool minus = false;
    if (p < s_.size() && (s_[p] == '-' || s_[p] == '+')) minus = s_[p++] == '-';
    if (s_.compare(p, 2, "%}") != 0) return false;
    pos_ = p + 2;
    after_end(minus, true);
    // Find {%[-+]? endraw [-+]?%}
    for (size_t i = pos_; (i = s_.find("{%", i)) != std::string::npos; i += 2) {
      size_t q = i + 2;
      bool lminus = q < s_.size() && s_[q] == '-';
      if (q < s_.size() && (s_[q] == '-' || s_[q] == '+')) ++q;
      while (q < s_.size() && is_space(s_[q])) ++q;
      if (s_.compare(q, 6, "endraw") != 0) continue;
      q += 6;
      while (q < s_.size() && is_space(s_[q])) ++q;
      bool rminus = false;
      if (q < s_.size() && (s_[q] == '-' || s_[q] == '+')) rminus = s_[q++] == '-';
      if (s_.compare(q, 2, "%}") != 0) continue;
      std::string data = s_.substr(pos_, i - pos_);
      if (lminus) {
        while (!data.empty() && is_space(data.back())) data.pop_back();
      }
      push_data(std::move(data));
      pos_ = q + 2;
      last_end_newline_ = after_end(rminus, true);
      return true;
    }
    fail("missing endraw");
  }

  // Tokens of an expression up to "}}" (block=false) or "%}".
  bool expression(bool block) {
    int depth = 0;
    while (true) {
      while (pos_ < s_.size() && is_space(s_[pos_])) {
        if (s_[pos_] == '\n') ++line_;
        ++pos_;
      }
      if (pos_ >= s_.size()) fail(block ? "unexpected end of template, expected '%}'" : "expected '}}'");
      char c = s_[pos_];
      if (depth == 0) {
        const char* end = block ? "%}" : "}}";
        bool minus = c == '-' && s_.compare(pos_ + 1, 2, end) == 0;
        bool plus = block && c == '+' && s_.compare(pos_ + 1, 2, end) == 0;
        if (minus || plus || s_.compare(pos_, 2, end) == 0) {
          pos_ += (minus || plus) ? 3 : 2;
          push(block ? Token::Type::BlockEnd : Token::Type::VarEnd, "");
          return after_end(minus, block && !plus);
        }
      }
      if (is_name_start(c)) {
        size_t b = pos_;
        while (pos_ < s_.size() && (is_name_start(s_[pos_]) || is_digit(s_[pos_]))) ++pos_;
        push(Token::Type::Name, s_.substr(b, pos_ - b));
      } else if (is_digit(c)) {
        number();
      } else if (c == '\'' || c == '"') {
        string_literal(c);
      } else {
        static const char* ops[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">",
                                    "=",  "(",  ")",  "[",  "]",  "{",  "}", ",", ".", ":", "|", ";"};
        bool found = false;
        for (const char* op : ops) {
          size_t n = std::char_traits<char>::length(op);
          if (s_.compare(pos_, n, op) == 0) {
            if (op[0] == '(' || op[0] == '[' || op[0] == '{') ++depth;
            if ((op[0] == ')' || op[0] == ']' || op[0] == '}') && depth > 0) --depth;
            push(Token::Type::Op, op);
            pos_ += n;
            found = true;
            break;
          }
        }
        if (!found) fail(fmt::format("unexpected char '{}'", c));
      }
    }
  }

  void number() {
    size_t b = pos_;
    auto digits = [&] {
      while (pos_ < s_.size() && (is_digit(s_[pos_]) || (s_[pos_] == '_' && pos_ + 1 < s_.size() && is_digit(s_[pos_ + 1]))))
        ++pos_;
    };
    digits();
    bool is_float = false;
    if (pos_ + 1 < s_.size() && s_[pos_] == '.' && is_digit(s_[pos_ + 1])) {
      is_float = true;
      ++pos_;
      digits();
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      size_t q = pos_ + 1;
      if (q < s_.size() && (s_[q] == '+' || s_[q] == '-')) ++q;
      if (q < s_.size() && is_digit(s_[q])) {
        is_float = true;
        pos_ = q;
        digits();
      }
    }
    std::string text;
    for (size_t i = b; i < pos_; ++i)
      if (s_[i] != '_') text += s_[i];
    push(is_float ? Token::Type::Float : Token::Type::Int, text);
  }

  // Python string literal escapes, as Jinja2 decodes them.
  void string_literal(char q) {
    ++pos_;
    std::string v;
    while (true) {
      if (pos_ >= s_.size()) fail("unterminated string");
      char c = s_[pos_++];
      if (c == q) break;
      if (c == '\n') ++line_;
      if (c != '\\') {
        v += c;
        continue;
      }
      if (pos_ >= s_.size()) fail("unterminated string");
      char e = s_[pos_++];
      auto hex = [&](int n) -> uint32_t {
        uint32_t cp = 0;
        for (int k = 0; k < n; ++k) {
          if (pos_ >= s_.size()) fail("truncated escape in string");
          char h = s_[pos_++];
          cp <<= 4;
          if (is_digit(h)) {
            cp |= static_cast<uint32_t>(h - '0');
          } else if (h >= 'a' && h <= 'f') {
            cp |= static_cast<uint32_t>(h - 'a' + 10);
          } else if (h >= 'A' && h <= 'F') {
            cp |= static_cast<uint32_t>(h - 'A' + 10);
          } else {
            fail("bad escape in string");
          }
        }
        return cp;
      };
      switch (e) {
        case 'n': v += '\n'; break;
        case 't': v += '\t'; break;
        case 'r': v += '\r'; break;
        case '\\': v += '\\'; break;
        case '\'': v += '\''; break;
        case '"': v += '"'; break;
        case 'a': v += '\a'; break;
        case 'b': v += '\b'; break;
        case 'f': v += '\f'; break;
        case 'v': v += '\v'; break;
        case '0': v += '\0'; break;
        case '\n': ++line_; break;
        case 'x': append_utf8(v, hex(2)); break;
        case 'u': append_utf8(v, hex(4)); break;
        case 'U': {
          uint32_t cp = hex(8);
          if (cp > 0x10FFFF) fail("bad escape in string");
          append_utf8(v, cp);
          break;
        }
        default:
          v += '\\';
          v += e;
      }
    }
    push(Token::Type::String, std::move(v));
  }

  std::string s_;
  size_t pos_ = 0;
  int line_ = 1;
  int stripped_lines_ = 0;
  bool last_end_newline_ = false;
  std::vector<Token> out_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source) { return Lexer(normalize_newlines(source)).run(); }

}  // namespace strata::jinja
