#include "tokenizer/stream_decoder.h"

#include "tokenizer/tokenizer.h"

namespace strata {

namespace {
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
}

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special)
    : tok_(&tokenizer), skip_special_(skip_special) {}

std::string StreamDecoder::step(int32_t id) {
  ids_.push_back(id);
  std::string text = tok_->decode(ids_, skip_special_);
  // A trailing U+FFFD is usually an incomplete sequence that the next ids
  // will complete; a genuine one is emitted with the next piece or by flush().
  if (text.ends_with(kReplacement)) return {};
  std::string piece;
  if (text.starts_with(prefix_)) {
    if (text.size() == prefix_.size()) return {};
    piece = text.substr(prefix_.size());
  } else {
    // The new ids changed how the context decodes: with ByteFallback a byte
    // that cannot continue a completed run turns the whole run into U+FFFD.
    // What was emitted cannot be taken back; emit the new ids on their own.
    piece = tok_->decode(std::span(ids_).subspan(context_), skip_special_);
  }
  ids_.erase(ids_.begin(), ids_.begin() + static_cast<ptrdiff_t>(context_));
  context_ = ids_.size();
  prefix_ = tok_->decode(ids_, skip_special_);
  return piece;
}

std::string StreamDecoder::flush() {
  std::string piece;
  if (ids_.size() > context_) {
    std::string text = tok_->decode(ids_, skip_special_);
    piece = text.starts_with(prefix_) ? text.substr(prefix_.size())
                                      : tok_->decode(std::span(ids_).subspan(context_), skip_special_);
  }
  reset();
  return piece;
}

void StreamDecoder::reset() {
  ids_.clear();
  context_ = 0;
  prefix_.clear();
}

}  // namespace strata
