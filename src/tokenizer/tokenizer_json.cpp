#include "tokenizer/tokenizer_json.h"

#include <fmt/format.h>

#include "core/error.h"

namespace strata::tok {

namespace {

using json = nlohmann::json;

// SAX events go to nlohmann's own DOM builder, except inside model.vocab
// (an object of token -> id) and model.merges (an array of "a b" or [a, b]),
// which are captured into BpeTables.
class Reader final : public nlohmann::json_sax<json> {
 public:
  explicit Reader(TokenizerJson& out) : out_(out), dom_(out.doc, true) {}

  const std::string& error() const { return error_; }

  bool null() override { return capturing() ? scalar() : dom_.null(); }
  bool boolean(bool v) override { return capturing() ? scalar() : dom_.boolean(v); }
  bool number_integer(number_integer_t v) override {
    if (capture_ == Capture::Vocab && depth_ == 1) {
      out_.bpe.vocab.emplace_back(std::move(key_), v);
      return true;
    }
    return capturing() ? scalar() : dom_.number_integer(v);
  }
  bool number_unsigned(number_unsigned_t v) override {
    if (capture_ == Capture::Vocab && depth_ == 1) {
      out_.bpe.vocab.emplace_back(std::move(key_), v > static_cast<number_unsigned_t>(INT64_MAX) ? -1 : static_cast<int64_t>(v));
      return true;
    }
    return capturing() ? scalar() : dom_.number_unsigned(v);
  }
  bool number_float(number_float_t v, const string_t& s) override { return capturing() ? scalar() : dom_.number_float(v, s); }
  bool binary(binary_t& v) override { return capturing() ? scalar() : dom_.binary(v); }

  bool string(string_t& v) override {
    if (capture_ == Capture::Merges) {
      if (depth_ == 1) {
        size_t sp = v.find(' ');
        if (sp == std::string::npos) {
          fail(fmt::format("model: merge {} '{}' is not two tokens", out_.bpe.merges.size(), v));
        } else {
          out_.bpe.merges.emplace_back(v.substr(0, sp), v.substr(sp + 1));
        }
        return true;
      }
      if (depth_ == 2) {
        pair_.push_back(std::move(v));
        return true;
      }
    }
    return capturing() ? scalar() : dom_.string(v);
  }

  bool start_object(std::size_t n) override {
    if (capturing()) return open();
    if (at_table("vocab")) {
      begin(Capture::Vocab);
      out_.bpe.has_vocab = true;
      return dom_.start_object(0) && dom_.end_object();
    }
    levels_.push_back({true, {}});
    return dom_.start_object(n);
  }
  bool key(string_t& k) override {
    if (capturing()) {
      if (depth_ == 1) key_ = std::move(k);
      return true;
    }
    levels_.back().key = k;
    return dom_.key(k);
  }
  bool end_object() override {
    if (capturing()) return close();
    levels_.pop_back();
    return dom_.end_object();
  }
  bool start_array(std::size_t n) override {
    if (capturing()) {
      if (capture_ == Capture::Merges && depth_ == 1) pair_.clear();
      return open();
    }
    if (at_table("merges")) {
      begin(Capture::Merges);
      out_.bpe.has_merges = true;
      return dom_.start_array(0) && dom_.end_array();
    }
    levels_.push_back({false, {}});
    return dom_.start_array(n);
  }
  bool end_array() override {
    if (capturing()) {
      if (capture_ == Capture::Merges && depth_ == 2) {
        if (pair_.size() == 2 && !bad_item_) {
          out_.bpe.merges.emplace_back(std::move(pair_[0]), std::move(pair_[1]));
        } else {
          fail(fmt::format("model: merge {} is neither \"a b\" nor [a, b]", out_.bpe.merges.size()));
        }
        bad_item_ = false;
      }
      return close();
    }
    levels_.pop_back();
    return dom_.end_array();
  }
  bool parse_error(std::size_t pos, const std::string& token, const nlohmann::detail::exception& e) override {
    return dom_.parse_error(pos, token, e);  // throws, as json::parse would
  }

 private:
  enum class Capture { None, Vocab, Merges };
  bool capturing() const { return capture_ != Capture::None; }

  struct Level {
    bool is_object;
    std::string key;
  };

  // True when the value about to start is model.<name> at the top level.
  bool at_table(std::string_view name) const {
    return levels_.size() == 2 && levels_[0].is_object && levels_[0].key == "model" && levels_[1].is_object &&
           levels_[1].key == name;
  }
  void begin(Capture c) {
    capture_ = c;
    depth_ = 1;
  }
  bool open() {
    if (depth_ >= 2) bad_item_ = true;  // nested deeper than a merge pair
    if (capture_ == Capture::Vocab) fail(fmt::format("model: vocab entry '{}' has no valid id", key_));
    ++depth_;
    return true;
  }
  bool close() {
    if (--depth_ == 0) capture_ = Capture::None;
    return true;
  }
  // A value of the wrong kind inside a captured table.
  bool scalar() {
    if (capture_ == Capture::Vocab) fail(fmt::format("model: vocab entry '{}' has no valid id", key_));
    if (capture_ == Capture::Merges) {
      if (depth_ == 1) fail(fmt::format("model: merge {} is neither \"a b\" nor [a, b]", out_.bpe.merges.size()));
      bad_item_ = true;
    }
    return true;
  }
  void fail(std::string msg) {
    if (error_.empty()) error_ = std::move(msg);
  }

  TokenizerJson& out_;
  nlohmann::detail::json_sax_dom_parser<json> dom_;
  std::vector<Level> levels_;
  Capture capture_ = Capture::None;
  int depth_ = 0;
  std::string key_;
  std::vector<std::string> pair_;
  bool bad_item_ = false;
  std::string error_;
};

}  // namespace

TokenizerJson read_tokenizer_json(std::string_view text) {
  TokenizerJson out;
  Reader reader(out);
  json::sax_parse(text.begin(), text.end(), &reader);
  if (!reader.error().empty()) throw Error(reader.error());
  return out;
}

}  // namespace strata::tok
