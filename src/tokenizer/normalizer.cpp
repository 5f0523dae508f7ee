#include "tokenizer/normalizer.h"

#include <optional>
#include <vector>

#include "tokenizer/json_util.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace strata::tok {

namespace {

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(unicode::NormalForm f) : form_(f) {}
  void normalize(std::string& text) const override { text = unicode::normalize(text, form_); }

 private:
  unicode::NormalForm form_;
};

class Lowercase final : public Normalizer {
 public:
  void normalize(std::string& text) const override { text = unicode::to_lower(text); }
};

class StripAccents final : public Normalizer {
 public:
  void normalize(std::string& text) const override { text = unicode::strip_marks(text); }
};

class Prepend final : public Normalizer {
 public:
  explicit Prepend(std::string p) : prefix_(std::move(p)) {}
  // The reference leaves empty text alone, so an empty span stays empty.
  void normalize(std::string& text) const override {
    if (!text.empty()) text.insert(0, prefix_);
  }

 private:
  std::string prefix_;
};

class Replace final : public Normalizer {
 public:
  Replace(const PatternSpec& p, std::string content) : content_(std::move(content)) {
    if (p.is_regex) {
      regex_.emplace(p.text);
    } else {
      literal_ = p.text;
    }
  }

  void normalize(std::string& text) const override {
    text = replace_all(text, regex_ ? &*regex_ : nullptr, literal_, content_);
  }

 private:
  std::optional<Regex> regex_;
  std::string literal_;
  std::string content_;
};

class Strip final : public Normalizer {
 public:
  Strip(bool left, bool right) : left_(left), right_(right) {}
  void normalize(std::string& text) const override {
    size_t b = 0, e = text.size();
    if (right_) {
      while (e > 0) {
        size_t i = e;
        if (!unicode::is_whitespace(unicode::prev_char(text, i))) break;
        e = i;
      }
    }
    if (left_) {
      while (b < e) {
        size_t i = b;
        if (!unicode::is_whitespace(unicode::next_char(text, i))) break;
        b = i;
      }
    }
    text = text.substr(b, e - b);
  }

 private:
  bool left_, right_;
};

// Maps every byte to GPT-2's byte-level alphabet.
class ByteLevelNormalizer final : public Normalizer {
 public:
  void normalize(std::string& text) const override {
    const auto& table = unicode::byte_to_chars();
    std::string out;
    out.reserve(text.size() * 2);
    for (char c : text) out += table[static_cast<unsigned char>(c)];
    text = std::move(out);
  }
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts) : parts_(std::move(parts)) {}
  void normalize(std::string& text) const override {
    for (const auto& p : parts_) p->normalize(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

}  // namespace

std::unique_ptr<Normalizer> Normalizer::from_json(const nlohmann::json& j) {
  if (j.is_null()) return nullptr;
  std::string type = component_type(j, "normalizer");
  std::string where = "normalizer " + type;
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(unicode::NormalForm::NFC);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(unicode::NormalForm::NFD);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(unicode::NormalForm::NFKC);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(unicode::NormalForm::NFKD);
  if (type == "Lowercase") return std::make_unique<Lowercase>();
  if (type == "StripAccents") return std::make_unique<StripAccents>();
  if (type == "ByteLevel") return std::make_unique<ByteLevelNormalizer>();
  if (type == "Prepend") return std::make_unique<Prepend>(require_string(j, "prepend", where));
  if (type == "Replace") return std::make_unique<Replace>(pattern_spec(j, where), require_string(j, "content", where));
  if (type == "Strip")
    return std::make_unique<Strip>(optional_field(j, "strip_left", true, where),
                                   optional_field(j, "strip_right", true, where));
  if (type == "Sequence") {
    const auto& list = require(j, "normalizers", where);
    if (!list.is_array()) throw Error(where + ": 'normalizers' must be an array");
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (const auto& item : list) {
      if (auto n = from_json(item)) parts.push_back(std::move(n));
    }
    return std::make_unique<SequenceNormalizer>(std::move(parts));
  }
  throw Error(fmt::format("unsupported normalizer type '{}'", type));
}

}  // namespace strata::tok
