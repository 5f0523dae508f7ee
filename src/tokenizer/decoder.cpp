#include "tokenizer/decoder.h"

#include <optional>

#include "tokenizer/json_util.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace strata::tok {

std::string Decoder::decode(std::vector<std::string> tokens) const {
  decode_chain(tokens);
  std::string out;
  for (const auto& t : tokens) out += t;
  return out;
}

namespace {

// Maps byte-level characters back to bytes. A token holding any character
// outside the byte-level alphabet (an added token such as
// "<｜begin▁of▁sentence｜>") contributes its own UTF-8 bytes instead. Bytes
// that do not form valid UTF-8 become U+FFFD (Rust's from_utf8_lossy).
class ByteLevelDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const auto& t : tokens) {
      size_t mark = bytes.size();
      size_t i = 0;
      bool ok = true;
      while (i < t.size()) {
        int b = unicode::char_to_byte(unicode::next_char(t, i));
        if (b < 0) {
          ok = false;
          break;
        }
        bytes.push_back(static_cast<char>(b));
      }
      if (!ok) {
        bytes.resize(mark);
        bytes += t;
      }
    }
    tokens.assign(1, unicode::is_valid_utf8(bytes) ? std::move(bytes) : unicode::sanitize_utf8(bytes));
  }
};

// Gathers runs of "<0xXX>" tokens into text. A run that is not valid UTF-8
// gives one U+FFFD per byte, as the reference does (not from_utf8_lossy).
class ByteFallbackDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string run;
    size_t run_len = 0;
    auto flush = [&]() {
      if (run_len == 0) return;
      if (unicode::is_valid_utf8(run)) {
        out.push_back(run);
      } else {
        for (size_t k = 0; k < run_len; ++k) out.emplace_back("\xEF\xBF\xBD");
      }
      run.clear();
      run_len = 0;
    };
    for (auto& t : tokens) {
      int b = parse_byte(t);
      if (b >= 0) {
        run.push_back(static_cast<char>(b));
        ++run_len;
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens = std::move(out);
  }

 private:
  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  // "<0xAB>" -> 0xAB, else -1. Like Rust's u8::from_str_radix, a leading '+'
  // is accepted ("<0x+A>").
  static int parse_byte(const std::string& t) {
    if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
    if (t[3] == '+') return hex(t[4]);
    int hi = hex(t[3]), lo = hex(t[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
  }
};

class FuseDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

// Removes up to `start` leading and `stop` trailing `content` characters
// from every token.
class StripDecoder final : public Decoder {
 public:
  StripDecoder(char32_t content, size_t start, size_t stop) : content_(content), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) {
      size_t b = 0;
      for (size_t k = 0; k < start_ && b < t.size(); ++k) {
        size_t i = b;
        if (unicode::next_char(t, i) != content_) break;
        b = i;
      }
      size_t e = t.size();
      for (size_t k = 0; k < stop_ && e > b; ++k) {
        size_t i = e;
        if (unicode::prev_char(t, i) != content_) break;
        e = i;
      }
      t = t.substr(b, e - b);
    }
  }

 private:
  char32_t content_;
  size_t start_, stop_;
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(const PatternSpec& p, std::string content) : content_(std::move(content)) {
    if (p.is_regex) {
      regex_.emplace(p.text);
    } else {
      literal_ = p.text;
    }
  }
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) t = replace_all(t, regex_ ? &*regex_ : nullptr, literal_, content_);
  }

 private:
  std::optional<Regex> regex_;
  std::string literal_;
  std::string content_;
};

// The replacement character becomes a space, except in the first token when
// the pre-tokenizer would have prepended it.
class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(char32_t replacement, bool strip_first) : replacement_(replacement), strip_first_(strip_first) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t k = 0; k < tokens.size(); ++k) {
      const std::string& t = tokens[k];
      std::string out;
      size_t i = 0;
      while (i < t.size()) {
        size_t b = i;
        char32_t c = unicode::next_char(t, i);
        if (c == replacement_) {
          if (!(k == 0 && strip_first_)) out.push_back(' ');
        } else {
          out.append(t, b, i - b);
        }
      }
      tokens[k] = std::move(out);
    }
  }

 private:
  char32_t replacement_;
  bool strip_first_;
};

// Original BPE's end-of-word suffix: a space, except after the last token.
class BpeSuffixDecoder final : public Decoder {
 public:
  explicit BpeSuffixDecoder(std::string suffix) : suffix_(std::move(suffix)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t k = 0; k < tokens.size(); ++k)
      tokens[k] = replace_all(tokens[k], nullptr, suffix_, k + 1 == tokens.size() ? "" : " ");
  }

 private:
  std::string suffix_;
};

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> parts) : parts_(std::move(parts)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& p : parts_) p->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> parts_;
};

}  // namespace

std::unique_ptr<Decoder> Decoder::from_json(const nlohmann::json& j) {
  if (j.is_null()) return nullptr;
  std::string type = component_type(j, "decoder");
  std::string where = "decoder " + type;
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip")
    return std::make_unique<StripDecoder>(require_char(j, "content", where), optional_field<size_t>(j, "start", 0, where),
                                          optional_field<size_t>(j, "stop", 0, where));
  if (type == "Replace")
    return std::make_unique<ReplaceDecoder>(pattern_spec(j, where), require_string(j, "content", where));
  if (type == "Metaspace") {
    bool strip_first;
    auto ps = j.find("prepend_scheme");
    if (ps != j.end() && ps->is_string()) {
      strip_first = ps->get<std::string>() != "never";
    } else {
      strip_first = optional_field(j, "add_prefix_space", true, where);
    }
    return std::make_unique<MetaspaceDecoder>(require_char(j, "replacement", where), strip_first);
  }
  if (type == "BPEDecoder") return std::make_unique<BpeSuffixDecoder>(optional_field<std::string>(j, "suffix", "</w>", where));
  if (type == "Sequence") {
    const auto& list = require(j, "decoders", where);
    if (!list.is_array()) throw Error(where + ": 'decoders' must be an array");
    std::vector<std::unique_ptr<Decoder>> parts;
    for (const auto& item : list) {
      if (auto d = from_json(item)) parts.push_back(std::move(d));
    }
    return std::make_unique<SequenceDecoder>(std::move(parts));
  }
  throw Error(fmt::format("unsupported decoder type '{}'", type));
}

}  // namespace strata::tok
